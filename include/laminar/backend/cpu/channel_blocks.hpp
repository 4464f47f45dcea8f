// The cpu backend's channel blocks: a vector register holds the 16 channels of
// one pixel, so activations kept blocked are (N, C/16, H, W, 16). The 16x16
// in-register transpose that moves planes to blocked pixels and back, and the
// whole-tensor conversions between the planar and blocked layouts that the
// model's edges, Flatten and the kernels without blocked operands use.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "bf16.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace laminar::cpu_detail {

inline constexpr int channel_block = 16;

inline constexpr int blocks_of(int channels) { return (channels + channel_block - 1) / channel_block; }

// Above this many floats written, pack and unpack store around the cache: at
// batch 128 the tensor is far larger than the caches, so the lines would be
// evicted before the next pass reads them anyway, and streaming saves reading
// each line before writing it (measured 1.5-4x faster at 16-40 MB).
inline constexpr long streaming_floats = long(1) << 22;

inline bool aligned_to_line(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 64 == 0; }

#if defined(__AVX512F__)
// A 16x16 tile of floats in 16 registers, transposed in place: lane c of
// rows[r] moves to lane r of rows[c]. Pairs interleave, then quads, then 128-bit
// lanes twice: 64 shuffles for 256 elements, no trip through memory.
inline void transpose_tile(__m512 rows[channel_block]) {
  // The zero-masking forms with every lane kept are the plain instructions; the
  // unmasked intrinsics trip gcc 12's -Wuninitialized on their undefined source.
  const __mmask16 all = 0xffff;
  __m512 pairs[channel_block];
  for (int r = 0; r < channel_block; r += 2) {
    pairs[r] = _mm512_maskz_unpacklo_ps(all, rows[r], rows[r + 1]);
    pairs[r + 1] = _mm512_maskz_unpackhi_ps(all, rows[r], rows[r + 1]);
  }
  // Within each 128-bit lane k, rows[4q + j] now gets element 4k + j of rows 4q .. 4q + 3.
  for (int q = 0; q < channel_block; q += 4) {
    rows[q] = _mm512_shuffle_ps(pairs[q], pairs[q + 2], _MM_SHUFFLE(1, 0, 1, 0));
    rows[q + 1] = _mm512_shuffle_ps(pairs[q], pairs[q + 2], _MM_SHUFFLE(3, 2, 3, 2));
    rows[q + 2] = _mm512_shuffle_ps(pairs[q + 1], pairs[q + 3], _MM_SHUFFLE(1, 0, 1, 0));
    rows[q + 3] = _mm512_shuffle_ps(pairs[q + 1], pairs[q + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // 0x88 takes 128-bit lanes 0, 2 of each source, 0xdd lanes 1, 3.
  for (int j = 0; j < 4; ++j) {
    pairs[j] = _mm512_maskz_shuffle_f32x4(all, rows[j], rows[4 + j], 0x88);
    pairs[4 + j] = _mm512_maskz_shuffle_f32x4(all, rows[j], rows[4 + j], 0xdd);
    pairs[8 + j] = _mm512_maskz_shuffle_f32x4(all, rows[8 + j], rows[12 + j], 0x88);
    pairs[12 + j] = _mm512_maskz_shuffle_f32x4(all, rows[8 + j], rows[12 + j], 0xdd);
  }
  for (int j = 0; j < 4; ++j) {
    rows[j] = _mm512_maskz_shuffle_f32x4(all, pairs[j], pairs[8 + j], 0x88);
    rows[8 + j] = _mm512_maskz_shuffle_f32x4(all, pairs[j], pairs[8 + j], 0xdd);
    rows[4 + j] = _mm512_maskz_shuffle_f32x4(all, pairs[4 + j], pairs[12 + j], 0x88);
    rows[12 + j] = _mm512_maskz_shuffle_f32x4(all, pairs[4 + j], pairs[12 + j], 0xdd);
  }
}

// One pixel's 16 channels, kept as floats or rounded to 16 bf16 (32 bytes).
inline void store_pixel(float* pixel, __m512 channels, bool stream) {
  if (stream)
    _mm512_stream_ps(pixel, channels);
  else
    _mm512_storeu_ps(pixel, channels);
}

#if defined(__AVX512BF16__)
inline void store_pixel(bf16_bits* pixel, __m512 channels, bool stream) {
  const __m256i rounded = __m256i(_mm512_cvtneps_pbh(channels));
  if (stream)
    _mm256_stream_si256(reinterpret_cast<__m256i*>(pixel), rounded);
  else
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pixel), rounded);
}
#endif

// planes (channels, H, W) -> blocked pixels of 16 channels, `gap` pixels skipped
// after each row of W (the left and right border of a padded image), the channel
// tail zero. Tiles run over the flattened plane, not per row, so narrow images
// (8x8, 7x7) still move 16 pixels per transpose; only the plane's last tile is
// masked. `stream` needs `out` on a 64-byte boundary.
template <class Target>
void pack_planes(const float* planes, int channels, int height, int width, long gap, Target* out, bool stream) {
  const long plane = long(height) * width;
  Target* pixel = out;
  int column = 0;
  for (long p = 0; p < plane; p += channel_block) {
    const long count = std::min<long>(channel_block, plane - p);
    const __mmask16 valid = __mmask16((1u << count) - 1u);
    __m512 rows[channel_block];
    for (int c = 0; c < channel_block; ++c)
      rows[c] = c < channels ? _mm512_maskz_loadu_ps(valid, planes + c * plane + p) : _mm512_setzero_ps();
    transpose_tile(rows);
    for (long k = 0; k < count; ++k) {
      store_pixel(pixel, rows[k], stream);
      pixel += channel_block;
      if (++column == width) {
        column = 0;
        pixel += gap * channel_block;
      }
    }
  }
  if (stream) _mm_sfence();
}

// Blocked pixels (H*W, 16) -> planes (channels, H*W): the inverse of pack_planes
// without a gap, dropping the channel tail. `stream` needs every plane on a
// 64-byte boundary and `plane` a multiple of 16, so no tile is partial.
inline void unpack_planes(const float* pixels, int channels, long plane, float* planes, bool stream) {
  for (long p = 0; p < plane; p += channel_block) {
    const long count = std::min<long>(channel_block, plane - p);
    const __mmask16 valid = __mmask16((1u << count) - 1u);
    __m512 rows[channel_block];
    for (int k = 0; k < channel_block; ++k)
      rows[k] = k < count ? _mm512_loadu_ps(pixels + (p + k) * channel_block) : _mm512_setzero_ps();
    transpose_tile(rows);
    for (int c = 0; c < channels; ++c) {
      if (stream)
        _mm512_stream_ps(planes + c * plane + p, rows[c]);
      else
        _mm512_mask_storeu_ps(planes + c * plane + p, valid, rows[c]);
    }
  }
  if (stream) _mm_sfence();
}
#endif


// Whole tensors between the layouts of core/layout.hpp, C a multiple of 16:
// planar (N, C, P) -> blocked (N, C/16, P, 16), and back. Each (image, channel
// block) is a 16-plane slab moved by 16x16 transposes in float on AVX-512,
// element by element otherwise.
template <class T>
void planar_to_blocked(int batch, int channels, long pixels, const T* planar, T* blocked) {
  const int blocks = channels / channel_block;
  const long slab = long(channel_block) * pixels;
#pragma omp parallel for schedule(static) if (long(batch) * channels * pixels > 16384)
  for (long k = 0; k < long(batch) * blocks; ++k) {
    const T* in = planar + k * slab;
    T* out = blocked + k * slab;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      const bool stream = long(batch) * channels * pixels > streaming_floats && aligned_to_line(blocked);
      pack_planes(in, channel_block, 1, int(pixels), 0, out, stream);
      continue;
    }
#endif
    for (long p = 0; p < pixels; ++p)
      for (int c = 0; c < channel_block; ++c) out[p * channel_block + c] = in[c * pixels + p];
  }
}

template <class T>
void blocked_to_planar(int batch, int channels, long pixels, const T* blocked, T* planar) {
  const int blocks = channels / channel_block;
  const long slab = long(channel_block) * pixels;
#pragma omp parallel for schedule(static) if (long(batch) * channels * pixels > 16384)
  for (long k = 0; k < long(batch) * blocks; ++k) {
    const T* in = blocked + k * slab;
    T* out = planar + k * slab;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      const bool stream = long(batch) * channels * pixels > streaming_floats && pixels % channel_block == 0 &&
                          aligned_to_line(planar);
      unpack_planes(in, channel_block, pixels, out, stream);
      continue;
    }
#endif
    for (int c = 0; c < channel_block; ++c)
      for (long p = 0; p < pixels; ++p) out[c * pixels + p] = in[p * channel_block + c];
  }
}

}  // namespace laminar::cpu_detail
