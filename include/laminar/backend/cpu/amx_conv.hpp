// Stride-1 convolutions on Intel AMX: forward, and through the flipped,
// channel-swapped kernel the input gradient. Operands are rounded to bf16 and
// tdpbf16ps sums their products in float, 16 pixels x 16 outputs x 32 inputs a step.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "../../core/error.hpp"
#include "../../core/geometry.hpp"
#include "amx.hpp"
#include "bf16.hpp"
#include "blocked.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace laminar::cpu_detail {

inline constexpr int amx_rows = 16;          // rows of a tile: pixels of A and C, channel pairs of B
inline constexpr int amx_in_channels = 32;   // bf16 channels of one A row (64 bytes)
inline constexpr int amx_out_channels = 16;  // float channels of one C row (64 bytes)
inline constexpr int amx_tap = amx_in_channels * amx_out_channels;  // bf16 weights of one B tile

// Output pixels are indexed over the padded input width, q = oy * PW + ox, so
// that tap (ky, kx) reads input pixel q + ky * PW + kx: a constant offset, and a
// tile of 16 consecutive q is 16 consecutive padded pixels, one tileloadd. The
// outputs at ox >= OW are computed and never unpacked.
struct AmxConv {
  ConvGeometry g;
  int in_blocks, out_blocks;  // of 32 input channels, of 16 output channels
  int padded_height, padded_width;
  long plane_pixels;  // of one channel block of the packed input, slack included

  // Stride 1 and non-negative padding: the constant tap offsets need both.
  static bool supports(const ConvGeometry& g) {
    return g.stride_h == 1 && g.stride_w == 1 && g.pad_top >= 0 && g.pad_left >= 0 && g.kernel_h >= 1 &&
           g.kernel_w >= 1 && g.in_channels >= 1 && g.out_channels >= 1 && g.height >= 1 && g.width >= 1 &&
           g.out_height >= 1 && g.out_width >= 1;
  }
  // The input gradient is the forward convolution of dy under transposed_convolution(g).
  static bool supports_backward_data(const ConvGeometry& g) {
    return has_transposed_convolution(g) && supports(g) && supports(transposed_convolution(g));
  }

  // The padded height already holds the KH - 1 rows below the last output row, so
  // the last tile, which may run 15 pixels past the outputs, overruns the plane
  // by at most KW - 1 + 15 pixels.
  explicit AmxConv(const ConvGeometry& geometry)
      : g(geometry),
        in_blocks((geometry.in_channels + amx_in_channels - 1) / amx_in_channels),
        out_blocks((geometry.out_channels + amx_out_channels - 1) / amx_out_channels),
        padded_height(BlockedConv(geometry).padded_height),
        padded_width(BlockedConv(geometry).padded_width),
        plane_pixels(long(padded_height) * padded_width + geometry.kernel_w - 1 + amx_rows) {}

  long output_pixels() const { return long(g.out_height) * padded_width; }  // the q of one output plane
  long input_image() const { return long(in_blocks) * plane_pixels * amx_in_channels; }      // bf16
  long output_image() const { return long(out_blocks) * output_pixels() * amx_out_channels; }  // float
  long packed_weights() const {                                                                // bf16
    return long(out_blocks) * in_blocks * g.kernel_h * g.kernel_w * amx_tap;
  }
};

