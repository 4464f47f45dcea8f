// The CIFAR-10 reader, checked against the decompressed training batches (their
// README gives counts, first labels and the record layout) and damaged copies.
#include <doctest/doctest.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/files.hpp"
#include <laminar/data/cifar10.hpp>

namespace {

namespace fs = std::filesystem;
using laminar::Error;
using laminar::data::Dataset;
using Bytes = std::vector<std::uint8_t>;

const fs::path batches = LAMINAR_CIFAR10_DIR;
const fs::path batch1 = batches / "data_batch_1.bin";
constexpr long record_bytes = 3073;

using test_files::contains;

// Bytes [offset, offset + count) of a file, read without the code under test.
Bytes read_raw(const fs::path& file, long offset, long count) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in);
  in.seekg(offset);
  Bytes bytes(std::size_t(count), 0);
  in.read(reinterpret_cast<char*>(bytes.data()), count);
  REQUIRE(in.gcount() == count);
  return bytes;
}

fs::path scratch(const std::string& name) { return test_files::scratch("cifar10", name); }
fs::path write_plain(const std::string& name, const Bytes& bytes) {
  return test_files::write_plain("cifar10", name, bytes);
}

// One record per label; the pixels of record n count up from n, wrapping at 256.
Bytes records(const std::vector<std::uint8_t>& labels) {
  Bytes bytes;
  for (std::size_t record = 0; record < labels.size(); ++record) {
    bytes.push_back(labels[record]);
    for (int pixel = 0; pixel < 3072; ++pixel) bytes.push_back(std::uint8_t(record + pixel));
  }
  return bytes;
}

std::array<long, 10> per_class(const Dataset& dataset) {
  std::array<long, 10> counts{};
  for (auto label : dataset.labels) ++counts[label];
  return counts;
}

}  // namespace

TEST_CASE("read_cifar10 loads a batch as 10000 images of 3x32x32 with labels 0..9") {
  const Dataset batch = laminar::data::read_cifar10(batch1);
  CHECK(batch.size() == 10000);
  CHECK(batch.channels == 3);
  CHECK(batch.height == 32);
  CHECK(batch.width == 32);
  CHECK(batch.classes == 10);
  CHECK(batch.images.size() == 10000u * 3072);
  CHECK(batch.source == batch1.string());
  long out_of_range = 0;
  for (auto label : batch.labels) out_of_range += label >= 10;
  CHECK(out_of_range == 0);
}

TEST_CASE("read_cifar10 returns the first 20 labels of data_batch_1 that the README lists") {
  const Dataset batch = laminar::data::read_cifar10(batch1);
  const Bytes expected = {2, 3, 9, 5, 8, 6, 6, 2, 6, 5, 2, 5, 8, 2, 6, 3, 8, 1, 3, 1};
  CHECK(Bytes(batch.labels.begin(), batch.labels.begin() + 20) == expected);
}

TEST_CASE("read_cifar10 returns the per-class counts of data_batch_1 that the README tabulates") {
  const std::array<long, 10> expected = {981, 1008, 996, 996, 1021, 977, 1012, 984, 972, 1053};
  CHECK(per_class(laminar::data::read_cifar10(batch1)) == expected);
}

TEST_CASE("read_cifar10 returns pixel (k, r, c) of record n from byte n*3073 + 1 + k*1024 + r*32 + c") {
  const Dataset batch = laminar::data::read_cifar10(batch1);
  const long record = 1234, channel = 2, row = 17, column = 5;
  const long offset = record * record_bytes + 1 + channel * 1024 + row * 32 + column;
  CHECK(batch.image(record)[channel * 1024 + row * 32 + column] == read_raw(batch1, offset, 1)[0]);
  // The whole of the last record, label and pixels, as the file stores it.
  const Bytes last = read_raw(batch1, 9999 * record_bytes, record_bytes);
  CHECK(batch.labels[9999] == last[0]);
  CHECK(Bytes(batch.image(9999), batch.image(9999) + 3072) == Bytes(last.begin() + 1, last.end()));
}

TEST_CASE("read_cifar10 of several files concatenates them in the order given") {
  const fs::path batch2 = batches / "data_batch_2.bin";
  const Dataset both = laminar::data::read_cifar10({batch2, batch1});
  const Dataset second = laminar::data::read_cifar10(batch1);
  CHECK(both.size() == 20000);
  CHECK(both.source == batch2.string() + " + " + batch1.string());
  CHECK(Bytes(both.labels.begin() + 10000, both.labels.end()) == second.labels);
  CHECK(Bytes(both.image(10000), both.image(20000)) == second.images);
  CHECK(both.labels[0] == read_raw(batch2, 0, 1)[0]);
}

