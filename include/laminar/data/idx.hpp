// Readers for IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed, and the
// train/valid/test splits of both sets.
#pragma once

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "dataset.hpp"
#include "split.hpp"
#include "file.hpp"

namespace laminar::data {

namespace detail {

inline std::uint32_t big_endian_u32(const std::uint8_t* bytes) {
  return std::uint32_t(bytes[0]) << 24 | std::uint32_t(bytes[1]) << 16 |
         std::uint32_t(bytes[2]) << 8 | std::uint32_t(bytes[3]);
}

inline std::string hex32(std::uint32_t value) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08X", unsigned(value));
  return text;
}

// Checks an IDX file's header against its contents and returns its dimensions.
// Magic = 0x0000 0x08 (ubyte) rank; then `rank` big-endian 32-bit sizes; then data.
inline std::vector<std::uint32_t> idx_dimensions(const FileBytes& contents,
                                                 const std::filesystem::path& file,
                                                 std::uint32_t rank, const char* kind) {
  const std::uint32_t expected_magic = 0x800u | rank;
  const std::size_t header = 4 + 4 * std::size_t(rank);
  const auto& bytes = contents.bytes;
  if (bytes.size() < header)
    throw Error(file.string() + ": " + contents.size_phrase() + " is too short for the " +
                std::to_string(header) + "-byte header of " + kind);
  const std::uint32_t magic = big_endian_u32(bytes.data());
  if (magic != expected_magic)
    throw Error(file.string() + ": wrong magic number " + hex32(magic) + ", expected " +
                hex32(expected_magic) + " (" + kind + ")");

  std::vector<std::uint32_t> dimensions(rank);
  std::string product_text;
  std::uint64_t product = 1;
  bool overflow = false;
  for (std::uint32_t axis = 0; axis < rank; ++axis) {
    dimensions[axis] = big_endian_u32(bytes.data() + 4 + 4 * axis);
    product_text += (axis ? " x " : "") + std::to_string(dimensions[axis]);
    if (dimensions[axis] != 0 && product > std::numeric_limits<std::uint64_t>::max() / dimensions[axis])
      overflow = true;
    else
      product *= dimensions[axis];
  }
  if (overflow)
    throw Error(file.string() + ": header declares " + product_text +
                " data bytes, more than any file holds");
  const std::uint64_t data = bytes.size() - header;
  if (data != product) {
    const std::uint64_t extra = data - product;
    const std::string why = data < product ? "truncated"
                            : extra == 1   ? "1 byte too many"
                                           : std::to_string(extra) + " bytes too many";
    throw Error(file.string() + ": header declares " + product_text + " = " +
                std::to_string(product) + " data bytes after its " + std::to_string(header) +
                "-byte header, but the " + (contents.gzip ? "decompressed " : "") +
                "file holds " + std::to_string(data) + " (" + why + ")");
  }
  return dimensions;
}

}  // namespace detail

// One IDX image file (idx3 ubyte) and its label file (idx1 ubyte) as a dataset of
// single-channel images. Either file may be gzip-compressed.
inline Dataset read_idx(const std::filesystem::path& images, const std::filesystem::path& labels,
                        int classes = 10) {
  if (classes < 1 || classes > 256)
    throw Error("read_idx: classes = " + std::to_string(classes) +
                " is outside 1..256, the labels a byte can name");
  detail::FileBytes image_file = detail::read_file(images);
  const auto image_dimensions =
      detail::idx_dimensions(image_file, images, 3, "an idx3 ubyte image file");
  const std::uint32_t count = image_dimensions[0], rows = image_dimensions[1],
                      columns = image_dimensions[2];
  if (rows == 0 || columns == 0 || rows > INT_MAX || columns > INT_MAX)
    throw Error(images.string() + ": header declares images of " + std::to_string(rows) + " x " +
                std::to_string(columns) + " pixels; each side must be in 1.." +
                std::to_string(INT_MAX));

  detail::FileBytes label_file = detail::read_file(labels);
  const auto label_dimensions =
      detail::idx_dimensions(label_file, labels, 1, "an idx1 ubyte label file");
  if (label_dimensions[0] != count)
    throw Error(labels.string() + ": holds " + std::to_string(label_dimensions[0]) +
                " labels but " + images.string() + " holds " + std::to_string(count) + " images");

  Dataset dataset{1, int(rows), int(columns), classes, {}, {}, images.string()};
  dataset.labels.assign(label_file.bytes.begin() + 8, label_file.bytes.end());
  for (std::size_t index = 0; index < dataset.labels.size(); ++index)
    if (dataset.labels[index] >= classes)
      throw Error(labels.string() + ": label " + std::to_string(dataset.labels[index]) +
                  " at index " + std::to_string(index) + " is outside 0.." +
                  std::to_string(classes - 1) + " (" + std::to_string(classes) + " classes)");
  // Dropping the 16-byte header in place reuses the buffer instead of copying 47 MB.
  image_file.bytes.erase(image_file.bytes.begin(), image_file.bytes.begin() + 16);
  dataset.images = std::move(image_file.bytes);
  return dataset;
}

namespace detail {

// Prefers the plain file when both exist: it needs no inflating, and it is what
// `gunzip -k` leaves beside the .gz.
inline std::filesystem::path find_idx_file(const std::filesystem::path& directory,
                                           const std::string& name) {
  const auto plain = directory / name;
  const auto compressed = directory / (name + ".gz");
  std::error_code error;
  if (std::filesystem::is_regular_file(plain, error)) return plain;
  if (std::filesystem::is_regular_file(compressed, error)) return compressed;
  throw Error(plain.string() + ": no such file, neither plain nor .gz");
}

inline Splits idx_splits(const std::filesystem::path& directory, long validation, std::uint64_t seed,
                         const char* caller) {
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error))
    throw Error(directory.string() + ": no such directory (" + caller +
                " expects train-images-idx3-ubyte[.gz] and its siblings there)");
  if (validation < 0)
    throw Error(std::string(caller) + ": validation = " + std::to_string(validation) +
                " is negative");
  // Looked up one statement at a time so the first missing file is the one named.
  const auto train_images = find_idx_file(directory, "train-images-idx3-ubyte");
  const auto train_labels = find_idx_file(directory, "train-labels-idx1-ubyte");
  const auto test_images = find_idx_file(directory, "t10k-images-idx3-ubyte");
  const auto test_labels = find_idx_file(directory, "t10k-labels-idx1-ubyte");
  Dataset train = read_idx(train_images, train_labels);
  if (validation > train.size())
    throw Error(std::string(caller) + ": validation = " + std::to_string(validation) +
                " is more than the " + std::to_string(train.size()) + " samples in " +
                train.source);
  Splits splits = split_validation(train, validation, seed);
  splits.test = read_idx(test_images, test_labels);
  return splits;
}

}  // namespace detail

// Fashion-MNIST: `valid` is `validation` samples of the training file, drawn
// stratified by class with `seed` (split_validation), `train` the rest, `test`
// the t10k files. Debian's package puts it at the default directory.
inline Splits fashion_mnist(const std::filesystem::path& directory = "/usr/share/datasets/fashion-mnist",
                            long validation = 5000, std::uint64_t seed = 0) {
  return detail::idx_splits(directory, validation, seed, "fashion_mnist");
}

// MNIST, split as fashion_mnist does (the file names are the same).
inline Splits mnist(const std::filesystem::path& directory, long validation = 5000, std::uint64_t seed = 0) {
  return detail::idx_splits(directory, validation, seed, "mnist");
}

}  // namespace laminar::data