// x (N, Cin, H, W) -> (N, Cin/32, plane_pixels, 32) bf16: one pixel's 32 channels
// are one 64-byte A row; zero in the border, the channel tail and the slack.
inline void pack_amx_input(const AmxConv& a, int batch, const float* x, bf16_bits* packed) {
  const ConvGeometry& g = a.g;
  const long image = long(g.height) * g.width;
  const long pixel = amx_in_channels;
  const long plane = a.plane_pixels * pixel;
  const long row = long(a.padded_width) * pixel;
#if defined(__AVX512BF16__)
  const bool stream = long(batch) * a.input_image() * long(sizeof(bf16_bits)) >
                          streaming_floats * long(sizeof(float)) &&
                      aligned_to_line(packed);
#endif
#pragma omp parallel for collapse(2) schedule(static) if (long(batch) * a.in_blocks * image > 16384)
  for (int n = 0; n < batch; ++n)
    for (int ib = 0; ib < a.in_blocks; ++ib) {
      bf16_bits* out = packed + (long(n) * a.in_blocks + ib) * plane;
      const float* in = x + (long(n) * g.in_channels + long(ib) * amx_in_channels) * image;
      const int channels = std::min(amx_in_channels, g.in_channels - ib * amx_in_channels);
      // Only the border and the slack are cleared: the image's pixels are written once below.
      std::fill(out, out + g.pad_top * row, bf16_bits(0));
      for (int y = g.pad_top; y < g.pad_top + g.height; ++y) {
        bf16_bits* line = out + y * row;
        std::fill(line, line + g.pad_left * pixel, bf16_bits(0));
        std::fill(line + (g.pad_left + g.width) * pixel, line + row, bf16_bits(0));
      }
      std::fill(out + (g.pad_top + g.height) * row, out + plane, bf16_bits(0));
      bf16_bits* first = out + (long(g.pad_top) * a.padded_width + g.pad_left) * pixel;
#if defined(__AVX512BF16__)
      // Tiles of 16 pixels run over the flattened image, so narrow images still
      // move 16 pixels per transpose; the gap skips the right and left border.
      const long gap = long(a.padded_width - g.width) * pixel;
      bf16_bits* target = first;
      int column = 0;
      for (long p = 0; p < image; p += amx_rows) {
        const long count = std::min<long>(amx_rows, image - p);
        const __mmask16 valid = __mmask16((1u << count) - 1u);
        __m512 low[channel_block], high[channel_block];
        for (int c = 0; c < channel_block; ++c) {
          low[c] = c < channels ? _mm512_maskz_loadu_ps(valid, in + c * image + p) : _mm512_setzero_ps();
          high[c] = c + channel_block < channels ? _mm512_maskz_loadu_ps(valid, in + (c + channel_block) * image + p)
                                                 : _mm512_setzero_ps();
        }
        transpose_tile(low);
        if (channels > channel_block) transpose_tile(high);
        for (long k = 0; k < count; ++k) {
          // The second operand fills the low 16 bf16, channels 0 .. 15.
          const __m512i both = __m512i(_mm512_cvtne2ps_pbh(high[k], low[k]));
          if (stream)
            _mm512_stream_si512(reinterpret_cast<__m512i*>(target), both);
          else
            _mm512_storeu_si512(target, both);
          target += pixel;
          if (++column == g.width) {
            column = 0;
            target += gap;
          }
        }
      }
#else
      for (int y = 0; y < g.height; ++y)
        for (int xx = 0; xx < g.width; ++xx) {
          bf16_bits* target = first + (long(y) * a.padded_width + xx) * pixel;
          const float* source = in + long(y) * g.width + xx;
          for (int c = 0; c < channels; ++c) target[c] = to_bf16(source[c * image]);
          std::fill(target + channels, target + pixel, bf16_bits(0));
        }
#endif
    }
#if defined(__AVX512BF16__)
  if (stream) _mm_sfence();
#endif
}

namespace amx {

// Where weight (o, i) of one tap lies among its 512 packed bf16: (16 pairs, 16 out,
// 2), so that B row k holds input channels 2k, 2k + 1 for all 16 outputs.
constexpr long tap_offset(int o, int i) { return long(i / 2) * 2 * amx_out_channels + o * 2 + i % 2; }

// `weight(o, i, tap)` reads the kernel as the packed convolution sees it, so the
// forward and the transposed kernel share the packing. One (16 out, 32 in) block
// is a contiguous run of KH*KW B tiles.
template <class Weight>
void pack_weights(const AmxConv& a, const Weight& weight, bf16_bits* packed) {
  const ConvGeometry& g = a.g;
  const int taps = g.kernel_h * g.kernel_w;
  for (int ob = 0; ob < a.out_blocks; ++ob)
    for (int ib = 0; ib < a.in_blocks; ++ib) {
      bf16_bits* block = packed + (long(ob) * a.in_blocks + ib) * taps * amx_tap;
      const int outputs = std::min(amx_out_channels, g.out_channels - ob * amx_out_channels);
      const int inputs = std::min(amx_in_channels, g.in_channels - ib * amx_in_channels);
      if (outputs < amx_out_channels || inputs < amx_in_channels)
        std::fill(block, block + long(taps) * amx_tap, bf16_bits(0));
      for (int o = 0; o < outputs; ++o)
        for (int i = 0; i < inputs; ++i)
          for (int k = 0; k < taps; ++k)
            block[long(k) * amx_tap + tap_offset(o, i)] =
                to_bf16(weight(ob * amx_out_channels + o, ib * amx_in_channels + i, k));
    }
}

}  // namespace amx

