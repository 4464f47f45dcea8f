// Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions in float (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016). Each 2x2 block of
// outputs is computed from the 4x4 block of input around it as
//   Y = A^T [ (G g G^T) . (B^T d B) ] A,
// which costs 16 multiplies per input-output channel pair instead of 36: the
// channel contraction becomes 16 independent 1x1 convolutions (one per element
// xi of the 4x4 transformed tile), run by the direct kernel's register-blocked
// tile (direct_conv.hpp) over the transformed tiles as pixels.
//
// The operands stay in the blocked layout of blocked.hpp, a vector register
// holding 16 channels, so every transform is adds and subtracts of whole
// registers. Work items are small groups of images; a thread transforms its
// group's input into a private buffer sized for its cache, runs the 16
// contractions and transforms them back, so the transformed tiles never go to
// memory. Weights are transformed once per call: they change every step. The
// weight gradient runs on the same transformed tiles (see "the weight
// gradient" below).
//
// The transformed operands are float, or bf16 for the vdpbf16ps kernel: both
// transforms run in float on float operands and round once, as they store, so
// a bf16 pass rounds the tiles' sums and differences rather than the inputs.
#pragma once

#include <omp.h>

#include <algorithm>
#include <type_traits>

#include "blocked.hpp"
#include "direct_conv.hpp"
#include "direct_conv_weights.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace laminar::cpu_detail {

// 3x3, stride 1, any padding: what the transform below computes.
inline bool winograd_applicable(const ConvGeometry& g) {
  return g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1;
}

#if defined(__AVX512F__)

namespace winograd {

inline constexpr int tile_elements = 16;  // the 4x4 transformed tile

// Floats that hold n Elements, rounded up to whole cache lines.
template <class Element>
constexpr long floats_for(long n) {
  const long floats = (n * long(sizeof(Element)) + long(sizeof(float)) - 1) / long(sizeof(float));
  return (floats + channel_block - 1) / channel_block * channel_block;
}

// Extents of one call of F(Out x Out, 3x3): the output in Out x Out tiles, the
// input packed with a zero border wide enough for the last tile's (Out + 2)^2
// window (BlockedConv of a geometry whose output is rounded up to a multiple of
// Out), and the per-thread buffers. Out is 2 (Plan, every pass and both
// precisions) or 4 (float forward and input gradient, winograd4 below).
template <int Out>
struct PlanOf {
  static constexpr int out_tile = Out, window = Out + 2, elements = window * window;
  ConvGeometry g;
  BlockedConv packed;  // of the rounded geometry: the input's layout
  BlockedConv output;  // of g: the output's layout
  int tiles_y, tiles_x;
  long tiles_per_image;
  int group;  // images per work item

  explicit PlanOf(const ConvGeometry& geometry)
      : g(geometry),
        packed(rounded(geometry)),
        output(geometry),
        tiles_y((geometry.out_height + Out - 1) / Out),
        tiles_x((geometry.out_width + Out - 1) / Out),
        tiles_per_image(long(tiles_y) * tiles_x),
        // About 64 tiles of 2x2, 32 of 4x4: a work item's transformed tiles
        // stay in the core's L2 beside the weights.
        group(int(std::max<long>(1, (Out == 2 ? 64 : 32) / tiles_per_image))) {}

  static ConvGeometry rounded(ConvGeometry g) {
    g.out_height = (g.out_height + Out - 1) / Out * Out;
    g.out_width = (g.out_width + Out - 1) / Out * Out;
    return g;
  }
  long group_tiles() const { return long(group) * tiles_per_image; }
  // Elements of one work item's transformed input, and floats of its sums.
  long transformed_input() const { return long(elements) * packed.in_blocks * group_tiles() * channel_block; }
  long sums() const { return long(elements) * packed.out_blocks * group_tiles() * channel_block; }
  long transformed_weights() const {
    return long(elements) * packed.out_blocks * packed.in_blocks * channel_block * channel_block;
  }
  // One thread's buffer in floats: its transformed input as Element, padded to
  // a cache line, then its sums.
  template <class Element>
  long thread_floats() const {
    return floats_for<Element>(transformed_input()) + sums();
  }
};

using Plan = PlanOf<2>;
using Plan4 = PlanOf<4>;

// G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], for input channel i
// of one blocked weight block w (3, 3, 16 in, 16 out): u[xi] holds the 16
// outputs' values at element xi of the 4x4 transformed kernel.
inline void transform_kernel(const float* w, int i, __m512 u[tile_elements]) {
  const long tap = long(channel_block) * channel_block;
  __m512 k[3][3];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) k[r][c] = _mm512_loadu_ps(w + (r * 3 + c) * tap + i * channel_block);
  const __m512 half = _mm512_set1_ps(0.5f);
  __m512 t[4][3];  // G g
  for (int c = 0; c < 3; ++c) {
    t[0][c] = k[0][c];
    t[1][c] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(k[0][c], k[1][c]), k[2][c]));
    t[2][c] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(k[0][c], k[1][c]), k[2][c]));
    t[3][c] = k[2][c];
  }
  for (int r = 0; r < 4; ++r) {  // (G g) G^T
    u[r * 4 + 0] = t[r][0];
    u[r * 4 + 1] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(t[r][0], t[r][1]), t[r][2]));
    u[r * 4 + 2] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(t[r][0], t[r][1]), t[r][2]));
    u[r * 4 + 3] = t[r][2];
  }
}

#if defined(__AVX512BF16__)
// Two vectors as 32 bf16, lane by lane: lane l of even, then lane l of odd. For
// the weights, the 16 outputs of input channels 2k and 2k + 1, one pair at
// tap_offset<bf16_bits>; for the weight gradient, the 16 channels of tiles 2j
// and 2j + 1.
inline void store_interleaved(bf16_bits* pair, __m512 even, __m512 odd) {
  // Lane l of the first half takes output l / 2 of even (l even) or odd (l odd),
  // the second half output 8 + l / 2; in permutex2var, 16 + j selects odd's lane j.
  const __m512i low = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i high = _mm512_add_epi32(low, _mm512_set1_epi32(8));
  const __m512 first = _mm512_permutex2var_ps(even, low, odd), second = _mm512_permutex2var_ps(even, high, odd);
  _mm512_storeu_si512(pair, __m512i(_mm512_cvtne2ps_pbh(second, first)));
}
#endif

