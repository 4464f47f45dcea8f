// Convolution geometries for the backend tests, written the way PyTorch states a
// convolution: padding given per side, the output extent whatever
// (size + 2 pad - kernel) / stride + 1 gives.
#pragma once

#include <laminar/core/geometry.hpp>

namespace laminar_test {

inline laminar::ConvGeometry convolution(int in_channels, int height, int width, int out_channels, int kernel_h,
                                         int kernel_w, int stride_h, int stride_w, int pad_top, int pad_left) {
  return {in_channels,
          height,
          width,
          out_channels,
          (height + 2 * pad_top - kernel_h) / stride_h + 1,
          (width + 2 * pad_left - kernel_w) / stride_w + 1,
          kernel_h,
          kernel_w,
          stride_h,
          stride_w,
          pad_top,
          pad_left};
}

// A square kernel with the same stride and padding on both axes.
inline laminar::ConvGeometry convolution(int in_channels, int height, int width, int out_channels, int kernel,
                                         int stride, int pad) {
  return convolution(in_channels, height, width, out_channels, kernel, kernel, stride, stride, pad, pad);
}

}  // namespace laminar_test
