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
// memory. Weights are transformed once per call: they change every step.
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

// Extents of one call: the output in 2x2 tiles, the input packed with a zero
// border wide enough for the last tile's 4x4 window (BlockedConv of a geometry
// whose output is rounded up to even), and the per-thread buffers.
struct Plan {
  ConvGeometry g;
  BlockedConv packed;  // of the rounded geometry: the input's layout
  BlockedConv output;  // of g: the output's layout
  int tiles_y, tiles_x;
  long tiles_per_image;
  int group;  // images per work item

  explicit Plan(const ConvGeometry& geometry)
      : g(geometry),
        packed(rounded(geometry)),
        output(geometry),
        tiles_y((geometry.out_height + 1) / 2),
        tiles_x((geometry.out_width + 1) / 2),
        tiles_per_image(long(tiles_y) * tiles_x),
        group(int(std::max<long>(1, 64 / tiles_per_image))) {}

  static ConvGeometry rounded(ConvGeometry g) {
    g.out_height += g.out_height % 2;
    g.out_width += g.out_width % 2;
    return g;
  }
  long group_tiles() const { return long(group) * tiles_per_image; }
  // Elements of one work item's transformed input, and floats of its sums.
  long transformed_input() const { return long(tile_elements) * packed.in_blocks * group_tiles() * channel_block; }
  long sums() const { return long(tile_elements) * packed.out_blocks * group_tiles() * channel_block; }
  long transformed_weights() const {
    return long(tile_elements) * packed.out_blocks * packed.in_blocks * channel_block * channel_block;
  }
  // One thread's buffer in floats: its transformed input as Element, padded to
  // a cache line, then its sums.
  template <class Element>
  long thread_floats() const {
    return floats_for<Element>(transformed_input()) + sums();
  }
};

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
// The 16 outputs of input channels 2k (even) and 2k + 1 (odd) as the 32 bf16 of
// one pair at tap_offset<bf16_bits>: output o's two values adjacent.
inline void store_weight_pair(bf16_bits* pair, __m512 even, __m512 odd) {
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
          store_weight_pair(out + xi * xi_stride + tap_offset<Element>(i, 0), even[xi], odd[xi]);
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

// Images first .. first + count of packed_x -> v (16 xi, Cin/16, group tiles, 16).
template <class Element>
void transform_input(const Plan& p, const float* packed_x, int first, int count, Element* v) {
  const BlockedConv& b = p.packed;
  const long row = long(b.padded_width) * channel_block;
  const long image_block = long(b.padded_height) * row;
  const long xi_stride = long(b.in_blocks) * p.group_tiles() * channel_block;
  for (int n = 0; n < count; ++n)
    for (int ib = 0; ib < b.in_blocks; ++ib) {
      const float* image = packed_x + (long(first + n) * b.in_blocks + ib) * image_block;
      Element* out = v + (long(ib) * p.group_tiles() + n * p.tiles_per_image) * channel_block;
      for (int ty = 0; ty < p.tiles_y; ++ty)
        for (int tx = 0; tx < p.tiles_x; ++tx) {
          const float* window = image + long(2 * ty) * row + long(2 * tx) * channel_block;
          __m512 d[4][4];
          for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c) d[r][c] = _mm512_loadu_ps(window + r * row + c * channel_block);
          transform_input_tile(d);
          Element* tile = out + (long(ty) * p.tiles_x + tx) * channel_block;
          for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c) store_pixel(tile + (r * 4 + c) * xi_stride, d[r][c], false);
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

// The 16 contractions of one work item: m[xi] (Cout/16, tiles, 16) =
// U[xi] (Cout/16, Cin/16, 16, 16) applied to v[xi] (Cin/16, tiles, 16), as 1x1
// convolutions in the direct kernel's tiles of up to 14 pixels and 2 output
// blocks.
template <class Operands>
void contract(const Plan& p, const typename Operands::Element* u, const typename Operands::Element* v, long tiles,
              float* m) {
  using Element = typename Operands::Element;
  const int in_blocks = p.packed.in_blocks, out_blocks = p.packed.out_blocks;
  const long stride = p.group_tiles() * channel_block;  // between channel blocks
  const long tap = long(channel_block) * channel_block;
  direct::Tile<Element> base{};
  base.x_block = stride;
  base.w_block = long(in_blocks) * tap;
  base.y_block = stride;
  base.in_blocks = in_blocks;
  base.last_channels = p.g.in_channels - (in_blocks - 1) * channel_block;
  base.kernel_h = base.kernel_w = base.stride_h = base.stride_w = 1;
  const int chunks = int((tiles + direct::max_pixels - 1) / direct::max_pixels);
  const int width = int((tiles + chunks - 1) / chunks);
  for (int xi = 0; xi < tile_elements; ++xi) {
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

}  // namespace winograd

// Floats of workspace a Winograd convolution of g takes: packed input and
// output, blocked and transformed weights (as Element), and each thread's tiles.
template <class Element = float>
long winograd_workspace_floats(const ConvGeometry& g, int batch, int threads) {
  const winograd::Plan p(g);
  return long(batch) * (p.packed.input_image() + p.output.output_image()) + p.packed.packed_weights() +
         winograd::floats_for<Element>(p.transformed_weights()) + long(threads) * p.thread_floats<Element>();
}

// y_packed (N, Cout/16, OH, OW, 16) = the convolution of packed_x (the layout
// of Plan::packed) with the kernel whose blocked form is packed_w, plus bias;
// the transformed operands are Element (float, or bf16 where the compiler has
// vdpbf16ps), u holds transformed_weights() of them, scratch each thread's
// thread_floats<Element>().
template <class Element = float>
void winograd_conv_forward(const winograd::Plan& p, int batch, const float* packed_x, const float* packed_w,
                           const float* bias, float* packed_y, Element* u, float* scratch, ConvEpilogue epilogue) {
  using Operands = typename winograd::operands_for<Element>::type;
  static_assert(std::is_same_v<typename Operands::Element, Element>, "no vdpbf16ps kernel for bf16 tiles");
  winograd::transform_weights(p, packed_w, u);
  const int items = (batch + p.group - 1) / p.group;
#pragma omp parallel
  {
    float* buffer = scratch + long(omp_get_thread_num()) * p.thread_floats<Element>();
    Element* v = reinterpret_cast<Element*>(buffer);
    float* m = buffer + winograd::floats_for<Element>(p.transformed_input());
#pragma omp for schedule(static)
    for (int item = 0; item < items; ++item) {
      const int first = item * p.group, count = std::min(p.group, batch - first);
      winograd::transform_input(p, packed_x, first, count, v);
      winograd::contract<Operands>(p, u, v, count * p.tiles_per_image, m);
      winograd::transform_output(p, m, bias, epilogue, first, count, packed_y);
    }
  }
}

#endif  // __AVX512F__

}  // namespace laminar::cpu_detail