// packed_w (Cout/16, Cin/16, 3, 3, 16 in, 16 out) -> U (16 xi, Cout/16, Cin/16,
// 256 at tap_offset<Element>): each (xi, input channel) one vector of 16 outputs.
template <class Element>
void transform_weights(const Plan& p, const float* packed_w, Element* u) {
  const int out_blocks = p.packed.out_blocks, in_blocks = p.packed.in_blocks;
  const long tap = long(channel_block) * channel_block;
  const long xi_stride = long(out_blocks) * in_blocks * tap;
  const long blocks = long(out_blocks) * in_blocks;
#pragma omp parallel for schedule(static) if (blocks >= 16)
  for (long block = 0; block < blocks; ++block) {
    const float* w = packed_w + block * 9 * tap;
    Element* out = u + block * tap;
    if constexpr (std::is_same_v<Element, float>) {
      for (int i = 0; i < channel_block; ++i) {
        __m512 row[tile_elements];
        transform_kernel(w, i, row);
        for (int xi = 0; xi < tile_elements; ++xi) _mm512_storeu_ps(out + xi * xi_stride + i * channel_block, row[xi]);
      }
    } else {
#if defined(__AVX512BF16__)
      for (int i = 0; i < channel_block; i += 2) {
        __m512 even[tile_elements], odd[tile_elements];
        transform_kernel(w, i, even);
        transform_kernel(w, i + 1, odd);
        for (int xi = 0; xi < tile_elements; ++xi)
          store_interleaved(out + xi * xi_stride + tap_offset<Element>(i, 0), even[xi], odd[xi]);
      }
#endif
    }
  }
}

// B^T d B for a 4x4 block d of 16-channel vectors, B^T = [1 0 -1 0; 0 1 1 0;
// 0 -1 1 0; 0 1 0 -1], written in place.
inline void transform_input_tile(__m512 d[4][4]) {
  for (int c = 0; c < 4; ++c) {
    const __m512 d0 = d[0][c], d1 = d[1][c], d2 = d[2][c], d3 = d[3][c];
    d[0][c] = _mm512_sub_ps(d0, d2);
    d[1][c] = _mm512_add_ps(d1, d2);
    d[2][c] = _mm512_sub_ps(d2, d1);
    d[3][c] = _mm512_sub_ps(d1, d3);
  }
  for (int r = 0; r < 4; ++r) {
    const __m512 d0 = d[r][0], d1 = d[r][1], d2 = d[r][2], d3 = d[r][3];
    d[r][0] = _mm512_sub_ps(d0, d2);
    d[r][1] = _mm512_add_ps(d1, d2);
    d[r][2] = _mm512_sub_ps(d2, d1);
    d[r][3] = _mm512_sub_ps(d1, d3);
  }
}

// Where the input's tiles are read: the packed batch (the plan's packed
// layout, its zero border stored), or a blocked batch without the border
// (core/layout.hpp), whose windows are cut at the image's edges, the pixels
// outside read as zero. Either way tile (ty, tx)'s window starts at
// (origin_y + Out ty, origin_x + Out tx) of the stored rows and columns.
struct InputImages {
  const float* x;
  long image, block, row;  // floats between images, channel blocks of an image, rows
  int origin_y, origin_x;
  int height, width;  // stored rows and columns

  template <class P>
  static InputImages packed(const P& p, const float* packed_x) {
    const long row = long(p.packed.padded_width) * channel_block, block = p.packed.padded_height * row;
    return {packed_x, p.packed.in_blocks * block, block, row, 0, 0, p.packed.padded_height, p.packed.padded_width};
  }
  template <class P>
  static InputImages blocked(const P& p, const float* x) {
    const long row = long(p.g.width) * channel_block, block = p.g.height * row;
    return {x, p.packed.in_blocks * block, block, row, -p.g.pad_top, -p.g.pad_left, p.g.height, p.g.width};
  }
};

// The Size x Size window at (y0, x0) of channel block ib of image n.
template <int Size>
inline void load_window(const InputImages& in, long n, int ib, int y0, int x0, __m512 d[Size][Size]) {
  const float* block = in.x + n * in.image + ib * in.block;
  if (y0 >= 0 && x0 >= 0 && y0 + Size <= in.height && x0 + Size <= in.width) {
    const float* window = block + y0 * in.row + long(x0) * channel_block;
    for (int r = 0; r < Size; ++r)
      for (int c = 0; c < Size; ++c) d[r][c] = _mm512_loadu_ps(window + r * in.row + c * channel_block);
    return;
  }
  for (int r = 0; r < Size; ++r)
    for (int c = 0; c < Size; ++c) {
      const int y = y0 + r, x = x0 + c;
      d[r][c] = y >= 0 && x >= 0 && y < in.height && x < in.width
                    ? _mm512_loadu_ps(block + y * in.row + long(x) * channel_block)
                    : _mm512_setzero_ps();
    }
}

// B^T d B of the 4x4 window of tile (ty, tx) of channel block ib of image n.
inline void input_tile(const InputImages& in, long n, int ib, int ty, int tx, __m512 tile[tile_elements]) {
  __m512 d[4][4];
  load_window<4>(in, n, ib, in.origin_y + 2 * ty, in.origin_x + 2 * tx, d);
  transform_input_tile(d);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) tile[r * 4 + c] = d[r][c];
}

// Images first .. first + count of the input -> v (16 xi, Cin/16, group tiles, 16).
template <class Element>
void transform_input(const Plan& p, const InputImages& in, int first, int count, Element* v) {
  const BlockedConv& b = p.packed;
  const long xi_stride = long(b.in_blocks) * p.group_tiles() * channel_block;
  for (int n = 0; n < count; ++n)
    for (int ib = 0; ib < b.in_blocks; ++ib) {
      Element* out = v + (long(ib) * p.group_tiles() + n * p.tiles_per_image) * channel_block;
      for (int ty = 0; ty < p.tiles_y; ++ty)
        for (int tx = 0; tx < p.tiles_x; ++tx) {
          __m512 d[tile_elements];
          input_tile(in, first + n, ib, ty, tx, d);
          Element* tile = out + (long(ty) * p.tiles_x + tx) * channel_block;
          for (int xi = 0; xi < tile_elements; ++xi) store_pixel(tile + xi * xi_stride, d[xi], false);
        }
    }
}

