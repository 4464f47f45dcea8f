// The weight and bias gradients of a stride-1 convolution on Intel AMX: bf16
// operands, float sums. Pixels are indexed over the padded input width, so each
// tap of the kernel is one GEMM over an image's pixels with x shifted by a constant.
#pragma once

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/geometry.hpp"
#include "amx.hpp"
#include "bf16.hpp"
#include "blocked.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace laminar::cpu_detail {

// Extents of the packed operands. Output pixel (oy, ox) is q = oy * PW + ox over the
// padded input width PW, and tap (ky, kx) reads padded input pixel q + ky * PW + kx:
//   x  (N, in_blocks * 16, plane_pixels) bf16: each channel's padded PH x PW plane, then zero slack;
//   dy (N, out_blocks, sweep_pixels / 2, 16, 2) bf16: element [n][b][q / 2][o][q % 2] is
//      dy[n][16b + o][oy][ox], zero at the junk columns ox >= OW and past OH * PW;
//   partial dw (in_blocks, out_blocks, KH * KW, 16 in, 16 out) float: one AMX C tile per tap.
struct AmxWeightLayout {
  ConvGeometry g;
  int in_blocks, out_blocks;
  int padded_height, padded_width;
  long sweep_pixels;  // OH * PW rounded up to the 32 pixels of one tile step
  long plane_pixels;

  static bool supports(const ConvGeometry& g) {
    return g.stride_h == 1 && g.stride_w == 1 && g.in_channels > 0 && g.out_channels > 0 && g.out_height > 0 &&
           g.out_width > 0 && g.pad_top >= 0 && g.pad_left >= 0;
  }

  explicit AmxWeightLayout(const ConvGeometry& geometry) : g(geometry) {
    if (!supports(geometry))
      throw Error("the AMX weight gradient needs a stride-1 convolution, but its strides are " +
                  std::to_string(geometry.stride_h) + " x " + std::to_string(geometry.stride_w));
    const BlockedConv blocked(geometry);
    in_blocks = blocked.in_blocks;
    out_blocks = blocked.out_blocks;
    padded_height = blocked.padded_height;
    padded_width = blocked.padded_width;
    sweep_pixels = round_up(long(g.out_height) * padded_width);
    // The last tile step of the last tap reads up to sweep_pixels - 1 + (KH - 1) * PW + KW - 1.
    long lines = round_up(std::max(long(padded_height) * padded_width,
                                   sweep_pixels + long(g.kernel_h - 1) * padded_width + g.kernel_w - 1)) /
                 tile_pixels;
    // An A tile's 16 rows are planes apart; an even count of 64-byte lines per plane
    // would put several rows in one L1 set (a power-of-two plane puts all 16 there).
    if (lines % 2 == 0) ++lines;
    plane_pixels = lines * tile_pixels;
  }

  static constexpr long tile_pixels = 32;  // bf16 in a 64-byte tile row
  static long round_up(long pixels) { return (pixels + tile_pixels - 1) / tile_pixels * tile_pixels; }

  int taps() const { return g.kernel_h * g.kernel_w; }
  long input_image() const { return long(in_blocks) * channel_block * plane_pixels; }
  long output_gradient_image() const { return long(out_blocks) * sweep_pixels * channel_block; }
  long partial_weights() const { return long(in_blocks) * out_blocks * taps() * channel_block * channel_block; }
};

