// The blocked layout's packing: every element of every packed image and kernel
// sits where the index formula of blocked.hpp puts it (zero border, zero channel
// tail), unpacking reads it back, and pack then unpack is the identity. float
// takes the AVX-512 transposes where the compiler has them, double the scalar
// loops, so both run through the same checks.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <new>

#include "laminar/backend/cpu/blocked.hpp"

using namespace laminar;
using namespace laminar::cpu_detail;

namespace {

// A buffer whose first element lies `shift` elements past a 64-byte boundary, so
// a test picks the streaming (aligned) or the plain store path of the packing.
template <class T>
class Buffer {
 public:
  Buffer(long count, T fill, int shift = 0)
      : storage_(new (std::align_val_t(64)) T[std::size_t(count + 64)]), data_(storage_.get() + shift), count_(count) {
    for (long k = 0; k < count; ++k) data_[k] = fill;
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](long k) { return data_[k]; }
  const T& operator[](long k) const { return data_[k]; }
  long size() const { return count_; }

 private:
  struct AlignedDelete {
    void operator()(T* pointer) const { ::operator delete[](pointer, std::align_val_t(64)); }
  };
  std::unique_ptr<T[], AlignedDelete> storage_;
  T* data_;
  long count_;
};

// Distinct, exactly representable values, so any misplaced element shows.
template <class T>
Buffer<T> numbered(long count, int shift = 0) {
  Buffer<T> values(count, T(0), shift);
  for (long k = 0; k < count; ++k) values[k] = T(k + 1);
  return values;
}

template <class T>
T unwritten() {
  return std::numeric_limits<T>::quiet_NaN();
}

// A "same" convolution whose padding is `pad` on every side (kernel 2 * pad + 1).
ConvGeometry same_convolution(int channels, int size, int pad) {
  return {channels, size, size, channels, size, size, 2 * pad + 1, 2 * pad + 1, 1, 1, pad, pad};
}

// Counts the packed elements that differ from x (N, C, H, W) under the layout
// (N, C/16, padded H, padded W, 16): x[n, 16 cb + c, py - pad_top, px - pad_left]
// inside the image and the channels, zero elsewhere. NaN (unwritten) never matches.
template <class T>
long misplaced_input(const BlockedConv& b, int batch, const Buffer<T>& x, const Buffer<T>& packed) {
  const ConvGeometry& g = b.g;
  long wrong = 0, k = 0;
  for (int n = 0; n < batch; ++n)
    for (int cb = 0; cb < b.in_blocks; ++cb)
      for (int py = 0; py < b.padded_height; ++py)
        for (int px = 0; px < b.padded_width; ++px)
          for (int c = 0; c < channel_block; ++c, ++k) {
            const int channel = cb * channel_block + c, y = py - g.pad_top, xx = px - g.pad_left;
            const bool inside = channel < g.in_channels && y >= 0 && y < g.height && xx >= 0 && xx < g.width;
            const T want = inside ? x[((long(n) * g.in_channels + channel) * g.height + y) * g.width + xx] : T(0);
            if (!(packed[k] == want)) ++wrong;
          }
  return wrong;
}

// The same for (N, Cout/16, OH, OW, 16) against y (N, Cout, OH, OW).
template <class T>
long misplaced_output(const BlockedConv& b, int batch, const Buffer<T>& y, const Buffer<T>& packed) {
  const ConvGeometry& g = b.g;
  long wrong = 0, k = 0;
  for (int n = 0; n < batch; ++n)
    for (int cb = 0; cb < b.out_blocks; ++cb)
      for (long p = 0; p < g.out_pixels(); ++p)
        for (int c = 0; c < channel_block; ++c, ++k) {
          const int channel = cb * channel_block + c;
          const T want = channel < g.out_channels ? y[(long(n) * g.out_channels + channel) * g.out_pixels() + p] : T(0);
          if (!(packed[k] == want)) ++wrong;
        }
  return wrong;
}

template <class T>
long differences(const Buffer<T>& a, const Buffer<T>& b) {
  long wrong = 0;
  for (long k = 0; k < a.size(); ++k)
    if (!(a[k] == b[k])) ++wrong;
  return wrong;
}

const int channel_counts[] = {1, 3, 16, 20, 33, 64};
const int sizes[] = {1, 3, 7, 15, 31, 32};
const int batches[] = {1, 3};

template <class T>
void check_pack_input(const ConvGeometry& g, int batch, int shift = 0) {
  CAPTURE(g.in_channels);
  CAPTURE(g.height);
  CAPTURE(g.pad_top);
  CAPTURE(g.stride_h);
  CAPTURE(batch);
  CAPTURE(shift);
  const BlockedConv b(g);
  const Buffer<T> x = numbered<T>(long(batch) * g.in_channels * g.in_pixels());
  Buffer<T> packed(batch * b.input_image(), unwritten<T>(), shift);
  pack_input(b, batch, x.data(), packed.data());
  CHECK(misplaced_input(b, batch, x, packed) == 0);
}

template <class T>
void check_pack_output(const ConvGeometry& g, int batch, int shift = 0) {
  CAPTURE(g.out_channels);
  CAPTURE(g.out_height);
  CAPTURE(batch);
  CAPTURE(shift);
  const BlockedConv b(g);
  const Buffer<T> y = numbered<T>(long(batch) * g.out_channels * g.out_pixels());
  Buffer<T> packed(batch * b.output_image(), unwritten<T>(), shift);
  pack_output(b, batch, y.data(), packed.data());
  CHECK(misplaced_output(b, batch, y, packed) == 0);
}

// The packed lanes of the channel tail hold NaN: unpacking must not read them
// into y, and must write every element of y.
template <class T>
void check_unpack_output(const ConvGeometry& g, int batch, int shift = 0) {
  CAPTURE(g.out_channels);
  CAPTURE(g.out_height);
  CAPTURE(batch);
  CAPTURE(shift);
  const BlockedConv b(g);
  Buffer<T> packed = numbered<T>(batch * b.output_image());
  for (long k = 0; k < packed.size(); ++k) {
    const long block = k / (g.out_pixels() * channel_block) % b.out_blocks;
    if (block * channel_block + k % channel_block >= g.out_channels) packed[k] = unwritten<T>();
  }
  Buffer<T> y(long(batch) * g.out_channels * g.out_pixels(), unwritten<T>(), shift);
  unpack_output(b, batch, packed.data(), y.data());
  long wrong = 0;
  for (int n = 0; n < batch; ++n)
    for (int channel = 0; channel < g.out_channels; ++channel)
      for (long p = 0; p < g.out_pixels(); ++p) {
        const long packed_at =
            ((long(n) * b.out_blocks + channel / channel_block) * g.out_pixels() + p) * channel_block +
            channel % channel_block;
        if (!(y[(long(n) * g.out_channels + channel) * g.out_pixels() + p] == packed[packed_at])) ++wrong;
      }
  CHECK(wrong == 0);
}

// A convolution from `inputs` to `outputs` channels with a KH x KW kernel over 8x8.
ConvGeometry kernel_geometry(int inputs, int outputs, int kernel_h, int kernel_w) {
  return {inputs, 8, 8, outputs, 9 - kernel_h, 9 - kernel_w, kernel_h, kernel_w, 1, 1, 0, 0};
}

const int kernel_channel_counts[] = {1, 3, 16, 20, 33};
const int kernel_shapes[][2] = {{1, 1}, {2, 2}, {3, 3}, {5, 5}, {3, 2}};

}  // namespace

