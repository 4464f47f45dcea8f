// The cpu backend's primitives: memory, pointwise evaluation and per-channel
// reduction with OpenMP, GEMM through Eigen, convolution (conv.hpp: direct
// AVX-512 kernels for float, im2col + GEMM otherwise; both reached through
// kernels.hpp, header-only or compiled once), pooling, and softmax
// cross-entropy. A model keeps float image activations whose channels fill
// 16-channel blocks in the blocked layout of core/layout.hpp, the one its
// direct and Winograd kernels read and write; every primitive that sees
// channels takes the layout of its tensors.
#pragma once

#include <omp.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "../../core/backend.hpp"
#include "../../core/error.hpp"
#include "../../core/geometry.hpp"
#include "../../core/layout.hpp"
#include "../../core/precision.hpp"
#include "../../core/workspace.hpp"
#include "../../expr/expr.hpp"
#include "channel_blocks.hpp"
#include "kernels.hpp"
#include "parallel.hpp"

namespace laminar {

namespace cpu_detail {

// While alive, the calling thread reads subnormal floats as zero and flushes
// subnormal results to zero (x86's MXCSR DAZ and FTZ bits); its destructor
// restores the thread's previous mode. Optimiser state decays geometrically
// where a gradient is zero (Adam's moments by beta1 and beta2 each step, SGD's
// velocity by its momentum) into the subnormal range, and rounding keeps it
// there (a few units of the last place times 0.9 round back to themselves),
// where every operation on it takes a microcode assist. Measured on the Keras
// Q&A net with Adam: unflushed, the update grew to 60% of the run's time and an
// epoch from 0:52 (the first) to 2:08 (the fourth); flushed, epochs 2-4 took
// 0:42-0:46 with the same losses to four decimals.
class FlushSubnormals {
 public:
#if defined(__SSE__)
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | daz_bit | ftz_bit); }
  ~FlushSubnormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned daz_bit = 0x0040, ftz_bit = 0x8000;
  unsigned saved_;
#else
  FlushSubnormals() = default;
#endif
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;
};

// Wider accumulator for sums over many elements: float sums in double.
template <class T>
using Accumulator = std::conditional_t<(sizeof(T) < sizeof(double)), double, T>;

// Index of the first largest of v[0, n).
template <class T>
int argmax(const T* v, int n) {
  int best = 0;
  for (int k = 1; k < n; ++k)
    if (v[k] > v[best]) best = k;
  return best;
}

// Row targets for the losses: row_target(n) gives the target function k -> t_k
// of row n and the class that counts as correct. Free functions, defined before
// ops<cpu> uses them, because nvcc's front end cannot deduce the return type of
// a member used before its definition.
inline auto label_targets(const int* labels, double smoothing, int classes) {
  return [=](int n) {
    return std::pair{[label = labels[n], smoothing, classes](int k) {
                       return (k == label ? 1.0 - smoothing : 0.0) + smoothing / classes;
                     },
                     labels[n]};
  };
}
template <class T>
auto soft_targets(const T* targets, int classes) {
  return [=](int n) {
    const T* t = targets + long(n) * classes;
    return std::pair{[t](int k) { return double(t[k]); }, argmax(t, classes)};
  };
}

// Pooling over any window and stride, one output at a time: the reference the
// 2x2 fast path below is tested against.
template <class T>
void pool2d_forward_windows(PoolKind kind, const PoolGeometry& g, int batch, const T* x, T* y) {
  const long planes = long(batch) * g.channels;
  const long in_plane = long(g.height) * g.width, out_plane = long(g.out_height) * g.out_width;
  const T inv_area = T(1) / T(g.kernel_h * g.kernel_w);
#pragma omp parallel for schedule(static) if (double(planes) * in_plane > parallel_threshold)
  for (long p = 0; p < planes; ++p) {
    const T* xp = x + p * in_plane;
    T* yp = y + p * out_plane;
    for (int oy = 0; oy < g.out_height; ++oy)
      for (int ox = 0; ox < g.out_width; ++ox) {
        const T* window = xp + long(oy) * g.stride_h * g.width + long(ox) * g.stride_w;
        T acc = kind == PoolKind::max ? window[0] : T(0);
        for (int ky = 0; ky < g.kernel_h; ++ky)
          for (int kx = 0; kx < g.kernel_w; ++kx) {
            const T v = window[long(ky) * g.width + kx];
            acc = kind == PoolKind::max ? std::max(acc, v) : acc + v;
          }
        yp[long(oy) * g.out_width + ox] = kind == PoolKind::max ? acc : acc * inv_area;
      }
  }
}

// dx = pool^T(dy). Max pooling routes each gradient to the first maximum of its
// window, found again from x rather than stored.
template <class T>
void pool2d_backward_windows(PoolKind kind, const PoolGeometry& g, int batch, const T* x,
                            const T* dy, T* dx) {
  const long planes = long(batch) * g.channels;
  const long in_plane = long(g.height) * g.width, out_plane = long(g.out_height) * g.out_width;
  const T inv_area = T(1) / T(g.kernel_h * g.kernel_w);
#pragma omp parallel for schedule(static) if (double(planes) * in_plane > parallel_threshold)
  for (long p = 0; p < planes; ++p) {
    const T* xp = x + p * in_plane;
    const T* dyp = dy + p * out_plane;
    T* dxp = dx + p * in_plane;
    std::fill(dxp, dxp + in_plane, T(0));
    for (int oy = 0; oy < g.out_height; ++oy)
      for (int ox = 0; ox < g.out_width; ++ox) {
        const long origin = long(oy) * g.stride_h * g.width + long(ox) * g.stride_w;
        const T grad = dyp[long(oy) * g.out_width + ox];
        if (kind == PoolKind::average) {
          for (int ky = 0; ky < g.kernel_h; ++ky)
            for (int kx = 0; kx < g.kernel_w; ++kx)
              dxp[origin + long(ky) * g.width + kx] += grad * inv_area;
          continue;
        }
        long best = origin;
        for (int ky = 0; ky < g.kernel_h; ++ky)
          for (int kx = 0; kx < g.kernel_w; ++kx) {
            const long at = origin + long(ky) * g.width + kx;
            if (xp[at] > xp[best]) best = at;
          }
        dxp[best] += grad;
      }
  }
}

