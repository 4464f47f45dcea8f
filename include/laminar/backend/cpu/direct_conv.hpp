// The cpu backend's direct convolution over the blocked channel layout: forward,
// and through pack_transposed_weights the input gradient of a stride-1 conv. An
// AVX-512 register-blocked micro-kernel where the compiler has it, else scalar.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <utility>

#include "blocked.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace laminar::cpu_detail {

// y[n, o, oy, ox] = bias[o] + sum over i, ky, kx of
//   w[o, i, ky, kx] * x[n, i, oy * stride_h + ky, ox * stride_w + kx]   (x padded)
// packed_x (N, Cin/16, padded H, padded W, 16), packed_w (Cout/16, Cin/16, KH, KW,
// 16 in, 16 out), bias (Cout) or null, packed_y (N, Cout/16, OH, OW, 16).
// The reference the vector kernel is tested against; also the fallback.
inline void direct_conv_forward_scalar(const BlockedConv& b, int batch, const float* packed_x, const float* packed_w,
                                       const float* bias, float* packed_y) {
  const ConvGeometry& g = b.g;
  const long x_row = long(b.padded_width) * channel_block;
  const long x_block = long(b.padded_height) * x_row;
  const long w_tap = long(channel_block) * channel_block;
  const long w_block = long(b.in_blocks) * g.kernel_h * g.kernel_w * w_tap;
#pragma omp parallel for collapse(3) schedule(static)
  for (int n = 0; n < batch; ++n)
    for (int ob = 0; ob < b.out_blocks; ++ob)
      for (int oy = 0; oy < g.out_height; ++oy)
        for (int ox = 0; ox < g.out_width; ++ox) {
          float sum[channel_block];
          for (int o = 0; o < channel_block; ++o) {
            const int channel = ob * channel_block + o;
            sum[o] = bias && channel < g.out_channels ? bias[channel] : 0.0f;
          }
          for (int ib = 0; ib < b.in_blocks; ++ib)
            for (int ky = 0; ky < g.kernel_h; ++ky)
              for (int kx = 0; kx < g.kernel_w; ++kx) {
                const float* in = packed_x + (long(n) * b.in_blocks + ib) * x_block +
                                  (long(oy) * g.stride_h + ky) * x_row +
                                  (long(ox) * g.stride_w + kx) * channel_block;
                const float* tap = packed_w + ob * w_block + ((long(ib) * g.kernel_h + ky) * g.kernel_w + kx) * w_tap;
                for (int i = 0; i < channel_block; ++i)
                  for (int o = 0; o < channel_block; ++o) sum[o] += in[i] * tap[i * channel_block + o];
              }
          float* out = packed_y + ((long(n) * b.out_blocks + ob) * g.out_height + oy) * g.out_width * channel_block +
                       long(ox) * channel_block;
          std::copy(sum, sum + channel_block, out);
        }
}

#if defined(__AVX512F__)

