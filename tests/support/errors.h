// Test helper: run code that must fail with a chase::Error of a given code, and get its message to
// check what it says (file and line, the device, what to do).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "chase/error.h"

namespace chase::testing {

// Runs `action`, expecting a chase::Error with `code`; returns its message ("" and a test failure
// when nothing, or something else, was thrown).
template <typename Action>
std::string error_message(Action action, ErrorCode code) {
  try {
    action();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
    return error.what();
  }
  ADD_FAILURE() << "expected a chase::Error";
  return {};
}

}  // namespace chase::testing
