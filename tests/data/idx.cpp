// The IDX reader, checked against the Fashion-MNIST files Debian ships and against
// damaged copies written to the scratch directory.
#include <doctest/doctest.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/files.hpp"
#include <laminar/data/idx.hpp>

namespace {

namespace fs = std::filesystem;
using laminar::Error;
using laminar::data::Dataset;
using Bytes = std::vector<std::uint8_t>;

const fs::path fashion = LAMINAR_FASHION_MNIST_DIR;

using test_files::contains;

// Decompressed with zlib's own gz reader, so the expected bytes do not come from
// the code under test.
Bytes gunzip(const fs::path& file) {
  gzFile in = gzopen(file.c_str(), "rb");
  REQUIRE(in != nullptr);
  Bytes out;
  std::array<char, 1 << 16> chunk;
  int got = 0;
  while ((got = gzread(in, chunk.data(), unsigned(chunk.size()))) > 0)
    out.insert(out.end(), chunk.data(), chunk.data() + got);
  gzclose(in);
  REQUIRE(got == 0);
  return out;
}

Bytes read_raw(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

fs::path scratch(const std::string& name) { return test_files::scratch("idx", name); }
fs::path write_plain(const std::string& name, const Bytes& bytes) {
  return test_files::write_plain("idx", name, bytes);
}

fs::path write_gzip(const std::string& name, const Bytes& bytes) {
  const fs::path file = scratch(name);
  gzFile out = gzopen(file.c_str(), "wb");
  REQUIRE(out != nullptr);
  REQUIRE(gzwrite(out, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(out) == Z_OK);
  return file;
}

// An IDX file: big-endian magic, big-endian sizes, then the data bytes.
Bytes idx(std::uint32_t magic, const std::vector<std::uint32_t>& sizes, const Bytes& data) {
  Bytes bytes;
  auto put = [&](std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(std::uint8_t(value >> shift));
  };
  put(magic);
  for (auto size : sizes) put(size);
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

// Three 2x2 images with labels 0, 1, 2: the smallest valid pair to damage.
const Bytes small_pixels = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
Bytes small_images() { return idx(0x803, {3, 2, 2}, small_pixels); }
Bytes small_labels() { return idx(0x801, {3}, {0, 1, 2}); }

}  // namespace

TEST_CASE("read_idx loads the 60000 Fashion-MNIST training images as 1x28x28 with labels 0..9") {
  const Dataset train = laminar::data::read_idx(fashion / "train-images-idx3-ubyte.gz",
                                                fashion / "train-labels-idx1-ubyte.gz");
  CHECK(train.size() == 60000);
  CHECK(train.channels == 1);
  CHECK(train.height == 28);
  CHECK(train.width == 28);
  CHECK(train.classes == 10);
  CHECK(train.images.size() == 60000u * 28 * 28);
  CHECK(train.source == (fashion / "train-images-idx3-ubyte.gz").string());
  std::array<long, 10> per_class{};
  long out_of_range = 0;
  for (auto label : train.labels) label < 10 ? ++per_class[label] : ++out_of_range;
  CHECK(out_of_range == 0);
  for (int label = 0; label < 10; ++label) CHECK(per_class[std::size_t(label)] == 6000);
}

TEST_CASE("read_idx loads the 10000 Fashion-MNIST test images, 1000 of each class") {
  const Dataset test = laminar::data::read_idx(fashion / "t10k-images-idx3-ubyte.gz",
                                               fashion / "t10k-labels-idx1-ubyte.gz");
  CHECK(test.size() == 10000);
  CHECK(test.sample_size() == 28 * 28);
  std::array<long, 10> per_class{};
  for (auto label : test.labels) ++per_class[label];
  for (int label = 0; label < 10; ++label) CHECK(per_class[std::size_t(label)] == 1000);
}

TEST_CASE("read_idx returns every pixel and label at its documented offset in the decompressed files") {
  const Bytes raw_images = gunzip(fashion / "t10k-images-idx3-ubyte.gz");
  const Bytes raw_labels = gunzip(fashion / "t10k-labels-idx1-ubyte.gz");
  const Dataset test = laminar::data::read_idx(fashion / "t10k-images-idx3-ubyte.gz",
                                               fashion / "t10k-labels-idx1-ubyte.gz");
  // Pixel (row r, column c) of image n sits after the 16-byte header at (n*28 + r)*28 + c.
  const long image = 7, row = 14, column = 14;
  const std::uint8_t pixel = test.image(image)[row * 28 + column];
  CHECK(pixel == raw_images[std::size_t(16 + (image * 28 + row) * 28 + column)]);
  CHECK(pixel == 154);
  CHECK(test.images == Bytes(raw_images.begin() + 16, raw_images.end()));
  // Labels follow the 8-byte idx1 header; the first ones are widely quoted.
  CHECK(test.labels == Bytes(raw_labels.begin() + 8, raw_labels.end()));
  CHECK(Bytes(test.labels.begin(), test.labels.begin() + 5) == Bytes{9, 2, 1, 1, 6});
}

TEST_CASE("read_idx reads a plain IDX file exactly as its gzip original") {
  const fs::path images = write_plain("t10k-images-plain", gunzip(fashion / "t10k-images-idx3-ubyte.gz"));
  const fs::path labels = write_plain("t10k-labels-plain", gunzip(fashion / "t10k-labels-idx1-ubyte.gz"));
  const Dataset plain = laminar::data::read_idx(images, labels);
  const Dataset compressed = laminar::data::read_idx(fashion / "t10k-images-idx3-ubyte.gz",
                                                     fashion / "t10k-labels-idx1-ubyte.gz");
  CHECK(plain.size() == 10000);
  CHECK(plain.images == compressed.images);
  CHECK(plain.labels == compressed.labels);
}

TEST_CASE("read_idx recognises gzip by its magic bytes, not by the file name") {
  const fs::path images = write_gzip("gzip-without-extension", small_images());
  const fs::path labels = write_plain("plain-with-extension.gz", small_labels());
  const Dataset small = laminar::data::read_idx(images, labels, 3);
  CHECK(small.size() == 3);
  CHECK(small.height == 2);
  CHECK(small.width == 2);
  CHECK(small.classes == 3);
  CHECK(small.images == small_pixels);
  CHECK(small.labels == Bytes{0, 1, 2});
}

TEST_CASE("fashion_mnist holds out 500 samples of each class as valid and loads t10k as test") {
  const auto splits = laminar::data::fashion_mnist(fashion);
  CHECK(splits.train.size() == 55000);
  CHECK(splits.valid.size() == 5000);
  CHECK(splits.test.size() == 10000);
  CHECK(splits.train.images.size() == 55000u * 784);
  CHECK(splits.valid.images.size() == 5000u * 784);
  CHECK(splits.valid.height == 28);
  // Fashion-MNIST's training file has exactly 6000 images of each class, so a
  // stratified 5000 takes exactly 500 of each, and train keeps 5500.
  std::array<long, 10> valid_counts{}, train_counts{};
  for (const auto label : splits.valid.labels) ++valid_counts[label];
  for (const auto label : splits.train.labels) ++train_counts[label];
  for (int c = 0; c < 10; ++c) {
    CHECK(valid_counts[std::size_t(c)] == 500);
    CHECK(train_counts[std::size_t(c)] == 5500);
  }
  // Together the parts hold every training label, each part in file order.
  const Bytes raw_labels = gunzip(fashion / "train-labels-idx1-ubyte.gz");
  Bytes all(splits.train.labels.begin(), splits.train.labels.end());
  all.insert(all.end(), splits.valid.labels.begin(), splits.valid.labels.end());
  Bytes expected(raw_labels.begin() + 8, raw_labels.end());
  std::sort(all.begin(), all.end());
  std::sort(expected.begin(), expected.end());
  CHECK(all == expected);
}

TEST_CASE("fashion_mnist draws the same validation samples for a seed and others for another") {
  const auto a = laminar::data::fashion_mnist(fashion, 1000, 3);
  const auto b = laminar::data::fashion_mnist(fashion, 1000, 3);
  const auto c = laminar::data::fashion_mnist(fashion, 1000, 4);
  CHECK(a.valid.images == b.valid.images);
  CHECK(a.valid.images != c.valid.images);
}

TEST_CASE("fashion_mnist with validation 0 leaves valid empty and train whole") {
  const auto splits = laminar::data::fashion_mnist(fashion, 0);
  CHECK(splits.train.size() == 60000);
  CHECK(splits.valid.size() == 0);
  CHECK(splits.valid.images.empty());
  CHECK(splits.test.size() == 10000);
}

TEST_CASE("fashion_mnist finds plain file names as well as .gz ones") {
  const fs::path directory = scratch("mixed-names");
  fs::create_directories(directory);
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}) {
    fs::remove(directory / name);
    fs::create_symlink(fashion / name, directory / name);
  }
  for (const char* name : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    const Bytes bytes = gunzip(fashion / (std::string(name) + ".gz"));
    std::ofstream out(directory / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  const auto splits = laminar::data::fashion_mnist(directory, 1000);
  CHECK(splits.train.size() == 59000);
  CHECK(splits.valid.size() == 1000);
  CHECK(splits.test.size() == 10000);
  CHECK(splits.test.source == (directory / "t10k-images-idx3-ubyte").string());
}

TEST_CASE("fashion_mnist refuses a validation set larger than the training set") {
  CHECK_THROWS_WITH_AS(laminar::data::fashion_mnist(fashion, 60001),
                       contains("validation = 60001 is more than the 60000 samples"),
                       Error);
  CHECK_THROWS_WITH_AS(laminar::data::fashion_mnist(fashion, -1),
                       contains("validation = -1 is negative"), Error);
}

TEST_CASE("fashion_mnist on a directory without the files names the missing file") {
  const fs::path directory = scratch("empty-directory");
  fs::create_directories(directory);
  CHECK_THROWS_WITH_AS(laminar::data::fashion_mnist(directory),
                       contains((directory / "train-images-idx3-ubyte").string() +
                                         ": no such file, neither plain nor .gz"),
                       Error);
  CHECK_THROWS_WITH_AS(laminar::data::mnist(scratch("no-such-directory")),
                       contains("no-such-directory: no such directory"), Error);
}

TEST_CASE("a missing file is an error naming its path") {
  const fs::path missing = scratch("missing-images");
  fs::remove(missing);
  CHECK_THROWS_WITH_AS(laminar::data::read_idx(missing, write_plain("labels", small_labels())),
                       contains(missing.string() + ": no such file"), Error);
}

TEST_CASE("a wrong magic number is an error naming the number found and the one expected") {
  // A label file where the image file should be: the classic argument swap.
  const fs::path labels = fashion / "t10k-labels-idx1-ubyte.gz";
  CHECK_THROWS_WITH_AS(laminar::data::read_idx(labels, labels),
                       contains(labels.string() +
                                         ": wrong magic number 0x00000801, expected 0x00000803"),
                       Error);
}

TEST_CASE("a truncated image file is an error naming the declared and the actual data size") {
  Bytes truncated = small_images();
  truncated.resize(truncated.size() - 2);
  const fs::path images = write_plain("truncated-images", truncated);
  CHECK_THROWS_WITH_AS(
      laminar::data::read_idx(images, write_plain("labels", small_labels())),
      contains(images.string() + ": header declares 3 x 2 x 2 = 12 data bytes after its " +
                        "16-byte header, but the file holds 10 (truncated)"),
      Error);
}

TEST_CASE("an image file with bytes beyond what its header declares is an error") {
  Bytes longer = small_images();
  longer.push_back(0);
  const fs::path images = write_plain("longer-images", longer);
  CHECK_THROWS_WITH_AS(laminar::data::read_idx(images, write_plain("labels", small_labels())),
                       contains(images.string() + ": header declares 3 x 2 x 2 = 12 " +
                                         "data bytes after its 16-byte header, but the file " +
                                         "holds 13 (1 byte too many)"),
                       Error);
}

TEST_CASE("a file shorter than its header is an error") {
  const fs::path images = write_plain("stub-images", {0, 0, 8, 3, 0, 0});
  CHECK_THROWS_WITH_AS(laminar::data::read_idx(images, write_plain("labels", small_labels())),
                       contains(images.string() + ": size 6 bytes is too short for the " +
                                         "16-byte header of an idx3 ubyte image file"),
                       Error);
}

TEST_CASE("a label outside 0..classes-1 is an error naming the label and its index") {
  const fs::path labels = write_plain("label-out-of-range", idx(0x801, {3}, {0, 10, 2}));
  CHECK_THROWS_WITH_AS(laminar::data::read_idx(write_plain("images", small_images()), labels),
                       contains(labels.string() + ": label 10 at index 1 is outside 0..9"),
                       Error);
  CHECK_THROWS_WITH_AS(
      laminar::data::read_idx(write_plain("images", small_images()), write_plain("labels", small_labels()), 2),
      contains("label 2 at index 2 is outside 0..1 (2 classes)"), Error);
}

TEST_CASE("image and label files of different counts are an error naming both counts") {
  const fs::path labels = write_plain("two-labels", idx(0x801, {2}, {0, 1}));
  const fs::path images = write_plain("images", small_images());
  CHECK_THROWS_WITH_AS(laminar::data::read_idx(images, labels),
                       contains(labels.string() + ": holds 2 labels but " +
                                         images.string() + " holds 3 images"),
                       Error);
}

TEST_CASE("a corrupt gzip stream is an error naming the file") {
  Bytes damaged = read_raw(fashion / "t10k-labels-idx1-ubyte.gz");
  for (std::size_t at = damaged.size() / 2; at < damaged.size() / 2 + 16; ++at) damaged[at] ^= 0x5a;
  const fs::path labels = write_plain("corrupt-labels.gz", damaged);
  CHECK_THROWS_WITH_AS(
      laminar::data::read_idx(fashion / "t10k-images-idx3-ubyte.gz", labels),
      contains(labels.string() + ": corrupt gzip stream after"), Error);
}

TEST_CASE("a truncated gzip stream is an error naming the file") {
  Bytes truncated = read_raw(fashion / "t10k-labels-idx1-ubyte.gz");
  truncated.resize(truncated.size() / 2);
  const fs::path labels = write_plain("truncated-labels.gz", truncated);
  CHECK_THROWS_WITH_AS(laminar::data::read_idx(fashion / "t10k-images-idx3-ubyte.gz", labels),
                       contains(labels.string() + ": gzip stream ends early"), Error);
}