// 2x2 max pooling with stride 2, the common case, with loops over a row that
// vectorise. The window's elements are taken in the generic loop's order and
// compared the same way, so the results (NaN handling and ties included) are the
// generic path's.
inline bool is_two_by_two(const PoolGeometry& g) {
  return g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2;
}

template <class T>
void max_pool_2x2_forward(const PoolGeometry& g, int batch, const T* x, T* y) {
  const long planes = long(batch) * g.channels;
  const long in_plane = long(g.height) * g.width, out_plane = long(g.out_height) * g.out_width;
#pragma omp parallel for schedule(static) if (double(planes) * in_plane > parallel_threshold)
  for (long p = 0; p < planes; ++p)
    for (int oy = 0; oy < g.out_height; ++oy) {
      const T* top = x + p * in_plane + long(2 * oy) * g.width;
      const T* bottom = top + g.width;
      T* out = y + p * out_plane + long(oy) * g.out_width;
#pragma omp simd
      for (int ox = 0; ox < g.out_width; ++ox) {
        T m = top[2 * ox];
        m = m < top[2 * ox + 1] ? top[2 * ox + 1] : m;
        m = m < bottom[2 * ox] ? bottom[2 * ox] : m;
        out[ox] = m < bottom[2 * ox + 1] ? bottom[2 * ox + 1] : m;
      }
    }
}

#if defined(__AVX512F__)
// One output row of max_pool_2x2_backward in float, 16 windows a step with
// masked loads and stores for the tail: the compiler's own loop over a row
// runs scalar where a row has fewer than 16 windows (15 and 7 in the airbench
// net), and there it took twice the time of a 32-pixel row. The comparisons are
// the scalar loop's (ordered greater-than: a NaN never takes the maximum).
inline void max_pool_2x2_backward_row(const float* top, const float* bottom, const float* grad, float* dtop,
                                      float* dbottom, int out_width) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int ox = 0; ox < out_width; ox += 16) {
    const int n = std::min(16, out_width - ox);  // windows in this step
    const auto lanes = [](int k) { return __mmask16(k <= 0 ? 0 : k >= 16 ? 0xffff : (1u << k) - 1); };
    const __mmask16 windows = lanes(n), first_half = lanes(2 * n), second_half = lanes(2 * n - 16);
    const auto pair = [&](const float* row, __m512& left, __m512& right) {
      const __m512 lo = _mm512_maskz_loadu_ps(first_half, row + 2 * ox);
      const __m512 hi = _mm512_maskz_loadu_ps(second_half, row + 2 * ox + 16);
      left = _mm512_permutex2var_ps(lo, even, hi);
      right = _mm512_permutex2var_ps(lo, odd, hi);
    };
    __m512 a, b, c, d;
    pair(top, a, b);
    pair(bottom, c, d);
    // best: a (0), b (1), c (2) or d (3), the first maximum as in the scalar loop.
    __m512 m = a;
    __mmask16 is_b = _mm512_cmp_ps_mask(b, m, _CMP_GT_OQ);
    m = _mm512_mask_mov_ps(m, is_b, b);
    const __mmask16 c_wins = _mm512_cmp_ps_mask(c, m, _CMP_GT_OQ);
    m = _mm512_mask_mov_ps(m, c_wins, c);
    const __mmask16 is_d = _mm512_cmp_ps_mask(d, m, _CMP_GT_OQ);
    const __mmask16 is_c = __mmask16(c_wins & ~is_d);
    is_b = __mmask16(is_b & ~c_wins & ~is_d);
    const __mmask16 is_a = __mmask16(~(is_b | is_c | is_d));
    const __m512 g = _mm512_maskz_loadu_ps(windows, grad + ox);
    const auto store = [&](float* row, __mmask16 left_wins, __mmask16 right_wins) {
      const __m512 left = _mm512_maskz_mov_ps(left_wins, g), right = _mm512_maskz_mov_ps(right_wins, g);
      _mm512_mask_storeu_ps(row + 2 * ox, first_half, _mm512_permutex2var_ps(left, low, right));
      _mm512_mask_storeu_ps(row + 2 * ox + 16, second_half, _mm512_permutex2var_ps(left, high, right));
    };
    store(dtop, is_a, is_b);
    store(dbottom, is_c, is_d);
  }
}
#endif

