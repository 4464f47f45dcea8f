// Test helpers for file readers: scratch files under LAMINAR_TEST_TMP_DIR and a
// doctest matcher built from a std::string.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace test_files {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

// doctest::Contains takes a doctest::String, which std::string does not convert to.
inline doctest::Contains contains(const std::string& text) { return doctest::Contains(text.c_str()); }

// A path in the scratch folder `group` of this process: CTest runs test cases as
// separate processes, possibly at once, so each gets its own folder.
inline fs::path scratch(const std::string& group, const std::string& name) {
  const fs::path directory = fs::path(LAMINAR_TEST_TMP_DIR) / std::to_string(::getpid()) / group;
  fs::create_directories(directory);
  return directory / name;
}

inline fs::path write_plain(const std::string& group, const std::string& name, const Bytes& bytes) {
  const fs::path file = scratch(group, name);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  REQUIRE(out);
  return file;
}

}  // namespace test_files
