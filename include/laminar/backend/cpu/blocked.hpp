// The blocked channel layout of the cpu backend's direct convolutions: images as
// (N, C/16, H, W, 16) with a zero border for the convolution's padding, weights as
// (Cout/16, Cin/16, KH, KW, 16 in, 16 out). A vector register holds the 16
// channels of one pixel, so a kernel broadcasts one input value against 16 output
// channels at once. Channel counts that are not multiples of 16 are padded with
// zeros, which contribute nothing to any sum. The bf16 packers round to bfloat16
// and order each tap's weights by input-channel pair, as vdpbf16ps consumes them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../../core/geometry.hpp"
#include "../../core/layout.hpp"
#include "bf16.hpp"
#include "channel_blocks.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace laminar::cpu_detail {

// Extents of a convolution's operands in the blocked layout. The input carries the
// padding as a zero border, so the kernels never test bounds: the padded width is
// whatever the last window needs.
struct BlockedConv {
  ConvGeometry g;
  int in_blocks, out_blocks;
  int padded_height, padded_width;

  explicit BlockedConv(const ConvGeometry& geometry)
      : g(geometry),
        in_blocks(blocks_of(geometry.in_channels)),
        out_blocks(blocks_of(geometry.out_channels)),
        padded_height(std::max(geometry.height + geometry.pad_top,
                               (geometry.out_height - 1) * geometry.stride_h + geometry.kernel_h)),
        padded_width(std::max(geometry.width + geometry.pad_left,
                              (geometry.out_width - 1) * geometry.stride_w + geometry.kernel_w)) {}

  long input_image() const { return long(in_blocks) * padded_height * padded_width * channel_block; }
  long output_image() const { return long(out_blocks) * g.out_height * g.out_width * channel_block; }
  long packed_weights() const {
    return long(out_blocks) * in_blocks * g.kernel_h * g.kernel_w * channel_block * channel_block;
  }
};

// The gradient of a stride-1 convolution with respect to its input is itself a
// stride-1 convolution of dy, with the kernel flipped and its channel roles
// swapped, over dy padded by KH - 1 - pad_top on top (and KW - 1 - pad_left left).
inline bool has_transposed_convolution(const ConvGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.pad_top < g.kernel_h && g.pad_left < g.kernel_w;
}
inline ConvGeometry transposed_convolution(const ConvGeometry& g) {
  return {g.out_channels, g.out_height, g.out_width,         g.in_channels,
          g.height,       g.width,      g.kernel_h,          g.kernel_w,
          1,              1,            g.kernel_h - 1 - g.pad_top, g.kernel_w - 1 - g.pad_left};
}

// A packed operand is a copy of the caller's, or, where the target is bf16_bits,
// the bf16 rounding of a float.
template <class Target, class Source>
Target packed_element(Source value) {
  if constexpr (std::is_same_v<Target, bf16_bits> && std::is_same_v<Source, float>)
    return to_bf16(value);
  else
    return Target(value);
}

// Where input channel i and output channel o of one tap lie among its 256 packed
// weights: (16 in, 16 out) for float; for bf16 (8 pairs, 16 out, 2), so that the
// 32 values vdpbf16ps meets with a pixel's channel pair (2k, 2k + 1) are adjacent.
template <class Target>
constexpr long tap_offset(int i, int o) {
  if constexpr (std::is_same_v<Target, bf16_bits>)
    return long(i / 2) * 2 * channel_block + o * 2 + i % 2;
  else
    return long(i) * channel_block + o;
}


// Whether pack_planes moves Source planes into Target pixels on this machine.
template <class Source, class Target>
constexpr bool has_vector_pack() {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<Source, float> && std::is_same_v<Target, float>) return true;
#endif
#if defined(__AVX512BF16__)
  if constexpr (std::is_same_v<Source, float> && std::is_same_v<Target, bf16_bits>) return true;
#endif
  return false;
}

