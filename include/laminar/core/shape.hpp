// Shape<C,H,W> and Shape<N>: the compile-time shape of one sample. The batch size
// is never part of a shape; it is a runtime value.
#pragma once

#include <array>
#include <string>

namespace laminar {

template <int... Dims>
struct Shape {
  static_assert(sizeof...(Dims) == 1 || sizeof...(Dims) == 3,
                "SHAPE_IS_EITHER_FLAT_N_OR_IMAGE_C_H_W");
  static_assert(((Dims > 0) && ...), "SHAPE_DIMENSIONS_MUST_BE_POSITIVE");

  static constexpr int rank = sizeof...(Dims);
  static constexpr std::array<int, rank> dims{Dims...};
  static constexpr long size = (1L * ... * Dims);
  // A flat Shape<N> reads as N channels of 1x1, so per-channel layers
  // (BatchNorm) treat 1d and 2d inputs the same way.
  static constexpr int channels = dims[0];
  static constexpr int height = rank == 3 ? dims[rank == 3 ? 1 : 0] : 1;
  static constexpr int width = rank == 3 ? dims[rank == 3 ? 2 : 0] : 1;
  static constexpr long pixels = long(height) * width;

  static std::string name() {
    std::string s = "Shape<";
    for (int i = 0; i < rank; ++i) {
      if (i) s += ',';
      s += std::to_string(dims[i]);
    }
    return s + ">";
  }
};

template <class S>
concept ImageShape = S::rank == 3;
template <class S>
concept FlatShape = S::rank == 1;

}  // namespace laminar
