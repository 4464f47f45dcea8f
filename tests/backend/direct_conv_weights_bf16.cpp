// The bf16 weight-gradient kernel: the pair packers put every element where the
// (pairs, C/16, H, W, 16 channels, 2 images) index formula says, rounded as to_bf16
// rounds it; the kernel and unpack_weights give the naive double weight gradient of
// the bf16-rounded x and dy, and the bias gradient of the float dy, for the vector
// and the scalar kernel at 1, 2 and 3 threads; and the same bits from two runs.
#include <doctest/doctest.h>
#include <omp.h>

#include <cstring>
#include <laminar/backend/cpu/direct_conv_weights.hpp>
#include <limits>
#include <vector>

#include "support/convolution.hpp"
#include "support/reference_convolution.hpp"

using namespace laminar;
using namespace laminar::cpu_detail;

namespace {

using laminar_test::aligned_within;
using laminar_test::bf16_rounded;
using laminar_test::check_close;
using laminar_test::naive_bias_gradient;
using laminar_test::naive_weight_gradient;
using laminar_test::NaiveSums;
using laminar_test::values_with_corner_cases;

const laminar_test::SeededNormal normal_values(20240612);

ConvGeometry square(int in_channels, int size, int out_channels, int kernel, int stride, int pad) {
  return laminar_test::convolution(in_channels, size, size, out_channels, kernel, stride, pad);
}

// How many elements of packed (pairs, blocks, pixels, 16 channels, 2 images) differ
// from expected(image, channel, pixel), image 2m + j of pair m.
template <class Expected>
long mismatches(const bf16_bits* packed, long pairs, int blocks, long pixels, const Expected& expected) {
  long bad = 0, e = 0;
  for (long m = 0; m < pairs; ++m)
    for (int cb = 0; cb < blocks; ++cb)
      for (long p = 0; p < pixels; ++p)
        for (int c = 0; c < channel_block; ++c)
          for (int j = 0; j < 2; ++j)
            if (packed[e++] != expected(2 * m + j, cb * channel_block + c, p)) ++bad;
  return bad;
}

// pack_input_pairs_bf16: zero outside the image, in the channel tail and for the
// missing image of an odd batch.
void check_pack_input_pairs(const ConvGeometry& g, int batch, int shift = 1) {
  const BlockedConv b(g);
  const std::vector<float> x = values_with_corner_cases(long(batch) * g.in_channels * g.in_pixels(), 7);
  std::vector<bf16_bits> storage;
  bf16_bits* packed = aligned_within(storage, image_pairs(batch) * 2 * b.input_image(), shift);
  pack_input_pairs_bf16(b, batch, x.data(), packed);
  const auto expected = [&](long image, int channel, long pixel) -> bf16_bits {
    const long iy = pixel / b.padded_width - g.pad_top, ix = pixel % b.padded_width - g.pad_left;
    if (image >= batch || channel >= g.in_channels || iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) return 0;
    return to_bf16(x[((image * g.in_channels + channel) * g.height + iy) * g.width + ix]);
  };
  CHECK(mismatches(packed, image_pairs(batch), b.in_blocks, long(b.padded_height) * b.padded_width, expected) == 0);
}

// pack_output_pairs_bf16: zero in the channel tail and for the missing image of an
// odd batch.
void check_pack_output_pairs(const ConvGeometry& g, int batch, int shift = 1) {
  const BlockedConv b(g);
  const std::vector<float> dy = values_with_corner_cases(long(batch) * g.out_channels * g.out_pixels(), 8);
  std::vector<bf16_bits> storage;
  bf16_bits* packed = aligned_within(storage, image_pairs(batch) * 2 * b.output_image(), shift);
  pack_output_pairs_bf16(b, batch, dy.data(), packed);
  const auto expected = [&](long image, int channel, long pixel) -> bf16_bits {
    if (image >= batch || channel >= g.out_channels) return 0;
    return to_bf16(dy[(image * g.out_channels + channel) * g.out_pixels() + pixel]);
  };
  CHECK(mismatches(packed, image_pairs(batch), b.out_blocks, g.out_pixels(), expected) == 0);
}

struct Gradients {
  std::vector<float> dw, dbias;
};

using Kernel = void (*)(const BlockedConv&, int, const bf16_bits*, const bf16_bits*, const float*, float*, float*,
                        float*);

// Packs x and dy into pairs and runs `kernel` with `threads` OpenMP threads on
// outputs and scratch filled with NaN, so that a value the kernel fails to overwrite
// shows. Restores the thread count afterwards.
Gradients run(Kernel kernel, const ConvGeometry& g, int batch, const std::vector<float>& x,
              const std::vector<float>& dy, int threads, bool with_bias = true) {
  const BlockedConv b(g);
  std::vector<bf16_bits> packed_x(image_pairs(batch) * 2 * b.input_image()),
      packed_dy(image_pairs(batch) * 2 * b.output_image());
  pack_input_pairs_bf16(b, batch, x.data(), packed_x.data());
  pack_output_pairs_bf16(b, batch, dy.data(), packed_dy.data());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> packed_dw(b.packed_weights(), nan);
  Gradients out;
  out.dw.assign(long(g.out_channels) * g.in_channels * g.kernel_h * g.kernel_w, nan);
  out.dbias.assign(g.out_channels, nan);
  const int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
  std::vector<float> scratch(direct_conv_weights_bf16_scratch(b, omp_get_max_threads()), nan);
  kernel(b, batch, packed_x.data(), packed_dy.data(), dy.data(), packed_dw.data(),
         with_bias ? out.dbias.data() : nullptr, scratch.data());
  omp_set_num_threads(previous);
  unpack_weights(b, packed_dw.data(), out.dw.data());
  return out;
}

// Both kernels at 1, 2 and 3 threads against the naive sums (relative error 1e-4 of
// the sum of |terms|: products of bf16 values are exact in float, so only the float
// accumulation differs from the double one), and the vector kernel against the
// scalar one, which adds the same products in the same order where a block has more
// than eight live channels and in register sets otherwise (1e-5 of the same scale).
void check_geometry(const ConvGeometry& g, int batch) {
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 1);
  const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 2);
  const NaiveSums dw = naive_weight_gradient(g, batch, bf16_rounded(x), bf16_rounded(dy));
  const NaiveSums dbias = naive_bias_gradient(g, batch, dy);
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    const Gradients vector = run(direct_conv_backward_weights_bf16, g, batch, x, dy, threads);
    const Gradients scalar = run(direct_conv_backward_weights_bf16_scalar, g, batch, x, dy, threads);
    check_close(vector.dw, dw.values, dw.magnitudes, 1e-4);
    check_close(vector.dbias, dbias.values, dbias.magnitudes, 1e-4);
    check_close(scalar.dw, dw.values, dw.magnitudes, 1e-4);
    check_close(scalar.dbias, dbias.values, dbias.magnitudes, 1e-4);
    check_close(vector.dw, std::vector<double>(scalar.dw.begin(), scalar.dw.end()), dw.magnitudes, 1e-5);
    check_close(vector.dbias, std::vector<double>(scalar.dbias.begin(), scalar.dbias.end()), dbias.magnitudes, 1e-5);
  }
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

