// The weight and bias gradients of a convolution computed directly on the blocked
// layout of blocked.hpp: AVX-512 outer products of input and output-gradient pixels,
// in float or, for the bf16 policy, on bfloat16 operands paired across images.
#pragma once

#include <omp.h>

#include <algorithm>
#include <bit>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "bf16.hpp"
#include "blocked.hpp"

namespace laminar::cpu_detail {

// The bf16 weight gradient pairs images 2m and 2m + 1; an odd batch ends with a zero image.
inline long image_pairs(int batch) { return (batch + 1) / 2; }

namespace weights_kernel {

constexpr long tap_floats = long(channel_block) * channel_block;

// Starting a parallel region costs microseconds: not worth it below about a million
// multiply-adds.
constexpr double parallel_work = 1 << 20;

// A chunk of the samples that every (output block, input block, tap) item streams
// over before the next: the chunk's dy of one output block and the input rows its
// windows cover in one input block should stay in L1 together while all the taps of
// that block pair use them. Large images are cut into row bands; small ones are
// grouped, so that each item's accumulators are loaded and stored once per many pixels.
// A pixel of a sample is 16 words of 4 bytes under both operand policies below.
struct ChunkShape {
  int rows, images;
};

inline ChunkShape chunk_shape(const BlockedConv& b) {
  constexpr long budget = 6144;  // words, half of a 48 KiB L1
  const ConvGeometry& g = b.g;
  const auto words = [&](long rows) {
    return rows * g.out_width * channel_block +
           ((rows - 1) * g.stride_h + g.kernel_h) * long(b.padded_width) * channel_block;
  };
  int rows = 1;
  while (rows < g.out_height && words(rows + 1) <= budget) ++rows;
  const int images = rows < g.out_height ? 1 : int(std::max(1L, budget / words(g.out_height)));
  return {rows, images};
}

// Two bf16 values of the same channel and pixel from images 2m and 2m + 1: the
// 32-bit word vdpbf16ps reduces, so the weight gradient's sum over images runs
// along its pairs. Packed pair images are (pairs, C/16, H, W, 16 channels, 2 images).
struct bf16_pair {
  bf16_bits image[2];
};

// What the kernel multiplies, as a policy: its packed operands, what a sample of
// them is, how a 4-byte word of x and one of dy add to a tap, and whether this
// machine has the vector form of that.
//
// Float: a sample is an image, a word a float.
struct FloatOperands {
  using Word = float;
  static constexpr int images_per_sample = 1;
  const float* x;   // (N, Cin/16, padded H, padded W, 16) from pack_input
  const float* dy;  // (N, Cout/16, OH, OW, 16) from pack_output
  int samples;

  static float multiply_add(float sum, float x, float dy) { return sum + x * dy; }
#if defined(__AVX512F__)
  static constexpr bool vectorised = true;
  using Lanes = __m512;
  static __m512 load(const float* dy) { return _mm512_loadu_ps(dy); }
  static __m512 multiply_add(__m512 sum, const float* x, __m512 dy) {
    return _mm512_fmadd_ps(_mm512_set1_ps(*x), dy, sum);
  }
#else
  static constexpr bool vectorised = false;
#endif

  // sums (16) += the sample's dy of the output block over `rows` rows from `row`.
  template <bool Vector>
  void accumulate_bias(const BlockedConv& b, int sample, int out_block, int row, int rows, float* sums) const {
    const ConvGeometry& g = b.g;
    const float* pixels =
        dy + ((long(sample) * b.out_blocks + out_block) * g.out_height + row) * g.out_width * channel_block;
    const long count = long(rows) * g.out_width;
#if defined(__AVX512F__)
    if constexpr (Vector) {
      __m512 sum = _mm512_loadu_ps(sums);
      for (long p = 0; p < count; ++p) sum = _mm512_add_ps(sum, _mm512_loadu_ps(pixels + p * channel_block));
      _mm512_storeu_ps(sums, sum);
      return;
    }
#endif
    for (long p = 0; p < count; ++p)
      for (int o = 0; o < channel_block; ++o) sums[o] += pixels[p * channel_block + o];
  }
};

// bf16: a sample is a pair of images, a word a bf16_pair. The bias sums the float
// dy instead of its rounded copy: it is cheap, and so keeps float accuracy.
struct Bf16PairOperands {
  using Word = bf16_pair;
  static constexpr int images_per_sample = 2;
  const bf16_pair* x;   // (pairs, Cin/16, padded H, padded W, 16, 2) from pack_input_pairs_bf16
  const bf16_pair* dy;  // (pairs, Cout/16, OH, OW, 16, 2) from pack_output_pairs_bf16
  int samples;
  const float* dy_float;  // (N, Cout, OH, OW)
  int batch;