namespace amx_weights {

// Which lanes of 16 consecutive packed pixels hold a source value, and how many
// source values (in the source's raster order) come before the first of them: what
// an expand-load needs to scatter a dense source row into a padded one.
struct LaneGroup {
  std::uint16_t lanes;
  long source;
};

template <class IsReal>
std::vector<LaneGroup> lane_groups(long pixels, const IsReal& is_real) {
  std::vector<LaneGroup> groups(pixels / channel_block);
  long source = 0;
  for (long group = 0; group < long(groups.size()); ++group) {
    groups[group] = {0, source};
    for (int lane = 0; lane < channel_block; ++lane)
      if (is_real(group * channel_block + lane)) {
        groups[group].lanes = std::uint16_t(groups[group].lanes | (1u << lane));
        ++source;
      }
  }
  return groups;
}

inline std::vector<LaneGroup> input_groups(const AmxWeightLayout& l) {
  const ConvGeometry& g = l.g;
  return lane_groups(l.plane_pixels, [&](long p) {
    const long y = p / l.padded_width - g.pad_top, x = p % l.padded_width - g.pad_left;
    return y >= 0 && y < g.height && x >= 0 && x < g.width;
  });
}

inline std::vector<LaneGroup> output_groups(const AmxWeightLayout& l) {
  const ConvGeometry& g = l.g;
  return lane_groups(l.sweep_pixels, [&](long q) {
    return q < long(g.out_height) * l.padded_width && q % l.padded_width < g.out_width;
  });
}

// The packers store around the cache from the size at which pack_input does.
inline bool streams(long elements, const bf16_bits* packed) {
  return elements > 2 * streaming_floats && aligned_to_line(packed);
}

#if defined(__AVX512BF16__)
// 32 packed pixels of one source plane: two expand-loads put each source value in
// its lane and zero elsewhere; `sum` gathers the float values for the bias.
inline __m512i expand_rounded(const float* source, const LaneGroup* groups, __m512& sum) {
  const __m512 low = _mm512_maskz_expandloadu_ps(groups[0].lanes, source + groups[0].source);
  const __m512 high = _mm512_maskz_expandloadu_ps(groups[1].lanes, source + groups[1].source);
  sum = _mm512_add_ps(sum, _mm512_add_ps(low, high));
  return (__m512i)_mm512_cvtne2ps_pbh(high, low);
}

inline void store_line(bf16_bits* target, __m512i line, bool stream) {
  if (stream)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(target), line);
  else
    _mm512_storeu_si512(target, line);
}

// In a fixed order, so that the bias depends only on the data.
inline float lane_sum(__m512 lanes) {
  alignas(64) float values[channel_block];
  _mm512_store_ps(values, lanes);
  float total = 0;
  for (float value : values) total += value;
  return total;
}
#endif

#if LAMINAR_HAS_AMX
// Tiles 0-3 are C (2 input blocks x 2 output blocks of one tap), 4-5 the two A
// operands (x of 16 input channels), 6-7 the two B operands (dy of 16 output channels).
inline TileConfig tile_config() {
  TileConfig config;
  for (int tile = 0; tile < 8; ++tile) config.tile(tile, channel_block, 64);
  return config;
}