// m (16 xi, Cout/16, group tiles, 16) -> the images' blocked output, Y = A^T m A
// with A^T = [1 1 1 0; 0 1 -1 -1], plus bias, through the epilogue; the row and
// column a tile has past an odd output edge are dropped.
inline void transform_output(const Plan& p, const float* m, const float* bias, ConvEpilogue epilogue, int first,
                             int count, float* packed_y) {
  const ConvGeometry& g = p.g;
  const int out_blocks = p.output.out_blocks;
  const long xi_stride = long(out_blocks) * p.group_tiles() * channel_block;
  const long y_row = long(g.out_width) * channel_block;
  const long y_block = long(g.out_height) * y_row;
  for (int ob = 0; ob < out_blocks; ++ob) {
    __m512 offset = _mm512_setzero_ps();
    if (bias) {
      const int channels = std::min(channel_block, g.out_channels - ob * channel_block);
      offset = _mm512_maskz_loadu_ps(__mmask16((1u << channels) - 1u), bias + ob * channel_block);
    }
    for (int n = 0; n < count; ++n) {
      const float* in = m + (long(ob) * p.group_tiles() + n * p.tiles_per_image) * channel_block;
      float* image = packed_y + (long(first + n) * out_blocks + ob) * y_block;
      for (int ty = 0; ty < p.tiles_y; ++ty)
        for (int tx = 0; tx < p.tiles_x; ++tx) {
          const float* tile = in + (long(ty) * p.tiles_x + tx) * channel_block;
          __m512 s[4][2];  // m A, row by row
          for (int r = 0; r < 4; ++r) {
            const __m512 m0 = _mm512_loadu_ps(tile + (r * 4 + 0) * xi_stride);
            const __m512 m1 = _mm512_loadu_ps(tile + (r * 4 + 1) * xi_stride);
            const __m512 m2 = _mm512_loadu_ps(tile + (r * 4 + 2) * xi_stride);
            const __m512 m3 = _mm512_loadu_ps(tile + (r * 4 + 3) * xi_stride);
            s[r][0] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
            s[r][1] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
          }
          for (int c = 0; c < 2; ++c) {
            const int ox = 2 * tx + c;
            if (ox >= g.out_width) break;
            const __m512 top = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[0][c], s[1][c]), s[2][c]), offset);
            const __m512 bottom = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[1][c], s[2][c]), s[3][c]), offset);
            const __m512 rows[2] = {top, bottom};
            for (int r = 0; r < 2; ++r) {
              const int oy = 2 * ty + r;
              if (oy >= g.out_height) break;
              // vmaxps returns its second operand when either is NaN: a NaN stays NaN.
              // (The all-lanes masked form is the plain instruction; see transpose_tile.)
              const __m512 value = epilogue == ConvEpilogue::relu
                                       ? _mm512_maskz_max_ps(0xffff, _mm512_setzero_ps(), rows[r])
                                       : rows[r];
              _mm512_storeu_ps(image + oy * y_row + long(ox) * channel_block, value);
            }
          }
        }
    }
  }
}

// The contractions of one work item, one per element xi of the transformed
// tile (16 for F(2x2), 36 for F(4x4)): m[xi] (Cout/16, tiles, 16) =
// U[xi] (Cout/16, Cin/16, 16, 16) applied to v[xi] (Cin/16, tiles, 16), as 1x1
// convolutions in the direct kernel's tiles of up to 14 pixels and 2 output
// blocks.
template <class Operands, class P>
void contract(const P& p, const typename Operands::Element* u, const typename Operands::Element* v, long tiles,
              float* m) {
  using Element = typename Operands::Element;
  const int in_blocks = p.packed.in_blocks, out_blocks = p.packed.out_blocks;
  const long stride = p.group_tiles() * channel_block;  // between channel blocks
  const long tap = long(channel_block) * channel_block;
  direct::Tile<Element> base{};
  base.x_block = stride;
  base.w_block = long(in_blocks) * tap;
  base.y_block = stride;
  base.y_column = channel_block;
  base.in_blocks = in_blocks;
  base.last_channels = p.g.in_channels - (in_blocks - 1) * channel_block;
  base.kernel_h = base.kernel_w = base.stride_h = base.stride_w = 1;
  const int chunks = int((tiles + direct::max_pixels - 1) / direct::max_pixels);
  const int width = int((tiles + chunks - 1) / chunks);
  for (int xi = 0; xi < P::elements; ++xi) {
    const Element* v_xi = v + long(xi) * in_blocks * stride;
    const Element* u_xi = u + long(xi) * out_blocks * in_blocks * tap;
    float* m_xi = m + long(xi) * out_blocks * stride;
    for (int ob = 0; ob < out_blocks; ob += 2) {
      const int blocks = std::min(2, out_blocks - ob);
      direct::Tile<Element> t = base;
      t.w = u_xi + long(ob) * base.w_block;
      for (long start = 0; start < tiles; start += width) {
        const int columns = int(std::min<long>(width, tiles - start));
        t.x = v_xi + start * channel_block;
        t.y = m_xi + long(ob) * stride + start * channel_block;
        direct::tile_kernel<Operands>(blocks, 1, columns)(t);
      }
    }
  }
}

// --- F(4x4, 3x3) ------------------------------------------------------------------
//
// Each 4x4 block of outputs from the 6x6 window around it, with the points
// 0, 1, -1, 2, -2 and infinity (Lavin & Gray's F(4x4, 3x3)):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
//          0 2 -1 -2 1 0; 0 4 0 -5 0 1],
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
//        1/24 -1/12 1/6; 0 0 1],
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
// 36 multiplies per channel pair for 16 outputs, against F(2x2)'s 16 for 4
// and the direct kernel's 144: the contraction, which bounds both at 16
// channels, shrinks 1.78x; the transforms cost about as much per output. Float
// forward and input gradient only; the transform's larger coefficients give a
// few times F(2x2)'s rounding error, still that of the direct sum's order.