  // In the order vdpbf16ps adds them, the odd element's product first. Products of
  // two bf16 are exact in float, so only the two additions round.
  static float multiply_add(float sum, bf16_pair x, bf16_pair dy) {
    sum += from_bf16(x.image[1]) * from_bf16(dy.image[1]);
    return sum + from_bf16(x.image[0]) * from_bf16(dy.image[0]);
  }
#if defined(__AVX512BF16__)
  static constexpr bool vectorised = true;
  using Lanes = __m512bh;
  static __m512bh load(const bf16_pair* dy) { return (__m512bh)_mm512_loadu_si512(dy); }
  static __m512 multiply_add(__m512 sum, const bf16_pair* x, __m512bh dy) {
    return _mm512_dpbf16_ps(sum, dy, (__m512bh)_mm512_set1_epi32(std::bit_cast<int>(*x)));
  }
#else
  static constexpr bool vectorised = false;
#endif

  template <bool Vector>
  void accumulate_bias(const BlockedConv& b, int sample, int out_block, int row, int rows, float* sums) const {
    const ConvGeometry& g = b.g;
    const int channels = std::min(channel_block, g.out_channels - out_block * channel_block);
    const long count = long(rows) * g.out_width;
    for (int image = 2 * sample; image < std::min(2 * sample + 2, batch); ++image) {
      // (channels, count) runs, out_pixels apart
      const float* runs = dy_float + (long(image) * g.out_channels + out_block * channel_block) * g.out_pixels() +
                          long(row) * g.out_width;
      for (int c = 0; c < channels; ++c) sums[c] += run_sum<Vector>(runs + c * g.out_pixels(), count);
    }
  }