// One channel block of one image -> its padded block (padded H, padded W, 16),
// zero outside the image and in the channel tail, each element
// packed_element<Target> of its source: `in` is the block's first plane of a
// planar image (`channels` planes H*W apart) or its first pixel in a blocked
// one (core/layout.hpp), whose rows are copied whole, no transposes.
template <class Source, class Target>
void pack_input_block(const BlockedConv& b, const Source* in, int channels, Target* out, Layout layout, bool stream) {
  const ConvGeometry& g = b.g;
  const long plane = long(g.height) * g.width;
  const long row = long(b.padded_width) * channel_block;
  // Only the border is cleared: the image's pixels are written once below.
  for (int y = 0; y < b.padded_height; ++y) {
    Target* line = out + y * row;
    if (y < g.pad_top || y >= g.pad_top + g.height) {
      std::fill(line, line + row, Target(0));
    } else {
      std::fill(line, line + long(g.pad_left) * channel_block, Target(0));
      std::fill(line + long(g.pad_left + g.width) * channel_block, line + row, Target(0));
    }
  }
  Target* first = out + (long(g.pad_top) * b.padded_width + g.pad_left) * channel_block;
  if (layout == Layout::blocked) {
    const long width = long(g.width) * channel_block;
    for (int y = 0; y < g.height; ++y) {
      const Source* source = in + y * width;
      Target* line = first + y * row;
      if constexpr (std::is_same_v<Source, Target>)
        std::copy(source, source + width, line);
      else
        for (long k = 0; k < width; ++k) line[k] = packed_element<Target>(source[k]);
    }
    return;
  }
#if defined(__AVX512F__)
  if constexpr (has_vector_pack<Source, Target>()) {
    pack_planes(in, channels, g.height, g.width, b.padded_width - g.width, first, stream);
    return;
  }
#endif
  for (int y = 0; y < g.height; ++y)
    for (int xx = 0; xx < g.width; ++xx) {
      Target* pixel = first + (long(y) * b.padded_width + xx) * channel_block;
      const Source* source = in + long(y) * g.width + xx;
      for (int c = 0; c < channels; ++c) pixel[c] = packed_element<Target>(source[c * plane]);
      for (int c = channels; c < channel_block; ++c) pixel[c] = Target(0);
    }
}

// x (N, C, H, W), or blocked (N, C/16, H, W, 16) -> (N, C/16, padded H, padded
// W, 16) by pack_input_block.
template <class Source, class Target>
void pack_input_into(const BlockedConv& b, int batch, const Source* x, Target* packed,
                     Layout layout = Layout::planar) {
  const ConvGeometry& g = b.g;
  const long plane = long(g.height) * g.width;
  // The threshold counts bytes, so a bf16 image streams from the same size in memory.
  const long bytes = long(batch) * b.input_image() * long(sizeof(Target));
  const bool stream = bytes > streaming_floats * long(sizeof(float)) && aligned_to_line(packed);
#pragma omp parallel for collapse(2) schedule(static) if (long(batch) * b.in_blocks * plane > 16384)
  for (int n = 0; n < batch; ++n)
    for (int cb = 0; cb < b.in_blocks; ++cb)
      pack_input_block(b, x + (long(n) * g.in_channels + cb * channel_block) * plane,
                       std::min(channel_block, g.in_channels - cb * channel_block),
                       packed + (long(n) * b.in_blocks + cb) * b.padded_height * b.padded_width * channel_block,
                       layout, stream);
}

// Whether a blocked input already is its own packed form: no border to add.
inline bool blocked_input_is_packed(const BlockedConv& b) {
  return b.g.pad_top == 0 && b.g.pad_left == 0 && b.padded_height == b.g.height && b.padded_width == b.g.width &&
         b.g.in_channels % channel_block == 0;
}

template <class T>
void pack_input(const BlockedConv& b, int batch, const T* x, T* packed, Layout layout = Layout::planar) {
  pack_input_into(b, batch, x, packed, layout);
}

// The bf16 operand of a convolution's input: pack_input's layout, each element
// to_bf16 of its float, so a pixel's channel pair (2k, 2k + 1) is one 32-bit word.
inline void pack_input_bf16(const BlockedConv& b, int batch, const float* x, bf16_bits* packed,
                            Layout layout = Layout::planar) {
  pack_input_into(b, batch, x, packed, layout);
}