// w (Cout, Cin, KH, KW) -> (Cout/16, Cin/32, KH, KW, 16 pairs, 16 out, 2) bf16:
// element [ob][ib][ky][kx][k][o][j] is to_bf16(w[ob*16 + o][ib*32 + 2k + j][ky][kx]),
// zero outside the kernel's channels.
inline void pack_amx_weights(const AmxConv& a, const float* w, bf16_bits* packed) {
  const ConvGeometry& g = a.g;
  const int taps = g.kernel_h * g.kernel_w;
  amx::pack_weights(a, [&](int o, int i, int k) { return w[(long(o) * g.in_channels + i) * taps + k]; }, packed);
}

// For the input gradient: `transposed` is AmxConv(transposed_convolution(g)) and w
// the forward kernel (g.out_channels, g.in_channels, KH, KW). Input channel i of
// the transposed convolution is output channel i of g, and its tap k is tap
// KH*KW - 1 - k of g (the kernel turned by 180 degrees).
inline void pack_amx_transposed_weights(const AmxConv& transposed, const ConvGeometry& g, const float* w,
                                        bf16_bits* packed) {
  const int taps = g.kernel_h * g.kernel_w;
  amx::pack_weights(
      transposed,
      [&](int o, int i, int k) { return w[(long(i) * g.in_channels + o) * taps + (taps - 1 - k)]; }, packed);
}

// (N, Cout/16, OH, PW, 16) -> y (N, Cout, OH, OW), dropping the columns ox >= OW
// and the channel tail.
inline void unpack_amx_output(const AmxConv& a, int batch, const float* packed_y, float* y,
                              ConvEpilogue epilogue = ConvEpilogue::none) {
  const bool relu = epilogue == ConvEpilogue::relu;
  const ConvGeometry& g = a.g;
  const long plane = g.out_pixels();
  const long pixel = amx_out_channels;
#if defined(__AVX512F__)
  const bool stream =
      long(batch) * g.out_channels * plane > streaming_floats && plane % amx_rows == 0 && aligned_to_line(y);
#endif
#pragma omp parallel for collapse(2) schedule(static) if (long(batch) * g.out_channels * plane > 16384)
  for (int n = 0; n < batch; ++n)
    for (int ob = 0; ob < a.out_blocks; ++ob) {
      const float* in = packed_y + (long(n) * a.out_blocks + ob) * a.output_pixels() * pixel;
      float* out = y + (long(n) * g.out_channels + long(ob) * amx_out_channels) * plane;
      const int channels = std::min(amx_out_channels, g.out_channels - ob * amx_out_channels);
#if defined(__AVX512F__)
      // 16 real pixels per transpose, gathered across rows, so that each channel's
      // 16 values land contiguously in its plane.
      int oy = 0, ox = 0;
      for (long p = 0; p < plane; p += amx_rows) {
        const long count = std::min<long>(amx_rows, plane - p);
        const __mmask16 valid = __mmask16((1u << count) - 1u);
        __m512 rows[channel_block];
        for (int k = 0; k < channel_block; ++k) {
          if (k < count) {
            rows[k] = _mm512_loadu_ps(in + (long(oy) * a.padded_width + ox) * pixel);
            if (++ox == g.out_width) {
              ox = 0;
              ++oy;
            }
          } else {
            rows[k] = _mm512_setzero_ps();
          }
        }
        transpose_tile(rows);
        // vmaxps returns its second operand when either is NaN: a NaN stays NaN.
        if (relu)
          for (int c = 0; c < channels; ++c) rows[c] = _mm512_max_ps(_mm512_setzero_ps(), rows[c]);
        for (int c = 0; c < channels; ++c) {
          if (stream)
            _mm512_stream_ps(out + c * plane + p, rows[c]);
          else
            _mm512_mask_storeu_ps(out + c * plane + p, valid, rows[c]);
        }
      }
#else
      for (int c = 0; c < channels; ++c)
        for (int oy = 0; oy < g.out_height; ++oy)
          for (int ox = 0; ox < g.out_width; ++ox) {
            const float value = in[(long(oy) * a.padded_width + ox) * pixel + c];
            out[c * plane + long(oy) * g.out_width + ox] = relu && value < 0.0f ? 0.0f : value;
          }
#endif
    }
#if defined(__AVX512F__)
  if (stream) _mm_sfence();
#endif
}

