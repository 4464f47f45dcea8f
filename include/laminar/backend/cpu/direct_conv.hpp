// The cpu backend's direct convolution over the blocked channel layout: forward,
// and through pack_transposed_weights the input gradient of a stride-1 conv, on
// float operands or on bf16 ones with float sums. An AVX-512 register-blocked
// micro-kernel where the compiler has it, else scalar.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "../../core/error.hpp"
#include "blocked.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace laminar::cpu_detail {

namespace direct {

inline float operand_value(float value) { return value; }
inline float operand_value(bf16_bits value) { return from_bf16(value); }

// y[n, o, oy, ox] = bias[o] + sum over i, ky, kx of
//   w[o, i, ky, kx] * x[n, i, oy * stride_h + ky, ox * stride_w + kx]   (x padded)
// packed_x (N, Cin/16, padded H, padded W, 16), packed_w (Cout/16, Cin/16, KH, KW,
// 256 at tap_offset<Element>), bias (Cout) or null, packed_y (N, Cout/16, OH, OW,
// 16); the sums are float for either Element.
template <class Element>
void forward_scalar(const BlockedConv& b, int batch, const Element* packed_x, const Element* packed_w,
                    const float* bias, float* packed_y, ConvEpilogue epilogue) {
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
                const Element* in = packed_x + (long(n) * b.in_blocks + ib) * x_block +
                                    (long(oy) * g.stride_h + ky) * x_row +
                                    (long(ox) * g.stride_w + kx) * channel_block;
                const Element* tap =
                    packed_w + ob * w_block + ((long(ib) * g.kernel_h + ky) * g.kernel_w + kx) * w_tap;
                for (int i = 0; i < channel_block; ++i)
                  for (int o = 0; o < channel_block; ++o)
                    sum[o] += operand_value(in[i]) * operand_value(tap[tap_offset<Element>(i, o)]);
              }
          float* out = packed_y + ((long(n) * b.out_blocks + ob) * g.out_height + oy) * g.out_width * channel_block +
                       long(ox) * channel_block;
          if (epilogue == ConvEpilogue::relu)
            for (float& value : sum) value = value < 0.0f ? 0.0f : value;
          std::copy(sum, sum + channel_block, out);
        }
}

}  // namespace direct

// The reference the vector kernel is tested against; also the fallback.
inline void direct_conv_forward_scalar(const BlockedConv& b, int batch, const float* packed_x, const float* packed_w,
                                       const float* bias, float* packed_y,
                                       ConvEpilogue epilogue = ConvEpilogue::none) {
  direct::forward_scalar(b, batch, packed_x, packed_w, bias, packed_y, epilogue);
}

// The bf16 policy: packed_x from pack_input_bf16, packed_w from
// pack_forward_weights_bf16 (or pack_transposed_weights_bf16), every product
// of two bf16 values exact in float and summed in float.
inline void direct_conv_forward_bf16_scalar(const BlockedConv& b, int batch, const bf16_bits* packed_x,
                                            const bf16_bits* packed_w, const float* bias, float* packed_y,
                                            ConvEpilogue epilogue = ConvEpilogue::none) {
  direct::forward_scalar(b, batch, packed_x, packed_w, bias, packed_y, epilogue);
}

#if defined(__AVX512F__)