// B^T x for one line x0 .. x5 of a 6x6 window.
inline void input_transform_line(const __m512 x[6], __m512 out[6]) {
  const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
  out[0] = _mm512_fmadd_ps(four, x[0], _mm512_fnmadd_ps(five, x[2], x[4]));
  out[1] = _mm512_fnmadd_ps(four, _mm512_add_ps(x[1], x[2]), _mm512_add_ps(x[3], x[4]));
  out[2] = _mm512_fmadd_ps(four, _mm512_sub_ps(x[1], x[2]), _mm512_sub_ps(x[4], x[3]));
  out[3] = _mm512_fmadd_ps(two, _mm512_sub_ps(x[3], x[1]), _mm512_sub_ps(x[4], x[2]));
  out[4] = _mm512_fmadd_ps(two, _mm512_sub_ps(x[1], x[3]), _mm512_sub_ps(x[4], x[2]));
  out[5] = _mm512_fmadd_ps(four, x[1], _mm512_fnmadd_ps(five, x[3], x[5]));
}

// G k for one line k0 .. k2 of a 3x3 kernel.
inline void kernel_transform_line(const __m512 k[3], __m512 out[6]) {
  const __m512 sum = _mm512_add_ps(k[0], k[2]);
  const __m512 outer = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 24), k[0], _mm512_mul_ps(_mm512_set1_ps(1.0f / 6), k[2]));
  const __m512 middle = _mm512_mul_ps(_mm512_set1_ps(1.0f / 12), k[1]);
  out[0] = _mm512_mul_ps(_mm512_set1_ps(0.25f), k[0]);
  out[1] = _mm512_mul_ps(_mm512_set1_ps(-1.0f / 6), _mm512_add_ps(sum, k[1]));
  out[2] = _mm512_mul_ps(_mm512_set1_ps(-1.0f / 6), _mm512_sub_ps(sum, k[1]));
  out[3] = _mm512_add_ps(outer, middle);
  out[4] = _mm512_sub_ps(outer, middle);
  out[5] = k[2];
}

// A^T m for one line m0 .. m5 of a 6x6 transformed tile.
inline void output_transform_line(const __m512 m[6], __m512 out[4]) {
  const __m512 a = _mm512_add_ps(m[1], m[2]), b = _mm512_sub_ps(m[1], m[2]);
  const __m512 c = _mm512_add_ps(m[3], m[4]), d = _mm512_sub_ps(m[3], m[4]);
  out[0] = _mm512_add_ps(_mm512_add_ps(m[0], a), c);
  out[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d, b);
  out[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), c, a);
  out[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d, b), m[5]);
}

// packed_w (Cout/16, Cin/16, 3, 3, 16 in, 16 out) -> U (36 xi, Cout/16, Cin/16,
// 16 in, 16 out): G g G^T for every kernel.
inline void transform_weights(const Plan4& p, const float* packed_w, float* u) {
  const int out_blocks = p.packed.out_blocks, in_blocks = p.packed.in_blocks;
  const long tap = long(channel_block) * channel_block;
  const long xi_stride = long(out_blocks) * in_blocks * tap;
  const long blocks = long(out_blocks) * in_blocks;
#pragma omp parallel for schedule(static) if (blocks >= 16)
  for (long block = 0; block < blocks; ++block) {
    const float* w = packed_w + block * 9 * tap;
    float* out = u + block * tap;
    for (int i = 0; i < channel_block; ++i) {
      __m512 t[6][3];  // G g, column by column
      for (int c = 0; c < 3; ++c) {
        const __m512 k[3] = {_mm512_loadu_ps(w + (0 * 3 + c) * tap + i * channel_block),
                             _mm512_loadu_ps(w + (1 * 3 + c) * tap + i * channel_block),
                             _mm512_loadu_ps(w + (2 * 3 + c) * tap + i * channel_block)};
        __m512 column[6];
        kernel_transform_line(k, column);
        for (int r = 0; r < 6; ++r) t[r][c] = column[r];
      }
      for (int r = 0; r < 6; ++r) {  // (G g) G^T
        __m512 row[6];
        kernel_transform_line(t[r], row);
        for (int c = 0; c < 6; ++c) _mm512_storeu_ps(out + (r * 6 + c) * xi_stride + i * channel_block, row[c]);
      }
    }
  }
}

// Images first .. first + count of the input -> v (36 xi, Cin/16, group tiles, 16).
inline void transform_input(const Plan4& p, const InputImages& in, int first, int count, float* v) {
  const BlockedConv& b = p.packed;
  const long xi_stride = long(b.in_blocks) * p.group_tiles() * channel_block;
  for (int n = 0; n < count; ++n)
    for (int ib = 0; ib < b.in_blocks; ++ib) {
      float* out = v + (long(ib) * p.group_tiles() + n * p.tiles_per_image) * channel_block;
      for (int ty = 0; ty < p.tiles_y; ++ty)
        for (int tx = 0; tx < p.tiles_x; ++tx) {
          __m512 d[6][6];
          load_window<6>(in, first + n, ib, in.origin_y + 4 * ty, in.origin_x + 4 * tx, d);
          __m512 t[6][6];  // B^T d, column by column
          for (int c = 0; c < 6; ++c) {
            const __m512 column[6] = {d[0][c], d[1][c], d[2][c], d[3][c], d[4][c], d[5][c]};
            __m512 transformed[6];
            input_transform_line(column, transformed);
            for (int r = 0; r < 6; ++r) t[r][c] = transformed[r];
          }
          float* tile = out + (long(ty) * p.tiles_x + tx) * channel_block;
          for (int r = 0; r < 6; ++r) {  // (B^T d) B
            __m512 row[6];
            input_transform_line(t[r], row);
            for (int c = 0; c < 6; ++c) _mm512_storeu_ps(tile + (r * 6 + c) * xi_stride, row[c]);
          }
        }
    }
}