constexpr int channel_counts[] = {3, 20, 33};
constexpr int batches[] = {1, 3, 4, 5};
}  // namespace

TEST_CASE("image_pairs rounds an odd batch up to a pair with a zero image") {
  CHECK(image_pairs(1) == 1);
  CHECK(image_pairs(2) == 1);
  CHECK(image_pairs(5) == 3);
  CHECK(image_pairs(128) == 64);
}

TEST_CASE("pack_input_pairs_bf16 interleaves image pairs with a zero border, channel tail and missing image") {
  for (int channels : channel_counts)
    for (int batch : batches) {
      CAPTURE(channels);
      CAPTURE(batch);
      check_pack_input_pairs(square(channels, 7, 16, 3, 1, 1), batch);
      check_pack_input_pairs(square(channels, 15, 16, 5, 2, 2), batch);
      check_pack_input_pairs(square(channels, 31, 16, 2, 1, 0), batch);
    }
}

TEST_CASE("pack_output_pairs_bf16 interleaves image pairs with a zero channel tail and missing image") {
  for (int channels : channel_counts)
    for (int batch : batches) {
      CAPTURE(channels);
      CAPTURE(batch);
      check_pack_output_pairs(square(16, 7, channels, 3, 1, 1), batch);
      check_pack_output_pairs(square(16, 15, channels, 3, 2, 1), batch);
      check_pack_output_pairs(square(16, 31, channels, 1, 1, 0), batch);
    }
}

TEST_CASE("the pair packers stream large aligned tensors and plain-store misaligned ones to the same layout") {
  // 9 images of 64x128x128 pass the streaming threshold in both packers.
  const ConvGeometry g = square(64, 128, 64, 3, 1, 1);
  REQUIRE(image_pairs(9) * 2 * BlockedConv(g).output_image() > 2 * streaming_floats);
  for (int shift : {0, 1}) {
    CAPTURE(shift);
    check_pack_input_pairs(g, 9, shift);
    check_pack_output_pairs(g, 9, shift);
  }
}