  template <bool Vector>
  static float run_sum(const float* values, long count) {
#if defined(__AVX512F__)
    if constexpr (Vector) {
      __m512 sum = _mm512_setzero_ps();
      for (long p = 0; p < count; p += channel_block) {
        const __mmask16 valid = __mmask16((1u << std::min<long>(channel_block, count - p)) - 1u);
        sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(valid, values + p));
      }
      // Through memory: gcc 12's _mm512_reduce_add_ps trips -Wmaybe-uninitialized.
      alignas(64) float lanes[channel_block];
      _mm512_store_ps(lanes, sum);
      float total = 0;
      for (float lane : lanes) total += lane;
      return total;
    }
#endif
    float sum = 0;
    for (long p = 0; p < count; ++p) sum += values[p];
    return sum;
  }
};

// Where one item's word stream lies: x at the first window's input pixel for the
// tap, dy at the chunk's first output pixel, both in the first sample of the chunk.
// Only the first `channels` input channels of the block are read; the rest are the
// zero tail of the packing, whose rows of the tap stay zero.
template <class Word>
struct TapStream {
  const Word* x;   // stepping x_image per sample, x_row per output row, x_column per output column
  const Word* dy;  // (samples, rows, width, 16) with samples dy_image apart, rows contiguous
  int images, rows, width, channels;
  long x_image, x_row, x_column, dy_image;
};

// tap (16 in, 16 out) += sum over the stream's pixels of outer(x[pixel], dy[pixel]).
template <class Operands>
inline void accumulate_tap_scalar(const TapStream<typename Operands::Word>& s, float* tap) {
  for (int n = 0; n < s.images; ++n)
    for (int r = 0; r < s.rows; ++r)
      for (int column = 0; column < s.width; ++column) {
        const auto* x = s.x + n * s.x_image + r * s.x_row + column * s.x_column;
        const auto* dy = s.dy + n * s.dy_image + (long(r) * s.width + column) * channel_block;
        for (int i = 0; i < s.channels; ++i)
          for (int o = 0; o < channel_block; ++o)
            tap[i * channel_block + o] = Operands::multiply_add(tap[i * channel_block + o], x[i], dy[o]);
      }
}

#if defined(__AVX512F__)
// One register per input channel, each holding the tap's 16 output channels: a
// pixel costs one dy load and a multiply-add per input channel whose x operand is a
// broadcast straight from memory, so the loads never outnumber the multiply-adds by
// more than one. A block with fewer live input channels spreads consecutive columns
// over Sets register sets, so that enough independent multiply-adds are in flight
// to cover their latency. The next item's accumulators are fetched meanwhile: a
// large dw copy lives beyond L2.
template <class Operands, int Channels, int Sets>
inline void accumulate_tap_vector(const TapStream<typename Operands::Word>& s, float* tap, const float* next_tap) {
  static_assert(Channels * Sets <= 16, "the accumulators and the dy operands must fit in 32 registers");
  for (int i = 0; i < channel_block; ++i)
    _mm_prefetch(reinterpret_cast<const char*>(next_tap + i * channel_block), _MM_HINT_T0);
  // sum[set * Channels + i] (16 out): flat, and every loop over it unrolled, so that
  // the compiler keeps it in registers.
  __m512 sum[Sets * Channels];
#pragma GCC unroll 16
  for (int k = 0; k < Sets * Channels; ++k)
    sum[k] = k < Channels ? _mm512_loadu_ps(tap + k * channel_block) : _mm512_setzero_ps();
  for (int n = 0; n < s.images; ++n)
    for (int r = 0; r < s.rows; ++r) {
      const auto* x = s.x + n * s.x_image + r * s.x_row;
      const auto* dy = s.dy + n * s.dy_image + long(r) * s.width * channel_block;
      int column = 0;
      for (; column + Sets <= s.width; column += Sets) {
#pragma GCC unroll 4
        for (int set = 0; set < Sets; ++set) {
          const typename Operands::Lanes d = Operands::load(dy + set * channel_block);
#pragma GCC unroll 16
          for (int i = 0; i < Channels; ++i)
            sum[set * Channels + i] = Operands::multiply_add(sum[set * Channels + i], x + i, d);
          x += s.x_column;
        }
        dy += Sets * channel_block;
      }
      for (; column < s.width; ++column) {
        const typename Operands::Lanes d = Operands::load(dy);
#pragma GCC unroll 16
        for (int i = 0; i < Channels; ++i) sum[i] = Operands::multiply_add(sum[i], x + i, d);
        x += s.x_column;
        dy += channel_block;
      }
    }
#pragma GCC unroll 16
  for (int k = Channels; k < Sets * Channels; ++k) sum[k % Channels] = _mm512_add_ps(sum[k % Channels], sum[k]);
#pragma GCC unroll 16
  for (int i = 0; i < Channels; ++i) _mm512_storeu_ps(tap + i * channel_block, sum[i]);
}

// The live input channels of a block rounded up to four (the rest of the four are
// zero) pick the kernel.
template <class Operands>
inline void accumulate_tap_vector(const TapStream<typename Operands::Word>& s, float* tap, const float* next_tap) {
  switch ((s.channels + 3) / 4) {
    case 1:
      accumulate_tap_vector<Operands, 4, 4>(s, tap, next_tap);
      break;
    case 2:
      accumulate_tap_vector<Operands, 8, 2>(s, tap, next_tap);
      break;
    case 3:
      accumulate_tap_vector<Operands, 12, 1>(s, tap, next_tap);
      break;
    default:
      accumulate_tap_vector<Operands, 16, 1>(s, tap, next_tap);
      break;
  }
}

// Brings the next chunk's x and dy into L2 a slice at a time while the items of the
// current chunk run; otherwise the first item of every chunk would wait on memory
// for each line it reads. The chunk is samples x (in_blocks x ranges, then out_blocks
// dy ranges), each range contiguous; a line is 16 words.
template <class Word>
struct ChunkPrefetch {
  const Word *x, *dy;
  long x_image, x_block, x_words, dy_image, dy_block, dy_words;
  int images, in_blocks, out_blocks;
  int range = 0;
  long offset = 0;

  long lines() const {
    return images * (in_blocks * ((x_words + channel_block - 1) / channel_block) +
                     out_blocks * ((dy_words + channel_block - 1) / channel_block));
  }