namespace direct {

// Everything one micro-kernel call needs; pointers are at the tile's first
// output pixel (and the matching input pixel at ky = kx = 0, input block 0).
// Strides count elements, which are the same for either operand type.
template <class Element>
struct Tile {
  const Element* x;
  const Element* w;
  const float* bias;  // Blocks x 16 values with a zero channel tail, or null
  float* y;
  long x_row, x_block;  // elements between input rows, input channel blocks
  long w_block;         // elements between the weights of consecutive output blocks
  long y_row, y_block;  // floats between output rows, output channel blocks
  long y_column;        // floats between output columns: 16, or a multiple where outputs interleave
  int in_blocks, last_channels;  // real channels in the last input block: the zero tail is skipped
  int kernel_h, kernel_w, stride_h, stride_w;
  bool relu;  // the epilogue: each sum becomes max(0, sum) as it is stored
};

// How forward_tile meets inputs with weights. A step takes `channels_per_step`
// input channels of a pixel as one broadcast value and the weights of those
// channels for 16 outputs as one vector (at tap_offset of its first channel).
// float: one channel, an FMA.
struct FloatOperands {
  using Element = float;
  using Vector = __m512;
  static constexpr int channels_per_step = 1;
  static Vector weights(const float* w) { return _mm512_loadu_ps(w); }
  static Vector broadcast(const float* x) { return _mm512_set1_ps(*x); }
  static __m512 multiply_add(__m512 sum, Vector x, Vector w) { return _mm512_fmadd_ps(x, w, sum); }
};

#if defined(__AVX512BF16__)
// bf16: a channel pair, whose two values are one 32-bit word, against the 32
// weights (16 out x 2 in) of that pair; vdpbf16ps adds both products to each
// float sum. That is twice an FMA's work, but whether it is faster depends on
// the core: on the Xeon measured here (family 6, model 207) one vdpbf16ps
// issues every ~2 cycles against two FMAs a cycle, so this runs at ~0.65x the
// float kernel there; on a Zen 4 (family 25, model 17) it issues as often as an
// FMA, so this does twice the float kernel's work in the same time. There a
// broadcast from memory as a separate vpbroadcastd cost nothing in a
// register-only test, while the embedded {1to16} form of vdpbf16ps ran 2.8x
// slower (16 accumulators, the same loop otherwise): hence broadcast() below.
struct Bf16Operands {
  using Element = bf16_bits;
  using Vector = __m512bh;
  static constexpr int channels_per_step = 2;
  static Vector weights(const bf16_bits* w) { return Vector(_mm512_loadu_si512(w)); }
  static Vector broadcast(const bf16_bits* x) {
    std::int32_t pair;
    std::memcpy(&pair, x, sizeof pair);
    return Vector(_mm512_set1_epi32(pair));
  }
  static __m512 multiply_add(__m512 sum, Vector x, Vector w) { return _mm512_dpbf16_ps(sum, x, w); }
};
#endif

// (Blocks x Rows x Columns) accumulators: Blocks output-channel blocks of a
// Rows x Columns patch of output pixels. Each step loads the Blocks weight
// vectors of one input channel (or pair) and meets them with one broadcast
// input value per pixel, so a step is Blocks * Rows * Columns multiply-adds for
// Blocks + Rows * Columns loads.
template <class Operands, int Blocks, int Rows, int Columns>
void forward_tile(const Tile<typename Operands::Element>& t) {
  using Element = typename Operands::Element;
  constexpr int pixels = Rows * Columns, per_step = Operands::channels_per_step;
  const long column_step = long(t.stride_w) * channel_block;
  __m512 acc[Blocks][pixels];
#pragma GCC unroll 2
  for (int j = 0; j < Blocks; ++j) {
    const __m512 start = t.bias ? _mm512_loadu_ps(t.bias + j * channel_block) : _mm512_setzero_ps();
#pragma GCC unroll 28
    for (int p = 0; p < pixels; ++p) acc[j][p] = start;
  }
  // Input channels i = s * per_step onwards of every tile pixel against the
  // weights of those channels.
  auto step = [&](const Element* const* rows, const Element* w, int s) {
    const int i = s * per_step;
    typename Operands::Vector weight[Blocks];
#pragma GCC unroll 2
    for (int j = 0; j < Blocks; ++j) weight[j] = Operands::weights(w + j * t.w_block + tap_offset<Element>(i, 0));
#pragma GCC unroll 4
    for (int r = 0; r < Rows; ++r) {
      // The compiler keeps the column offsets c * stride in registers or
      // addressing modes, so the stride costs nothing at runtime.
      const Element* pixel = rows[r] + i;
#pragma GCC unroll 14
      for (int c = 0; c < Columns; ++c) {
        const typename Operands::Vector value = Operands::broadcast(pixel);
        pixel += column_step;
#pragma GCC unroll 2
        for (int j = 0; j < Blocks; ++j)
          acc[j][r * Columns + c] = Operands::multiply_add(acc[j][r * Columns + c], value, weight[j]);
      }
    }
  };
  for (int ib = 0; ib < t.in_blocks; ++ib) {
    // A pair that holds the last real channel also holds one of the zero tail,
    // whose input and weight are both zero.
    const int channels = ib + 1 == t.in_blocks ? t.last_channels : channel_block;
    const int steps = (channels + per_step - 1) / per_step;
    for (int ky = 0; ky < t.kernel_h; ++ky)
      for (int kx = 0; kx < t.kernel_w; ++kx) {
        const Element* rows[Rows];
#pragma GCC unroll 4
        for (int r = 0; r < Rows; ++r)
          rows[r] = t.x + ib * t.x_block + (long(r) * t.stride_h + ky) * t.x_row + kx * channel_block;
        const Element* w = t.w + ((long(ib) * t.kernel_h + ky) * t.kernel_w + kx) * channel_block * channel_block;
#pragma GCC unroll 1
        for (int s = 0; s < steps; ++s) step(rows, w, s);
      }
  }
#pragma GCC unroll 2
  for (int j = 0; j < Blocks; ++j)
#pragma GCC unroll 4
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 14
      for (int c = 0; c < Columns; ++c) {
        // vmaxps returns its second operand when either is NaN: a NaN sum stays NaN.
        const __m512 sum = acc[j][r * Columns + c];
        _mm512_storeu_ps(t.y + j * t.y_block + r * t.y_row + c * t.y_column,
                         t.relu ? _mm512_max_ps(_mm512_setzero_ps(), sum) : sum);
      }
}

// One output row of Columns pixels of a stride-1 convolution whose kernel is
// 3 wide: each of the row's Columns + 2 input pixels is broadcast once and
// meets the weights of the three taps kx it feeds, so a step takes 3 * Blocks +
// Columns + 2 loads for 3 * Blocks * Columns multiply-adds, where forward_tile
// takes 3 * (Blocks + Columns): the loads no longer outnumber the
// multiply-adds a core issues beside them. For one output block, where
// forward_tile has one broadcast per multiply-add: the 16-channel layers of
// ResNet-20 ran their forward 2.65 -> 2.35 ms at batch 128.
template <class Operands, int Blocks, int Columns>
void forward_row_3wide(const Tile<typename Operands::Element>& t) {
  using Element = typename Operands::Element;
  constexpr int per_step = Operands::channels_per_step, width = 3;
  __m512 acc[Blocks][Columns];
#pragma GCC unroll 2
  for (int j = 0; j < Blocks; ++j) {
    const __m512 start = t.bias ? _mm512_loadu_ps(t.bias + j * channel_block) : _mm512_setzero_ps();
#pragma GCC unroll 14
    for (int c = 0; c < Columns; ++c) acc[j][c] = start;
  }
  for (int ib = 0; ib < t.in_blocks; ++ib) {
    const int channels = ib + 1 == t.in_blocks ? t.last_channels : channel_block;
    const int steps = (channels + per_step - 1) / per_step;
    for (int ky = 0; ky < t.kernel_h; ++ky) {
      const Element* row = t.x + ib * t.x_block + long(ky) * t.x_row;
      const Element* w = t.w + (long(ib) * t.kernel_h + ky) * width * channel_block * channel_block;
#pragma GCC unroll 1
      for (int s = 0; s < steps; ++s) {
        const int i = s * per_step;
        typename Operands::Vector weight[Blocks][width];
#pragma GCC unroll 2
        for (int j = 0; j < Blocks; ++j)
#pragma GCC unroll 3
          for (int kx = 0; kx < width; ++kx)
            weight[j][kx] =
                Operands::weights(w + j * t.w_block + kx * channel_block * channel_block + tap_offset<Element>(i, 0));
#pragma GCC unroll 16
        for (int px = 0; px < Columns + width - 1; ++px) {
          const typename Operands::Vector value = Operands::broadcast(row + long(px) * channel_block + i);
#pragma GCC unroll 3
          for (int kx = 0; kx < width; ++kx) {
            const int c = px - kx;
            if (c < 0 || c >= Columns) continue;
#pragma GCC unroll 2
            for (int j = 0; j < Blocks; ++j) acc[j][c] = Operands::multiply_add(acc[j][c], value, weight[j][kx]);
          }
        }
      }
    }
  }
#pragma GCC unroll 2
  for (int j = 0; j < Blocks; ++j)
#pragma GCC unroll 14
    for (int c = 0; c < Columns; ++c) {
      const __m512 sum = acc[j][c];
      _mm512_storeu_ps(t.y + j * t.y_block + c * t.y_column, t.relu ? _mm512_max_ps(_mm512_setzero_ps(), sum) : sum);
    }
}

// A tile holds at most 14 pixels: 2 blocks x 14 = 28 accumulators, leaving
// registers for the two weight vectors. Rows above 1 serve narrow images
// (width <= 7), whose single row would be too few accumulators to hide the
// FMA latency.
inline constexpr int max_pixels = 14, max_rows = 4;

template <class Operands>
using TileKernel = void (*)(const Tile<typename Operands::Element>&);

template <class Operands, int Blocks, int Index>
constexpr TileKernel<Operands> table_entry() {
  constexpr int rows = Index / max_pixels + 1, columns = Index % max_pixels + 1;
  // A lone output block (Cout <= 16, or the last of an odd count) is rare: it
  // gets single-row tiles only, and bands of several rows run row by row.
  if constexpr (rows * columns <= max_pixels && (Blocks == 2 || rows == 1))
    return &forward_tile<Operands, Blocks, rows, columns>;
  else
    return nullptr;
}

template <class Operands, int Blocks, int... Index>
constexpr std::array<TileKernel<Operands>, sizeof...(Index)> make_table(std::integer_sequence<int, Index...>) {
  return {table_entry<Operands, Blocks, Index>()...};
}

template <class Operands, int Blocks>
inline constexpr auto tile_table =
    make_table<Operands, Blocks>(std::make_integer_sequence<int, max_rows * max_pixels>{});

// The kernel for a tile, or null where none is instantiated.
template <class Operands>
TileKernel<Operands> tile_kernel(int blocks, int rows, int columns) {
  const int index = (rows - 1) * max_pixels + columns - 1;
  return blocks == 2 ? tile_table<Operands, 2>[index] : tile_table<Operands, 1>[index];
}

// forward_row_3wide for rows of 1 .. max_pixels columns of one output block.
// With two blocks forward_tile already meets each broadcast with two weight
// vectors, and its loads do not outnumber its multiply-adds.
template <class Operands, int... Index>
constexpr std::array<TileKernel<Operands>, sizeof...(Index)> make_row_table(std::integer_sequence<int, Index...>) {
  return {&forward_row_3wide<Operands, 1, Index + 1>...};
}
template <class Operands>
inline constexpr auto row_3wide_table = make_row_table<Operands>(std::make_integer_sequence<int, max_pixels>{});

// The 3-wide row kernel for one output row of one block of a stride-1
// convolution with a kernel 3 wide, or null.
template <class Operands>
TileKernel<Operands> row_3wide_kernel(const ConvGeometry& g, int blocks, int columns) {
  if (g.stride_w != 1 || g.kernel_w != 3 || blocks != 1) return nullptr;
  return row_3wide_table<Operands>[columns - 1];
}

// Where the kernel finds image n with its zero border. PaddedImages: in the
// packed batch (N, Cin/16, padded H, padded W, 16). BlockedImages: a float
// batch in the blocked layout without the border (core/layout.hpp), which each
// thread pads into its own scratch image as it reaches the image, so that the
// padded copy lives in that core's cache instead of going through memory.
template <class Element>
struct PaddedImages {
  const Element* x;
  long image;  // elements of one padded image
  struct Reader {
    const Element* x;
    long image;
    const Element* operator()(int n) const { return x + n * image; }
  };
  Reader reader(int) const { return {x, image}; }
};

struct BlockedImages {
  const BlockedConv* b;
  const float* x;
  float* scratch;  // a padded image per thread
  struct Reader {
    const BlockedConv* b;
    const float* x;
    float* image;
    int cached = -1;
    const float* operator()(int n) {
      if (n != cached) {
        const long plane = b->g.in_pixels() * channel_block, padded = long(b->padded_height) * b->padded_width;
        for (int cb = 0; cb < b->in_blocks; ++cb)
          pack_input_block(*b, x + (long(n) * b->in_blocks + cb) * plane, channel_block,
                           image + cb * padded * channel_block, Layout::blocked, false);
        cached = n;
      }
      return image;
    }
  };
  Reader reader(int thread) const { return {b, x, scratch + thread * b->input_image()}; }
};

// Consecutive items of a thread share what stays in its cache. Image-major
// order keeps one image while the weights cycle, right while all weights fit
// in L2 (2 MB a core); beyond that (256 channels and up) block-pair-major
// order keeps one pair's weights while the images stream.
inline bool weights_major(const BlockedConv& b, long element_bytes) {
  return b.packed_weights() * element_bytes > (1l << 20);
}

// Where the kernel writes output pixel (oy, ox) of channel block ob of image n:
// at y + n * image + ob * block + oy * row + ox * column. Packed: the blocked
// (N, Cout/16, OH, OW, 16) of forward_scalar; a strided placement interleaves
// the outputs of several passes (the phases of a strided input gradient).
struct OutputPlacement {
  float* y;
  long image, block, row, column;
  static OutputPlacement packed(const BlockedConv& b, float* packed_y) {
    const long row = long(b.g.out_width) * channel_block, block = b.g.out_height * row;
    return {packed_y, b.out_blocks * block, block, row, channel_block};
  }
};

// See forward_scalar for the operands; images is a PaddedImages or, in
// image-major order only, a BlockedImages. Work items are (image, pair of
// output blocks, band of output rows); a band is one tile high and is swept in
// tiles of near-equal width, at most 14 pixels: a 32-wide row is 11 + 11 + 10,
// a 16-wide one 8 + 8, and images 7 wide or less stack rows (7x7 in bands of 2
// rows, 3x3 whole).
template <class Operands, class Images>
void forward(const BlockedConv& b, int batch, const Images& images, const typename Operands::Element* packed_w,
             const float* bias, const OutputPlacement& out, ConvEpilogue epilogue) {
  using Element = typename Operands::Element;
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

  Tile<Element> base{};
  base.x_row = long(b.padded_width) * channel_block;
  base.x_block = long(b.padded_height) * base.x_row;
  base.w_block = long(b.in_blocks) * g.kernel_h * g.kernel_w * channel_block * channel_block;
  base.y_row = out.row;
  base.y_block = out.block;
  base.y_column = out.column;
  base.in_blocks = b.in_blocks;
  base.last_channels = last_channels;
  base.kernel_h = g.kernel_h;
  base.kernel_w = g.kernel_w;
  base.stride_h = g.stride_h;
  base.stride_w = g.stride_w;
  base.relu = epilogue == ConvEpilogue::relu;

  const bool by_weights = weights_major(b, long(sizeof(Element)));
  const long items = long(batch) * groups * bands;
#pragma omp parallel
  {
    auto image = images.reader(omp_get_thread_num());
#pragma omp for schedule(static)
    for (long item = 0; item < items; ++item) {
      const int band = int(item % bands);
      const long rest = item / bands;
      const int group = int(by_weights ? rest / batch : rest % groups);
      const int n = int(by_weights ? rest % batch : rest / groups);
      const int ob = group * 2;
      const int blocks = std::min(2, b.out_blocks - ob);
      const int oy = band * rows;
      const int band_rows = band + 1 == bands ? last_rows : rows;
      Tile<Element> t = base;
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
      const Element* x_image = image(n);
      for (int tile = 0; tile < column_tiles; ++tile) {
        const int ox = tile * columns;
        const int tile_columns = tile + 1 == column_tiles ? last_columns : columns;
        t.x = x_image + long(oy) * g.stride_h * base.x_row + long(ox) * g.stride_w * channel_block;
        t.y = out.y + n * out.image + ob * out.block + oy * out.row + ox * out.column;
        const TileKernel<Operands> row_3wide = row_3wide_kernel<Operands>(g, blocks, tile_columns);
        if (band_rows == 1 && row_3wide) {
          row_3wide(t);
        } else if (const TileKernel<Operands> kernel = tile_kernel<Operands>(blocks, band_rows, tile_columns)) {
          kernel(t);
        } else {
          const TileKernel<Operands> row_kernel =
              row_3wide ? row_3wide : tile_kernel<Operands>(blocks, 1, tile_columns);
          for (int r = 0; r < band_rows; ++r) {
            Tile<Element> row = t;
            row.x += long(r) * g.stride_h * base.x_row;
            row.y += long(r) * base.y_row;
            row_kernel(row);
          }
        }
      }
    }
  }
}

}  // namespace direct

