// The AMX weight gradient: the layout's extents; both packers put every element
// where the AmxWeightLayout formulas say, rounded as to_bf16 rounds it, with zeros
// at the border, the junk columns, the slack and the channel tail; and
// amx_conv2d_backward_weights gives the naive double weight gradient of the
// bf16-rounded x and dy and the bias gradient of the float dy, at 1, 2 and 3
// threads, with the same bits from two runs.
//
// Agreement is |got - want| <= 1e-4 * max(1, |want|). x is standard normal and dy is
// scaled by 1 / sqrt(N * OH * OW), so every dw and dbias is of order 1 and one
// missing or doubled term (of order 1 / sqrt(N * OH * OW) >= 0.01 here) is far
// outside the tolerance.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <laminar/backend/cpu/amx_conv_weights.hpp>
#include <limits>
#include <vector>

#include "support/convolution.hpp"
#include "support/reference_convolution.hpp"

using namespace laminar;
using namespace laminar::cpu_detail;

namespace {

constexpr double tolerance = 1e-4;

using laminar_test::aligned_within;
using laminar_test::bf16_rounded;
using laminar_test::convolution;
using laminar_test::naive_bias_gradient;
using laminar_test::naive_weight_gradient;
using laminar_test::NaiveSums;
using laminar_test::values_with_corner_cases;
using laminar_test::worst_error;

const laminar_test::SeededNormal normal_values(4242);

ConvGeometry square(int in_channels, int size, int out_channels, int kernel, int pad) {
  return convolution(in_channels, size, size, out_channels, kernel, 1, pad);
}

bool amx_here() {
  if (!amx_available()) MESSAGE("SKIPPED: this machine or process offers no AMX");
  return amx_available();
}

// x packed: element [n][c][p] is to_bf16 of x at padded pixel p = (iy + pad_top) * PW
// + ix + pad_left, zero elsewhere (border, slack, channel tail).
long input_mismatches(const ConvGeometry& g, int batch, int shift) {
  const AmxWeightLayout l(g);
  const std::vector<float> x = values_with_corner_cases(long(batch) * g.in_channels * g.in_pixels(), 7);
  std::vector<bf16_bits> storage;
  bf16_bits* packed = aligned_within(storage, batch * l.input_image(), shift);
  pack_amx_weight_input(l, batch, x.data(), packed);
  long bad = 0, e = 0;
  for (int n = 0; n < batch; ++n)
    for (int c = 0; c < l.in_blocks * channel_block; ++c)
      for (long p = 0; p < l.plane_pixels; ++p) {
        const long iy = p / l.padded_width - g.pad_top, ix = p % l.padded_width - g.pad_left;
        const bool real = c < g.in_channels && iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
        const bf16_bits want =
            real ? to_bf16(x[((long(n) * g.in_channels + c) * g.height + iy) * g.width + ix]) : bf16_bits(0);
        if (packed[e++] != want) ++bad;
      }
  return bad;
}

// dy packed: element [n][b][q / 2][o][q % 2] is to_bf16 of dy[n][16b + o][oy][ox] for
// q = oy * PW + ox with ox < OW and oy < OH, zero elsewhere (junk columns, tail,
// channel tail).
long output_gradient_mismatches(const ConvGeometry& g, int batch, int shift) {
  const AmxWeightLayout l(g);
  const std::vector<float> dy = values_with_corner_cases(long(batch) * g.out_channels * g.out_pixels(), 8);
  std::vector<bf16_bits> storage;
  bf16_bits* packed = aligned_within(storage, batch * l.output_gradient_image(), shift);
  pack_amx_weight_output_gradient(l, batch, dy.data(), packed, nullptr);
  long bad = 0, e = 0;
  for (int n = 0; n < batch; ++n)
    for (int b = 0; b < l.out_blocks; ++b)
      for (long pair = 0; pair < l.sweep_pixels / 2; ++pair)
        for (int o = 0; o < channel_block; ++o)
          for (int j = 0; j < 2; ++j) {
            const long q = 2 * pair + j, oy = q / l.padded_width, ox = q % l.padded_width;
            const int c = b * channel_block + o;
            const bool real = c < g.out_channels && oy < g.out_height && ox < g.out_width;
            const bf16_bits want =
                real ? to_bf16(dy[((long(n) * g.out_channels + c) * g.out_height + oy) * g.out_width + ox])
                     : bf16_bits(0);
            if (packed[e++] != want) ++bad;
          }
  return bad;
}

struct Gradients {
  std::vector<float> dw, dbias;
};

// amx_conv2d_backward_weights with `threads` OpenMP threads on outputs and scratch
// filled with NaN, so that a value the kernel fails to overwrite shows. Restores the
// thread count afterwards.
Gradients amx_gradients(const ConvGeometry& g, int batch, const std::vector<float>& x, const std::vector<float>& dy,
                        int threads, bool with_bias = true) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Gradients out;
  out.dw.assign(long(g.out_channels) * g.in_channels * g.kernel_h * g.kernel_w, nan);
  out.dbias.assign(g.out_channels, nan);
  const int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
  const long bytes = amx_conv_backward_weights_scratch(g, batch, omp_get_max_threads());
  std::vector<float> scratch(bytes / sizeof(float) + 1, nan);
  amx_conv2d_backward_weights(g, batch, x.data(), dy.data(), out.dw.data(), with_bias ? out.dbias.data() : nullptr,
                              scratch.data());
  omp_set_num_threads(previous);
  return out;
}