TEST_CASE_TEMPLATE("pack_input puts every pixel at its padded position and zeroes the border and the channel tail", T,
                   float, double) {
  for (int channels : channel_counts)
    for (int size : sizes)
      for (int pad : {0, 1, 2})
        for (int batch : batches) check_pack_input<T>(same_convolution(channels, size, pad), batch);
}

TEST_CASE_TEMPLATE("pack_input follows the extents of strided and transposed convolutions", T, float, double) {
  for (int channels : {3, 20, 33})
    for (int size : {7, 15, 32}) {
      // Stride 2, 3x3, pad 1: the right and bottom border are whatever the last window needs.
      const ConvGeometry strided{channels, size, size, channels, (size - 1) / 2 + 1, (size - 1) / 2 + 1,
                                 3, 3, 2, 2, 1, 1};
      check_pack_input<T>(strided, 3);
      // The input gradient of a 5x5 pad-1 convolution pads dy by 3 on every side.
      const ConvGeometry narrowing{channels, size, size, channels, size - 2, size - 2, 5, 5, 1, 1, 1, 1};
      check_pack_input<T>(transposed_convolution(narrowing), 3);
    }
}

TEST_CASE("pack_input streams large aligned tensors and plain-stores misaligned ones to the same layout") {
  // 70 images of 64x32x32 pass the streaming threshold.
  REQUIRE(70L * BlockedConv(same_convolution(64, 32, 1)).input_image() > streaming_floats);
  check_pack_input<float>(same_convolution(64, 32, 1), 70, 0);
  check_pack_input<float>(same_convolution(64, 32, 1), 70, 1);
}