#endif

// See direct_conv_forward_scalar for the operands.
inline void direct_conv_forward(const BlockedConv& b, int batch, const float* packed_x, const float* packed_w,
                                const float* bias, float* packed_y, ConvEpilogue epilogue = ConvEpilogue::none) {
#if defined(__AVX512F__)
  direct::forward<direct::FloatOperands>(b, batch, direct::PaddedImages<float>{packed_x, b.input_image()}, packed_w,
                                         bias, direct::OutputPlacement::packed(b, packed_y), epilogue);
#else
  direct_conv_forward_scalar(b, batch, packed_x, packed_w, bias, packed_y, epilogue);
#endif
}

#if defined(__AVX512F__)
// direct_conv_forward on packed images `image` floats apart starting at
// packed_x (a window into larger padded images where b's padded extents say
// so), writing through `out`.
inline void direct_conv_forward_placed(const BlockedConv& b, int batch, const float* packed_x, long image,
                                       const float* packed_w, const direct::OutputPlacement& out) {
  direct::forward<direct::FloatOperands>(b, batch, direct::PaddedImages<float>{packed_x, image}, packed_w, nullptr,
                                         out, ConvEpilogue::none);
}
#endif

// Whether direct_conv_forward_blocked applies: the kernel sweeps image by
// image (see direct::weights_major), so each thread pads an image once.
inline bool direct_conv_pads_per_thread(const BlockedConv& b) {
#if defined(__AVX512F__)
  return !direct::weights_major(b, long(sizeof(float)));
#else
  return false;
#endif
}

