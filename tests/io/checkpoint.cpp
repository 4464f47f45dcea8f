// The checkpoint container: bit-exact round trips of every entry type, the
// documented byte layout, one clear Error for every kind of damage, and atomic
// saves.
#include <doctest/doctest.h>
#include <zlib.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "support/files.hpp"
#include <laminar/io/checkpoint.hpp>

namespace {

namespace fs = std::filesystem;
using laminar::Error;
using laminar::io::CheckpointReader;
using laminar::io::CheckpointWriter;
using laminar::io::EntryType;
using test_files::contains;

template <class Integer>
void append(std::string& out, Integer value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// Three entries, small enough to cut at every length.
std::string small_checkpoint() {
  CheckpointWriter w;
  w.add_text("note", "hello");
  w.add_array("weights", std::vector<double>{1.5, -2.0, 0.25});
  w.add_scalar("step", std::int64_t{42});
  return w.serialize();
}

template <class T>
std::vector<std::uint64_t> bits_of(const std::vector<T>& values) {
  std::vector<std::uint64_t> bits;
  for (T v : values) {
    if constexpr (sizeof(T) == 4) bits.push_back(std::bit_cast<std::uint32_t>(v));
    else bits.push_back(std::bit_cast<std::uint64_t>(v));
  }
  return bits;
}

}  // namespace

TEST_CASE("every entry type round-trips bit for bit") {
  const std::string text = std::string("line one\nline two\0after a nul", 29);
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes += char(b);
  const std::vector<float> floats = {
      std::bit_cast<float>(std::uint32_t{0x7fc01234}),  // quiet NaN with a payload
      -0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::infinity(),
      std::numeric_limits<float>::max(), 1.0f / 3.0f};
  const std::vector<double> doubles = {
      std::bit_cast<double>(std::uint64_t{0x7ff4000000000123}),  // signalling NaN with a payload
      -0.0, std::numeric_limits<double>::denorm_min(), 0x1.0p-1050, -std::numeric_limits<double>::infinity(),
      std::numeric_limits<double>::max(), 0.1};
  const std::vector<std::int64_t> signed_values = {std::numeric_limits<std::int64_t>::min(), -1, 0,
                                                   std::numeric_limits<std::int64_t>::max()};
  const std::vector<std::uint64_t> unsigned_values = {0, 1, std::numeric_limits<std::uint64_t>::max()};

  CheckpointWriter w;
  w.add_text("text", text);
  w.add_bytes("bytes", bytes);
  w.add_array("f32", floats);
  w.add_array("f64", doubles.data(), doubles.size());
  w.add_array("i64", signed_values);
  w.add_array("u64", unsigned_values);
  const CheckpointReader r = CheckpointReader::parse(w.serialize(), "memory");

  CHECK(r.names() == std::vector<std::string>{"text", "bytes", "f32", "f64", "i64", "u64"});
  CHECK(r.text("text") == text);
  CHECK(r.bytes("bytes") == bytes);
  CHECK(bits_of(r.array<float>("f32")) == bits_of(floats));
  CHECK(bits_of(r.array<double>("f64")) == bits_of(doubles));
  CHECK(r.array<std::int64_t>("i64") == signed_values);
  CHECK(r.array<std::uint64_t>("u64") == unsigned_values);
  CHECK(r.type("f64") == EntryType::f64);
  CHECK(r.count("f64") == doubles.size());
  std::vector<double> read(doubles.size());
  r.read_array("f64", read.data(), read.size());
  CHECK(bits_of(read) == bits_of(doubles));
}

TEST_CASE("empty arrays, empty text and empty bytes round-trip") {
  CheckpointWriter w;
  w.add_text("text", "");
  w.add_bytes("bytes", "");
  w.add_array("f32", std::vector<float>{});
  w.add_array<double>("f64", nullptr, 0);
  const CheckpointReader r = CheckpointReader::parse(w.serialize(), "memory");
  CHECK(r.text("text").empty());
  CHECK(r.bytes("bytes").empty());
  CHECK(r.array<float>("f32").empty());
  CHECK(r.array<double>("f64").empty());
  r.read_array<double>("f64", nullptr, 0);
}

TEST_CASE("scalars are one-element arrays of f64 or i64") {
  CheckpointWriter w;
  w.add_scalar("learning_rate", -0.0);
  w.add_scalar("step", std::int64_t{-7});
  const CheckpointReader r = CheckpointReader::parse(w.serialize(), "memory");
  CHECK(std::signbit(r.scalar_f64("learning_rate")));
  CHECK(r.scalar_f64("learning_rate") == 0.0);
  CHECK(r.scalar_i64("step") == -7);
  CHECK(r.array<std::int64_t>("step") == std::vector<std::int64_t>{-7});
  CHECK(r.type("learning_rate") == EntryType::f64);
}

TEST_CASE("the serialized bytes follow the documented layout") {
  CheckpointWriter w;
  w.add_text("ab", "xyz");
  w.add_array("v", std::vector<float>{2.0f});
  std::string expected = "LAMINAR-CHECKPOINT\n";
  append(expected, std::uint32_t{1});
  append(expected, std::uint64_t{2});
  append(expected, std::uint32_t{2});
  expected += "ab";
  append(expected, std::uint32_t{1});  // text
  append(expected, std::uint64_t{3});
  expected += "xyz";
  append(expected, std::uint32_t{1});
  expected += "v";
  append(expected, std::uint32_t{2});  // f32
  append(expected, std::uint64_t{4});
  append(expected, std::uint32_t{0x40000000});  // 2.0f
  append(expected, std::uint32_t(crc32(0, reinterpret_cast<const Bytef*>(expected.data()),
                                       uInt(expected.size()))));
  CHECK(w.serialize() == expected);
}

TEST_CASE("a flipped byte in the middle of a payload is a checksum mismatch") {
  std::string bytes = small_checkpoint();
  const std::size_t payload = bytes.find("hello");
  REQUIRE(payload != std::string::npos);
  bytes[payload + 2] ^= 0x10;
  const std::uint32_t computed =
      std::uint32_t(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size() - 4)));
  std::uint32_t stored;
  std::memcpy(&stored, bytes.data() + bytes.size() - 4, 4);
  char expected[96];
  std::snprintf(expected, sizeof expected, "run.ckpt: checkpoint is corrupted: CRC-32 stored 0x%08x, computed 0x%08x",
                unsigned(stored), unsigned(computed));
  CHECK_THROWS_WITH_AS(CheckpointReader::parse(bytes, "run.ckpt"), contains(expected), Error);
}