TEST_CASE("read_cifar10 also reads a gzip-compressed batch") {
  const Bytes plain = records({7, 0, 9});
  const fs::path file = scratch("small_batch.bin.gz");
  gzFile out = gzopen(file.c_str(), "wb");
  REQUIRE(out != nullptr);
  REQUIRE(gzwrite(out, plain.data(), unsigned(plain.size())) == int(plain.size()));
  REQUIRE(gzclose(out) == Z_OK);
  const Dataset batch = laminar::data::read_cifar10(file);
  CHECK(batch.labels == Bytes{7, 0, 9});
  CHECK(batch.image(2)[0] == 2);
  CHECK(batch.image(2)[3071] == std::uint8_t(2 + 3071));
}

TEST_CASE("cifar10 trains on batches 1-4, validates on batch 5 and leaves test empty without test_batch.bin") {
  const auto splits = laminar::data::cifar10(batches);
  CHECK(splits.train.size() == 40000);
  CHECK(splits.valid.size() == 10000);
  CHECK(splits.test.size() == 0);
  CHECK(splits.test.channels == 3);
  CHECK(splits.test.height == 32);
  const std::array<long, 10> batch5 = {1006, 993, 1030, 1005, 981, 996, 988, 993, 1004, 1004};
  CHECK(per_class(splits.valid) == batch5);
}

TEST_CASE("cifar10 without validation trains on all five batches, 5000 images of each class") {
  const auto splits = laminar::data::cifar10(batches, false);
  CHECK(splits.train.size() == 50000);
  CHECK(splits.valid.size() == 0);
  CHECK(splits.test.size() == 0);
  std::array<long, 10> expected;
  expected.fill(5000);
  CHECK(per_class(splits.train) == expected);
}

TEST_CASE("cifar10 loads test_batch.bin as test when the directory holds one") {
  const fs::path directory = scratch("with-test-batch");
  fs::create_directories(directory);
  for (int batch = 1; batch <= 5; ++batch) {
    const std::string name = "data_batch_" + std::to_string(batch) + ".bin";
    fs::remove(directory / name);
    fs::create_symlink(fs::absolute(batches / name), directory / name);
  }
  const Bytes test = records({4, 2});
  std::ofstream(directory / "test_batch.bin", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(test.data()), std::streamsize(test.size()));
  const auto splits = laminar::data::cifar10(directory);
  CHECK(splits.train.size() == 40000);
  CHECK(splits.valid.size() == 10000);
  CHECK(splits.test.size() == 2);
  CHECK(splits.test.labels == Bytes{4, 2});
}

TEST_CASE("cifar10_class_names lists the ten classes in label order") {
  const std::vector<std::string> expected = {"airplane", "automobile", "bird",  "cat",  "deer",
                                             "dog",      "frog",       "horse", "ship", "truck"};
  CHECK(laminar::data::cifar10_class_names() == expected);
}

TEST_CASE("a batch one byte short is an error naming its size and the record size") {
  Bytes truncated = read_raw(batch1, 0, 10000 * record_bytes - 1);
  const fs::path file = write_plain("data_batch_1.bin", truncated);
  CHECK_THROWS_WITH_AS(laminar::data::read_cifar10(file),
                       contains(file.string() + ": size 30729999 bytes is not a whole number of " +
                                "3073-byte CIFAR-10 records (9999 records and 3072 bytes over)"),
                       Error);
}

TEST_CASE("an empty batch file is an error") {
  const fs::path file = write_plain("empty_batch.bin", {});
  CHECK_THROWS_WITH_AS(laminar::data::read_cifar10(file),
                       contains(file.string() + ": is empty, expected 3073-byte CIFAR-10 records"),
                       Error);
}

TEST_CASE("a label outside 0..9 is an error naming the record and the label") {
  const fs::path file = write_plain("bad_label_batch.bin", records({3, 10, 1}));
  CHECK_THROWS_WITH_AS(laminar::data::read_cifar10(file),
                       contains(file.string() + ": record 1 has label 10, outside 0..9"), Error);
}

TEST_CASE("a missing batch file is an error naming its path") {
  const fs::path missing = scratch("no_such_batch.bin");
  fs::remove(missing);
  CHECK_THROWS_WITH_AS(laminar::data::read_cifar10({batch1, missing}),
                       contains(missing.string() + ": no such file"), Error);
  CHECK_THROWS_WITH_AS(laminar::data::read_cifar10(std::vector<fs::path>{}),
                       contains("read_cifar10: no files given"), Error);
}

TEST_CASE("cifar10 on a directory without the batches names what is missing") {
  const fs::path directory = scratch("no-batches");
  fs::create_directories(directory);
  CHECK_THROWS_WITH_AS(laminar::data::cifar10(directory),
                       contains((directory / "data_batch_1.bin").string() + ": no such file"),
                       Error);
  CHECK_THROWS_WITH_AS(laminar::data::cifar10(scratch("no-such-directory")),
                       contains("no-such-directory: no such directory"), Error);
}