  void fetch(long count) {
    const int blocks = in_blocks + out_blocks;
    while (count > 0 && range < images * blocks) {
      const int image = range / blocks, block = range % blocks;
      const bool is_x = block < in_blocks;
      const Word* base =
          is_x ? x + image * x_image + block * x_block : dy + image * dy_image + (block - in_blocks) * dy_block;
      const long words = is_x ? x_words : dy_words;
      for (; offset < words && count > 0; offset += channel_block, --count)
        _mm_prefetch(reinterpret_cast<const char*>(base + offset), _MM_HINT_T1);
      if (offset >= words) {
        ++range;
        offset = 0;
      }
    }
  }
};
#endif

// The whole gradient with the tap kernels of one kind. Each thread takes either a
// share of the samples, summing into its own copy of dw (thread 0's copy is dw
// itself), or, when the samples do not divide evenly enough, a share of the dw items
// over all samples. Either way each partial sum runs over the samples in order and the
// copies are added in thread order, so the result depends only on the thread count.
template <bool Vector, class Operands>
void backward_weights(const BlockedConv& b, const Operands& operands, float* packed_dw, float* dbias,
                      float* scratch) {
  using Word = typename Operands::Word;
  const ConvGeometry& g = b.g;
  const int samples = operands.samples;
  const int taps = g.kernel_h * g.kernel_w;
  const long items = long(b.out_blocks) * b.in_blocks * taps;
  const long weights = b.packed_weights();
  const long bias_floats = long(b.out_blocks) * channel_block;
  const long out_plane = g.out_pixels() * channel_block;
  const long in_plane = long(b.padded_height) * b.padded_width * channel_block;
  const long x_image = b.in_blocks * in_plane, dy_image = b.out_blocks * out_plane;
  const ChunkShape chunk = chunk_shape(b);
  // scratch: bias sums (threads, Cout/16, 16), then dw copies (threads - 1, packed weights)
  float* bias_sums = scratch;
  float* dw_copies = scratch + omp_get_max_threads() * bias_floats;
  const double work = double(samples) * Operands::images_per_sample * items * tap_floats * g.out_pixels();

#pragma omp parallel if (work > parallel_work)
  {
    const int threads = omp_get_num_threads(), t = omp_get_thread_num();
    const bool split_images = samples % threads == 0 || samples >= 4 * threads;
    const int first_image = split_images ? int(long(samples) * t / threads) : 0;
    const int end_image = split_images ? int(long(samples) * (t + 1) / threads) : samples;
    const long first_item = split_images ? 0 : items * t / threads;
    const long end_item = split_images ? items : items * (t + 1) / threads;
    float* dw = split_images && t > 0 ? dw_copies + (t - 1) * weights : packed_dw;
    std::fill(dw + first_item * tap_floats, dw + end_item * tap_floats, 0.0f);
    float* bias = bias_sums + t * bias_floats;
    std::fill(bias, bias + bias_floats, 0.0f);
    // In a split of the items, the thread holding an output block's first item sums its bias.
    const auto sums_bias = [&](int out_block) {
      const long item = long(out_block) * b.in_blocks * taps;
      return dbias && (split_images || (item >= first_item && item < end_item));
    };

    for (int n = first_image; n < end_image; n += chunk.images)
      for (int row = 0; row < g.out_height; row += chunk.rows) {
        const int images = std::min(chunk.images, end_image - n), rows = std::min(chunk.rows, g.out_height - row);
#if defined(__AVX512F__)
        // The next chunk in this thread's order; none after the last.
        const bool same_image = row + chunk.rows < g.out_height;
        const int next_n = same_image ? n : n + chunk.images, next_row = same_image ? row + chunk.rows : 0;
        const int next_images = std::max(0, std::min(chunk.images, end_image - next_n));
        const long next_image = next_images > 0 ? next_n : n;  // keeps the pointers inside the batch
        const int next_rows = std::min(chunk.rows, g.out_height - next_row);
        const long next_x_rows = std::min(long(next_rows - 1) * g.stride_h + g.kernel_h,
                                          long(b.padded_height) - long(next_row) * g.stride_h);
        ChunkPrefetch<Word> prefetch{
            operands.x + next_image * x_image + long(next_row) * g.stride_h * b.padded_width * channel_block,
            operands.dy + next_image * dy_image + long(next_row) * g.out_width * channel_block,
            x_image,
            in_plane,
            next_x_rows * b.padded_width * channel_block,
            dy_image,
            out_plane,
            long(next_rows) * g.out_width * channel_block,
            next_images,
            b.in_blocks,
            b.out_blocks};
        const long prefetch_step = prefetch.lines() / std::max(1L, end_item - first_item) + 1;
#endif
        for (int out_block = 0; out_block < b.out_blocks; ++out_block) {
          const Word* dy = operands.dy + n * dy_image + out_block * out_plane + long(row) * g.out_width * channel_block;
          for (int in_block = 0; in_block < b.in_blocks; ++in_block) {
            const long pair = (long(out_block) * b.in_blocks + in_block) * taps;
            if (pair + taps <= first_item || pair >= end_item) continue;
            const int channels = std::min(channel_block, g.in_channels - in_block * channel_block);
            const Word* x =
                operands.x + n * x_image + in_block * in_plane + long(row) * g.stride_h * b.padded_width * channel_block;
            for (int ky = 0; ky < g.kernel_h; ++ky)
              for (int kx = 0; kx < g.kernel_w; ++kx) {
                const long item = pair + ky * g.kernel_w + kx;
                if (item < first_item || item >= end_item) continue;
                const TapStream<Word> stream{x + (long(ky) * b.padded_width + kx) * channel_block,
                                             dy,
                                             images,
                                             rows,
                                             g.out_width,
                                             channels,
                                             x_image,
                                             long(g.stride_h) * b.padded_width * channel_block,
                                             long(g.stride_w) * channel_block,
                                             dy_image};
#if defined(__AVX512F__)
                if constexpr (Vector) {
                  prefetch.fetch(prefetch_step);
                  accumulate_tap_vector<Operands>(stream, dw + item * tap_floats,
                                                  dw + std::min(item + 1, end_item - 1) * tap_floats);
                } else
#endif
                  accumulate_tap_scalar<Operands>(stream, dw + item * tap_floats);
              }
          }
        }
        for (int out_block = 0; out_block < b.out_blocks; ++out_block) {
          if (!sums_bias(out_block)) continue;
          for (int image = n; image < n + images; ++image)
            operands.template accumulate_bias<Vector>(b, image, out_block, row, rows, bias + out_block * channel_block);
        }
      }

#pragma omp barrier
    if (split_images && threads > 1) {
#pragma omp for schedule(static)
      for (long e = 0; e < weights; ++e) {
        float sum = packed_dw[e];
        for (int copy = 0; copy < threads - 1; ++copy) sum += dw_copies[copy * weights + e];
        packed_dw[e] = sum;
      }
    }
    // Threads that did not sum a block's bias hold zeros for it, so the thread-order
    // sum is right for both splits.
    if (dbias) {
#pragma omp for schedule(static)
      for (int c = 0; c < g.out_channels; ++c) {
        float sum = 0;
        for (int copy = 0; copy < threads; ++copy) sum += bias_sums[copy * bias_floats + c];
        dbias[c] = sum;
      }
    }
  }
}

#if defined(__AVX512BF16__)
// planes (channels, H, W) of two images, `second` null for the zero image of an odd
// batch -> pixels of (16 channels, 2 images) bf16, `gap` pixels skipped after each
// row of W, the channel tail zero. Each channel's 16 pixels of both images become 16
// words (the two images interleaved), so one 32-bit transpose of 16 channels puts
// every pixel's 16 words in one register: a tile of 16 pixels costs 16 conversions,
// 16 permutes and one transpose for both images. `stream` needs `out` on a 64-byte
// boundary.
inline void pack_plane_pairs(const float* first, const float* second, int channels, int height, int width, long gap,
                             bf16_bits* out, bool stream) {
  constexpr int pixel_values = 2 * channel_block;
  const long plane = long(height) * width;
  // vcvtne2ps2bf16 puts the first image in elements 0-15 and the second in 16-31;
  // word k takes element k and element 16 + k.
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i interleave =
      _mm512_or_si512(lane, _mm512_slli_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(channel_block)), 16));
  bf16_bits* pixel = out;
  int column = 0;
  for (long p = 0; p < plane; p += channel_block) {
    const long count = std::min<long>(channel_block, plane - p);
    const __mmask16 valid = __mmask16((1u << count) - 1u);
    __m512 words[channel_block];
    for (int c = 0; c < channel_block; ++c) {
      if (c >= channels) {
        words[c] = _mm512_setzero_ps();
        continue;
      }
      const __m512 a = _mm512_maskz_loadu_ps(valid, first + c * plane + p);
      const __m512 b = second ? _mm512_maskz_loadu_ps(valid, second + c * plane + p) : _mm512_setzero_ps();
      words[c] = _mm512_castsi512_ps(_mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(b, a)));
    }
    transpose_tile(words);
    for (long k = 0; k < count; ++k) {
      if (stream)
        _mm512_stream_ps(reinterpret_cast<float*>(pixel), words[k]);
      else
        _mm512_storeu_ps(pixel, words[k]);
      pixel += pixel_values;
      if (++column == width) {
        column = 0;
        pixel += gap * pixel_values;
      }
    }
  }
  if (stream) _mm_sfence();
}
#else
inline void pack_plane_pairs(const float* first, const float* second, int channels, int height, int width, long gap,
                             bf16_bits* out, bool) {
  const float* images[2] = {first, second};
  for (int y = 0; y < height; ++y)
    for (int column = 0; column < width; ++column) {
      bf16_bits* pixel = out + (long(y) * (width + gap) + column) * 2 * channel_block;
      for (int c = 0; c < channel_block; ++c)
        for (int j = 0; j < 2; ++j)
          pixel[2 * c + j] =
              c < channels && images[j] ? to_bf16(images[j][(long(c) * height + y) * width + column]) : bf16_bits(0);
    }
}
#endif