// Floats of scratch direct_conv_forward_blocked takes for `threads` threads.
inline long direct_conv_padding_scratch(const BlockedConv& b, int threads) { return threads * b.input_image(); }

// direct_conv_forward on x blocked without the zero border (core/layout.hpp;
// Cin a multiple of 16): each thread pads the images it reaches into its part
// of scratch (direct_conv_padding_scratch floats). Where
// direct_conv_pads_per_thread(b).
inline void direct_conv_forward_blocked(const BlockedConv& b, int batch, const float* x, const float* packed_w,
                                        const float* bias, float* packed_y, float* scratch,
                                        ConvEpilogue epilogue = ConvEpilogue::none) {
#if defined(__AVX512F__)
  direct::forward<direct::FloatOperands>(b, batch, direct::BlockedImages{&b, x, scratch}, packed_w, bias,
                                         direct::OutputPlacement::packed(b, packed_y), epilogue);
#else
  (void)b, (void)batch, (void)x, (void)packed_w, (void)bias, (void)packed_y, (void)scratch, (void)epilogue;
  throw Error("direct_conv_forward_blocked needs AVX-512");
#endif
}

// See direct_conv_forward_bf16_scalar for the operands.
inline void direct_conv_forward_bf16(const BlockedConv& b, int batch, const bf16_bits* packed_x,
                                     const bf16_bits* packed_w, const float* bias, float* packed_y,
                                     ConvEpilogue epilogue = ConvEpilogue::none) {
#if defined(__AVX512BF16__)
  direct::forward<direct::Bf16Operands>(b, batch, direct::PaddedImages<bf16_bits>{packed_x, b.input_image()},
                                        packed_w, bias, direct::OutputPlacement::packed(b, packed_y), epilogue);
#else
  direct_conv_forward_bf16_scalar(b, batch, packed_x, packed_w, bias, packed_y, epilogue);
#endif
}

}  // namespace laminar::cpu_detail