// The windows do not overlap, so each input pixel gets its window's gradient or
// 0, written once: no accumulation, and a zero fill only of the last row and
// column that an odd size leaves outside every window (each pool of the
// airbench net: 31, 15 and 7 pixels). The first maximum in the generic order
// wins, as there.
template <class T>
void max_pool_2x2_backward(const PoolGeometry& g, int batch, const T* x, const T* dy, T* dx) {
  const long planes = long(batch) * g.channels;
  const long in_plane = long(g.height) * g.width, out_plane = long(g.out_height) * g.out_width;
  const int read_rows = 2 * g.out_height, read_columns = 2 * g.out_width;  // what the windows cover
#pragma omp parallel for schedule(static) if (double(planes) * in_plane > parallel_threshold)
  for (long p = 0; p < planes; ++p) {
    T* plane = dx + p * in_plane;
    if (read_columns < g.width)
      for (int y = 0; y < read_rows; ++y)
        std::fill(plane + long(y) * g.width + read_columns, plane + long(y + 1) * g.width, T(0));
    std::fill(plane + long(read_rows) * g.width, plane + in_plane, T(0));
    for (int oy = 0; oy < g.out_height; ++oy) {
      const long row = p * in_plane + long(2 * oy) * g.width;
      const T *top = x + row, *bottom = top + g.width;
      T *dtop = dx + row, *dbottom = dtop + g.width;
      const T* grad = dy + p * out_plane + long(oy) * g.out_width;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        max_pool_2x2_backward_row(top, bottom, grad, dtop, dbottom, g.out_width);
        continue;
      }
#endif
#pragma omp simd
      for (int ox = 0; ox < g.out_width; ++ox) {
        const T a = top[2 * ox], b = top[2 * ox + 1], c = bottom[2 * ox], d = bottom[2 * ox + 1];
        int best = 0;
        T m = a;
        if (b > m) best = 1, m = b;
        if (c > m) best = 2, m = c;
        if (d > m) best = 3;
        const T gr = grad[ox];
        dtop[2 * ox] = best == 0 ? gr : T(0);
        dtop[2 * ox + 1] = best == 1 ? gr : T(0);
        dbottom[2 * ox] = best == 2 ? gr : T(0);
        dbottom[2 * ox + 1] = best == 3 ? gr : T(0);
      }
    }
  }
}


// --- the blocked layout (core/layout.hpp): (N, C/16, pixels, 16) ------------------
// Loops over a blocked tensor take a pixel's 16 channels as the lanes of one
// vector; channel c of an element is its block's first channel plus its lane.

template <class T, class E>
void eval_blocked(T* out, int batch, int channels, long pixels, const E& e) {
  constexpr int k = channel_block;
  const int blocks = channels / k;
  const long slabs = long(batch) * blocks;
#pragma omp parallel if (slabs * pixels * k > 4096)
  {
    const E local = e;  // see ops<cpu>::eval: a private copy lets the loop vectorise
#pragma omp for schedule(static)
    for (long slab = 0; slab < slabs; ++slab) {
      const int first = int(slab % blocks) * k;
      const long base = slab * pixels * k;
      for (long p = 0; p < pixels; ++p) {
        const long at = base + p * k;
#pragma omp simd
        for (int c = 0; c < k; ++c) out[at + c] = T(local(at + c, first + c));
      }
    }
  }
}

// What a per-channel reduction sums beside a, and whether it writes a:
//   none:     sum_b = 0;
//   b:        sum_b = the sum of b;
//   a_times_b: out = a, and sum_b = the sum of a * b (a evaluated once);
//   a_squared: sum_b = the sum of a^2, squared in the accumulator's precision.
enum class SecondSum { none, b, a_times_b, a_squared };

// Per-channel sums over samples and pixels of a blocked tensor, handed to
// finish(c, sum_a, sum_b) in the accumulator's precision.
// The batch is cut into at most 32 chunks fixed by its size; each (chunk,
// channel block) sums its samples in order into its own partial, and the
// partials are added in chunk order, so the sums depend on neither the thread
// count nor the schedule. With one block (16 channels) a split over channels
// alone would leave one thread idle.
template <SecondSum Second, class T, class A, class E, class Finish>
void channel_sums_blocked(T* out, int batch, int channels, long pixels, const A& a, const E& b, const Finish& finish) {
  using Acc = Accumulator<T>;
  constexpr int Sums = Second == SecondSum::none ? 1 : 2;
  constexpr int k = channel_block;
  const int blocks = channels / k;
  const int chunks = std::min(batch, 32);
  std::vector<Acc> partial(std::size_t(chunks) * blocks * Sums * k);
#pragma omp parallel if (long(batch) * channels * pixels > 16384)
  {
    const A local_a = a;  // see ops<cpu>::eval
    const E local_b = b;
#pragma omp for schedule(static)
    for (long item = 0; item < long(chunks) * blocks; ++item) {
      const int chunk = int(item / blocks), block = int(item % blocks);
      const int begin = int(long(batch) * chunk / chunks), end = int(long(batch) * (chunk + 1) / chunks);
      Acc sum_a[k] = {}, sum_b[k] = {};
      for (int n = begin; n < end; ++n) {
        const long base = (long(n) * blocks + block) * pixels * k;
        for (long p = 0; p < pixels; ++p) {
          const long at = base + p * k;
#pragma omp simd
          for (int c = 0; c < k; ++c) {
            const T value = T(local_a(at + c, block * k + c));
            sum_a[c] += Acc(value);
            if constexpr (Second == SecondSum::a_times_b) {
              out[at + c] = value;
              sum_b[c] += Acc(value * T(local_b(at + c, block * k + c)));
            } else if constexpr (Second == SecondSum::b) {
              sum_b[c] += Acc(local_b(at + c, block * k + c));
            } else if constexpr (Second == SecondSum::a_squared) {
              sum_b[c] += Acc(value) * Acc(value);
            }
          }
        }
      }
      Acc* sums = partial.data() + item * Sums * k;
      for (int c = 0; c < k; ++c) {
        sums[c] = sum_a[c];
        if constexpr (Sums == 2) sums[k + c] = sum_b[c];
      }
    }
  }
  for (int c = 0; c < channels; ++c) {
    Acc total_a = 0, total_b = 0;
    for (int chunk = 0; chunk < chunks; ++chunk) {
      const Acc* sums = partial.data() + (long(chunk) * blocks + c / k) * Sums * k;
      total_a += sums[c % k];
      if constexpr (Sums == 2) total_b += sums[k + c % k];
    }
    finish(c, total_a, total_b);
  }
}