// The packers store around the cache above the size at which pack_input does
// (streaming_floats floats, twice as many bf16).
inline bool streams_pairs(long elements, const bf16_bits* packed) {
  return elements > 2 * streaming_floats && aligned_to_line(packed);
}

inline Bf16PairOperands pair_operands(int batch, const bf16_bits* packed_x_pairs, const bf16_bits* packed_dy_pairs,
                                      const float* dy) {
  return {reinterpret_cast<const bf16_pair*>(packed_x_pairs), reinterpret_cast<const bf16_pair*>(packed_dy_pairs),
          int(image_pairs(batch)), dy, batch};
}
}  // namespace weights_kernel

// x (N, C, H, W) -> (ceil(N/2), C/16, padded H, padded W, 16 channels, 2 images) in
// bf16: zero outside the image, in the channel tail and, for an odd batch, in the
// last pair's second image. A pair is 2 * b.input_image() elements.
inline void pack_input_pairs_bf16(const BlockedConv& b, int batch, const float* x, bf16_bits* packed) {
  const ConvGeometry& g = b.g;
  const long pairs = image_pairs(batch), plane = g.in_pixels();
  const long pixel_values = 2 * channel_block, row = b.padded_width * pixel_values;
  const long right = b.padded_width - g.pad_left - g.width;
  const bool stream = weights_kernel::streams_pairs(pairs * 2 * b.input_image(), packed);
#pragma omp parallel for collapse(2) schedule(static) if (long(batch) * b.in_blocks * plane > 16384)
  for (long m = 0; m < pairs; ++m)
    for (int cb = 0; cb < b.in_blocks; ++cb) {
      bf16_bits* out = packed + (m * b.in_blocks + cb) * b.padded_height * row;
      const float* first = x + (2 * m * g.in_channels + cb * channel_block) * plane;
      const float* second = 2 * m + 1 < batch ? first + g.in_channels * plane : nullptr;
      // Only the border is cleared: the image's pixels are written once below.
      std::fill(out, out + g.pad_top * row, bf16_bits(0));
      std::fill(out + (g.pad_top + g.height) * row, out + b.padded_height * row, bf16_bits(0));
      for (int y = g.pad_top; y < g.pad_top + g.height; ++y) {
        std::fill(out + y * row, out + y * row + g.pad_left * pixel_values, bf16_bits(0));
        std::fill(out + (y + 1) * row - right * pixel_values, out + (y + 1) * row, bf16_bits(0));
      }
      weights_kernel::pack_plane_pairs(first, second, std::min(channel_block, g.in_channels - cb * channel_block),
                                       g.height, g.width, b.padded_width - g.width,
                                       out + g.pad_top * row + g.pad_left * pixel_values, stream);
    }
}

