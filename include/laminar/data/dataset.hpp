// Dataset: labelled images kept as uint8, N x C x H x W, sample-major. Conversion
// to float and normalisation happen per batch, in the loader.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace laminar::data {

struct Dataset {
  int channels = 0, height = 0, width = 0;
  int classes = 0;
  std::vector<std::uint8_t> images;  // (N, C, H, W)
  std::vector<std::uint8_t> labels;  // (N), each in [0, classes)
  std::string source;                // where the data came from, for messages

  long size() const { return long(labels.size()); }
  long sample_size() const { return long(channels) * height * width; }
  const std::uint8_t* image(long i) const { return images.data() + i * sample_size(); }

  // Samples [begin, end) as a new dataset.
  Dataset slice(long begin, long end) const {
    if (begin < 0 || end > size() || begin > end)
      throw Error("Dataset::slice: range [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") is outside " + source + " (" + std::to_string(size()) + " samples)");
    Dataset d{channels, height, width, classes, {}, {}, source};
    d.images.assign(image(begin), image(begin) + (end - begin) * sample_size());
    d.labels.assign(labels.begin() + begin, labels.begin() + end);
    return d;
  }
};

// A training set, a validation set carved from the training data or given
// separately, and a test set (empty when the files are not present).
struct Splits {
  Dataset train, valid, test;
};

}  // namespace laminar::data