std::vector<float> output_gradient(const ConvGeometry& g, int batch, std::uint32_t stream) {
  return normal_values(long(batch) * g.out_channels * g.out_pixels(), stream,
                       1.0 / std::sqrt(double(batch) * g.out_pixels()));
}

// The kernel at 1, 2 and 3 threads against the naive sums.
void check_geometry(const ConvGeometry& g, int batch) {
  REQUIRE(AmxWeightLayout::supports(g));
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 1);
  const std::vector<float> dy = output_gradient(g, batch, 2);
  // dw from the rounded operands, dbias from the float dy.
  const NaiveSums dw = naive_weight_gradient(g, batch, bf16_rounded(x), bf16_rounded(dy));
  const NaiveSums dbias = naive_bias_gradient(g, batch, dy);
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    const Gradients got = amx_gradients(g, batch, x, dy, threads);
    CHECK(worst_error(got.dw, dw.values) <= tolerance);
    CHECK(worst_error(got.dbias, dbias.values) <= tolerance);
  }
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

constexpr int channel_counts[] = {3, 20, 33};
constexpr int batches[] = {1, 3, 5};

}  // namespace

TEST_CASE("the amx weight layout takes stride 1 only") {
  CHECK(AmxWeightLayout::supports(square(3, 7, 20, 3, 1)));
  CHECK(AmxWeightLayout::supports(square(3, 7, 20, 2, 0)));
  CHECK_FALSE(AmxWeightLayout::supports(convolution(16, 8, 8, 16, 3, 2, 1)));
  CHECK_FALSE(AmxWeightLayout::supports(convolution(16, 8, 8, 16, 3, 3, 1, 2, 1, 1)));
  CHECK_THROWS_AS(AmxWeightLayout(convolution(16, 8, 8, 16, 3, 2, 1)), Error);
}

TEST_CASE("the amx weight layout sweeps whole tile steps and pads planes to an odd count of lines") {
  // 32x32, 3x3 same: PW = 34, 32 rows of 34 pixels = 1088 = 34 steps; the last tap
  // reads to 1088 + 2 * 34 + 2 = 1158, rounded up to 37 lines of 32.
  const AmxWeightLayout cifar(square(64, 32, 64, 3, 1));
  CHECK(cifar.padded_width == 34);
  CHECK(cifar.padded_height == 34);
  CHECK(cifar.sweep_pixels == 1088);
  CHECK(cifar.plane_pixels == 37 * 32);
  // 8x8, 3x3 same: PW = 10, 80 pixels round up to 96; 96 + 22 = 118 is 4 lines, an
  // even count, so 5.
  const AmxWeightLayout small(square(256, 8, 256, 3, 1));
  CHECK(small.sweep_pixels == 96);
  CHECK(small.plane_pixels == 5 * 32);
  CHECK(small.input_image() == 256L * 160);
  CHECK(small.output_gradient_image() == 16L * 96 * 16);
  CHECK(small.partial_weights() == 16L * 16 * 9 * 256);
}