// dy (N, Cout, OH, OW) -> (ceil(N/2), Cout/16, OH, OW, 16 channels, 2 images) in bf16,
// zero in the channel tail and in an odd batch's missing image. A pair is
// 2 * b.output_image() elements.
inline void pack_output_pairs_bf16(const BlockedConv& b, int batch, const float* dy, bf16_bits* packed) {
  const ConvGeometry& g = b.g;
  const long pairs = image_pairs(batch), plane = g.out_pixels();
  const bool stream = weights_kernel::streams_pairs(pairs * 2 * b.output_image(), packed);
#pragma omp parallel for collapse(2) schedule(static) if (long(batch) * b.out_blocks * plane > 16384)
  for (long m = 0; m < pairs; ++m)
    for (int cb = 0; cb < b.out_blocks; ++cb) {
      const float* first = dy + (2 * m * g.out_channels + cb * channel_block) * plane;
      weights_kernel::pack_plane_pairs(first, 2 * m + 1 < batch ? first + g.out_channels * plane : nullptr,
                                       std::min(channel_block, g.out_channels - cb * channel_block), g.out_height,
                                       g.out_width, 0, packed + (m * b.out_blocks + cb) * plane * 2 * channel_block,
                                       stream);
    }
}

// Scratch floats direct_conv_backward_weights needs when omp_get_max_threads() is
// `threads`: per-thread bias sums and a dw copy for every thread but the first.
inline long direct_conv_weights_scratch(const BlockedConv& b, int threads) {
  return long(threads) * b.out_blocks * channel_block + long(std::max(threads - 1, 0)) * b.packed_weights();
}