// (N, Cout/16, OH, OW, 16) -> y (N, Cout, OH, OW), dropping the channel tail.
template <class T>
void unpack_output(const BlockedConv& b, int batch, const T* packed, T* y) {
  const ConvGeometry& g = b.g;
  const long plane = long(g.out_height) * g.out_width;
#pragma omp parallel for collapse(2) schedule(static) if (long(batch) * g.out_channels * plane > 16384)
  for (int n = 0; n < batch; ++n)
    for (int cb = 0; cb < b.out_blocks; ++cb) {
      const T* in = packed + (long(n) * b.out_blocks + cb) * plane * channel_block;
      T* out = y + (long(n) * g.out_channels + cb * channel_block) * plane;
      const int channels = std::min(channel_block, g.out_channels - cb * channel_block);
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        const bool stream = long(batch) * g.out_channels * plane > streaming_floats && plane % channel_block == 0 &&
                            aligned_to_line(y);
        unpack_planes(in, channels, plane, out, stream);
        continue;
      }
#endif
      for (int c = 0; c < channels; ++c)
        for (long p = 0; p < plane; ++p) out[c * plane + p] = in[p * channel_block + c];
    }
}

// dy (N, Cout, OH, OW) -> (N, Cout/16, OH, OW, 16): the unpadded blocked layout
// the weight-gradient kernel reads.
template <class T>
void pack_output(const BlockedConv& b, int batch, const T* y, T* packed) {
  const ConvGeometry& g = b.g;
  const long plane = long(g.out_height) * g.out_width;
#pragma omp parallel for collapse(2) schedule(static) if (long(batch) * g.out_channels * plane > 16384)
  for (int n = 0; n < batch; ++n)
    for (int cb = 0; cb < b.out_blocks; ++cb) {
      T* out = packed + (long(n) * b.out_blocks + cb) * plane * channel_block;
      const int channels = std::min(channel_block, g.out_channels - cb * channel_block);
      const T* in = y + (long(n) * g.out_channels + cb * channel_block) * plane;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        const bool stream = long(batch) * b.output_image() > streaming_floats && aligned_to_line(packed);
        pack_planes(in, channels, g.out_height, g.out_width, 0, out, stream);
        continue;
      }
#endif
      for (long p = 0; p < plane; ++p) {
        for (int c = 0; c < channels; ++c) out[p * channel_block + c] = in[c * plane + p];
        for (int c = channels; c < channel_block; ++c) out[p * channel_block + c] = T(0);
      }
    }
}

// w (Cout, Cin, KH, KW) -> (Cout/16, Cin/16, KH, KW, 16 in, 16 out), zero padded.
// `weight(o, i, ky, kx)` reads the unpacked kernel, so the same packing serves the
// flipped, transposed kernel of the input gradient.
template <class T, class Weight>
void pack_weights(const BlockedConv& b, const Weight& weight, T* packed) {
  const ConvGeometry& g = b.g;
  for (int ob = 0; ob < b.out_blocks; ++ob)
    for (int ib = 0; ib < b.in_blocks; ++ib)
      for (int ky = 0; ky < g.kernel_h; ++ky)
        for (int kx = 0; kx < g.kernel_w; ++kx) {
          T* tap = packed + (((long(ob) * b.in_blocks + ib) * g.kernel_h + ky) * g.kernel_w + kx) * channel_block *
                                channel_block;
          for (int i = 0; i < channel_block; ++i)
            for (int o = 0; o < channel_block; ++o) {
              const int oc = ob * channel_block + o, ic = ib * channel_block + i;
              tap[i * channel_block + o] =
                  oc < g.out_channels && ic < g.in_channels ? T(weight(oc, ic, ky, kx)) : T(0);
            }
        }
}

// One (16 out, 16 in) block of channels of a kernel is a contiguous run of
// KH*KW*256 packed floats, gathered from 16 rows of the unpacked kernel: working
// block by block keeps both sides in L1, and reading the source in its own order
// (row, then its 16 * KH*KW consecutive taps) keeps the loops free of index
// arithmetic. The weights change every step, so this runs every step; it stays
// on one thread, as a 256x256x3x3 kernel takes about 0.5 ms there, and on a
// loaded machine a parallel region this short was measured to wait ~8 ms for its
// second thread.
// `copy(block, out_offset, in_offset, outputs, inputs)` moves one block.
template <class Copy>
void for_each_weight_block(const BlockedConv& b, const Copy& copy) {
  const ConvGeometry& g = b.g;
  const long block = long(g.kernel_h) * g.kernel_w * channel_block * channel_block;
  for (int ob = 0; ob < b.out_blocks; ++ob)
    for (int ib = 0; ib < b.in_blocks; ++ib)
      copy((long(ob) * b.in_blocks + ib) * block, ob * channel_block, ib * channel_block,
           std::min(channel_block, g.out_channels - ob * channel_block),
           std::min(channel_block, g.in_channels - ib * channel_block));
}

