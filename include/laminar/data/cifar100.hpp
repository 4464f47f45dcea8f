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
#include "cifar10.hpp"
#include "dataset.hpp"
#include "file.hpp"
#include "split.hpp"

namespace laminar::data {

// Which of a record's two labels becomes the dataset's label: one of the 100
// classes, or one of the 20 superclasses that group them five by five.
enum class Cifar100Labels { fine, coarse };

namespace detail {

// CIFAR-100 records carry two labels, coarse then fine; both are checked,
// whichever is kept: a record with a bad one is a damaged file either way.
inline void append_cifar100(Dataset& into, const std::filesystem::path& file, Cifar100Labels kept) {
  constexpr RecordLabel coarse{0, 20, "coarse ", "20 superclasses"}, fine{1, 100, "fine ", "100 classes"};
  append_cifar_records(into, file, "CIFAR-100", {coarse, fine}, kept == Cifar100Labels::coarse ? coarse : fine);
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