TEST_CASE("flipping any single byte of a checkpoint is an Error") {
  const std::string original = small_checkpoint();
  for (std::size_t i = 0; i < original.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string bytes = original;
      bytes[i] = char(bytes[i] ^ mask);
      CAPTURE(i);
      CAPTURE(int(mask));
      CHECK_THROWS_AS(CheckpointReader::parse(bytes, "run.ckpt"), Error);
    }
  }
}

TEST_CASE("every truncated prefix of a checkpoint is an Error saying it is truncated") {
  const std::string whole = small_checkpoint();
  for (std::size_t n = 0; n < whole.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_WITH_AS(CheckpointReader::parse(whole.substr(0, n), "cut.ckpt"),
                         contains("cut.ckpt: checkpoint is truncated"), Error);
  }
}

TEST_CASE("a truncated payload names the entry and the bytes it expected") {
  const std::string whole = small_checkpoint();
  // Entry 2's payload is three doubles (24 bytes); keep 10 of them.
  const std::size_t payload = whole.find("weights") + 7 + 4 + 8;
  CHECK_THROWS_WITH_AS(
      CheckpointReader::parse(whole.substr(0, payload + 10), "cut.ckpt"),
      contains("cut.ckpt: checkpoint is truncated at entry 2 of 3 (its payload): expected 24 more "
               "bytes, only 10 remain"),
      Error);
  CHECK_THROWS_WITH_AS(CheckpointReader::parse(whole.substr(0, whole.size() - 1), "cut.ckpt"),
                       contains("truncated in its CRC-32 after the last entry: expected 4 more bytes, "
                                "only 3 remain"),
                       Error);
}

TEST_CASE("a file that does not start with the magic is not a laminar checkpoint") {
  std::string bytes = small_checkpoint();
  bytes[0] = 'l';
  CHECK_THROWS_WITH_AS(CheckpointReader::parse(bytes, "model.safetensors"),
                       contains("model.safetensors: not a laminar checkpoint"), Error);
  CHECK_THROWS_WITH_AS(CheckpointReader::parse("PK\x03\x04", "model.zip"),
                       contains("model.zip: not a laminar checkpoint"), Error);
}

TEST_CASE("an unknown format version is refused naming the version") {
  std::string bytes = small_checkpoint();
  const std::uint32_t version = 2;
  std::memcpy(bytes.data() + 19, &version, 4);
  CHECK_THROWS_WITH_AS(CheckpointReader::parse(bytes, "new.ckpt"),
                       contains("new.ckpt: unsupported checkpoint format version 2; this build reads version 1"),
                       Error);
}

TEST_CASE("bytes after the checksum are refused") {
  const std::string bytes = small_checkpoint() + "junk";
  CHECK_THROWS_WITH_AS(CheckpointReader::parse(bytes, "long.ckpt"),
                       contains("long.ckpt: checkpoint has 4 trailing bytes after its CRC-32"), Error);
}

