// Reader for the CIFAR-10 binary format (records of a label byte and a 3x32x32 CHW
// image, no header) and the train/valid/test splits of its batch files.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "dataset.hpp"
#include "file.hpp"

namespace laminar::data {

namespace detail {

inline constexpr int cifar10_channels = 3, cifar10_side = 32, cifar10_classes = 10;
inline constexpr std::size_t cifar10_image_bytes = 3 * 32 * 32;

inline Dataset empty_cifar10(const std::string& source) {
  return Dataset{cifar10_channels, cifar10_side, cifar10_side, cifar10_classes, {}, {}, source};
}

// One label byte of a CIFAR record: where it sits, how many classes it counts,
// and how messages name it.
struct RecordLabel {
  std::size_t offset;
  int classes;
  const char* name;         // "" or "fine ", "coarse "
  const char* description;  // "10 classes", "20 superclasses"
};

// Reads a file of records (label bytes, then a 3x32x32 image) straight onto the
// end of `into.images` and compacts it there: record n's image moves down from
// n*record + header to n*3072, so a forward pass never overwrites a record it
// has yet to read. Every label byte is checked, and `kept` is the one stored. A
// bad file leaves `into` as it was.
inline void append_cifar_records(Dataset& into, const std::filesystem::path& file, const char* format,
                                 std::initializer_list<RecordLabel> labels, const RecordLabel& kept) {
  constexpr std::size_t image_bytes = cifar10_image_bytes;
  const std::size_t record_bytes = labels.size() + image_bytes;
  const std::string record_phrase = std::to_string(record_bytes) + "-byte " + format + " records";
  std::vector<std::uint8_t>& images = into.images;
  const std::size_t start = images.size();
  const bool gzip = append_file(file, images);
  try {
    const std::size_t size = images.size() - start;
    if (size == 0) throw Error(file.string() + ": is empty, expected " + record_phrase);
    if (size % record_bytes != 0)
      throw Error(file.string() + ": " + size_phrase(size, gzip) + " is not a whole number of " + record_phrase +
                  " (" + std::to_string(size / record_bytes) + " records and " +
                  std::to_string(size % record_bytes) + " bytes over); the file is truncated or not " + format);
    const std::size_t records = size / record_bytes;
    std::uint8_t* bytes = images.data() + start;
    for (std::size_t record = 0; record < records; ++record)
      for (const RecordLabel& label : labels) {
        const std::uint8_t value = bytes[record * record_bytes + label.offset];
        if (value >= label.classes)
          throw Error(file.string() + ": record " + std::to_string(record) + " has " + label.name + "label " +
                      std::to_string(value) + ", outside 0.." + std::to_string(label.classes - 1) + " (" +
                      format + " has " + label.description + ")");
      }
    const std::size_t first = into.labels.size();
    into.labels.resize(first + records);
    for (std::size_t record = 0; record < records; ++record) {
      const std::uint8_t* source = bytes + record * record_bytes;
      into.labels[first + record] = source[kept.offset];
      std::memmove(bytes + record * image_bytes, source + labels.size(), image_bytes);
    }
    images.resize(start + records * image_bytes);
  } catch (...) {
    images.resize(start);
    throw;
  }
  into.source += (into.source.empty() ? "" : " + ") + file.string();
}

inline void append_cifar10(Dataset& into, const std::filesystem::path& file) {
  constexpr RecordLabel label{0, cifar10_classes, "", "10 classes"};
  append_cifar_records(into, file, "CIFAR-10", {label}, label);
}

}  // namespace detail

// One CIFAR-10 batch file as a dataset of 3x32x32 images with labels 0..9.
inline Dataset read_cifar10(const std::filesystem::path& file) {
  Dataset dataset = detail::empty_cifar10("");
  detail::append_cifar10(dataset, file);
  return dataset;
}

// Several batch files, concatenated in the order given.
inline Dataset read_cifar10(const std::vector<std::filesystem::path>& files) {
  if (files.empty()) throw Error("read_cifar10: no files given");
  Dataset dataset = detail::empty_cifar10("");
  // Room for every file up front: growing a 150 MB vector file by file would copy it.
  std::uintmax_t total = 0;
  for (const auto& file : files) {
    std::error_code error;
    const std::uintmax_t size = std::filesystem::file_size(file, error);
    if (!error) total += size;
  }
  dataset.images.reserve(std::size_t(total));
  for (const auto& file : files) detail::append_cifar10(dataset, file);
  return dataset;
}

// The directory of the official binary release (cifar-10-batches-bin): `train` is
// data_batch_1..4, `valid` data_batch_5 (or `train` takes all five and `valid` is
// empty), `test` is test_batch.bin when the directory holds it and empty otherwise.
inline Splits cifar10(const std::filesystem::path& directory, bool validation_from_batch5 = true) {
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error))
    throw Error(directory.string() +
                ": no such directory (cifar10 expects data_batch_1.bin .. data_batch_5.bin there)");
  std::vector<std::filesystem::path> train_files;
  const int train_batches = validation_from_batch5 ? 4 : 5;
  for (int batch = 1; batch <= train_batches; ++batch)
    train_files.push_back(directory / ("data_batch_" + std::to_string(batch) + ".bin"));

  Splits splits;
  splits.train = read_cifar10(train_files);
  splits.valid = validation_from_batch5
                     ? read_cifar10(directory / "data_batch_5.bin")
                     : detail::empty_cifar10("(no validation set: data_batch_5.bin is in train)");
  const auto test_file = directory / "test_batch.bin";
  splits.test = std::filesystem::exists(test_file, error)
                    ? read_cifar10(test_file)
                    : detail::empty_cifar10("(no test_batch.bin in " + directory.string() + ")");
  return splits;
}

// Class names in label order, as batches.meta.txt lists them.
inline std::vector<std::string> cifar10_class_names() {
  return {"airplane", "automobile", "bird",  "cat",  "deer",
          "dog",      "frog",       "horse", "ship", "truck"};
}

}  // namespace laminar::data