// The bf16 kernel shares the float kernel's partial sums.
inline long direct_conv_weights_bf16_scratch(const BlockedConv& b, int threads) {
  return direct_conv_weights_scratch(b, threads);
}

// dw[ob][ib][ky][kx][i][o] = sum over n, oy, ox of x[n][ib][oy*sh + ky][ox*sw + kx][i] * dy[n][ob][oy][ox][o]
// and dbias[c] = sum over n, oy, ox of dy[n][c][oy][ox]:
//   packed_x (N, Cin/16, padded H, padded W, 16) from pack_input,
//   packed_dy (N, Cout/16, OH, OW, 16) from pack_output,
//   packed_dw (Cout/16, Cin/16, KH, KW, 16 in, 16 out) for unpack_weights, overwritten,
//   dbias (Cout) or null, overwritten,
//   scratch of direct_conv_weights_scratch(b, omp_get_max_threads()) floats.
// The same inputs and thread count give the same bits.
inline void direct_conv_backward_weights(const BlockedConv& b, int batch, const float* packed_x, const float* packed_dy,
                                         float* packed_dw, float* dbias, float* scratch) {
  const weights_kernel::FloatOperands operands{packed_x, packed_dy, batch};
  weights_kernel::backward_weights<operands.vectorised>(b, operands, packed_dw, dbias, scratch);
}

// The same gradients with plain loops in the same order: what machines without
// AVX-512 run, and the check of the vector kernels.
inline void direct_conv_backward_weights_scalar(const BlockedConv& b, int batch, const float* packed_x,
                                                const float* packed_dy, float* packed_dw, float* dbias,
                                                float* scratch) {
  weights_kernel::backward_weights<false>(b, weights_kernel::FloatOperands{packed_x, packed_dy, batch}, packed_dw,
                                          dbias, scratch);
}

// The same gradients on bf16 operands, products summed in float:
//   packed_x_pairs (ceil(N/2), Cin/16, padded H, padded W, 16, 2) from pack_input_pairs_bf16,
//   packed_dy_pairs (ceil(N/2), Cout/16, OH, OW, 16, 2) from pack_output_pairs_bf16,
//   dy (N, Cout, OH, OW), the float gradient dbias sums,
//   packed_dw, dbias as above; scratch of direct_conv_weights_bf16_scratch(b, omp_get_max_threads()) floats.
// The same inputs and thread count give the same bits.
inline void direct_conv_backward_weights_bf16(const BlockedConv& b, int batch, const bf16_bits* packed_x_pairs,
                                              const bf16_bits* packed_dy_pairs, const float* dy, float* packed_dw,
                                              float* dbias, float* scratch) {
  const auto operands = weights_kernel::pair_operands(batch, packed_x_pairs, packed_dy_pairs, dy);
  weights_kernel::backward_weights<operands.vectorised>(b, operands, packed_dw, dbias, scratch);
}

// Plain loops over the same pairs in the same order: what machines without AVX-512
// BF16 run, and the check of the vector kernel.
inline void direct_conv_backward_weights_bf16_scalar(const BlockedConv& b, int batch, const bf16_bits* packed_x_pairs,
                                                     const bf16_bits* packed_dy_pairs, const float* dy,
                                                     float* packed_dw, float* dbias, float* scratch) {
  weights_kernel::backward_weights<false>(b, weights_kernel::pair_operands(batch, packed_x_pairs, packed_dy_pairs, dy),
                                          packed_dw, dbias, scratch);
}

}  // namespace laminar::cpu_detail