// Pooling of a blocked tensor, a window's 16 channels at a time, with the
// planar loops' order of comparison (a NaN never wins; the first maximum does).
template <class T>
void pool2d_forward_blocked(PoolKind kind, const PoolGeometry& g, int batch, const T* x, T* y) {
  constexpr int k = channel_block;
  const long slabs = long(batch) * (g.channels / k);
  const long in_plane = long(g.height) * g.width, out_plane = long(g.out_height) * g.out_width;
  const T inv_area = T(1) / T(g.kernel_h * g.kernel_w);
#pragma omp parallel for schedule(static) if (double(slabs) * k * in_plane > parallel_threshold)
  for (long slab = 0; slab < slabs; ++slab) {
    const T* xs = x + slab * in_plane * k;
    T* ys = y + slab * out_plane * k;
    for (int oy = 0; oy < g.out_height; ++oy)
      for (int ox = 0; ox < g.out_width; ++ox) {
        const T* window = xs + (long(oy) * g.stride_h * g.width + long(ox) * g.stride_w) * k;
        T acc[k];
#pragma omp simd
        for (int c = 0; c < k; ++c) acc[c] = kind == PoolKind::max ? window[c] : T(0);
        for (int ky = 0; ky < g.kernel_h; ++ky)
          for (int kx = 0; kx < g.kernel_w; ++kx) {
            const T* v = window + (long(ky) * g.width + kx) * k;
#pragma omp simd
            for (int c = 0; c < k; ++c)
              acc[c] = kind == PoolKind::max ? (acc[c] < v[c] ? v[c] : acc[c]) : acc[c] + v[c];
          }
        T* out = ys + (long(oy) * g.out_width + ox) * k;
#pragma omp simd
        for (int c = 0; c < k; ++c) out[c] = kind == PoolKind::max ? acc[c] : acc[c] * inv_area;
      }
  }
}

template <class T>
void pool2d_backward_blocked(PoolKind kind, const PoolGeometry& g, int batch, const T* x, const T* dy, T* dx) {
  constexpr int k = channel_block;
  const long slabs = long(batch) * (g.channels / k);
  const long in_plane = long(g.height) * g.width, out_plane = long(g.out_height) * g.out_width;
  const T inv_area = T(1) / T(g.kernel_h * g.kernel_w);
  // 2x2 windows with stride 2 do not overlap: each pixel they cover is written
  // once, and only what an odd size leaves outside every window is cleared.
  const bool two_by_two = kind == PoolKind::max && is_two_by_two(g);
#pragma omp parallel for schedule(static) if (double(slabs) * k * in_plane > parallel_threshold)
  for (long slab = 0; slab < slabs; ++slab) {
    const T* xs = x + slab * in_plane * k;
    const T* dys = dy + slab * out_plane * k;
    T* dxs = dx + slab * in_plane * k;
    if (two_by_two) {
      const int rows = 2 * g.out_height, columns = 2 * g.out_width;
      for (int y = 0; y < rows; ++y)
        std::fill(dxs + (long(y) * g.width + columns) * k, dxs + long(y + 1) * g.width * k, T(0));
      std::fill(dxs + long(rows) * g.width * k, dxs + in_plane * k, T(0));
      for (int oy = 0; oy < g.out_height; ++oy)
        for (int ox = 0; ox < g.out_width; ++ox) {
          const long top = (long(2 * oy) * g.width + 2 * ox) * k, bottom = top + long(g.width) * k;
          const T* grad = dys + (long(oy) * g.out_width + ox) * k;
#pragma omp simd
          for (int c = 0; c < k; ++c) {
            const T a = xs[top + c], b = xs[top + k + c], d = xs[bottom + c], e = xs[bottom + k + c];
            int best = 0;
            T m = a;
            if (b > m) best = 1, m = b;
            if (d > m) best = 2, m = d;
            if (e > m) best = 3;
            dxs[top + c] = best == 0 ? grad[c] : T(0);
            dxs[top + k + c] = best == 1 ? grad[c] : T(0);
            dxs[bottom + c] = best == 2 ? grad[c] : T(0);
            dxs[bottom + k + c] = best == 3 ? grad[c] : T(0);
          }
        }
      continue;
    }
    std::fill(dxs, dxs + in_plane * k, T(0));
    for (int oy = 0; oy < g.out_height; ++oy)
      for (int ox = 0; ox < g.out_width; ++ox) {
        const long origin = long(oy) * g.stride_h * g.width + long(ox) * g.stride_w;
        const T* grad = dys + (long(oy) * g.out_width + ox) * k;
        if (kind == PoolKind::average) {
          for (int ky = 0; ky < g.kernel_h; ++ky)
            for (int kx = 0; kx < g.kernel_w; ++kx) {
              T* d = dxs + (origin + long(ky) * g.width + kx) * k;
#pragma omp simd
              for (int c = 0; c < k; ++c) d[c] += grad[c] * inv_area;
            }
          continue;
        }
        for (int c = 0; c < k; ++c) {
          long best = origin;
          for (int ky = 0; ky < g.kernel_h; ++ky)
            for (int kx = 0; kx < g.kernel_w; ++kx) {
              const long at = origin + long(ky) * g.width + kx;
              if (xs[at * k + c] > xs[best * k + c]) best = at;
            }
          dxs[best * k + c] += grad[c];
        }
      }
  }
}

}  // namespace cpu_detail