// Bytes of scratch amx_conv2d_forward takes: the packed input, output and weights.
inline long amx_conv_forward_scratch(const ConvGeometry& g, int batch) {
  const AmxConv a(g);
  return long(batch) * (a.input_image() * long(sizeof(bf16_bits)) + a.output_image() * long(sizeof(float))) +
         a.packed_weights() * long(sizeof(bf16_bits));
}

// Bytes of scratch amx_conv2d_backward_data takes.
inline long amx_conv_backward_data_scratch(const ConvGeometry& g, int batch) {
  return amx_conv_forward_scratch(transposed_convolution(g), batch);
}

#if LAMINAR_HAS_AMX

namespace amx {

// Tiles 0 .. 3 hold C (pixel chunk c, output block b at 2c + b), 4 and 5 the two
// chunks' A, 6 and 7 the two blocks' B; all are 16 rows of 64 bytes.
inline TileConfig forward_config() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) config.tile(t, amx_rows, 64);
  return config;
}

// One register block: up to 2 chunks of 16 consecutive q by up to 2 output blocks,
// summed over every input block and tap.
struct Sweep {
  const bf16_bits* x;       // input block 0 at chunk 0's first q, tap (0, 0)
  const bf16_bits* w;       // the first output block's weights, input block 0, tap (0, 0)
  const float* bias[2];     // 16 values per output block, or null for zeros
  float* y;                 // the first output block at chunk 0's first q
  long x_block;             // bf16 between the planes of consecutive input blocks
  long w_block;             // bf16 between the weights of consecutive output blocks
  long y_block;             // floats between the planes of consecutive output blocks
  int in_blocks, kernel_h, kernel_w, padded_width;
  int rows[2];              // real q in each chunk: 16 but at the end of the plane
};

// C of a chunk at the plane's end would run past the output: it goes through a
// local tile and only its real rows are copied.
inline void copy_rows(float* y, const float* tile, int rows) {
  std::memcpy(y, tile, std::size_t(rows) * amx_out_channels * sizeof(float));
}

// C[m][n] += sum over k of A[m][k] * B[k/2][n][k%2]: pixel m, output channel n,
// input channel k. The tile numbers are literals because the intrinsics paste them
// into the instruction text.
template <int Blocks, int Chunks>
void sweep(const Sweep& s) {
  constexpr long row_bytes = 64;
  const long chunk = long(amx_rows) * amx_in_channels;  // bf16 between the chunks' first pixels
  if (s.bias[0]) {
    _tile_loadd(0, s.bias[0], 0);
    if constexpr (Blocks == 2) _tile_loadd(1, s.bias[1], 0);
    if constexpr (Chunks == 2) _tile_loadd(2, s.bias[0], 0);
    if constexpr (Blocks == 2 && Chunks == 2) _tile_loadd(3, s.bias[1], 0);
  } else {
    _tile_zero(0);
    if constexpr (Blocks == 2) _tile_zero(1);
    if constexpr (Chunks == 2) _tile_zero(2);
    if constexpr (Blocks == 2 && Chunks == 2) _tile_zero(3);
  }
  const long taps = long(s.kernel_h) * s.kernel_w;
  for (int ib = 0; ib < s.in_blocks; ++ib) {
    const bf16_bits* x = s.x + ib * s.x_block;
    const bf16_bits* w = s.w + ib * taps * amx_tap;
    for (int ky = 0; ky < s.kernel_h; ++ky)
      for (int kx = 0; kx < s.kernel_w; ++kx) {
        const bf16_bits* a = x + (long(ky) * s.padded_width + kx) * amx_in_channels;
        const bf16_bits* b = w + (long(ky) * s.kernel_w + kx) * amx_tap;
        _tile_loadd(4, a, row_bytes);
        _tile_loadd(6, b, row_bytes);
        _tile_dpbf16ps(0, 4, 6);
        if constexpr (Blocks == 2) {
          _tile_loadd(7, b + s.w_block, row_bytes);
          _tile_dpbf16ps(1, 4, 7);
        }
        if constexpr (Chunks == 2) {
          _tile_loadd(5, a + chunk, row_bytes);
          _tile_dpbf16ps(2, 5, 6);
        }
        if constexpr (Blocks == 2 && Chunks == 2) _tile_dpbf16ps(3, 5, 7);
      }
  }
  const long next = long(amx_rows) * amx_out_channels;  // floats between the chunks' first pixels
  if (s.rows[0] == amx_rows) {
    _tile_stored(0, s.y, row_bytes);
    if constexpr (Blocks == 2) _tile_stored(1, s.y + s.y_block, row_bytes);
  } else {
    alignas(64) float tile[amx_rows * amx_out_channels];
    _tile_stored(0, tile, row_bytes);
    copy_rows(s.y, tile, s.rows[0]);
    if constexpr (Blocks == 2) {
      _tile_stored(1, tile, row_bytes);
      copy_rows(s.y + s.y_block, tile, s.rows[0]);
    }
  }
  if constexpr (Chunks == 2) {
    if (s.rows[1] == amx_rows) {
      _tile_stored(2, s.y + next, row_bytes);
      if constexpr (Blocks == 2) _tile_stored(3, s.y + s.y_block + next, row_bytes);
    } else {
      alignas(64) float tile[amx_rows * amx_out_channels];
      _tile_stored(2, tile, row_bytes);
      copy_rows(s.y + next, tile, s.rows[1]);
      if constexpr (Blocks == 2) {
        _tile_stored(3, tile, row_bytes);
        copy_rows(s.y + s.y_block + next, tile, s.rows[1]);
      }
    }
  }
}

}  // namespace amx

