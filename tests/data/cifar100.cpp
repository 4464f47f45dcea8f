// The CIFAR-100 reader, checked on synthetic files in the release's layout
// (coarse label, fine label, 3072 CHW bytes per record) and damaged copies.
#include <doctest/doctest.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "support/files.hpp"
#include <laminar/data/cifar100.hpp>

namespace {

namespace fs = std::filesystem;
using laminar::Error;
using laminar::data::Cifar100Labels;
using laminar::data::Dataset;
using Bytes = std::vector<std::uint8_t>;
using test_files::contains;

fs::path scratch(const std::string& name) { return test_files::scratch("cifar100", name); }
fs::path write_plain(const std::string& name, const Bytes& bytes) {
  return test_files::write_plain("cifar100", name, bytes);
}

// One record per (coarse, fine) pair; the pixels of record n count up from 3n,
// wrapping at 256, so each record's bytes say where they came from.
Bytes records(const std::vector<std::array<std::uint8_t, 2>>& labels) {
  Bytes bytes;
  for (std::size_t record = 0; record < labels.size(); ++record) {
    bytes.push_back(labels[record][0]);
    bytes.push_back(labels[record][1]);
    for (int pixel = 0; pixel < 3072; ++pixel) bytes.push_back(std::uint8_t(3 * record + pixel));
  }
  return bytes;
}

// `count` records whose fine label is n % 100 and coarse label (n % 100) / 5.
Bytes balanced_records(int count) {
  std::vector<std::array<std::uint8_t, 2>> labels;
  for (int n = 0; n < count; ++n) labels.push_back({std::uint8_t(n % 100 / 5), std::uint8_t(n % 100)});
  return records(labels);
}

}  // namespace

TEST_CASE("read_cifar100 keeps the fine labels by default, 100 classes of 3x32x32 images") {
  const fs::path file = write_plain("fine.bin", records({{3, 17}, {19, 99}, {0, 0}}));
  const Dataset d = laminar::data::read_cifar100(file);
  CHECK(d.size() == 3);
  CHECK(d.classes == 100);
  CHECK(d.channels == 3);
  CHECK(d.height == 32);
  CHECK(d.width == 32);
  CHECK(d.labels == Bytes{17, 99, 0});
  CHECK(d.source == file.string());
}

TEST_CASE("read_cifar100 with Cifar100Labels::coarse keeps the superclass labels, 20 classes") {
  const fs::path file = write_plain("coarse.bin", records({{3, 17}, {19, 99}, {0, 0}}));
  const Dataset d = laminar::data::read_cifar100(file, Cifar100Labels::coarse);
  CHECK(d.classes == 20);
  CHECK(d.labels == Bytes{3, 19, 0});
}

TEST_CASE("read_cifar100 returns the 3072 image bytes of record n from byte n*3074 + 2 on") {
  const Bytes file_bytes = records({{1, 5}, {2, 10}, {3, 15}});
  const Dataset d = laminar::data::read_cifar100(write_plain("pixels.bin", file_bytes));
  for (long record = 0; record < 3; ++record)
    CHECK(Bytes(d.image(record), d.image(record) + 3072) ==
          Bytes(file_bytes.begin() + record * 3074 + 2, file_bytes.begin() + (record + 1) * 3074));
  CHECK(d.images.size() == 3u * 3072);
}

TEST_CASE("read_cifar100 also reads a gzip-compressed file") {
  const Bytes plain = records({{4, 21}, {7, 38}});
  const fs::path file = scratch("train.bin.gz");
  gzFile out = gzopen(file.c_str(), "wb");
  REQUIRE(out != nullptr);
  REQUIRE(gzwrite(out, plain.data(), unsigned(plain.size())) == int(plain.size()));
  REQUIRE(gzclose(out) == Z_OK);
  const Dataset d = laminar::data::read_cifar100(file);
  CHECK(d.labels == Bytes{21, 38});
  CHECK(d.image(1)[3071] == std::uint8_t(3 + 3071));
}