// One tap of up to 2 x 2 channel blocks over `images` consecutive images:
//   C[ib][ob][i][o] (+)= sum over n, q of x[n][16 ib + i][q + offset] * dy[n][ob][q / 2][o][q % 2]
// x points at the first image's first input channel, already shifted by the tap's
// offset; partial at the tile of (first input block, first output block, tap), with
// the next input block `in_step` and the next output block `out_step` floats on.
// `resume` adds to the stored partial sums instead of starting from zero.
template <int InBlocks, int OutBlocks>
inline void sweep_tap(const AmxWeightLayout& l, const bf16_bits* x, const bf16_bits* dy, int images, float* partial,
                      long in_step, long out_step, bool resume) {
  constexpr long row_bytes = 64;
  const long plane_bytes = l.plane_pixels * long(sizeof(bf16_bits));
  const long x_block = channel_block * l.plane_pixels, dy_block = l.sweep_pixels * channel_block;
  const long x_image = l.input_image(), dy_image = l.output_gradient_image();
  float* const c01 = partial + out_step;
  float* const c10 = partial + in_step;
  float* const c11 = partial + in_step + out_step;
  if (resume) {
    _tile_loadd(0, partial, row_bytes);
    if constexpr (OutBlocks == 2) _tile_loadd(1, c01, row_bytes);
    if constexpr (InBlocks == 2) _tile_loadd(2, c10, row_bytes);
    if constexpr (InBlocks == 2 && OutBlocks == 2) _tile_loadd(3, c11, row_bytes);
  } else {
    _tile_zero(0);
    if constexpr (OutBlocks == 2) _tile_zero(1);
    if constexpr (InBlocks == 2) _tile_zero(2);
    if constexpr (InBlocks == 2 && OutBlocks == 2) _tile_zero(3);
  }
  for (int n = 0; n < images; ++n) {
    const bf16_bits* a = x + n * x_image;
    const bf16_bits* b = dy + n * dy_image;
    for (long q = 0; q < l.sweep_pixels; q += AmxWeightLayout::tile_pixels) {
      _tile_loadd(4, a + q, plane_bytes);
      if constexpr (InBlocks == 2) _tile_loadd(5, a + x_block + q, plane_bytes);
      _tile_loadd(6, b + q * channel_block, row_bytes);
      if constexpr (OutBlocks == 2) _tile_loadd(7, b + dy_block + q * channel_block, row_bytes);
      _tile_dpbf16ps(0, 4, 6);
      if constexpr (OutBlocks == 2) _tile_dpbf16ps(1, 4, 7);
      if constexpr (InBlocks == 2) _tile_dpbf16ps(2, 5, 6);
      if constexpr (InBlocks == 2 && OutBlocks == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, partial, row_bytes);
  if constexpr (OutBlocks == 2) _tile_stored(1, c01, row_bytes);
  if constexpr (InBlocks == 2) _tile_stored(2, c10, row_bytes);
  if constexpr (InBlocks == 2 && OutBlocks == 2) _tile_stored(3, c11, row_bytes);
}

// Images swept per pass over the items: one item's x and dy of that many images
// (a block pair each) should stay in L2 while its taps reread them. Measured at the
// CIFAR shapes: the same speed from 128 KB to 1 MB, slower from 2 MB.
inline int chunk_images(const AmxWeightLayout& l) {
  constexpr long budget = 1L << 20;  // bytes, half of a 2 MB L2
  const long bytes = 2 * channel_block * (l.plane_pixels + l.sweep_pixels) * long(sizeof(bf16_bits));
  return int(std::max(1L, budget / bytes));
}

// Starting a parallel region costs microseconds: not worth it below this many
// multiply-adds, about 30 us of one core's tile work.
constexpr double parallel_work = double(1L << 24);

// dw (Cout, Cin, KH, KW) from packed x and dy; `copies` holds omp_get_max_threads()
// partial dw. Each thread takes a share of the images, summing into its own copy,
// or, when the images do not divide evenly enough, a share of the items (input block
// pair, output block pair, tap) over all images. Either way each partial sum runs over
// the images in order and the copies are added in thread order, so the result
// depends only on the thread count. Call only once amx_available() has said yes:
// that call obtains the process's permission to use the tiles.
inline void backward_weights(const AmxWeightLayout& l, int batch, const bf16_bits* packed_x,
                             const bf16_bits* packed_dy, float* copies, float* dw) {
  const ConvGeometry& g = l.g;
  const int taps = l.taps();
  const int in_pairs = (l.in_blocks + 1) / 2, out_pairs = (l.out_blocks + 1) / 2;
  const long items = long(in_pairs) * out_pairs * taps;
  const long partial = l.partial_weights();
  const long tile = long(channel_block) * channel_block;
  const long out_step = taps * tile, in_step = l.out_blocks * out_step;
  const int chunk = chunk_images(l);
  const double work = double(batch) * l.partial_weights() * l.sweep_pixels;
  const TileConfig config = tile_config();

#pragma omp parallel if (work > parallel_work)
  {
    const int threads = omp_get_num_threads(), t = omp_get_thread_num();
    const bool split_images = batch % threads == 0 || batch >= 4 * threads;
    const int first_image = split_images ? int(long(batch) * t / threads) : 0;
    const int end_image = split_images ? int(long(batch) * (t + 1) / threads) : batch;
    const long first_item = split_images ? 0 : items * t / threads;
    const long end_item = split_images ? items : items * (t + 1) / threads;
    float* const own = split_images ? copies + t * partial : copies;
    if (first_image == end_image) std::fill(own, own + partial, 0.0f);
    {
      const TileScope scope(config);
      for (int start = first_image; start < end_image; start += chunk) {
        const int images = std::min(chunk, end_image - start);
        const bool resume = start > first_image;
        for (long item = first_item; item < end_item; ++item) {
          const int tap = int(item % taps);
          const long pair = item / taps;
          const int ib = 2 * int(pair / out_pairs), ob = 2 * int(pair % out_pairs);
          const bf16_bits* x = packed_x + start * l.input_image() + ib * channel_block * l.plane_pixels +
                               long(tap / g.kernel_w) * l.padded_width + tap % g.kernel_w;
          const bf16_bits* dy = packed_dy + start * l.output_gradient_image() + ob * l.sweep_pixels * channel_block;
          float* c = own + ib * in_step + ob * out_step + tap * tile;
          const bool two_in = ib + 1 < l.in_blocks, two_out = ob + 1 < l.out_blocks;
          if (two_in && two_out)
            sweep_tap<2, 2>(l, x, dy, images, c, in_step, out_step, resume);
          else if (two_in)
            sweep_tap<2, 1>(l, x, dy, images, c, in_step, out_step, resume);
          else if (two_out)
            sweep_tap<1, 2>(l, x, dy, images, c, in_step, out_step, resume);
          else
            sweep_tap<1, 1>(l, x, dy, images, c, in_step, out_step, resume);
        }
      }
    }
#pragma omp barrier
    // (Cin/16, Cout/16, taps, 16 in, 16 out) summed over the copies -> (Cout, Cin, taps),
    // a block pair at a time so that both sides stay in L1.
    const int used = split_images ? threads : 1;
#pragma omp for schedule(static)
    for (int block = 0; block < l.in_blocks * l.out_blocks; ++block) {
      const int ib = block / l.out_blocks, ob = block % l.out_blocks;
      const int inputs = std::min(channel_block, g.in_channels - ib * channel_block);
      const int outputs = std::min(channel_block, g.out_channels - ob * channel_block);
      const long base = ib * in_step + ob * out_step;
      for (int o = 0; o < outputs; ++o) {
        float* target = dw + (long(ob * channel_block + o) * g.in_channels + ib * channel_block) * taps;
        for (int i = 0; i < inputs; ++i)
          for (int tap = 0; tap < taps; ++tap) {
            const long e = base + tap * tile + i * channel_block + o;
            float sum = copies[e];
            for (int copy = 1; copy < used; ++copy) sum += copies[copy * partial + e];
            target[i * taps + tap] = sum;
          }
      }
    }
  }
}
#endif
}  // namespace amx_weights

// x (N, Cin, H, W) -> (N, in_blocks * 16, plane_pixels) bf16 (AmxWeightLayout): each
// channel's plane with the convolution's zero border and zero slack, the channel
// tail zero planes, each element to_bf16 of its float.
inline void pack_amx_weight_input(const AmxWeightLayout& l, int batch, const float* x, bf16_bits* packed) {
  const ConvGeometry& g = l.g;
  const std::vector<amx_weights::LaneGroup> groups = amx_weights::input_groups(l);
  const int planes = l.in_blocks * channel_block;
  [[maybe_unused]] const bool stream = amx_weights::streams(long(batch) * l.input_image(), packed);
#pragma omp parallel for collapse(2) schedule(static) if (long(batch) * planes * l.plane_pixels > 65536)
  for (int n = 0; n < batch; ++n)
    for (int c = 0; c < planes; ++c) {
      bf16_bits* out = packed + (long(n) * planes + c) * l.plane_pixels;
      if (c >= g.in_channels) {
        std::fill(out, out + l.plane_pixels, bf16_bits(0));
        continue;
      }
      const float* plane = x + (long(n) * g.in_channels + c) * g.in_pixels();
#if defined(__AVX512BF16__)
      __m512 unused = _mm512_setzero_ps();
      for (long p = 0; p < l.plane_pixels; p += AmxWeightLayout::tile_pixels)
        amx_weights::store_line(out + p, amx_weights::expand_rounded(plane, &groups[p / channel_block], unused),
                                stream);
#else
      for (long p = 0; p < l.plane_pixels; ++p) {
        const amx_weights::LaneGroup& group = groups[p / channel_block];
        const unsigned below = (1u << (p % channel_block)) - 1u;
        out[p] = (group.lanes >> (p % channel_block)) & 1u
                     ? to_bf16(plane[group.source + std::popcount(unsigned(group.lanes) & below)])
                     : bf16_bits(0);
      }
#endif
    }
#if defined(__AVX512BF16__)
  if (stream) _mm_sfence();
#endif
}

// dy (N, Cout, OH, OW) -> (N, out_blocks, sweep_pixels / 2, 16, 2) bf16 (AmxWeightLayout),
// zero at the junk columns, past the last row and in the channel tail. channel_sums
// (N, Cout), unless null, receives each image's sum of its float dy per channel: the
// bias gradient, read in the same pass.
inline void pack_amx_weight_output_gradient(const AmxWeightLayout& l, int batch, const float* dy, bf16_bits* packed,
                                            float* channel_sums) {
  const ConvGeometry& g = l.g;
  const std::vector<amx_weights::LaneGroup> groups = amx_weights::output_groups(l);
  [[maybe_unused]] const bool stream = amx_weights::streams(long(batch) * l.output_gradient_image(), packed);
  constexpr long pair_row = 2 * channel_block;
#pragma omp parallel for collapse(2) schedule(static) if (long(batch) * l.output_gradient_image() > 65536)
  for (int n = 0; n < batch; ++n)
    for (int cb = 0; cb < l.out_blocks; ++cb) {
      bf16_bits* out = packed + (long(n) * l.out_blocks + cb) * l.sweep_pixels * channel_block;
      const int channels = std::min(channel_block, g.out_channels - cb * channel_block);
      const float* planes = dy + (long(n) * g.out_channels + cb * channel_block) * g.out_pixels();
#if defined(__AVX512BF16__)
      // Rounding 32 consecutive pixels of a channel makes 16 words, word k the pixel
      // pair (2k, 2k + 1); transposing 16 channels' words gives pair row k its 16
      // channels, so a tile step of 16 planes is one transpose and 1 KB of stores.
      __m512 sums[channel_block];
      for (__m512& sum : sums) sum = _mm512_setzero_ps();
      for (long q = 0; q < l.sweep_pixels; q += AmxWeightLayout::tile_pixels) {
        __m512 words[channel_block];
        for (int c = 0; c < channel_block; ++c)
          words[c] = c < channels ? _mm512_castsi512_ps(amx_weights::expand_rounded(
                                        planes + c * g.out_pixels(), &groups[q / channel_block], sums[c]))
                                  : _mm512_setzero_ps();
        transpose_tile(words);
        for (int k = 0; k < channel_block; ++k)
          amx_weights::store_line(out + (q / 2 + k) * pair_row, _mm512_castps_si512(words[k]), stream);
      }
      if (channel_sums)
        for (int c = 0; c < channels; ++c)
          channel_sums[long(n) * g.out_channels + cb * channel_block + c] = amx_weights::lane_sum(sums[c]);
#else
      float sums[channel_block] = {};
      for (long q = 0; q < l.sweep_pixels; ++q) {
        const amx_weights::LaneGroup& group = groups[q / channel_block];
        const bool real = (group.lanes >> (q % channel_block)) & 1u;
        const long source =
            group.source + std::popcount(unsigned(group.lanes) & ((1u << (q % channel_block)) - 1u));
        for (int c = 0; c < channel_block; ++c) {
          const float value = real && c < channels ? planes[c * g.out_pixels() + source] : 0.0f;
          sums[c] += value;
          out[(q / 2) * pair_row + c * 2 + q % 2] = to_bf16(value);
        }
      }
      if (channel_sums)
        for (int c = 0; c < channels; ++c) channel_sums[long(n) * g.out_channels + cb * channel_block + c] = sums[c];
#endif
    }
#if defined(__AVX512BF16__)
  if (stream) _mm_sfence();
#endif
}

// The scratch of amx_conv2d_backward_weights when omp_get_max_threads() is at most
// `threads`, in bytes: packed x and dy, a partial dw per thread, per-image bias sums.
inline long amx_conv_backward_weights_scratch(const ConvGeometry& g, int batch, int threads) {
  const AmxWeightLayout l(g);
  const auto line = [](long bytes) { return (bytes + 63) / 64 * 64; };
  return 64 + line(long(batch) * l.input_image() * long(sizeof(bf16_bits))) +
         line(long(batch) * l.output_gradient_image() * long(sizeof(bf16_bits))) +
         line(long(std::max(threads, 1)) * l.partial_weights() * long(sizeof(float))) +
         line(long(batch) * g.out_channels * long(sizeof(float)));
}

// dw[co][ci][ky][kx] = sum over n, oy, ox of bf16(x)[n][ci][oy + ky - pad_top][ox + kx - pad_left] * bf16(dy)[n][co][oy][ox]
// (products in float, x zero outside the image) and dbias[co] = sum over n, oy, ox of the float dy[n][co][oy][ox]:
//   x (N, Cin, H, W), dy (N, Cout, OH, OW),
//   dw (Cout, Cin, KH, KW), overwritten; dbias (Cout) or null, overwritten;
//   scratch of amx_conv_backward_weights_scratch(g, batch, omp_get_max_threads()) bytes.
// Needs AmxWeightLayout::supports(g) and amx_available(). The same inputs and
// thread count give the same bits.
inline void amx_conv2d_backward_weights(const ConvGeometry& g, int batch, const float* x, const float* dy, float* dw,
                                        float* dbias, void* scratch) {
  const AmxWeightLayout l(g);
  if (!amx_available())
    throw Error("amx_conv2d_backward_weights needs Intel AMX, which this machine or process does not offer");
#if LAMINAR_HAS_AMX
  const auto line = [](long bytes) { return (bytes + 63) / 64 * 64; };
  char* base = static_cast<char*>(scratch);
  base += (64 - reinterpret_cast<std::uintptr_t>(base) % 64) % 64;
  auto* packed_x = reinterpret_cast<bf16_bits*>(base);
  base += line(long(batch) * l.input_image() * long(sizeof(bf16_bits)));
  auto* packed_dy = reinterpret_cast<bf16_bits*>(base);
  base += line(long(batch) * l.output_gradient_image() * long(sizeof(bf16_bits)));
  auto* copies = reinterpret_cast<float*>(base);
  base += line(long(omp_get_max_threads()) * l.partial_weights() * long(sizeof(float)));
  auto* channel_sums = reinterpret_cast<float*>(base);

  pack_amx_weight_input(l, batch, x, packed_x);
  pack_amx_weight_output_gradient(l, batch, dy, packed_dy, dbias ? channel_sums : nullptr);
  amx_weights::backward_weights(l, batch, packed_x, packed_dy, copies, dw);
  if (dbias)
    for (int c = 0; c < g.out_channels; ++c) {
      float sum = 0;
      for (int n = 0; n < batch; ++n) sum += channel_sums[long(n) * g.out_channels + c];
      dbias[c] = sum;
    }
#else
  (void)batch, (void)x, (void)dy, (void)dw, (void)dbias, (void)scratch;
#endif
}

}  // namespace laminar::cpu_detail