// y[n, o, oy, ox] = bias[o] + sum over i, ky, kx of
//   w[o, i, ky, kx] * x[n, i, oy + ky, ox + kx]   (x padded, operands bf16, sums float)
// packed_x from pack_amx_input, packed_w from pack_amx_weights (or
// pack_amx_transposed_weights), bias (Cout) or null, packed_y (N, Cout/16, OH, PW, 16)
// with zeros in the channel tail. The caller checks AmxConv::supports.
inline void amx_conv_forward(const AmxConv& a, int batch, const bf16_bits* packed_x, const bf16_bits* packed_w,
                             const float* bias, float* packed_y) {
  if (!amx_available())
    throw Error("amx_conv_forward needs Intel AMX, which this cpu, its kernel or LAMINAR_AMX=0 withholds");
  const ConvGeometry& g = a.g;
  const long pixels = a.output_pixels();
  const int chunks = int((pixels + amx_rows - 1) / amx_rows);
  const int chunk_pairs = (chunks + 1) / 2;
  const int block_pairs = (a.out_blocks + 1) / 2;
  // An image's output block pair is a unit of work, split into ranges of chunk
  // pairs where there are too few units to give every thread several. Within a
  // unit every sweep reads the same weights (2 * in_blocks * KH*KW tiles of 1 KB,
  // at most a few hundred KB: L2), and the A tiles of neighbouring taps overlap
  // row by row, so they come from L1; consecutive units share their image's input.
  const long units = long(batch) * block_pairs;
  const long wanted = 4L * omp_get_max_threads();
  const int ranges = int(std::clamp<long>((wanted + units - 1) / units, 1, chunk_pairs));
  const long items = units * ranges;
  // tileloadd reads 16 bias values per block; the last block's may run past Cout.
  alignas(64) float bias_tail[amx_out_channels] = {};
  const int tail_block = g.out_channels / amx_out_channels;  // the block with fewer than 16 channels, if any
  if (bias)
    for (int c = tail_block * amx_out_channels; c < g.out_channels; ++c)
      bias_tail[c - tail_block * amx_out_channels] = bias[c];
  const TileConfig config = amx::forward_config();
#pragma omp parallel
  {
    const TileScope scope(config);
#pragma omp for schedule(static)
    for (long item = 0; item < items; ++item) {
      const int range = int(item % ranges);
      const long unit = item / ranges;
      const int ob = int(unit % block_pairs) * 2;
      const int n = int(unit / block_pairs);
      const bool two_blocks = ob + 1 < a.out_blocks;
      amx::Sweep s;
      s.x_block = a.plane_pixels * amx_in_channels;
      s.w_block = long(a.in_blocks) * g.kernel_h * g.kernel_w * amx_tap;
      s.y_block = pixels * amx_out_channels;
      s.in_blocks = a.in_blocks;
      s.kernel_h = g.kernel_h;
      s.kernel_w = g.kernel_w;
      s.padded_width = a.padded_width;
      s.w = packed_w + ob * s.w_block;
      for (int b = 0; b < 2; ++b) {
        const int block = std::min(ob + b, a.out_blocks - 1);
        s.bias[b] = !bias ? nullptr : block == tail_block ? bias_tail : bias + long(block) * amx_out_channels;
      }
      const bf16_bits* x = packed_x + long(n) * a.in_blocks * s.x_block;
      float* y = packed_y + (long(n) * a.out_blocks + ob) * s.y_block;
      const int first = int(long(range) * chunk_pairs / ranges), last = int(long(range + 1) * chunk_pairs / ranges);
      for (int pair = first; pair < last; ++pair) {
        const int chunk = 2 * pair;
        const long q = long(chunk) * amx_rows;
        s.x = x + q * amx_in_channels;
        s.y = y + q * amx_out_channels;
        s.rows[0] = int(std::min<long>(amx_rows, pixels - q));
        s.rows[1] = int(std::clamp<long>(pixels - q - amx_rows, 0, amx_rows));
        const bool two_chunks = chunk + 1 < chunks;
        if (two_blocks && two_chunks)
          amx::sweep<2, 2>(s);
        else if (two_blocks)
          amx::sweep<2, 1>(s);
        else if (two_chunks)
          amx::sweep<1, 2>(s);
        else
          amx::sweep<1, 1>(s);
      }
    }
  }
}