namespace direct {

// Everything one micro-kernel call needs; pointers are at the tile's first
// output pixel (and the matching input pixel at ky = kx = 0, input block 0).
struct Tile {
  const float* x;
  const float* w;
  const float* bias;  // Blocks x 16 values with a zero channel tail, or null
  float* y;
  long x_row, x_block;  // floats between input rows, input channel blocks
  long w_block;         // floats between the weights of consecutive output blocks
  long y_row, y_block;  // floats between output rows, output channel blocks
  int in_blocks, last_channels;  // real channels in the last input block: the zero tail is skipped
  int kernel_h, kernel_w, stride_h, stride_w;
};

// (Blocks x Rows x Columns) accumulators: Blocks output-channel blocks of a
// Rows x Columns patch of output pixels. Each step loads the Blocks weight
// vectors of one input channel and meets them with one broadcast input value
// per pixel, so a step is Blocks * Rows * Columns FMAs for Blocks + Rows *
// Columns loads.
template <int Blocks, int Rows, int Columns>
void forward_tile(const Tile& t) {
  constexpr int pixels = Rows * Columns;
  const long column_step = long(t.stride_w) * channel_block;
  __m512 acc[Blocks][pixels];
#pragma GCC unroll 2
  for (int j = 0; j < Blocks; ++j) {
    const __m512 start = t.bias ? _mm512_loadu_ps(t.bias + j * channel_block) : _mm512_setzero_ps();
#pragma GCC unroll 28
    for (int p = 0; p < pixels; ++p) acc[j][p] = start;
  }
  // One input channel i of every tile pixel against the weights w[.., i, 0..15].
  auto step = [&](const float* const* rows, const float* w, int i) {
    __m512 weight[Blocks];
#pragma GCC unroll 2
    for (int j = 0; j < Blocks; ++j) weight[j] = _mm512_loadu_ps(w + j * t.w_block + i * channel_block);
#pragma GCC unroll 4
    for (int r = 0; r < Rows; ++r) {
      // The compiler keeps the column offsets c * stride in registers or
      // addressing modes, so the stride costs nothing at runtime.
      const float* pixel = rows[r] + i;
#pragma GCC unroll 14
      for (int c = 0; c < Columns; ++c) {
        const __m512 value = _mm512_set1_ps(*pixel);
        pixel += column_step;
#pragma GCC unroll 2
        for (int j = 0; j < Blocks; ++j)
          acc[j][r * Columns + c] = _mm512_fmadd_ps(value, weight[j], acc[j][r * Columns + c]);
      }
    }
  };
  for (int ib = 0; ib < t.in_blocks; ++ib) {
    const int channels = ib + 1 == t.in_blocks ? t.last_channels : channel_block;
    for (int ky = 0; ky < t.kernel_h; ++ky)
      for (int kx = 0; kx < t.kernel_w; ++kx) {
        const float* rows[Rows];
#pragma GCC unroll 4
        for (int r = 0; r < Rows; ++r)
          rows[r] = t.x + ib * t.x_block + (long(r) * t.stride_h + ky) * t.x_row + kx * channel_block;
        const float* w = t.w + ((long(ib) * t.kernel_h + ky) * t.kernel_w + kx) * channel_block * channel_block;
#pragma GCC unroll 1
        for (int i = 0; i < channels; ++i) step(rows, w, i);
      }
  }
#pragma GCC unroll 2
  for (int j = 0; j < Blocks; ++j)
#pragma GCC unroll 4
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 14
      for (int c = 0; c < Columns; ++c)
        _mm512_storeu_ps(t.y + j * t.y_block + r * t.y_row + c * channel_block, acc[j][r * Columns + c]);
}

// A tile holds at most 14 pixels: 2 blocks x 14 = 28 accumulators, leaving
// registers for the two weight vectors. Rows above 1 serve narrow images
// (width <= 7), whose single row would be too few accumulators to hide the
// FMA latency.
inline constexpr int max_pixels = 14, max_rows = 4;

using TileKernel = void (*)(const Tile&);

template <int Blocks, int Index>
constexpr TileKernel table_entry() {
  constexpr int rows = Index / max_pixels + 1, columns = Index % max_pixels + 1;
  // A lone output block (Cout <= 16, or the last of an odd count) is rare: it
  // gets single-row tiles only, and bands of several rows run row by row.
  if constexpr (rows * columns <= max_pixels && (Blocks == 2 || rows == 1))
    return &forward_tile<Blocks, rows, columns>;
  else
    return nullptr;
}

template <int Blocks, int... Index>
constexpr std::array<TileKernel, sizeof...(Index)> make_table(std::integer_sequence<int, Index...>) {
  return {table_entry<Blocks, Index>()...};
}

template <int Blocks>
inline constexpr auto tile_table = make_table<Blocks>(std::make_integer_sequence<int, max_rows * max_pixels>{});

// The kernel for a tile, or null where none is instantiated.
inline TileKernel tile_kernel(int blocks, int rows, int columns) {
  const int index = (rows - 1) * max_pixels + columns - 1;
  return blocks == 2 ? tile_table<2>[index] : tile_table<1>[index];
}

}  // namespace direct

