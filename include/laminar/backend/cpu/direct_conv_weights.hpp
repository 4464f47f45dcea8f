// The weight and bias gradients of a convolution computed directly on the blocked
// layout of blocked.hpp: AVX-512 outer products of input and output-gradient pixels,
// and a scalar version of the same loops for other machines and for checking.
#pragma once

#include <omp.h>

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "blocked.hpp"

namespace laminar::cpu_detail {

namespace weights_kernel {

constexpr long tap_floats = long(channel_block) * channel_block;

// Starting a parallel region costs microseconds: not worth it below about a million
// multiply-adds.
constexpr double parallel_work = 1 << 20;

// A chunk of the images that every (output block, input block, tap) item streams
// over before the next: the chunk's dy of one output block and the input rows its
// windows cover in one input block should stay in L1 together while all the taps of
// that block pair use them. Large images are cut into row bands; small ones are
// grouped, so that each item's accumulators are loaded and stored once per many pixels.
struct ChunkShape {
  int rows, images;
};

inline ChunkShape chunk_shape(const BlockedConv& b) {
  constexpr long budget = 6144;  // floats, half of a 48 KiB L1
  const ConvGeometry& g = b.g;
  const auto floats = [&](long rows) {
    return rows * g.out_width * channel_block +
           ((rows - 1) * g.stride_h + g.kernel_h) * long(b.padded_width) * channel_block;
  };
  int rows = 1;
  while (rows < g.out_height && floats(rows + 1) <= budget) ++rows;
  const int images = rows < g.out_height ? 1 : int(std::max(1L, budget / floats(g.out_height)));
  return {rows, images};
}

// Where one item's pixel stream lies: x at the first window's input pixel for the
// tap, dy at the chunk's first output pixel, both in the first image of the chunk.
// Only the first `channels` input channels of the block are read; the rest are the
// zero tail of the packing, whose rows of the tap stay zero.
struct TapStream {
  const float* x;   // stepping x_image per image, x_row per output row, x_column per output column
  const float* dy;  // (images, rows, width, 16) with images dy_image apart, rows contiguous
  int images, rows, width, channels;
  long x_image, x_row, x_column, dy_image;
};

// tap (16 in, 16 out) += sum over the stream's pixels of outer(x[pixel], dy[pixel]).
inline void accumulate_tap_scalar(const TapStream& s, float* tap) {
  for (int n = 0; n < s.images; ++n)
    for (int r = 0; r < s.rows; ++r)
      for (int column = 0; column < s.width; ++column) {
        const float* x = s.x + n * s.x_image + r * s.x_row + column * s.x_column;
        const float* dy = s.dy + n * s.dy_image + (long(r) * s.width + column) * channel_block;
        for (int i = 0; i < s.channels; ++i)
          for (int o = 0; o < channel_block; ++o) tap[i * channel_block + o] += x[i] * dy[o];
      }
}

// sums (16) += sum over count pixels of dy (count, 16).
inline void accumulate_bias_scalar(const float* dy, long count, float* sums) {
  for (long p = 0; p < count; ++p)
    for (int o = 0; o < channel_block; ++o) sums[o] += dy[p * channel_block + o];
}

#if defined(__AVX512F__)
// One register per input channel, each holding the tap's 16 output channels: a
// pixel costs one dy load and a multiply-add per input channel whose x operand is a
// broadcast straight from memory, so the loads never outnumber the multiply-adds by
// more than one. A block with fewer live input channels spreads consecutive columns
// over Sets register sets, so that enough independent multiply-adds are in flight
// to cover their latency. The next item's accumulators are fetched meanwhile: a
// large dw copy lives beyond L2.
template <int Channels, int Sets>
inline void accumulate_tap_vector(const TapStream& s, float* tap, const float* next_tap) {
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
      const float* x = s.x + n * s.x_image + r * s.x_row;
      const float* dy = s.dy + n * s.dy_image + long(r) * s.width * channel_block;
      int column = 0;
      for (; column + Sets <= s.width; column += Sets) {
#pragma GCC unroll 4
        for (int set = 0; set < Sets; ++set) {
          const __m512 d = _mm512_loadu_ps(dy + set * channel_block);
#pragma GCC unroll 16
          for (int i = 0; i < Channels; ++i)
            sum[set * Channels + i] = _mm512_fmadd_ps(_mm512_set1_ps(x[i]), d, sum[set * Channels + i]);
          x += s.x_column;
        }
        dy += Sets * channel_block;
      }
      for (; column < s.width; ++column) {
#pragma GCC unroll 16
        for (int i = 0; i < Channels; ++i) sum[i] = _mm512_fmadd_ps(_mm512_set1_ps(x[i]), _mm512_loadu_ps(dy), sum[i]);
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
inline void accumulate_tap_vector(const TapStream& s, float* tap, const float* next_tap) {
  switch ((s.channels + 3) / 4) {
    case 1:
      accumulate_tap_vector<4, 4>(s, tap, next_tap);
      break;
    case 2:
      accumulate_tap_vector<8, 2>(s, tap, next_tap);
      break;
    case 3:
      accumulate_tap_vector<12, 1>(s, tap, next_tap);
      break;
    default:
      accumulate_tap_vector<16, 1>(s, tap, next_tap);
      break;
  }
}

inline void accumulate_bias_vector(const float* dy, long count, float* sums) {
  __m512 sum = _mm512_loadu_ps(sums);
  for (long p = 0; p < count; ++p) sum = _mm512_add_ps(sum, _mm512_loadu_ps(dy + p * channel_block));
  _mm512_storeu_ps(sums, sum);
}

// Brings the next chunk's x and dy into L2 a slice at a time while the items of the
// current chunk run; otherwise the first item of every chunk would wait on memory
// for each line it reads. The chunk is images x (in_blocks x ranges, then out_blocks
// dy ranges), each range contiguous.
struct ChunkPrefetch {
  const float *x, *dy;
  long x_image, x_block, x_floats, dy_image, dy_block, dy_floats;
  int images, in_blocks, out_blocks;
  int range = 0;
  long offset = 0;

  long lines() const {
    return images * (in_blocks * ((x_floats + channel_block - 1) / channel_block) +
                     out_blocks * ((dy_floats + channel_block - 1) / channel_block));
  }

  void fetch(long count) {
    const int blocks = in_blocks + out_blocks;
    while (count > 0 && range < images * blocks) {
      const int image = range / blocks, block = range % blocks;
      const bool is_x = block < in_blocks;
      const float* base =
          is_x ? x + image * x_image + block * x_block : dy + image * dy_image + (block - in_blocks) * dy_block;
      const long floats = is_x ? x_floats : dy_floats;
      for (; offset < floats && count > 0; offset += channel_block, --count)
        _mm_prefetch(reinterpret_cast<const char*>(base + offset), _MM_HINT_T1);
      if (offset >= floats) {
        ++range;
        offset = 0;
      }
    }
  }
};
#endif

// The whole gradient with the tap kernels of one kind. Each thread takes either a
// share of the images, summing into its own copy of dw (thread 0's copy is dw
// itself), or, when the images do not divide evenly enough, a share of the dw items
// over all images. Either way each partial sum runs over the images in order and the
// copies are added in thread order, so the result depends only on the thread count.
template <bool Vector>
void backward_weights(const BlockedConv& b, int batch, const float* packed_x, const float* packed_dy, float* packed_dw,
                      float* dbias, float* scratch) {
  const ConvGeometry& g = b.g;
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
  const double work = double(batch) * items * tap_floats * g.out_pixels();

#pragma omp parallel if (work > parallel_work)
  {
    const int threads = omp_get_num_threads(), t = omp_get_thread_num();
    const bool split_images = batch % threads == 0 || batch >= 4 * threads;
    const int first_image = split_images ? int(long(batch) * t / threads) : 0;
    const int end_image = split_images ? int(long(batch) * (t + 1) / threads) : batch;
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
        ChunkPrefetch prefetch{
            packed_x + next_image * x_image + long(next_row) * g.stride_h * b.padded_width * channel_block,
            packed_dy + next_image * dy_image + long(next_row) * g.out_width * channel_block,
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
          const float* dy = packed_dy + n * dy_image + out_block * out_plane + long(row) * g.out_width * channel_block;
          for (int in_block = 0; in_block < b.in_blocks; ++in_block) {
            const long pair = (long(out_block) * b.in_blocks + in_block) * taps;
            if (pair + taps <= first_item || pair >= end_item) continue;
            const int channels = std::min(channel_block, g.in_channels - in_block * channel_block);
            const float* x =
                packed_x + n * x_image + in_block * in_plane + long(row) * g.stride_h * b.padded_width * channel_block;
            for (int ky = 0; ky < g.kernel_h; ++ky)
              for (int kx = 0; kx < g.kernel_w; ++kx) {
                const long item = pair + ky * g.kernel_w + kx;
                if (item < first_item || item >= end_item) continue;
                const TapStream stream{x + (long(ky) * b.padded_width + kx) * channel_block,
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
                  accumulate_tap_vector(stream, dw + item * tap_floats,
                                        dw + std::min(item + 1, end_item - 1) * tap_floats);
                } else
#endif
                  accumulate_tap_scalar(stream, dw + item * tap_floats);
              }
          }
        }
        for (int out_block = 0; out_block < b.out_blocks; ++out_block) {
          if (!sums_bias(out_block)) continue;
          for (int image = n; image < n + images; ++image) {
            const float* dy =
                packed_dy + image * dy_image + out_block * out_plane + long(row) * g.out_width * channel_block;
            const long count = long(rows) * g.out_width;
#if defined(__AVX512F__)
            if constexpr (Vector)
              accumulate_bias_vector(dy, count, bias + out_block * channel_block);
            else
#endif
              accumulate_bias_scalar(dy, count, bias + out_block * channel_block);
          }
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

}  // namespace weights_kernel

// Scratch floats direct_conv_backward_weights needs when omp_get_max_threads() is
// `threads`: per-thread bias sums and a dw copy for every thread but the first.
inline long direct_conv_weights_scratch(const BlockedConv& b, int threads) {
  return long(threads) * b.out_blocks * channel_block + long(std::max(threads - 1, 0)) * b.packed_weights();
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
#if defined(__AVX512F__)
  weights_kernel::backward_weights<true>(b, batch, packed_x, packed_dy, packed_dw, dbias, scratch);
#else
  weights_kernel::backward_weights<false>(b, batch, packed_x, packed_dy, packed_dw, dbias, scratch);
#endif
}

// The same gradients with plain loops in the same order: what machines without
// AVX-512 run, and the check of the vector kernels.
inline void direct_conv_backward_weights_scalar(const BlockedConv& b, int batch, const float* packed_x,
                                                const float* packed_dy, float* packed_dw, float* dbias,
                                                float* scratch) {
  weights_kernel::backward_weights<false>(b, batch, packed_x, packed_dy, packed_dw, dbias, scratch);
}

}  // namespace laminar::cpu_detail