// The layout of amx_conv2d_forward's scratch: packed input, output, weights, each
// a whole number of 64-byte lines, so that a line-aligned scratch aligns all three.
struct AmxScratch {
  bf16_bits* x;
  float* y;
  bf16_bits* w;

  AmxScratch(const AmxConv& a, int batch, void* scratch) {
    char* bytes = static_cast<char*>(scratch);
    x = reinterpret_cast<bf16_bits*>(bytes);
    bytes += long(batch) * a.input_image() * long(sizeof(bf16_bits));
    y = reinterpret_cast<float*>(bytes);
    bytes += long(batch) * a.output_image() * long(sizeof(float));
    w = reinterpret_cast<bf16_bits*>(bytes);
  }
};

// x (N, Cin, H, W), w (Cout, Cin, KH, KW), bias (Cout) or null -> y (N, Cout, OH, OW);
// scratch holds amx_conv_forward_scratch(g, batch) bytes (line-aligned is faster).
inline void amx_conv2d_forward(const ConvGeometry& g, int batch, const float* x, const float* w, const float* bias,
                               float* y, void* scratch, ConvEpilogue epilogue = ConvEpilogue::none) {
  if (!AmxConv::supports(g))
    throw Error("amx_conv2d_forward takes stride-1 convolutions only; this one has stride " +
                std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w));
  const AmxConv a(g);
  const AmxScratch packed(a, batch, scratch);
  pack_amx_input(a, batch, x, packed.x);
  pack_amx_weights(a, w, packed.w);
  amx_conv_forward(a, batch, packed.x, packed.w, bias, packed.y);
  unpack_amx_output(a, batch, packed.y, y, epilogue);
}

// dy (N, Cout, OH, OW), w (Cout, Cin, KH, KW) -> dx (N, Cin, H, W): the forward
// convolution of dy with the flipped, transposed kernel; scratch holds
// amx_conv_backward_data_scratch(g, batch) bytes.
inline void amx_conv2d_backward_data(const ConvGeometry& g, int batch, const float* dy, const float* w, float* dx,
                                     void* scratch) {
  if (!AmxConv::supports_backward_data(g))
    throw Error("amx_conv2d_backward_data takes stride-1 convolutions padded by less than the kernel; this one has "
                "stride " + std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w) + " and padding " +
                std::to_string(g.pad_top) + "x" + std::to_string(g.pad_left));
  const AmxConv t(transposed_convolution(g));
  const AmxScratch packed(t, batch, scratch);
  pack_amx_input(t, batch, dy, packed.x);
  pack_amx_transposed_weights(t, g, w, packed.w);
  amx_conv_forward(t, batch, packed.x, packed.w, nullptr, packed.y);
  unpack_amx_output(t, batch, packed.y, dx);
}

#endif  // LAMINAR_HAS_AMX

}  // namespace laminar::cpu_detail