TEST_CASE("a truncated CIFAR-100 file is an error naming the file and the record size") {
  Bytes bytes = records({{1, 5}, {2, 10}});
  bytes.pop_back();
  const fs::path file = write_plain("truncated.bin", bytes);
  CHECK_THROWS_WITH_AS(laminar::data::read_cifar100(file),
                       contains(file.string() + ": size 6147 bytes is not a whole number of 3074-byte "
                                                "CIFAR-100 records (1 records and 3073 bytes over)"),
                       Error);
}

TEST_CASE("an empty CIFAR-100 file is an error naming the file") {
  const fs::path file = write_plain("empty.bin", {});
  CHECK_THROWS_WITH_AS(laminar::data::read_cifar100(file),
                       contains(file.string() + ": is empty, expected 3074-byte CIFAR-100 records"), Error);
}

TEST_CASE("a CIFAR-100 fine label above 99 is an error naming the record and the label") {
  const fs::path file = write_plain("bad_fine.bin", records({{1, 5}, {2, 100}}));
  CHECK_THROWS_WITH_AS(laminar::data::read_cifar100(file),
                       contains(file.string() + ": record 1 has fine label 100, outside 0..99"), Error);
}

TEST_CASE("a CIFAR-100 coarse label above 19 is an error even when the fine labels are kept") {
  const fs::path file = write_plain("bad_coarse.bin", records({{20, 5}}));
  CHECK_THROWS_WITH_AS(laminar::data::read_cifar100(file, Cifar100Labels::fine),
                       contains(file.string() + ": record 0 has coarse label 20, outside 0..19"), Error);
}

TEST_CASE("cifar100 splits train.bin into stratified train and valid and reads test.bin as test") {
  const fs::path directory = scratch("release");
  fs::create_directories(directory);
  write_plain("release/train.bin", balanced_records(1000));  // 10 of each fine class
  write_plain("release/test.bin", records({{0, 3}, {1, 7}}));
  const auto splits = laminar::data::cifar100(directory, Cifar100Labels::fine, 200, 5);
  CHECK(splits.train.size() == 800);
  CHECK(splits.valid.size() == 200);
  std::array<long, 100> per_class{};
  for (auto label : splits.valid.labels) ++per_class[label];
  std::array<long, 100> two_each;
  two_each.fill(2);
  CHECK(per_class == two_each);
  CHECK(splits.test.labels == Bytes{3, 7});
  CHECK(splits.test.classes == 100);
}

TEST_CASE("cifar100 with coarse labels stratifies by superclass") {
  const fs::path directory = scratch("release-coarse");
  fs::create_directories(directory);
  write_plain("release-coarse/train.bin", balanced_records(1000));  // 50 of each superclass
  const auto splits = laminar::data::cifar100(directory, Cifar100Labels::coarse, 100, 1);
  CHECK(splits.valid.classes == 20);
  std::array<long, 20> per_class{};
  for (auto label : splits.valid.labels) ++per_class[label];
  std::array<long, 20> five_each;
  five_each.fill(5);
  CHECK(per_class == five_each);
}

TEST_CASE("cifar100 leaves test empty when the directory has no test.bin") {
  const fs::path directory = scratch("no-test");
  fs::create_directories(directory);
  write_plain("no-test/train.bin", balanced_records(100));
  const auto splits = laminar::data::cifar100(directory, Cifar100Labels::fine, 0);
  CHECK(splits.train.size() == 100);
  CHECK(splits.valid.size() == 0);
  CHECK(splits.test.size() == 0);
  CHECK(splits.test.channels == 3);
}

TEST_CASE("cifar100 names the missing train.bin or directory") {
  const fs::path directory = scratch("empty-release");
  fs::create_directories(directory);
  CHECK_THROWS_WITH_AS(laminar::data::cifar100(directory),
                       contains((directory / "train.bin").string() + ": no such file"), Error);
  CHECK_THROWS_WITH_AS(laminar::data::cifar100(directory / "absent"),
                       contains((directory / "absent").string() + ": no such directory"), Error);
}

TEST_CASE("cifar100 with more validation samples than train.bin holds is an error") {
  const fs::path directory = scratch("small-release");
  fs::create_directories(directory);
  write_plain("small-release/train.bin", balanced_records(10));
  CHECK_THROWS_WITH_AS(laminar::data::cifar100(directory), contains("count = 5000 is outside 0..10"), Error);
}