// m (36 xi, Cout/16, group tiles, 16) -> the images' blocked output, Y = A^T m A
// plus bias, through the epilogue; the rows and columns a tile has past the
// output's edge are dropped.
inline void transform_output(const Plan4& p, const float* m, const float* bias, ConvEpilogue epilogue, int first,
                             int count, float* packed_y) {
  const ConvGeometry& g = p.g;
  const int out_blocks = p.output.out_blocks;
  const long xi_stride = long(out_blocks) * p.group_tiles() * channel_block;
  const long y_row = long(g.out_width) * channel_block;
  const long y_block = long(g.out_height) * y_row;
  for (int ob = 0; ob < out_blocks; ++ob) {
    __m512 offset = _mm512_setzero_ps();
    if (bias) {
      const int channels = std::min(channel_block, g.out_channels - ob * channel_block);
      offset = _mm512_maskz_loadu_ps(__mmask16((1u << channels) - 1u), bias + ob * channel_block);
    }
    for (int n = 0; n < count; ++n) {
      const float* in = m + (long(ob) * p.group_tiles() + n * p.tiles_per_image) * channel_block;
      float* image = packed_y + (long(first + n) * out_blocks + ob) * y_block;
      for (int ty = 0; ty < p.tiles_y; ++ty)
        for (int tx = 0; tx < p.tiles_x; ++tx) {
          const float* tile = in + (long(ty) * p.tiles_x + tx) * channel_block;
          __m512 s[6][4];  // m A, row by row
          for (int r = 0; r < 6; ++r) {
            __m512 line[6];
            for (int c = 0; c < 6; ++c) line[c] = _mm512_loadu_ps(tile + (r * 6 + c) * xi_stride);
            output_transform_line(line, s[r]);
          }
          for (int c = 0; c < 4; ++c) {  // A^T (m A)
            const int ox = 4 * tx + c;
            if (ox >= g.out_width) break;
            const __m512 column[6] = {s[0][c], s[1][c], s[2][c], s[3][c], s[4][c], s[5][c]};
            __m512 outputs[4];
            output_transform_line(column, outputs);
            for (int r = 0; r < 4; ++r) {
              const int oy = 4 * ty + r;
              if (oy >= g.out_height) break;
              const __m512 sum = _mm512_add_ps(outputs[r], offset);
              // vmaxps returns its second operand when either is NaN: a NaN stays NaN.
              const __m512 value =
                  epilogue == ConvEpilogue::relu ? _mm512_maskz_max_ps(0xffff, _mm512_setzero_ps(), sum) : sum;
              _mm512_storeu_ps(image + oy * y_row + long(ox) * channel_block, value);
            }
          }
        }
    }
  }
}

// The contraction's operands for transformed tiles of Element.
template <class Element>
struct operands_for {
  using type = direct::FloatOperands;
};
#if defined(__AVX512BF16__)
template <>
struct operands_for<bf16_bits> {
  using type = direct::Bf16Operands;
};
#endif

// --- the weight gradient -------------------------------------------------------
//
// With P = U . V the tile's elementwise product, Y = A^T P A gives
// dP = A dY A^T, so dU = V . dP summed over tiles, and the kernel's gradient is
// dg = G^T dU G: per element xi, the weight gradient of a 1x1 convolution of the
// transformed input against the transformed output gradient, summed over tiles
// by the weight-gradient kernel's tap accumulator (direct_conv_weights.hpp).
// For the vdpbf16ps form of that kernel, which sums pairs of samples, the bf16
// tiles are stored in pairs: tiles 2j and 2j + 1 interleaved channel by channel.

// The tap accumulator's word: a float, or a pair of bf16 tiles.
template <class Element>
struct gradient_operands {
  using type = weights_kernel::FloatOperands;
  static constexpr int tiles_per_word = 1;
};
#if defined(__AVX512BF16__)
template <>
struct gradient_operands<bf16_bits> {
  using type = weights_kernel::Bf16PairOperands;
  static constexpr int tiles_per_word = 2;
};
#endif

// Tile slots of one channel block of a work item: its tiles, rounded up to
// whole words (the last pair of an odd count has a zero second tile).
template <class Element, class P>
long gradient_slots(const P& p) {
  constexpr int per_word = gradient_operands<Element>::tiles_per_word;
  return (p.group_tiles() + per_word - 1) / per_word * per_word;
}

// One thread's tiles for the weight gradient, in floats: the transformed input
// (xi, Cin/16, slots, 16) and output gradient (xi, Cout/16, slots, 16), as
// Element, each padded to a cache line.
template <class Element, class P>
long gradient_thread_floats(const P& p) {
  const long slots = long(P::elements) * gradient_slots<Element>(p) * channel_block;
  return floats_for<Element>(slots * p.packed.in_blocks) + floats_for<Element>(slots * p.packed.out_blocks);
}

// Writes a channel block's transformed tiles, one tile (Elements vectors, one
// per xi) at a time in slot order, into (xi, slots, 16) Elements xi_stride
// apart; bf16 tiles wait for their pair's second tile, finish() pads an odd count.
template <class Element, int Elements>
struct TileWriter {
  Element* out;
  long xi_stride;
  long slot = 0;
  __m512 pending[std::is_same_v<Element, float> ? 1 : Elements];

  TileWriter(Element* first, long stride) : out(first), xi_stride(stride) {}

  void put(const __m512 tile[Elements]) {
    if constexpr (std::is_same_v<Element, float>) {
      for (int xi = 0; xi < Elements; ++xi) _mm512_storeu_ps(out + xi * xi_stride + slot * channel_block, tile[xi]);
    } else {
#if defined(__AVX512BF16__)
      if (slot % 2 == 0) {
        for (int xi = 0; xi < Elements; ++xi) pending[xi] = tile[xi];
      } else {
        for (int xi = 0; xi < Elements; ++xi)
          store_interleaved(out + xi * xi_stride + (slot - 1) * channel_block, pending[xi], tile[xi]);
      }
#endif
    }
    ++slot;
  }
  void finish() {
    if (slot % gradient_operands<Element>::tiles_per_word == 0) return;
    __m512 zero[Elements];
    for (__m512& z : zero) z = _mm512_setzero_ps();
    put(zero);
  }
};