// See direct_conv_forward_scalar for the operands. Work items are (image, pair of
// output blocks, band of output rows); a band is one tile high and is swept in
// tiles of near-equal width, at most 14 pixels: a 32-wide row is 11 + 11 + 10,
// a 16-wide one 8 + 8, and images 7 wide or less stack rows (7x7 in bands of 2
// rows, 3x3 whole).
inline void direct_conv_forward(const BlockedConv& b, int batch, const float* packed_x, const float* packed_w,
                                const float* bias, float* packed_y) {
  using namespace direct;
  const ConvGeometry& g = b.g;
  const int width = g.out_width, height = g.out_height;
  const int column_tiles = (width + max_pixels - 1) / max_pixels;
  const int columns = (width + column_tiles - 1) / column_tiles;
  const int last_columns = width - (column_tiles - 1) * columns;
  const int rows = std::min({height, max_pixels / columns, max_rows});
  const int bands = (height + rows - 1) / rows;
  const int last_rows = height - (bands - 1) * rows;
  const int groups = (b.out_blocks + 1) / 2;
  const int last_channels = g.in_channels - (b.in_blocks - 1) * channel_block;

  Tile base{};
  base.x_row = long(b.padded_width) * channel_block;
  base.x_block = long(b.padded_height) * base.x_row;
  base.w_block = long(b.in_blocks) * g.kernel_h * g.kernel_w * channel_block * channel_block;
  base.y_row = long(width) * channel_block;
  base.y_block = long(height) * base.y_row;
  base.in_blocks = b.in_blocks;
  base.last_channels = last_channels;
  base.kernel_h = g.kernel_h;
  base.kernel_w = g.kernel_w;
  base.stride_h = g.stride_h;
  base.stride_w = g.stride_w;

  // Consecutive items of a thread share what stays in its cache. Image-major
  // order keeps one image while the weights cycle, right while all weights fit
  // in L2 (2 MB a core); beyond that (256 channels and up) block-pair-major
  // order keeps one pair's weights while the images stream.
  const bool weights_major = b.packed_weights() * long(sizeof(float)) > (1l << 20);
  const long items = long(batch) * groups * bands;
#pragma omp parallel for schedule(static)
  for (long item = 0; item < items; ++item) {
    const int band = int(item % bands);
    const long rest = item / bands;
    const int group = int(weights_major ? rest / batch : rest % groups);
    const int n = int(weights_major ? rest % batch : rest / groups);
    const int ob = group * 2;
    const int blocks = std::min(2, b.out_blocks - ob);
    const int oy = band * rows;
    const int band_rows = band + 1 == bands ? last_rows : rows;
    Tile t = base;
    float bias_pair[2 * channel_block];
    if (bias) {
      // bias has Cout entries; the channel tail of the last block is zero.
      for (int o = 0; o < blocks * channel_block; ++o) {
        const int channel = ob * channel_block + o;
        bias_pair[o] = channel < g.out_channels ? bias[channel] : 0.0f;
      }
      t.bias = bias_pair;
    }
    t.w = packed_w + ob * base.w_block;
    for (int tile = 0; tile < column_tiles; ++tile) {
      const int ox = tile * columns;
      const int tile_columns = tile + 1 == column_tiles ? last_columns : columns;
      t.x = packed_x + long(n) * b.in_blocks * base.x_block + long(oy) * g.stride_h * base.x_row +
            long(ox) * g.stride_w * channel_block;
      t.y = packed_y + (long(n) * b.out_blocks + ob) * base.y_block + long(oy) * base.y_row + long(ox) * channel_block;
      if (const TileKernel kernel = tile_kernel(blocks, band_rows, tile_columns)) {
        kernel(t);
      } else {
        const TileKernel row_kernel = tile_kernel(blocks, 1, tile_columns);
        for (int r = 0; r < band_rows; ++r) {
          Tile row = t;
          row.x += long(r) * g.stride_h * base.x_row;
          row.y += long(r) * base.y_row;
          row_kernel(row);
        }
      }
    }
  }
}

#else

inline void direct_conv_forward(const BlockedConv& b, int batch, const float* packed_x, const float* packed_w,
                                const float* bias, float* packed_y) {
  direct_conv_forward_scalar(b, batch, packed_x, packed_w, bias, packed_y);
}

#endif

}  // namespace laminar::cpu_detail