TEST_CASE_TEMPLATE("pack_output lays each channel plane out pixel by pixel with a zero channel tail", T, float,
                   double) {
  for (int channels : channel_counts)
    for (int size : sizes)
      for (int batch : batches) check_pack_output<T>(same_convolution(channels, size, 1), batch);
}

TEST_CASE("pack_output streams large aligned tensors and plain-stores misaligned ones to the same layout") {
  REQUIRE(70L * BlockedConv(same_convolution(64, 32, 1)).output_image() > streaming_floats);
  check_pack_output<float>(same_convolution(64, 32, 1), 70, 0);
  check_pack_output<float>(same_convolution(64, 32, 1), 70, 1);
}

TEST_CASE_TEMPLATE("unpack_output reads every channel plane back and ignores the channel tail", T, float, double) {
  for (int channels : channel_counts)
    for (int size : sizes)
      for (int batch : batches) check_unpack_output<T>(same_convolution(channels, size, 1), batch);
}

TEST_CASE("unpack_output streams large aligned tensors and plain-stores misaligned ones to the same values") {
  REQUIRE(70L * 64 * 32 * 32 > streaming_floats);
  check_unpack_output<float>(same_convolution(64, 32, 1), 70, 0);
  check_unpack_output<float>(same_convolution(64, 32, 1), 70, 1);
  // 33x33 planes are not whole tiles, so they are never streamed; the tail tile is masked.
  check_unpack_output<float>(same_convolution(64, 33, 1), 70, 0);
}

TEST_CASE_TEMPLATE("unpack_output after pack_output gives back the tensor", T, float, double) {
  for (int channels : channel_counts)
    for (int size : sizes)
      for (int batch : batches) {
        CAPTURE(channels);
        CAPTURE(size);
        CAPTURE(batch);
        const BlockedConv b(same_convolution(channels, size, 1));
        const Buffer<T> y = numbered<T>(long(batch) * channels * size * size);
        Buffer<T> packed(batch * b.output_image(), unwritten<T>()), back(y.size(), unwritten<T>());
        pack_output(b, batch, y.data(), packed.data());
        unpack_output(b, batch, packed.data(), back.data());
        CHECK(differences(y, back) == 0);
      }
}

TEST_CASE_TEMPLATE("unpack_output after pack_input of an unpadded image gives back the image", T, float, double) {
  // With a 1x1 kernel and no padding the packed input and the packed output share one layout.
  for (int channels : channel_counts)
    for (int size : sizes) {
      CAPTURE(channels);
      CAPTURE(size);
      const BlockedConv b(same_convolution(channels, size, 0));
      REQUIRE(b.input_image() == b.output_image());
      const Buffer<T> x = numbered<T>(3L * channels * size * size);
      Buffer<T> packed(3 * b.input_image(), unwritten<T>()), back(x.size(), unwritten<T>());
      pack_input(b, 3, x.data(), packed.data());
      unpack_output(b, 3, packed.data(), back.data());
      CHECK(differences(x, back) == 0);
    }
}

TEST_CASE_TEMPLATE("pack_forward_weights puts every tap at its block position and zeroes the channel tails", T,
                   float, double) {
  for (int inputs : kernel_channel_counts)
    for (int outputs : kernel_channel_counts)
      for (const auto& shape : kernel_shapes) {
        const ConvGeometry g = kernel_geometry(inputs, outputs, shape[0], shape[1]);
        CAPTURE(inputs);
        CAPTURE(outputs);
        CAPTURE(g.kernel_h);
        CAPTURE(g.kernel_w);
        const BlockedConv b(g);
        const Buffer<T> w = numbered<T>(long(outputs) * g.patch());
        Buffer<T> packed(b.packed_weights(), unwritten<T>());
        pack_forward_weights(b, w.data(), packed.data());
        long wrong = 0, k = 0;
        for (int ob = 0; ob < b.out_blocks; ++ob)
          for (int ib = 0; ib < b.in_blocks; ++ib)
            for (int ky = 0; ky < g.kernel_h; ++ky)
              for (int kx = 0; kx < g.kernel_w; ++kx)
                for (int i = 0; i < channel_block; ++i)
                  for (int o = 0; o < channel_block; ++o, ++k) {
                    const int oc = ob * channel_block + o, ic = ib * channel_block + i;
                    const T want = oc < outputs && ic < inputs
                                       ? w[((long(oc) * inputs + ic) * g.kernel_h + ky) * g.kernel_w + kx]
                                       : T(0);
                    if (!(packed[k] == want)) ++wrong;
                  }
        CHECK(wrong == 0);
      }
}