// A dY A^T for one 2x2 block of output-gradient vectors (zero past the output's
// edge), A = [1 0; 1 1; 1 -1; 0 -1]: m[r * 4 + c].
inline void transform_gradient_tile(const __m512 dy[2][2], __m512 m[tile_elements]) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 t[4][2];  // A dY
  for (int c = 0; c < 2; ++c) {
    t[0][c] = dy[0][c];
    t[1][c] = _mm512_add_ps(dy[0][c], dy[1][c]);
    t[2][c] = _mm512_sub_ps(dy[0][c], dy[1][c]);
    t[3][c] = _mm512_sub_ps(zero, dy[1][c]);
  }
  for (int r = 0; r < 4; ++r) {  // (A dY) A^T
    m[r * 4 + 0] = t[r][0];
    m[r * 4 + 1] = _mm512_add_ps(t[r][0], t[r][1]);
    m[r * 4 + 2] = _mm512_sub_ps(t[r][0], t[r][1]);
    m[r * 4 + 3] = _mm512_sub_ps(zero, t[r][1]);
  }
}

// A dY A^T for one 4x4 block of output-gradient vectors (zero past the
// output's edge), A the transpose of F(4x4, 3x3)'s A^T: m[r * 6 + c].
inline void transform_gradient_tile(const __m512 dy[4][4], __m512 m[36]) {
  const auto line = [](const __m512 y[4], __m512 out[6]) {  // A y
    const __m512 even = _mm512_add_ps(y[0], y[2]), odd = _mm512_add_ps(y[1], y[3]);
    const __m512 even4 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), y[2], y[0]);
    const __m512 odd8 = _mm512_fmadd_ps(_mm512_set1_ps(8.0f), y[3], _mm512_add_ps(y[1], y[1]));
    out[0] = y[0];
    out[1] = _mm512_add_ps(even, odd);
    out[2] = _mm512_sub_ps(even, odd);
    out[3] = _mm512_add_ps(even4, odd8);
    out[4] = _mm512_sub_ps(even4, odd8);
    out[5] = y[3];
  };
  __m512 t[6][4];  // A dY, column by column
  for (int c = 0; c < 4; ++c) {
    const __m512 column[4] = {dy[0][c], dy[1][c], dy[2][c], dy[3][c]};
    __m512 out[6];
    line(column, out);
    for (int r = 0; r < 6; ++r) t[r][c] = out[r];
  }
  for (int r = 0; r < 6; ++r) line(t[r], m + r * 6);  // (A dY) A^T
}

// The transformed input tile (ty, tx) of channel block ib of image n: B^T d B
// for F(2x2) (input_tile) or F(4x4).
inline void transformed_input_tile(const Plan&, const InputImages& in, long n, int ib, int ty, int tx,
                                   __m512 tile[16]) {
  input_tile(in, n, ib, ty, tx, tile);
}
inline void transformed_input_tile(const Plan4&, const InputImages& in, long n, int ib, int ty, int tx,
                                   __m512 tile[36]) {
  __m512 d[6][6];
  load_window<6>(in, n, ib, in.origin_y + 4 * ty, in.origin_x + 4 * tx, d);
  __m512 t[6][6];  // B^T d, column by column
  for (int c = 0; c < 6; ++c) {
    const __m512 column[6] = {d[0][c], d[1][c], d[2][c], d[3][c], d[4][c], d[5][c]};
    __m512 transformed[6];
    input_transform_line(column, transformed);
    for (int r = 0; r < 6; ++r) t[r][c] = transformed[r];
  }
  for (int r = 0; r < 6; ++r) input_transform_line(t[r], tile + r * 6);
}

// Images first .. first + count of the input and packed_dy (the layout of the
// plan's output) -> v (xi, Cin/16, slots, 16) and m (xi, Cout/16, slots, 16)
// as gradient_slots lays them out; bias (Cout/16, 16) += the sum of their dy.
template <class Element, class P>
void transform_for_gradient(const P& p, const InputImages& in, const float* packed_dy, int first, int count,
                            Element* v, Element* m, float* bias) {
  constexpr int out = P::out_tile, elements = P::elements;
  const ConvGeometry& g = p.g;
  const long slots = gradient_slots<Element>(p);
  const long tiles = long(count) * p.tiles_per_image;
  for (int ib = 0; ib < p.packed.in_blocks; ++ib) {
    TileWriter<Element, elements> writer(v + long(ib) * slots * channel_block,
                                         long(p.packed.in_blocks) * slots * channel_block);
    for (long k = 0; k < tiles; ++k) {
      const long n = first + k / p.tiles_per_image, t = k % p.tiles_per_image;
      __m512 tile[elements];
      transformed_input_tile(p, in, n, ib, int(t / p.tiles_x), int(t % p.tiles_x), tile);
      writer.put(tile);
    }
    writer.finish();
  }
  const int out_blocks = p.output.out_blocks;
  const long row = long(g.out_width) * channel_block;
  const long dy_image_block = long(g.out_height) * row;
  for (int ob = 0; ob < out_blocks; ++ob) {
    TileWriter<Element, elements> writer(m + long(ob) * slots * channel_block,
                                         long(out_blocks) * slots * channel_block);
    __m512 sum = _mm512_loadu_ps(bias + ob * channel_block);
    for (long k = 0; k < tiles; ++k) {
      const long n = first + k / p.tiles_per_image, t = k % p.tiles_per_image;
      const int ty = int(t / p.tiles_x), tx = int(t % p.tiles_x);
      const float* image = packed_dy + (n * out_blocks + ob) * dy_image_block;
      __m512 dy[out][out];
      for (int r = 0; r < out; ++r)
        for (int c = 0; c < out; ++c) {
          const int oy = out * ty + r, ox = out * tx + c;
          dy[r][c] = oy < g.out_height && ox < g.out_width
                         ? _mm512_loadu_ps(image + oy * row + long(ox) * channel_block)
                         : _mm512_setzero_ps();
          sum = _mm512_add_ps(sum, dy[r][c]);
        }
      __m512 tile[elements];
      transform_gradient_tile(dy, tile);
      writer.put(tile);
    }
    writer.finish();
    _mm512_storeu_ps(bias + ob * channel_block, sum);
  }
}

