// Reader for the CIFAR-100 binary format (records of a coarse label byte, a fine
// label byte and a 3x32x32 CHW image, no header) and its train/valid/test splits.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "dataset.hpp"
#include "file.hpp"
#include "split.hpp"

namespace laminar::data {

// Which of a record's two labels becomes the dataset's label: one of the 100
// classes, or one of the 20 superclasses that group them five by five.
enum class Cifar100Labels { fine, coarse };

namespace detail {

inline constexpr std::size_t cifar100_image_bytes = 3 * 32 * 32;
inline constexpr std::size_t cifar100_record_bytes = 2 + cifar100_image_bytes;

// Reads the file onto the end of `into.images` and compacts it in place, as
// append_cifar10 does: record n's image moves down from n*3074 + 2 to n*3072.
// Both labels of every record are checked, whichever is kept: a record with a
// bad one is a damaged file either way. A bad file leaves `into` as it was.
inline void append_cifar100(Dataset& into, const std::filesystem::path& file, Cifar100Labels kept) {
  std::vector<std::uint8_t>& images = into.images;
  const std::size_t start = images.size();
  const bool gzip = append_file(file, images);
  try {
    const std::size_t size = images.size() - start;
    if (size == 0) throw Error(file.string() + ": is empty, expected 3074-byte CIFAR-100 records");
    if (size % cifar100_record_bytes != 0)
      throw Error(file.string() + ": " + size_phrase(size, gzip) + " is not a whole number of " +
                  "3074-byte CIFAR-100 records (" + std::to_string(size / cifar100_record_bytes) +
                  " records and " + std::to_string(size % cifar100_record_bytes) +
                  " bytes over); the file is truncated or not CIFAR-100");
    const std::size_t records = size / cifar100_record_bytes;
    std::uint8_t* bytes = images.data() + start;
    for (std::size_t record = 0; record < records; ++record) {
      const std::uint8_t coarse = bytes[record * cifar100_record_bytes];
      const std::uint8_t fine = bytes[record * cifar100_record_bytes + 1];
      if (coarse >= 20)
        throw Error(file.string() + ": record " + std::to_string(record) + " has coarse label " +
                    std::to_string(coarse) + ", outside 0..19 (CIFAR-100 has 20 superclasses)");
      if (fine >= 100)
        throw Error(file.string() + ": record " + std::to_string(record) + " has fine label " +
                    std::to_string(fine) + ", outside 0..99 (CIFAR-100 has 100 classes)");
    }
    const std::size_t label_offset = kept == Cifar100Labels::coarse ? 0 : 1;
    const std::size_t first = into.labels.size();
    into.labels.resize(first + records);
    for (std::size_t record = 0; record < records; ++record) {
      const std::uint8_t* source = bytes + record * cifar100_record_bytes;
      into.labels[first + record] = source[label_offset];
      std::memmove(bytes + record * cifar100_image_bytes, source + 2, cifar100_image_bytes);
    }
    images.resize(start + records * cifar100_image_bytes);
  } catch (...) {
    images.resize(start);
    throw;
  }
  into.source += (into.source.empty() ? "" : " + ") + file.string();
}

inline Dataset empty_cifar100(Cifar100Labels labels, const std::string& source) {
  return Dataset{3, 32, 32, labels == Cifar100Labels::coarse ? 20 : 100, {}, {}, source};
}

}  // namespace detail

// One CIFAR-100 file (train.bin or test.bin) as 3x32x32 images labelled 0..99
// (fine) or 0..19 (coarse). The file may be gzip-compressed.
inline Dataset read_cifar100(const std::filesystem::path& file, Cifar100Labels labels = Cifar100Labels::fine) {
  Dataset dataset = detail::empty_cifar100(labels, "");
  detail::append_cifar100(dataset, file, labels);
  return dataset;
}

// The directory of the official binary release (cifar-100-binary): `train` and
// `valid` come from train.bin, `valid` being `validation` samples drawn by
// split_validation(train, validation, seed) — stratified, so each fine class
// gives validation / 100 samples when the classes are balanced, as they are in
// the release — and `test` is test.bin when the directory holds it, empty
// otherwise. The split is stratified by the labels kept.
inline Splits cifar100(const std::filesystem::path& directory, Cifar100Labels labels = Cifar100Labels::fine,
                       long validation = 5000, std::uint64_t seed = 0) {
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error))
    throw Error(directory.string() + ": no such directory (cifar100 expects train.bin and test.bin there)");
  Splits splits = split_validation(read_cifar100(directory / "train.bin", labels), validation, seed);
  const auto test_file = directory / "test.bin";
  splits.test = std::filesystem::exists(test_file, error)
                    ? read_cifar100(test_file, labels)
                    : detail::empty_cifar100(labels, "(no test.bin in " + directory.string() + ")");
  return splits;
}

}  // namespace laminar::data
