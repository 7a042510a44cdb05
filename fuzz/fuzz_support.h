// Helpers shared by the fuzz targets: a per-process scratch directory, writing an input to a file
// there, and the rule every target checks — bad input may only ever raise chase::Error.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "chase/error.h"

namespace chase::fuzz {

// A directory of this process's own under the system's temporary directory, removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "chase-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return std::filesystem::path(pattern);
  }();
  return dir;
}

// Writes `bytes` to scratch_dir()/name and returns the path.
inline std::filesystem::path write_file(const std::string& name, std::string_view bytes) {
  const auto path = scratch_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) std::abort();
  return path;
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `parse`; a chase::Error is the expected answer to bad input, so it is swallowed. Anything
// else (another exception, a crash, a sanitizer report) escapes and libFuzzer reports it.
template <typename Parse>
void expect_only_chase_errors(Parse&& parse) {
  try {
    parse();
  } catch (const chase::Error&) {
  }
}

// Aborts (a finding) unless `condition` holds: the invariants a parsed result must keep.
inline void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace chase::fuzz