TEST_CASE("entry names must be unique and non-empty when they are added") {
  CheckpointWriter w;
  w.add_text("a", "first");
  CHECK_THROWS_WITH_AS(w.add_scalar("a", 1.0),
                       contains("checkpoint entry \"a\" is added twice; entry names must be unique"), Error);
  CHECK_THROWS_WITH_AS(w.add_bytes("", "x"), contains("non-empty name"), Error);
  const CheckpointReader r = CheckpointReader::parse(w.serialize(), "memory");
  CHECK(r.names() == std::vector<std::string>{"a"});
  CHECK(r.text("a") == "first");
}

TEST_CASE("a missing entry is an Error naming it and the entries present") {
  const CheckpointReader r = CheckpointReader::parse(small_checkpoint(), "run.ckpt");
  CHECK_FALSE(r.has("optimizer"));
  CHECK(r.has("note"));
  CHECK_THROWS_WITH_AS(
      r.array<double>("optimizer"),
      contains("run.ckpt: checkpoint has no entry \"optimizer\"; it holds \"note\", \"weights\", \"step\""),
      Error);
}

TEST_CASE("reading an entry as another type is an Error naming both types") {
  const CheckpointReader r = CheckpointReader::parse(small_checkpoint(), "run.ckpt");
  CHECK_THROWS_WITH_AS(r.array<float>("weights"),
                       contains("run.ckpt: checkpoint entry \"weights\" is f64, not f32"), Error);
  CHECK_THROWS_WITH_AS(r.scalar_f64("step"), contains("entry \"step\" is i64, not f64"), Error);
  CHECK_THROWS_WITH_AS(r.bytes("note"), contains("entry \"note\" is text, not bytes"), Error);
  CHECK_THROWS_WITH_AS(r.text("weights"), contains("entry \"weights\" is f64, not text"), Error);
}

TEST_CASE("read_array with the wrong count is an Error naming both counts") {
  const CheckpointReader r = CheckpointReader::parse(small_checkpoint(), "run.ckpt");
  std::vector<double> out(4, 9.0);
  CHECK_THROWS_WITH_AS(r.read_array("weights", out.data(), out.size()),
                       contains("run.ckpt: checkpoint entry \"weights\" holds 3 f64 values but 4 were asked for"),
                       Error);
  CHECK(out == std::vector<double>(4, 9.0));
  CHECK_THROWS_WITH_AS(r.scalar_f64("weights"), contains("holds 3 f64 values but 1 were asked for"), Error);
}

TEST_CASE("a checkpoint saved to disk loads back and names its file in errors") {
  const fs::path file = test_files::scratch("checkpoint", "saved.ckpt");
  CheckpointWriter w;
  w.add_array("v", std::vector<std::uint64_t>{3, 4});
  w.save(file.string());
  const CheckpointReader r = CheckpointReader::load(file.string());
  CHECK(r.source() == file.string());
  CHECK(r.array<std::uint64_t>("v") == std::vector<std::uint64_t>{3, 4});
  CHECK_THROWS_WITH_AS(r.text("w"), contains(file.string() + ": checkpoint has no entry \"w\""), Error);
  const std::string absent = (file.parent_path() / "absent.ckpt").string();
  CHECK_THROWS_WITH_AS(CheckpointReader::load(absent), contains("cannot read " + absent), Error);
}

TEST_CASE("a failed save throws and leaves no temporary file") {
  const fs::path folder = test_files::scratch("checkpoint_failed_save", "");
  CheckpointWriter w;
  w.add_text("a", "b");
  const fs::path missing = folder / "missing" / "run.ckpt";
  CHECK_THROWS_WITH_AS(w.save(missing.string()), contains("cannot write " + missing.string()), Error);
  CHECK_FALSE(fs::exists(folder / "missing"));
  // A directory in the way: the temporary is written, the rename fails, the temporary goes.
  const fs::path blocked = folder / "blocked.ckpt";
  fs::create_directory(blocked);
  CHECK_THROWS_WITH_AS(w.save(blocked.string()), contains("cannot write " + blocked.string()), Error);
  std::vector<std::string> left;
  for (const auto& item : fs::directory_iterator(folder)) left.push_back(item.path().filename().string());
  CHECK(left == std::vector<std::string>{"blocked.ckpt"});
  CHECK(fs::is_empty(blocked));
}

TEST_CASE("saving over an existing file replaces it completely") {
  const fs::path file = test_files::scratch("checkpoint", "replaced.ckpt");
  CheckpointWriter big;
  big.add_array("old", std::vector<double>(1000, 1.0));
  big.add_text("old_note", "x");
  big.save(file.string());
  CheckpointWriter small;
  small.add_text("new", "y");
  small.save(file.string());
  CHECK(fs::file_size(file) == small.serialize().size());
  const CheckpointReader r = CheckpointReader::load(file.string());
  CHECK(r.names() == std::vector<std::string>{"new"});
  CHECK(r.text("new") == "y");
}