// du (16 xi, Cout/16, Cin/16, 16 in, 16 out) += the outer products of v and m
// (as transform_for_gradient writes them) over a work item of `tiles` tiles.
template <class Element, class P>
void accumulate_weight_gradient(const P& p, const Element* v, const Element* m, long tiles, float* du) {
  using Operands = typename gradient_operands<Element>::type;
  using Word = typename Operands::Word;
  constexpr int per_word = gradient_operands<Element>::tiles_per_word;
  static_assert(sizeof(Word) == per_word * sizeof(Element), "no vdpbf16ps kernel for bf16 tiles");
  using weights_kernel::tap_floats;
  const int in_blocks = p.packed.in_blocks, out_blocks = p.packed.out_blocks;
  const long stride = gradient_slots<Element>(p) * channel_block;  // Elements between channel blocks
  const long items = long(P::elements) * out_blocks * in_blocks;
  for (long item = 0; item < items; ++item) {
    const long xi = item / (long(out_blocks) * in_blocks);
    const int ob = int(item / in_blocks % out_blocks), ib = int(item % in_blocks);
    const weights_kernel::TapStream<Word> stream{reinterpret_cast<const Word*>(v + (xi * in_blocks + ib) * stride),
                                                 reinterpret_cast<const Word*>(m + (xi * out_blocks + ob) * stride),
                                                 1,
                                                 1,
                                                 int((tiles + per_word - 1) / per_word),
                                                 std::min(channel_block, p.g.in_channels - ib * channel_block),
                                                 0,
                                                 0,
                                                 channel_block,
                                                 0};
    weights_kernel::accumulate_tap_vector<Operands>(stream, du + item * tap_floats,
                                                    du + std::min(item + 1, items - 1) * tap_floats);
  }
}

// G^T dU G, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1], for every kernel:
// du (16 xi, Cout/16, Cin/16, 16 in, 16 out) -> packed_dw (Cout/16, Cin/16, 3, 3,
// 16 in, 16 out). A work-sharing loop: call it from inside a parallel region.
inline void transform_weight_gradient(const Plan& p, const float* du, float* packed_dw) {
  const long tap = long(channel_block) * channel_block;
  const long blocks = long(p.packed.out_blocks) * p.packed.in_blocks;
  const long xi_stride = blocks * tap;
  const __m512 half = _mm512_set1_ps(0.5f);
  // G^T applied to four values: a + (b + c) / 2, (b - c) / 2, (b + c) / 2 + d.
  const auto reduce = [&](__m512 a, __m512 b, __m512 c, __m512 d, __m512 out[3]) {
    const __m512 sum = _mm512_mul_ps(half, _mm512_add_ps(b, c));
    out[0] = _mm512_add_ps(a, sum);
    out[1] = _mm512_mul_ps(half, _mm512_sub_ps(b, c));
    out[2] = _mm512_add_ps(sum, d);
  };
#pragma omp for schedule(static)
  for (long block = 0; block < blocks; ++block)
    for (int i = 0; i < channel_block; ++i) {
      __m512 d[tile_elements];
      for (int xi = 0; xi < tile_elements; ++xi)
        d[xi] = _mm512_loadu_ps(du + xi * xi_stride + block * tap + i * channel_block);
      __m512 s[3][4];  // G^T dU
      for (int c = 0; c < 4; ++c) {
        __m512 column[3];
        reduce(d[c], d[4 + c], d[8 + c], d[12 + c], column);
        for (int r = 0; r < 3; ++r) s[r][c] = column[r];
      }
      for (int r = 0; r < 3; ++r) {  // (G^T dU) G
        __m512 taps[3];
        reduce(s[r][0], s[r][1], s[r][2], s[r][3], taps);
        for (int c = 0; c < 3; ++c)
          _mm512_storeu_ps(packed_dw + (block * 9 + r * 3 + c) * tap + i * channel_block, taps[c]);
      }
    }
}

// G^T dU G for F(4x4, 3x3), G^T = [1/4 -1/6 -1/6 1/24 1/24 0; 0 -1/6 1/6 1/12
// -1/12 0; 0 -1/6 -1/6 1/6 1/6 1], for every kernel: du (36 xi, Cout/16,
// Cin/16, 16 in, 16 out) -> packed_dw (Cout/16, Cin/16, 3, 3, 16 in, 16 out).
// A work-sharing loop: call it from inside a parallel region.
inline void transform_weight_gradient(const Plan4& p, const float* du, float* packed_dw) {
  const long tap = long(channel_block) * channel_block;
  const long blocks = long(p.packed.out_blocks) * p.packed.in_blocks;
  const long xi_stride = blocks * tap;
  // G^T applied to six values.
  const auto reduce = [](const __m512 a[6], __m512 out[3]) {
    const __m512 sum12 = _mm512_add_ps(a[1], a[2]), sum34 = _mm512_add_ps(a[3], a[4]);
    const __m512 sixth = _mm512_set1_ps(1.0f / 6);
    out[0] = _mm512_fmadd_ps(_mm512_set1_ps(0.25f), a[0],
                             _mm512_fmsub_ps(_mm512_set1_ps(1.0f / 24), sum34, _mm512_mul_ps(sixth, sum12)));
    out[1] = _mm512_fmadd_ps(sixth, _mm512_sub_ps(a[2], a[1]),
                             _mm512_mul_ps(_mm512_set1_ps(1.0f / 12), _mm512_sub_ps(a[3], a[4])));
    out[2] = _mm512_fmadd_ps(sixth, _mm512_sub_ps(sum34, sum12), a[5]);
  };
#pragma omp for schedule(static)
  for (long block = 0; block < blocks; ++block)
    for (int i = 0; i < channel_block; ++i) {
      __m512 d[6][6];
      for (int r = 0; r < 6; ++r)
        for (int c = 0; c < 6; ++c)
          d[r][c] = _mm512_loadu_ps(du + (r * 6 + c) * xi_stride + block * tap + i * channel_block);
      __m512 s[3][6];  // G^T dU, column by column
      for (int c = 0; c < 6; ++c) {
        const __m512 column[6] = {d[0][c], d[1][c], d[2][c], d[3][c], d[4][c], d[5][c]};
        __m512 out[3];
        reduce(column, out);
        for (int r = 0; r < 3; ++r) s[r][c] = out[r];
      }
      for (int r = 0; r < 3; ++r) {  // (G^T dU) G
        __m512 taps[3];
        reduce(s[r], taps);
        for (int c = 0; c < 3; ++c)
          _mm512_storeu_ps(packed_dw + (block * 9 + r * 3 + c) * tap + i * channel_block, taps[c]);
      }
    }
}

}  // namespace winograd