TEST_CASE_TEMPLATE("pack_transposed_weights turns the kernel by 180 degrees and swaps its channel roles", T, float,
                   double) {
  for (int inputs : kernel_channel_counts)
    for (int outputs : kernel_channel_counts)
      for (const auto& shape : kernel_shapes) {
        const ConvGeometry g = kernel_geometry(inputs, outputs, shape[0], shape[1]);
        CAPTURE(inputs);
        CAPTURE(outputs);
        CAPTURE(g.kernel_h);
        CAPTURE(g.kernel_w);
        const BlockedConv t(transposed_convolution(g));
        const Buffer<T> w = numbered<T>(long(outputs) * g.patch());
        Buffer<T> packed(t.packed_weights(), unwritten<T>());
        pack_transposed_weights(t, g, w.data(), packed.data());
        // Block (ob, ib) of the transposed kernel: its output o is g's input channel, its input i g's output.
        long wrong = 0, k = 0;
        for (int ob = 0; ob < t.out_blocks; ++ob)
          for (int ib = 0; ib < t.in_blocks; ++ib)
            for (int ky = 0; ky < g.kernel_h; ++ky)
              for (int kx = 0; kx < g.kernel_w; ++kx)
                for (int i = 0; i < channel_block; ++i)
                  for (int o = 0; o < channel_block; ++o, ++k) {
                    const int in_channel = ob * channel_block + o, out_channel = ib * channel_block + i;
                    const T want = in_channel < inputs && out_channel < outputs
                                       ? w[((long(out_channel) * inputs + in_channel) * g.kernel_h +
                                            (g.kernel_h - 1 - ky)) * g.kernel_w +
                                           (g.kernel_w - 1 - kx)]
                                       : T(0);
                    if (!(packed[k] == want)) ++wrong;
                  }
        CHECK(wrong == 0);
      }
}

TEST_CASE_TEMPLATE("unpack_weights reads every tap back and ignores the channel tails", T, float, double) {
  for (int inputs : kernel_channel_counts)
    for (int outputs : kernel_channel_counts)
      for (const auto& shape : kernel_shapes) {
        const ConvGeometry g = kernel_geometry(inputs, outputs, shape[0], shape[1]);
        CAPTURE(inputs);
        CAPTURE(outputs);
        CAPTURE(g.kernel_h);
        CAPTURE(g.kernel_w);
        const BlockedConv b(g);
        Buffer<T> packed = numbered<T>(b.packed_weights());
        const long tap = long(channel_block) * channel_block, block = g.kernel_h * g.kernel_w * tap;
        for (long k = 0; k < packed.size(); ++k) {
          const long ob = k / block / b.in_blocks, ib = k / block % b.in_blocks;
          if (ob * channel_block + k % channel_block >= outputs || ib * channel_block + k % tap / channel_block >= inputs)
            packed[k] = unwritten<T>();
        }
        Buffer<T> w(long(outputs) * g.patch(), unwritten<T>());
        unpack_weights(b, packed.data(), w.data());
        long wrong = 0;
        for (int oc = 0; oc < outputs; ++oc)
          for (int ic = 0; ic < inputs; ++ic)
            for (int ky = 0; ky < g.kernel_h; ++ky)
              for (int kx = 0; kx < g.kernel_w; ++kx) {
                const long packed_at =
                    ((((long(oc / channel_block) * b.in_blocks + ic / channel_block) * g.kernel_h + ky) * g.kernel_w +
                      kx) * channel_block + ic % channel_block) * channel_block + oc % channel_block;
                if (!(w[((long(oc) * inputs + ic) * g.kernel_h + ky) * g.kernel_w + kx] == packed[packed_at]))
                  ++wrong;
              }
        CHECK(wrong == 0);
      }
}

TEST_CASE_TEMPLATE("unpack_weights after pack_forward_weights gives back the kernel", T, float, double) {
  for (int channels : channel_counts)
    for (const auto& shape : kernel_shapes) {
      const ConvGeometry g = kernel_geometry(channels, channels + 5, shape[0], shape[1]);
      CAPTURE(channels);
      CAPTURE(g.kernel_h);
      CAPTURE(g.kernel_w);
      const BlockedConv b(g);
      const Buffer<T> w = numbered<T>(long(g.out_channels) * g.patch());
      Buffer<T> packed(b.packed_weights(), unwritten<T>()), back(w.size(), unwritten<T>());
      pack_forward_weights(b, w.data(), packed.data());
      unpack_weights(b, packed.data(), back.data());
      CHECK(differences(w, back) == 0);
    }
}