template <>
struct ops<cpu> {
  static constexpr bool available = true;

  // --- memory ---------------------------------------------------------------
  static void* allocate(std::size_t bytes) {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p && bytes) throw Error("cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  static void deallocate(void* p) { std::free(p); }
  template <class T>
  static void copy_to_device(T* dst, const T* src, long n) {
    if (n) std::memcpy(dst, src, std::size_t(n) * sizeof(T));
  }
  template <class T>
  static void copy_to_host(T* dst, const T* src, long n) {
    if (n) std::memcpy(dst, src, std::size_t(n) * sizeof(T));
  }
  template <class T>
  static void copy(T* dst, const T* src, long n) {
    if (n) std::memcpy(dst, src, std::size_t(n) * sizeof(T));
  }
  template <class T>
  static void fill(T* dst, long n, T value) {
    std::fill(dst, dst + n, value);
  }

  // --- layout -------------------------------------------------------------------
  // A blocked image tensor is (N, C/16, H, W, 16) (core/layout.hpp).
  static constexpr int channel_block = cpu_detail::channel_block;

  // The layout a model keeps its image activations in by default: blocked for
  // float where this translation unit targets AVX-512 (the direct and Winograd
  // kernels' own layout), planar otherwise. Every primitive takes either.
  template <class T>
  static constexpr Layout image_layout =
#if defined(__AVX512F__)
      std::is_same_v<T, float> ? Layout::blocked : Layout::planar;
#else
      Layout::planar;
#endif

  // The layout a model keeps its image activations in under `arithmetic`:
  // image_layout<T>, but planar for bf16 arithmetic where this machine's bf16
  // kernels read planar tensors (AMX, vdpbf16ps; see bf16_prefers_planar).
  template <class T>
  static Layout image_layout_for(Arithmetic arithmetic) {
    if (arithmetic == Arithmetic::bf16 && cpu_detail::kernels::bf16_prefers_planar()) return Layout::planar;
    return image_layout<T>;
  }

  // out (N, C, pixels) in layout `to` = in in layout `from`; C a multiple of
  // channel_block where either is blocked.
  template <class T>
  static void convert(T* out, Layout to, const T* in, Layout from, int batch, int channels, long pixels) {
    if (to == from) return copy(out, in, long(batch) * channels * pixels);
    if (to == Layout::blocked)
      cpu_detail::planar_to_blocked(batch, channels, pixels, in, out);
    else
      cpu_detail::blocked_to_planar(batch, channels, pixels, in, out);
  }

  // --- pointwise --------------------------------------------------------------
  // Calls f(i) for every i in [0, n); each call writes only its own outputs.
  // Subnormal floats read and written by f count as zero (see FlushSubnormals).
  template <class F>
  static void parallel_for(long n, const F& f) {
#pragma omp parallel if (n > 4096)
    {
      const cpu_detail::FlushSubnormals flush;
      const F local = f;  // see eval: a private copy lets the loop vectorise
#pragma omp for simd schedule(static)
      for (long i = 0; i < n; ++i) local(i);
    }
  }

  template <class T, class E>
  static void eval(T* out, long n, const E& e) {
    static_assert(!E::per_channel, "PER_CHANNEL_EXPRESSION_NEEDS_THE_CHANNEL_EXTENT_FORM_OF_EVAL");
#pragma omp parallel if (n > 4096)
    {
      // A private copy of the expression: its pointers then provably do not
      // alias `out`, so they stay in registers and the loop vectorises.
      const E local = e;
#pragma omp for simd schedule(static)
      for (long i = 0; i < n; ++i) out[i] = T(local(i, 0));
    }
  }

  // Over an (N, C, pixels) tensor in `layout`: the loops carry the channel.
  template <class T, class E>
  static void eval(T* out, int batch, int channels, long pixels, const E& e, Layout layout = Layout::planar) {
    if (layout == Layout::blocked && pixels > 1) return cpu_detail::eval_blocked(out, batch, channels, pixels, e);
    const long planes = long(batch) * channels;
    if (pixels == 1) {  // (N, features): features innermost
#pragma omp parallel if (planes > 4096)
      {
        const E local = e;  // as in the flat eval: no aliasing with out
#pragma omp for schedule(static)
        for (int n = 0; n < batch; ++n) {
          const long base = long(n) * channels;
#pragma omp simd
          for (int c = 0; c < channels; ++c) out[base + c] = T(local(base + c, c));
        }
      }
      return;
    }
#pragma omp parallel if (planes * pixels > 4096)
    {
      const E local = e;
#pragma omp for schedule(static)
      for (long plane = 0; plane < planes; ++plane) {
        const int c = int(plane % channels);
        const long base = plane * pixels;
#pragma omp simd
        for (long p = 0; p < pixels; ++p) out[base + p] = T(local(base + p, c));
      }
    }
  }

  // out[c] = sum over samples and pixels of e at the elements of channel c of an
  // (N, C, pixels) tensor in `layout`.
  template <class T, class E>
  static void sum_per_channel(T* out, int batch, int channels, long pixels, const E& e,
                              Layout layout = Layout::planar) {
    if (layout == Layout::blocked && pixels > 1)
      return cpu_detail::channel_sums_blocked<cpu_detail::SecondSum::none>(
          static_cast<T*>(nullptr), batch, channels, pixels, e, e, [&](int c, auto sum, auto) { out[c] = T(sum); });
    using Acc = cpu_detail::Accumulator<T>;
#pragma omp parallel if (long(batch) * channels * pixels > 16384)
    {
      const E local = e;  // see eval
#pragma omp for schedule(static)
      for (int c = 0; c < channels; ++c) {
        Acc total = 0;
        for (int n = 0; n < batch; ++n) {
          const long base = (long(n) * channels + c) * pixels;
          Acc partial = 0;
#pragma omp simd reduction(+ : partial)
          for (long p = 0; p < pixels; ++p) partial += Acc(local(base + p, c));
          total += partial;
        }
        out[c] = T(total);
      }
    }
  }

  // sum[c] and squares[c] = the sum of e and the sum of (e - sum[c] / count)^2
  // over the count = batch * pixels elements of channel c: batch norm's
  // statistics. Where the accumulator is wider than T (float sums in double),
  // one pass takes the sums of e and of e^2 and combines them in double, whose
  // 53 bits keep the difference exact to far beyond float's; in T's own
  // precision (double) the squares are taken about the mean in a second pass.
  template <class T, class E>
  static void centered_sums_per_channel(T* sum, T* squares, int batch, int channels, long pixels, const E& e,
                                        Layout layout = Layout::planar) {
    using Acc = cpu_detail::Accumulator<T>;
    if constexpr (sizeof(Acc) > sizeof(T)) {
      const Acc count = Acc(batch) * Acc(pixels);
      channel_sums2<cpu_detail::SecondSum::a_squared>(static_cast<T*>(nullptr), batch, channels, pixels, e, e, layout,
                                                      [&](int c, Acc total, Acc total_squares) {
                             sum[c] = T(total);
                             squares[c] = T(std::max(Acc(0), total_squares - total * total / count));
                           });
    } else {
      using namespace expr;
      sum_per_channel(sum, batch, channels, pixels, e, layout);
      std::vector<T> mean(static_cast<std::size_t>(channels));
      for (int c = 0; c < channels; ++c) mean[std::size_t(c)] = T(sum[c] / (double(batch) * double(pixels)));
      sum_per_channel(squares, batch, channels, pixels, map(Square{}, e - per_channel(mean.data())), layout);
    }
  }

  // --- dense algebra ------------------------------------------------------------
  template <class T>
  static void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, T alpha, const T* a,
                   int lda, const T* b, int ldb, T beta, T* c, int ldc) {
    cpu_detail::kernels::gemm(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }

  // y (N, Cout, OH, OW) = conv(x (N, Cin, H, W), w (Cout, Cin, KH, KW)) + bias (Cout),
  // x in layouts.input and y in layouts.output. Arithmetic::bf16 (float only)
  // multiplies the bf16 roundings of x and w; the epilogue is applied to y as it
  // is written.
  template <class T>
  static void conv2d_forward(const ConvGeometry& g, int batch, const T* x, const T* w, const T* bias, T* y,
                             Workspace<cpu>& ws, Arithmetic arithmetic = Arithmetic::native,
                             ConvEpilogue epilogue = ConvEpilogue::none, ConvLayouts layouts = {}) {
    if constexpr (std::is_same_v<T, float>)
      if (arithmetic == Arithmetic::bf16)
        return cpu_detail::kernels::bf16_conv2d_forward(g, batch, x, w, bias, y, ws, epilogue, layouts);
    cpu_detail::kernels::conv2d_forward(g, batch, x, w, bias, y, ws, epilogue, layouts);
  }

  // dx (N, Cin, H, W) = conv^T(dy, w), dy in layouts.output and dx in layouts.input.
  template <class T>
  static void conv2d_backward_data(const ConvGeometry& g, int batch, const T* dy, const T* w, T* dx,
                                   Workspace<cpu>& ws, Arithmetic arithmetic = Arithmetic::native,
                                   ConvLayouts layouts = {}) {
    if constexpr (std::is_same_v<T, float>)
      if (arithmetic == Arithmetic::bf16)
        return cpu_detail::kernels::bf16_conv2d_backward_data(g, batch, dy, w, dx, ws, layouts);
    cpu_detail::kernels::conv2d_backward_data(g, batch, dy, w, dx, ws, layouts);
  }

  // dw (Cout, Cin, KH, KW) = sum over samples of dy * x ; dbias (Cout, may be null) = sum dy,
  // in float under either arithmetic; x in layouts.input and dy in layouts.output.
  template <class T>
  static void conv2d_backward_weights(const ConvGeometry& g, int batch, const T* x, const T* dy, T* dw, T* dbias,
                                      Workspace<cpu>& ws, Arithmetic arithmetic = Arithmetic::native,
                                      ConvLayouts layouts = {}) {
    if constexpr (std::is_same_v<T, float>)
      if (arithmetic == Arithmetic::bf16) {
        const bool bias_written =
            cpu_detail::kernels::bf16_conv2d_backward_weights(g, batch, x, dy, dw, dbias, ws, layouts);
        if (dbias && !bias_written)
          sum_per_channel(dbias, batch, g.out_channels, g.out_pixels(), expr::in(dy), layouts.output);
        return;
      }
    cpu_detail::kernels::conv2d_backward_weights(g, batch, x, dy, dw, dbias, ws, layouts);
  }

  // --- pooling ------------------------------------------------------------------
  // x and y in `layout` (a 1x1 output reads the same in either).
  template <class T>
  static void pool2d_forward(PoolKind kind, const PoolGeometry& g, int batch, const T* x, T* y,
                             Layout layout = Layout::planar) {
    if (layout == Layout::blocked) return cpu_detail::pool2d_forward_blocked(kind, g, batch, x, y);
    if (kind == PoolKind::max && cpu_detail::is_two_by_two(g)) return cpu_detail::max_pool_2x2_forward(g, batch, x, y);
    cpu_detail::pool2d_forward_windows(kind, g, batch, x, y);
  }

  // dx = pool^T(dy). Max pooling routes each gradient to the first maximum of its
  // window, found again from x rather than stored.
  template <class T>
  static void pool2d_backward(PoolKind kind, const PoolGeometry& g, int batch, const T* x, const T* dy, T* dx,
                              Layout layout = Layout::planar) {
    if (layout == Layout::blocked) return cpu_detail::pool2d_backward_blocked(kind, g, batch, x, dy, dx);
    if (kind == PoolKind::max && cpu_detail::is_two_by_two(g))
      return cpu_detail::max_pool_2x2_backward(g, batch, x, dy, dx);
    cpu_detail::pool2d_backward_windows(kind, g, batch, x, dy, dx);
  }

  // --- loss -------------------------------------------------------------------------
  // Softmax cross-entropy from logits (N, K) against integer labels, with the
  // target (1 - s) one-hot + s / K. Writes dlogits = (softmax - target) * scale and
  // returns the summed loss; `correct` counts rows whose argmax is the label.
  template <class T>
  static double softmax_cross_entropy(int batch, int classes, const T* logits, const int* labels,
                                      double smoothing, T scale, T* dlogits, long* correct) {
    return cross_entropy_rows(batch, classes, logits, scale, dlogits, correct,
                              cpu_detail::label_targets(labels, smoothing, classes));
  }

  // The same against soft targets (N, K), each row a distribution (mixup,
  // CutMix, distillation). `correct` counts rows whose argmax matches the
  // target's argmax.
  template <class T>
  static double softmax_cross_entropy_soft(int batch, int classes, const T* logits, const T* targets, T scale,
                                           T* dlogits, long* correct) {
    return cross_entropy_rows(batch, classes, logits, scale, dlogits, correct, cpu_detail::soft_targets(targets, classes));
  }

  // Knowledge distillation (Hinton, Vinyals and Dean 2015), per row with
  // q = softmax(z), r = softmax(z / T), p = softmax(u / T) for student logits z and
  // teacher logits u:
  //   loss = alpha * (-sum_k t_k log q_k) + (1 - alpha) * T^2 * sum_k p_k (log p_k - log r_k)
  //   d loss / d z = alpha * (q - t) + (1 - alpha) * T * (r - p)
  // The T^2 keeps the soft term's gradient from shrinking as 1 / T^2 when T grows.
  // The target t is the smoothed label, or the row of `targets` when that is not
  // null (labels may then be null). Writes dlogits = d loss / d z * scale, returns
  // the summed loss; `correct` counts as the cross-entropies above do.
  template <class T>
  static double softmax_distillation(int batch, int classes, const T* logits, const T* teacher_logits,
                                     const int* labels, const T* targets, double smoothing, double alpha,
                                     double temperature, T scale, T* dlogits, long* correct) {
    if (targets)
      return distillation_rows(batch, classes, logits, teacher_logits, alpha, temperature, scale, dlogits, correct,
                               cpu_detail::soft_targets(targets, classes));
    return distillation_rows(batch, classes, logits, teacher_logits, alpha, temperature, scale, dlogits, correct,
                             cpu_detail::label_targets(labels, smoothing, classes));
  }

  // first[c] and second[c]: the sums over samples and pixels of a and of b at the
  // elements of channel c of an (N, C, pixels) tensor, in one read of it: batch
  // norm's backward needs sum(g) and sum(g * x_hat) together. The loops are
  // sum_per_channel's, so each sum is the one it would give.
  template <class T, class A, class E>
  static void sum2_per_channel(T* first, T* second, int batch, int channels, long pixels, const A& a,
                               const E& b, Layout layout = Layout::planar) {
    channel_sums2<cpu_detail::SecondSum::b>(
        static_cast<T*>(nullptr), batch, channels, pixels, a, b, layout,
        [&](int c, auto sum_a, auto sum_b) { first[c] = T(sum_a), second[c] = T(sum_b); });
  }

  // out = a, and first[c], second[c] the sums of a and of a * b over channel c,
  // with a evaluated once per element: batch norm's backward behind an
  // activation whose derivative is costly (GELU's), where g = dy act'(z) would
  // otherwise be computed once for each sum and again for the input gradient.
  template <class T, class A, class E>
  static void eval_sum2_per_channel(T* out, T* first, T* second, int batch, int channels, long pixels, const A& a,
                                    const E& b, Layout layout = Layout::planar) {
    channel_sums2<cpu_detail::SecondSum::a_times_b>(
        out, batch, channels, pixels, a, b, layout,
        [&](int c, auto sum_a, auto sum_b) { first[c] = T(sum_a), second[c] = T(sum_b); });
  }

 private:
  // The loop of sum2_per_channel, eval_sum2_per_channel and
  // centered_sums_per_channel: the sum of a and the sum `Second` says, handed
  // to finish(c, sum_a, sum_b) in the accumulator's precision.
  template <cpu_detail::SecondSum Second, class T, class A, class E, class Finish>
  static void channel_sums2(T* out, int batch, int channels, long pixels, const A& a, const E& b, Layout layout,
                            const Finish& finish) {
    if (layout == Layout::blocked && pixels > 1)
      return cpu_detail::channel_sums_blocked<Second>(out, batch, channels, pixels, a, b, finish);
    using Acc = cpu_detail::Accumulator<T>;
#pragma omp parallel if (long(batch) * channels * pixels > 16384)
    {
      const A local_a = a;  // see eval
      const E local_b = b;
#pragma omp for schedule(static)
      for (int c = 0; c < channels; ++c) {
        Acc total_a = 0, total_b = 0;
        for (int n = 0; n < batch; ++n) {
          const long base = (long(n) * channels + c) * pixels;
          Acc partial_a = 0, partial_b = 0;
#pragma omp simd reduction(+ : partial_a, partial_b)
          for (long p = 0; p < pixels; ++p) {
            const T value = T(local_a(base + p, c));
            partial_a += Acc(value);
            if constexpr (Second == cpu_detail::SecondSum::a_times_b) {
              out[base + p] = value;
              partial_b += Acc(value * T(local_b(base + p, c)));
            } else if constexpr (Second == cpu_detail::SecondSum::b) {
              partial_b += Acc(local_b(base + p, c));
            } else if constexpr (Second == cpu_detail::SecondSum::a_squared) {
              partial_b += Acc(value) * Acc(value);
            }
          }
          total_a += partial_a;
          total_b += partial_b;
        }
        finish(c, total_a, total_b);
      }
    }
  }

  // log sum_k exp(v_k * inverse_temperature) around the row maximum v[arg], so
  // that no exponent is positive.
  template <class T>
  static double log_sum_exp(const T* v, int classes, int arg, double inverse_temperature) {
    const double top = double(v[arg]);
    double sum = 0;
    for (int k = 0; k < classes; ++k) sum += std::exp((double(v[k]) - top) * inverse_temperature);
    return std::log(sum) + top * inverse_temperature;
  }

  // Shared by the cross-entropies: per row the loss -sum_k t_k log p_k and its
  // gradient p - t.
  template <class T, class RowTarget>
  static double cross_entropy_rows(int batch, int classes, const T* logits, T scale, T* dlogits, long* correct,
                                   const RowTarget& row_target) {
    double loss = 0;
    long hits = 0;
#pragma omp parallel for reduction(+ : loss, hits) schedule(static) if (batch > 256)
    for (int n = 0; n < batch; ++n) {
      const T* z = logits + long(n) * classes;
      const auto [target, expected] = row_target(n);
      const int arg = cpu_detail::argmax(z, classes);
      hits += arg == expected;
      const double log_sum = log_sum_exp(z, classes, arg, 1.0);
      double row = 0;
      for (int k = 0; k < classes; ++k) {
        const double log_p = double(z[k]) - log_sum, t = target(k);
        row -= t * log_p;
        if (dlogits) dlogits[long(n) * classes + k] = T((std::exp(log_p) - t) * double(scale));
      }
      loss += row;
    }
    if (correct) *correct = hits;
    return loss;
  }

  // The rows of softmax_distillation. The cross-entropy term is computed exactly
  // as cross_entropy_rows does, so alpha = 1 reproduces it bit for bit.
  template <class T, class RowTarget>
  static double distillation_rows(int batch, int classes, const T* logits, const T* teacher_logits, double alpha,
                                  double temperature, T scale, T* dlogits, long* correct,
                                  const RowTarget& row_target) {
    const double inverse_temperature = 1.0 / temperature;
    const double soft_weight = (1.0 - alpha) * temperature * temperature;
    const double soft_gradient_weight = (1.0 - alpha) * temperature;
    double loss = 0;
    long hits = 0;
#pragma omp parallel for reduction(+ : loss, hits) schedule(static) if (batch > 256)
    for (int n = 0; n < batch; ++n) {
      const T* z = logits + long(n) * classes;
      const T* u = teacher_logits + long(n) * classes;
      const auto [target, expected] = row_target(n);
      const int arg = cpu_detail::argmax(z, classes);
      hits += arg == expected;
      const double log_sum = log_sum_exp(z, classes, arg, 1.0);
      // The maximum of z / T is at the maximum of z since T > 0.
      const double student_log_sum = log_sum_exp(z, classes, arg, inverse_temperature);
      const double teacher_log_sum = log_sum_exp(u, classes, cpu_detail::argmax(u, classes), inverse_temperature);
      double cross_entropy = 0, divergence = 0;
      for (int k = 0; k < classes; ++k) {
        const double log_q = double(z[k]) - log_sum, t = target(k);
        const double log_r = double(z[k]) * inverse_temperature - student_log_sum;
        const double log_p = double(u[k]) * inverse_temperature - teacher_log_sum, p = std::exp(log_p);
        cross_entropy -= t * log_q;
        // p log p -> 0 as p -> 0; guarding keeps a -inf teacher logit from giving 0 * inf.
        if (p > 0) divergence += p * (log_p - log_r);
        if (dlogits)
          dlogits[long(n) * classes + k] =
              T((alpha * (std::exp(log_q) - t) + soft_gradient_weight * (std::exp(log_r) - p)) * double(scale));
      }
      loss += alpha * cross_entropy + soft_weight * divergence;
    }
    if (correct) *correct = hits;
    return loss;
  }
};

}  // namespace laminar
