// Occlusion augmentations: parts of the image hidden so that the network
// cannot lean on any one region. Training only; a test pipeline leaves them out.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "../../core/error.hpp"
#include "transform.hpp"

namespace laminar::augment {

// Cutout (DeVries & Taylor, "Improved Regularization of Convolutional Neural
// Networks with Cutout", 2017): a size x size square whose centre is uniform
// over the whole image, so near the border only its inside part is cut, as in
// the paper; the square covers rows [cy - size/2, cy - size/2 + size). It is
// set to zero, or to `fill` per channel (the dataset mean, so that the hole is
// zero after normalisation); channels past the third of `fill` are zeroed.
struct Cutout : WithProbability<Cutout> {
  int size;
  std::array<std::uint8_t, 3> fill;  // zeros when none was given

  void operator()(const Image& in, const Image& out, Draw& draw) const {
    const int centre_y = draw.integer(0, in.height - 1), centre_x = draw.integer(0, in.width - 1);
    const int top = std::max(centre_y - size / 2, 0), bottom = std::min(centre_y - size / 2 + size, in.height);
    const int left = std::max(centre_x - size / 2, 0), right = std::min(centre_x - size / 2 + size, in.width);
    copy_image(in, out);
    for (int c = 0; c < in.channels; ++c) {
      const std::uint8_t value = c < 3 ? fill[std::size_t(c)] : 0;
      for (int y = top; y < bottom; ++y) std::memset(&out.at(c, y, left), value, std::size_t(right - left));
    }
  }
};

inline Cutout cutout(int size, std::optional<std::array<std::uint8_t, 3>> fill = {}) {
  if (size < 1) throw Error("cutout: the square's side " + std::to_string(size) + " is not positive");
  return {{}, size, fill.value_or(std::array<std::uint8_t, 3>{0, 0, 0})};
}

}  // namespace laminar::augment