TEST_CASE("pack_amx_weight_input rounds x into padded planes with zero border slack and channel tail") {
  for (int channels : channel_counts)
    for (int batch : batches) {
      CAPTURE(channels);
      CAPTURE(batch);
      CHECK(input_mismatches(square(channels, 7, 16, 3, 1), batch, 1) == 0);
      CHECK(input_mismatches(square(channels, 15, 16, 5, 2), batch, 1) == 0);
      CHECK(input_mismatches(square(channels, 31, 16, 2, 0), batch, 1) == 0);
      CHECK(input_mismatches(square(channels, 4, 16, 1, 0), batch, 1) == 0);
      CHECK(input_mismatches(convolution(channels, 5, 9, 16, 3, 5, 1, 1, 1, 2), batch, 1) == 0);
    }
}

TEST_CASE("pack_amx_weight_output_gradient pairs pixels over the padded width with zero junk columns and tail") {
  for (int channels : channel_counts)
    for (int batch : batches) {
      CAPTURE(channels);
      CAPTURE(batch);
      CHECK(output_gradient_mismatches(square(16, 7, channels, 3, 1), batch, 1) == 0);
      CHECK(output_gradient_mismatches(square(16, 15, channels, 5, 2), batch, 1) == 0);
      CHECK(output_gradient_mismatches(square(16, 31, channels, 2, 0), batch, 1) == 0);
      CHECK(output_gradient_mismatches(square(16, 4, channels, 1, 0), batch, 1) == 0);
      CHECK(output_gradient_mismatches(convolution(16, 5, 9, channels, 3, 5, 1, 1, 1, 2), batch, 1) == 0);
    }
}

TEST_CASE("the amx weight packers stream large aligned tensors and plain-store misaligned ones to the same layout") {
  // 9 images of 64x128x128 pass the streaming threshold in both packers.
  const ConvGeometry g = square(64, 128, 64, 3, 1);
  REQUIRE(9 * AmxWeightLayout(g).output_gradient_image() > 2 * streaming_floats);
  for (int shift : {0, 1}) {
    CAPTURE(shift);
    CHECK(input_mismatches(g, 9, shift) == 0);
    CHECK(output_gradient_mismatches(g, 9, shift) == 0);
  }
}

TEST_CASE("pack_amx_weight_output_gradient sums each image's float dy per channel") {
  const ConvGeometry g = square(16, 15, 33, 3, 1);
  const int batch = 3;
  const AmxWeightLayout l(g);
  const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 9);
  std::vector<bf16_bits> packed(batch * l.output_gradient_image());
  std::vector<float> sums(long(batch) * g.out_channels, std::numeric_limits<float>::quiet_NaN());
  pack_amx_weight_output_gradient(l, batch, dy.data(), packed.data(), sums.data());
  std::vector<double> want(sums.size(), 0.0);
  for (long k = 0; k < long(want.size()); ++k)
    for (long p = 0; p < g.out_pixels(); ++p) want[k] += dy[k * g.out_pixels() + p];
  CHECK(worst_error(sums, want) <= 1e-5);
}

TEST_CASE("amx weight gradient of a 3x3 same convolution of 3 channels at width 7 and batch 1 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(3, 7, 20, 3, 1), 1);
}

TEST_CASE("amx weight gradient of a 5x5 same convolution of 20 channels at width 15 and batch 3 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(20, 15, 33, 5, 2), 3);
}

TEST_CASE("amx weight gradient of a 1x1 convolution of 33 channels at width 31 and batch 5 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(33, 31, 24, 1, 0), 5);
}

TEST_CASE("amx weight gradient of a 2x2 valid convolution at width 8 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(20, 8, 16, 2, 0), 3);
}

TEST_CASE("amx weight gradient of 24 channels at width 4 and batch 5 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(24, 4, 33, 3, 1), 5);
}

TEST_CASE("amx weight gradient of 16 channels at width 32 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(16, 32, 24, 3, 1), 1);
}