// w (Cout, Cin, KH, KW) -> (Cout/16, Cin/16, KH, KW, 256 at tap_offset<Target>),
// zero padded.
template <class Source, class Target>
void pack_forward_weights_into(const BlockedConv& b, const Source* w, Target* packed) {
  const ConvGeometry& g = b.g;
  const int taps = g.kernel_h * g.kernel_w;
  const long tap = long(channel_block) * channel_block;
  for_each_weight_block(b, [&](long offset, int first_out, int first_in, int outputs, int inputs) {
    Target* block = packed + offset;
    if (outputs < channel_block || inputs < channel_block) std::fill(block, block + taps * tap, Target(0));
    for (int o = 0; o < outputs; ++o) {
      const Source* source = w + (long(first_out + o) * g.in_channels + first_in) * taps;
      for (int i = 0; i < inputs; ++i)
        for (int k = 0; k < taps; ++k)
          block[k * tap + tap_offset<Target>(i, o)] = packed_element<Target>(source[i * taps + k]);
    }
  });
}

template <class T>
void pack_forward_weights(const BlockedConv& b, const T* w, T* packed) {
  pack_forward_weights_into(b, w, packed);
}

// (Cout/16, Cin/16, KH, KW, 8 pairs, 16 out, 2): element [ob][ib][ky][kx][k][o][j]
// is to_bf16(w[ob*16 + o][ib*16 + 2k + j][ky][kx]).
inline void pack_forward_weights_bf16(const BlockedConv& b, const float* w, bf16_bits* packed) {
  pack_forward_weights_into(b, w, packed);
}

// For the input gradient: `transposed` is BlockedConv(transposed_convolution(g))
// and w the forward kernel (g.out_channels, g.in_channels, KH, KW). Input channel
// i of the transposed convolution is output channel i of g, and its tap k is tap
// KH*KW - 1 - k of g (the kernel turned by 180 degrees).
template <class Source, class Target>
void pack_transposed_weights_into(const BlockedConv& transposed, const ConvGeometry& g, const Source* w,
                                  Target* packed) {
  const int taps = g.kernel_h * g.kernel_w;
  const long tap = long(channel_block) * channel_block;
  for_each_weight_block(transposed, [&](long offset, int first_out, int first_in, int outputs, int inputs) {
    Target* block = packed + offset;
    if (outputs < channel_block || inputs < channel_block) std::fill(block, block + taps * tap, Target(0));
    for (int i = 0; i < inputs; ++i) {
      const Source* source = w + (long(first_in + i) * g.in_channels + first_out) * taps;
      for (int o = 0; o < outputs; ++o)
        for (int k = 0; k < taps; ++k)
          block[(taps - 1 - k) * tap + tap_offset<Target>(i, o)] = packed_element<Target>(source[o * taps + k]);
    }
  });
}

template <class T>
void pack_transposed_weights(const BlockedConv& transposed, const ConvGeometry& g, const T* w, T* packed) {
  pack_transposed_weights_into(transposed, g, w, packed);
}

// The transposed kernel of pack_transposed_weights in the pair layout of
// pack_forward_weights_bf16.
inline void pack_transposed_weights_bf16(const BlockedConv& transposed, const ConvGeometry& g, const float* w,
                                         bf16_bits* packed) {
  pack_transposed_weights_into(transposed, g, w, packed);
}

// (Cout/16, Cin/16, KH, KW, 16 in, 16 out) -> dw (Cout, Cin, KH, KW).
template <class T>
void unpack_weights(const BlockedConv& b, const T* packed, T* w) {
  const ConvGeometry& g = b.g;
  const int taps = g.kernel_h * g.kernel_w;
  const long tap = long(channel_block) * channel_block;
  for_each_weight_block(b, [&](long offset, int first_out, int first_in, int outputs, int inputs) {
    const T* block = packed + offset;
    for (int o = 0; o < outputs; ++o) {
      T* target = w + (long(first_out + o) * g.in_channels + first_in) * taps;
      for (int i = 0; i < inputs; ++i)
        for (int k = 0; k < taps; ++k) target[i * taps + k] = block[k * tap + i * channel_block + o];
    }
  });
}

}  // namespace laminar::cpu_detail
