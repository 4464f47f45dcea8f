// Runtime descriptions of a convolution and a pooling window, filled from a
// layer's template arguments and handed to a backend's primitives.
#pragma once

namespace laminar {

// What a convolution does to its sums before storing them: nothing, or ReLU
// (x < 0 ? 0 : x, NaN kept), so that Conv-BatchNorm-ReLU at inference is one pass.
enum class ConvEpilogue { none, relu };

// A 2d convolution over (N, C_in, H, W) -> (N, C_out, OH, OW). Padding is given
// at the top/left; the bottom/right padding is whatever makes OH, OW come out.
struct ConvGeometry {
  int in_channels, height, width;
  int out_channels, out_height, out_width;
  int kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;

  long patch() const { return long(in_channels) * kernel_h * kernel_w; }  // GEMM K
  long in_pixels() const { return long(height) * width; }
  long out_pixels() const { return long(out_height) * out_width; }
  bool is_pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 &&
           pad_left == 0;
  }
};

enum class PoolKind { max, average };

// Pooling without padding over each channel plane independently.
struct PoolGeometry {
  int channels, height, width;
  int out_height, out_width;
  int kernel_h, kernel_w, stride_h, stride_w;
};

}  // namespace laminar