TEST_CASE("amx weight gradient of a 3x5 kernel with different paddings per axis is the naive sum") {
  if (!amx_here()) return;
  check_geometry(convolution(20, 9, 13, 33, 3, 5, 1, 1, 1, 2), 3);
}

TEST_CASE("amx weight gradient of the cifar first stage 64x32x32 to 64 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(64, 32, 64, 3, 1), 3);
}

TEST_CASE("amx weight gradient of the cifar second stage 128x16x16 to 128 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(128, 16, 128, 3, 1), 3);
}

TEST_CASE("amx weight gradient of the cifar third stage 256x8x8 to 256 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(256, 8, 256, 3, 1), 3);
}

TEST_CASE("amx weight gradient of a 3x3 valid convolution of 24 channels at width 31 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(24, 31, 64, 3, 0), 1);
}

TEST_CASE("amx weight gradient of 16x32x32 to 16 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(16, 32, 16, 3, 1), 5);
}

TEST_CASE("amx weight gradient of the 2x2 valid stem 3x32x32 to 24 is the naive sum") {
  if (!amx_here()) return;
  check_geometry(square(3, 32, 24, 2, 0), 3);
}

TEST_CASE("amx weight gradient adds up the passes of an image batch larger than one pass") {
  if (!amx_here()) return;
  // A 128x128 image's planes of two blocks pass the 1 MB a pass keeps in L2, so each
  // image is a pass of its own and the later ones add to the stored partial sums.
  const ConvGeometry g = square(16, 128, 20, 3, 1);
  REQUIRE(2 * 16 * (AmxWeightLayout(g).plane_pixels + AmxWeightLayout(g).sweep_pixels) * 2 > (1L << 20));
  check_geometry(g, 3);
}

TEST_CASE("amx bias gradient sums the float dy, not its bf16 rounding") {
  if (!amx_here()) return;
  // 1 + 2^-10 rounds to 1 in bf16; 3 images of 7x7 give 147 terms per channel, whose
  // partial sums k * 1025 / 1024 are all exact in float.
  const ConvGeometry g = square(3, 7, 20, 3, 1);
  const int batch = 3;
  const std::vector<float> x(long(batch) * g.in_channels * g.in_pixels(), 1.0f);
  const std::vector<float> dy(long(batch) * g.out_channels * g.out_pixels(), 1.0f + 0x1p-10f);
  REQUIRE(round_to_bf16(dy[0]) == 1.0f);
  const Gradients gradients = amx_gradients(g, batch, x, dy, 2);
  for (float value : gradients.dbias) CHECK(value == 147.0f * 1025.0f / 1024.0f);
}

TEST_CASE("amx weight gradient gives the same bits in two runs for a given thread count") {
  if (!amx_here()) return;
  // At two threads batch 4 splits the images, batch 5 the items.
  const ConvGeometry g = square(20, 15, 33, 3, 1);
  for (int batch : {4, 5}) {
    CAPTURE(batch);
    const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 3);
    const std::vector<float> dy = output_gradient(g, batch, 4);
    const Gradients first = amx_gradients(g, batch, x, dy, 2);
    const Gradients second = amx_gradients(g, batch, x, dy, 2);
    CHECK(same_bits(first.dw, second.dw));
    CHECK(same_bits(first.dbias, second.dbias));
  }
}

TEST_CASE("amx weight gradient without a bias pointer gives the same weight gradient") {
  if (!amx_here()) return;
  const ConvGeometry g = square(20, 15, 33, 3, 1);
  const int batch = 4;
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 5);
  const std::vector<float> dy = output_gradient(g, batch, 6);
  CHECK(same_bits(amx_gradients(g, batch, x, dy, 2).dw, amx_gradients(g, batch, x, dy, 2, false).dw));
}

TEST_CASE("amx weight gradient refuses a strided convolution") {
  const ConvGeometry g = convolution(16, 8, 8, 16, 3, 2, 1);
  std::vector<float> x(16 * 64), dy(16 * 16), dw(16 * 16 * 9), scratch(1);
  CHECK_THROWS_AS(amx_conv2d_backward_weights(g, 1, x.data(), dy.data(), dw.data(), nullptr, scratch.data()), Error);
}