TEST_CASE("bf16 weight gradient of a 3x3 same convolution of 3 channels at batch 1 is the naive sum") {
  check_geometry(square(3, 7, 20, 3, 1, 1), 1);
}

TEST_CASE("bf16 weight gradient of a 5x5 same convolution of 20 channels at batch 3 is the naive sum") {
  check_geometry(square(20, 15, 33, 5, 1, 2), 3);
}

TEST_CASE("bf16 weight gradient of a 1x1 convolution of 33 channels at batch 5 is the naive sum") {
  check_geometry(square(33, 31, 3, 1, 1, 0), 5);
}

TEST_CASE("bf16 weight gradient of a 2x2 valid convolution at batch 4 is the naive sum") {
  check_geometry(square(20, 15, 20, 2, 1, 0), 4);
}

TEST_CASE("bf16 weight gradient of a stride-2 same convolution of an odd-sized image is the naive sum") {
  check_geometry(square(33, 15, 20, 3, 2, 1), 5);
}

TEST_CASE("bf16 weight gradient of a stride-2 same convolution of an even-sized image is the naive sum") {
  check_geometry(square(20, 16, 33, 3, 2, 1), 3);
}

TEST_CASE("bf16 weight gradient of a 1x3 kernel with strides 2 and 1 is the naive sum") {
  check_geometry(laminar_test::convolution(20, 7, 15, 33, 1, 3, 2, 1, 0, 1), 3);
}

TEST_CASE("bf16 weight gradient of 24 channels, a block and a half, at width 31 is the naive sum") {
  check_geometry(square(24, 31, 64, 3, 1, 1), 3);
}

TEST_CASE("bf16 weight gradient of 12 channels, three quarters of a block, at width 15 is the naive sum") {
  check_geometry(square(12, 15, 20, 3, 1, 1), 5);
}

TEST_CASE("bf16 weight gradient of the CIFAR first stage, 64x32x32 to 64, is the naive sum") {
  check_geometry(square(64, 32, 64, 3, 1, 1), 3);
}

TEST_CASE("bf16 weight gradient of the CIFAR second stage, 128x16x16 to 128, is the naive sum") {
  check_geometry(square(128, 16, 128, 3, 1, 1), 3);
}

TEST_CASE("bf16 weight gradient of the CIFAR third stage, 256x8x8 to 256, is the naive sum") {
  check_geometry(square(256, 8, 256, 3, 1, 1), 3);
}

TEST_CASE("bf16 bias gradient sums the float dy, not its bf16 rounding") {
  // 1 + 2^-10 rounds to 1 in bf16; 3 images of 7x7 give 147 terms per channel, whose
  // partial sums k * 1025 / 1024 are all exact in float.
  const ConvGeometry g = square(3, 7, 20, 3, 1, 1);
  const int batch = 3;
  const std::vector<float> x(long(batch) * g.in_channels * g.in_pixels(), 1.0f);
  const std::vector<float> dy(long(batch) * g.out_channels * g.out_pixels(), 1.0f + 0x1p-10f);
  REQUIRE(round_to_bf16(dy[0]) == 1.0f);
  for (Kernel kernel : {direct_conv_backward_weights_bf16, direct_conv_backward_weights_bf16_scalar}) {
    const Gradients gradients = run(kernel, g, batch, x, dy, 2);
    for (float value : gradients.dbias) CHECK(value == 147.0f * 1025.0f / 1024.0f);
  }
}

TEST_CASE("bf16 weight gradient gives the same bits in two runs for a given thread count") {
  // Batch 4 (two pairs) splits the pairs between two threads, batch 5 (three) the dw items.
  const ConvGeometry g = square(20, 15, 33, 3, 1, 1);
  for (int batch : {4, 5}) {
    CAPTURE(batch);
    const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 3);
    const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 4);
    const Gradients first = run(direct_conv_backward_weights_bf16, g, batch, x, dy, 2);
    const Gradients second = run(direct_conv_backward_weights_bf16, g, batch, x, dy, 2);
    CHECK(same_bits(first.dw, second.dw));
    CHECK(same_bits(first.dbias, second.dbias));
  }
}

TEST_CASE("bf16 weight gradient without a bias pointer gives the same weight gradient") {
  const ConvGeometry g = square(20, 15, 33, 3, 1, 1);
  for (int batch : {4, 5}) {
    CAPTURE(batch);
    const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 5);
    const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 6);
    const Gradients with_bias = run(direct_conv_backward_weights_bf16, g, batch, x, dy, 2);
    const Gradients without_bias = run(direct_conv_backward_weights_bf16, g, batch, x, dy, 2, false);
    CHECK(same_bits(with_bias.dw, without_bias.dw));
  }
}