// Floats of workspace a Winograd convolution of g takes: the packed input and
// output where they are not the caller's own (a planar input or output; see
// core/layout.hpp), blocked and transformed weights (as Element), and each
// thread's tiles.
template <class Element = float, class P = winograd::Plan>
long winograd_workspace_floats(const ConvGeometry& g, int batch, int threads, bool packs_input = true,
                               bool packs_output = true) {
  const P p(g);
  return long(batch) * ((packs_input ? p.packed.input_image() : 0) + (packs_output ? p.output.output_image() : 0)) +
         p.packed.packed_weights() + winograd::floats_for<Element>(p.transformed_weights()) +
         long(threads) * p.template thread_floats<Element>();
}

// y_packed (N, Cout/16, OH, OW, 16) = the convolution of the input with the
// kernel whose blocked form is packed_w, plus bias, by F(2x2, 3x3) (P = Plan)
// or F(4x4, 3x3) (Plan4, float only); the transformed operands
// are Element (float, or bf16 where the compiler has vdpbf16ps), u holds
// transformed_weights() of them, scratch each thread's thread_floats<Element>().
template <class Element = float, class P = winograd::Plan>
void winograd_conv_forward(const P& p, int batch, const winograd::InputImages& input, const float* packed_w,
                           const float* bias, float* packed_y, Element* u, float* scratch, ConvEpilogue epilogue) {
  using Operands = typename winograd::operands_for<Element>::type;
  static_assert(std::is_same_v<typename Operands::Element, Element>, "no vdpbf16ps kernel for bf16 tiles");
  static_assert(P::out_tile == 2 || std::is_same_v<Element, float>, "F(4x4, 3x3) is float only");
  winograd::transform_weights(p, packed_w, u);
  const int items = (batch + p.group - 1) / p.group;
#pragma omp parallel
  {
    float* buffer = scratch + long(omp_get_thread_num()) * p.template thread_floats<Element>();
    Element* v = reinterpret_cast<Element*>(buffer);
    float* m = buffer + winograd::floats_for<Element>(p.transformed_input());
#pragma omp for schedule(static)
    for (int item = 0; item < items; ++item) {
      const int first = item * p.group, count = std::min(p.group, batch - first);
      winograd::transform_input(p, input, first, count, v);
      winograd::contract<Operands>(p, u, v, count * p.tiles_per_image, m);
      winograd::transform_output(p, m, bias, epilogue, first, count, packed_y);
    }
  }
}

// Floats of workspace winograd_conv_backward_weights<Element> takes for
// `threads` threads: each thread's transformed-domain gradient, bias sums and
// tiles.
template <class Element = float, class P = winograd::Plan>
long winograd_weights_scratch(const P& p, int threads) {
  const long bias_floats = long(p.output.out_blocks) * channel_block;
  return long(threads) * (p.transformed_weights() + bias_floats + winograd::gradient_thread_floats<Element>(p));
}

// packed_dw (Cout/16, Cin/16, 3, 3, 16 in, 16 out) and dbias (Cout, or null),
// both overwritten, = the gradients of the convolution of the input whose
// output gradient is packed_dy (the layout of the plan's output), by F(2x2)
// (Plan) or, in float, F(4x4) (Plan4), the transformed tiles multiplied as
// Element (float, or bf16 on vdpbf16ps;
// the bias sums the float dy). Each thread takes a contiguous share of the work
// items, transforms them and sums their products into its own
// transformed-domain copy; the copies are added in thread order and
// transformed back, so the result depends only on the thread count.
template <class Element = float, class P = winograd::Plan>
void winograd_conv_backward_weights(const P& p, int batch, const winograd::InputImages& input,
                                    const float* packed_dy, float* packed_dw, float* dbias, float* scratch) {
  static_assert(P::out_tile == 2 || std::is_same_v<Element, float>, "F(4x4, 3x3) is float only");
  const long du_floats = p.transformed_weights();
  const long bias_floats = long(p.output.out_blocks) * channel_block;
  const long thread_floats = du_floats + bias_floats + winograd::gradient_thread_floats<Element>(p);
  const long v_floats = winograd::floats_for<Element>(long(P::elements) * p.packed.in_blocks *
                                                      winograd::gradient_slots<Element>(p) * channel_block);
  const int items = (batch + p.group - 1) / p.group;
#pragma omp parallel
  {
    const int threads = omp_get_num_threads(), t = omp_get_thread_num();
    float* du = scratch + t * thread_floats;
    float* bias = du + du_floats;
    Element* v = reinterpret_cast<Element*>(bias + bias_floats);
    Element* m = reinterpret_cast<Element*>(bias + bias_floats + v_floats);
    std::fill(du, du + du_floats + bias_floats, 0.0f);
    for (int item = items * t / threads; item < items * (t + 1) / threads; ++item) {
      const int first = item * p.group, count = std::min(p.group, batch - first);
      winograd::transform_for_gradient(p, input, packed_dy, first, count, v, m, bias);
      winograd::accumulate_weight_gradient(p, v, m, count * p.tiles_per_image, du);
    }
#pragma omp barrier
    if (threads > 1) {
#pragma omp for schedule(static)
      for (long e = 0; e < du_floats + bias_floats; ++e) {
        float sum = scratch[e];
        for (int copy = 1; copy < threads; ++copy) sum += scratch[copy * thread_floats + e];
        scratch[e] = sum;
      }
    }
    winograd::transform_weight_gradient(p, scratch, packed_dw);
    if (dbias) {
#pragma omp for schedule(static)
      for (int c = 0; c < p.g.out_channels; ++c) dbias[c] = scratch[du_floats + c];
    }
  }
}

#endif  // __AVX512F__

}  // namespace laminar::cpu_detail
