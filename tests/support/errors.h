// Test helper: run code that must fail with a chase::Error of a given code, and get its message to
// check what it says (file and line, the device, what to do).
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

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

// Runs `action`, which must throw chase::Error, and returns the error (a test failure and a
// kInternal error when nothing was thrown).
template <typename Action>
Error expect_error(Action&& action) {
  try {
    action();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "expected a chase::Error";
  return Error(ErrorCode::kInternal, "no error was thrown");
}

// Runs `action`, expecting a chase::Error with `code` whose message contains every fragment.
template <typename Action>
void expect_error(Action&& action, ErrorCode code, const std::vector<std::string>& fragments) {
  try {
    action();
    ADD_FAILURE() << "expected a chase::Error (" << to_string(code) << "), got none";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), code) << error.what();
    for (const std::string& fragment : fragments) {
      EXPECT_THAT(error.what(), ::testing::HasSubstr(fragment));
    }
  }
}

}  // namespace chase::testing
