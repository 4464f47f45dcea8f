// The direct blocked convolution: through pack_input, direct_conv_forward and
// unpack_output it equals a naive convolution in double for every kernel size,
// stride, padding, channel count and width the tiling has to cover, and with
// the transposed packing it equals the naive input gradient.
//
// Agreement is |got - want| <= 1e-4 * max(1, |want|), want in double. Inputs are
// standard normal and weights are scaled by 1 / sqrt(Cin * KH * KW), so every
// output is of order 1 and one missing or doubled term (of order
// 1 / sqrt(Cin * KH * KW) >= 0.02 here) is far outside the tolerance.
#include <doctest/doctest.h>

#include <laminar/backend/cpu/direct_conv.hpp>
#include <vector>

#include "support/convolution.hpp"
#include "support/reference_convolution.hpp"

using namespace laminar;
using namespace laminar::cpu_detail;

namespace {

constexpr double tolerance = 1e-4;

using laminar_test::convolution;
using laminar_test::naive_forward;
using laminar_test::naive_input_gradient;
using laminar_test::worst_error;

const laminar_test::SeededNormal normal_values(2024);

enum class Kernel { vector, scalar };

// The packed output (N, Cout/16, OH, OW, 16) of the direct kernel on NCHW x.
std::vector<float> packed_forward(const BlockedConv& b, int batch, const std::vector<float>& x,
                                  const std::vector<float>& packed_w, const float* bias, Kernel kernel) {
  std::vector<float> packed_x(batch * b.input_image()), packed_y(batch * b.output_image(), -1.0f);
  pack_input(b, batch, x.data(), packed_x.data());
  if (kernel == Kernel::vector)
    direct_conv_forward(b, batch, packed_x.data(), packed_w.data(), bias, packed_y.data());
  else
    direct_conv_forward_scalar(b, batch, packed_x.data(), packed_w.data(), bias, packed_y.data());
  return packed_y;
}

std::vector<float> forward(const ConvGeometry& g, int batch, const std::vector<float>& x, const std::vector<float>& w,
                           const float* bias, Kernel kernel = Kernel::vector) {
  const BlockedConv b(g);
  std::vector<float> packed_w(b.packed_weights());
  pack_forward_weights(b, w.data(), packed_w.data());
  const std::vector<float> packed_y = packed_forward(b, batch, x, packed_w, bias, kernel);
  std::vector<float> y(long(batch) * g.out_channels * g.out_pixels());
  unpack_output(b, batch, packed_y.data(), y.data());
  return y;
}

// Both kernels against the naive convolution, with and without a bias.
void check_forward(const ConvGeometry& g, int batch) {
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 1);
  const std::vector<float> w = normal_values.kernel_weights(g, 2);
  const std::vector<float> bias = normal_values(g.out_channels, 3);
  const std::vector<double> want = naive_forward(g, batch, x, w, bias.data());
  CHECK(worst_error(forward(g, batch, x, w, bias.data()), want) <= tolerance);
  CHECK(worst_error(forward(g, batch, x, w, bias.data(), Kernel::scalar), want) <= tolerance);
  const std::vector<double> unbiased = naive_forward(g, batch, x, w, nullptr);
  CHECK(worst_error(forward(g, batch, x, w, nullptr), unbiased) <= tolerance);
}

// dx through the forward kernel on dy packed for the transposed convolution.
void check_input_gradient(const ConvGeometry& g, int batch) {
  REQUIRE(has_transposed_convolution(g));
  const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 4);
  const std::vector<float> w = normal_values.kernel_weights(g, 5);
  const ConvGeometry t = transposed_convolution(g);
  const BlockedConv bt(t);
  std::vector<float> packed_w(bt.packed_weights());
  pack_transposed_weights(bt, g, w.data(), packed_w.data());
  for (const Kernel kernel : {Kernel::vector, Kernel::scalar}) {
    const std::vector<float> packed_dx = packed_forward(bt, batch, dy, packed_w, nullptr, kernel);
    std::vector<float> dx(long(batch) * g.in_channels * g.in_pixels());
    unpack_output(bt, batch, packed_dx.data(), dx.data());
    CHECK(worst_error(dx, naive_input_gradient(g, batch, dy, w)) <= tolerance);
  }
}

}  // namespace

TEST_CASE("direct convolution matches the naive one for a 3x3 same convolution at batch 1") {
  check_forward(convolution(20, 9, 9, 33, 3, 1, 1), 1);
}

TEST_CASE("direct convolution matches the naive one at odd batches from three input channels") {
  check_forward(convolution(3, 12, 12, 20, 3, 1, 1), 3);
  check_forward(convolution(3, 10, 10, 33, 3, 1, 1), 5);
}

TEST_CASE("direct convolution matches the naive one for a 1x1 convolution") {
  check_forward(convolution(33, 15, 15, 20, 1, 1, 0), 3);
}

TEST_CASE("direct convolution matches the naive one for a 2x2 valid convolution") {
  check_forward(convolution(3, 32, 32, 24, 2, 1, 0), 2);
}

TEST_CASE("direct convolution matches the naive one for a 5x5 same convolution") {
  check_forward(convolution(20, 7, 7, 33, 5, 1, 2), 3);
}

TEST_CASE("direct convolution matches the naive one at stride 2 with same padding") {
  check_forward(convolution(33, 15, 15, 40, 3, 2, 1), 3);
  check_forward(convolution(20, 32, 32, 32, 3, 2, 1), 1);
  check_forward(convolution(32, 16, 16, 48, 1, 2, 0), 3);
}

TEST_CASE("direct convolution matches the naive one at widths 7 15 and 31") {
  check_forward(convolution(24, 31, 31, 64, 3, 1, 1), 1);
  check_forward(convolution(40, 15, 15, 36, 3, 1, 1), 3);
  check_forward(convolution(33, 7, 7, 64, 3, 1, 1), 5);
  check_forward(convolution(64, 3, 3, 32, 3, 1, 1), 3);
}

TEST_CASE("the 3-wide row kernel matches the naive convolution at every row width it takes") {
  // Widths 1-14 give single tiles of every column count, one output block
  // (two take forward_tile, the third case's 48 channels a lone last block),
  // with valid and same padding and channels off the vector width.
  for (int width = 1; width <= 14; ++width) {
    CAPTURE(width);
    check_forward(convolution(16, 3, width, 16, 3, 3, 1, 1, 1, 1), 2);
    check_forward(convolution(20, 4, width + 2, 32, 3, 3, 1, 1, 0, 0), 1);
    check_forward(convolution(7, 1, width, 48, 1, 3, 1, 1, 0, 1), 1);
  }
}

TEST_CASE("direct convolution matches the naive one on the cifar shapes") {
  check_forward(convolution(64, 32, 32, 64, 3, 1, 1), 1);
  check_forward(convolution(128, 16, 16, 128, 3, 1, 1), 1);
  check_forward(convolution(256, 8, 8, 256, 3, 1, 1), 1);
}

TEST_CASE("direct convolution matches the naive one with a lone last output block on narrow images") {
  // 40 channels are three blocks, 16 one: the last pair holds a single block,
  // whose tiles are one row high even where the pairs stack rows.
  check_forward(convolution(20, 5, 5, 40, 3, 1, 1), 3);
  check_forward(convolution(20, 7, 7, 16, 3, 1, 1), 2);
}

TEST_CASE("direct convolution matches the naive one for uneven kernels strides and paddings") {
  // A 3x5 kernel at strides 3 and 2 over a 10x13 image, padded 1 on top and
  // bottom, 2 on the left and right.
  const ConvGeometry g{20, 10, 13, 24, 4, 7, 3, 5, 3, 2, 1, 2};
  check_forward(g, 3);
  check_forward(convolution(17, 11, 11, 18, 3, 3, 1), 2);
}

TEST_CASE("direct convolution leaves zeros in the channel tail of its packed output") {
  const ConvGeometry g = convolution(20, 9, 9, 20, 3, 1, 1);
  const BlockedConv b(g);
  const std::vector<float> x = normal_values(2L * g.in_channels * g.in_pixels(), 6);
  const std::vector<float> w = normal_values.kernel_weights(g, 7);
  const std::vector<float> bias = normal_values(g.out_channels, 8);
  std::vector<float> packed_w(b.packed_weights());
  pack_forward_weights(b, w.data(), packed_w.data());
  const std::vector<float> packed_y = packed_forward(b, 2, x, packed_w, bias.data(), Kernel::vector);
  int nonzero = 0;
  for (int n = 0; n < 2; ++n)
    for (long p = 0; p < g.out_pixels(); ++p)
      for (int c = g.out_channels % channel_block; c < channel_block; ++c)
        nonzero += packed_y[((long(n) * b.out_blocks + 1) * g.out_pixels() + p) * channel_block + c] != 0.0f;
  CHECK(nonzero == 0);
}

TEST_CASE("the vector and scalar direct convolutions agree") {
  for (const ConvGeometry& g : {convolution(48, 32, 32, 80, 3, 1, 1), convolution(40, 31, 31, 24, 3, 2, 1),
                                convolution(16, 9, 9, 48, 5, 3, 2), convolution(35, 4, 4, 40, 3, 1, 1)}) {
    const std::vector<float> x = normal_values(3L * g.in_channels * g.in_pixels(), 9);
    const std::vector<float> w = normal_values.kernel_weights(g, 10);
    const std::vector<float> bias = normal_values(g.out_channels, 11);
    CHECK(worst_error(forward(g, 3, x, w, bias.data()), forward(g, 3, x, w, bias.data(), Kernel::scalar)) <=
          tolerance);
  }
}

TEST_CASE("direct convolution of dy with transposed weights is the input gradient of a 3x3 same convolution") {
  check_input_gradient(convolution(20, 9, 9, 33, 3, 1, 1), 3);
}

TEST_CASE("direct convolution of dy with transposed weights is the input gradient of a 1x1 convolution") {
  check_input_gradient(convolution(33, 8, 8, 20, 1, 1, 0), 2);
}

TEST_CASE("direct convolution of dy with transposed weights is the input gradient of a 2x2 valid convolution") {
  check_input_gradient(convolution(3, 32, 32, 24, 2, 1, 0), 2);
}

TEST_CASE("direct convolution of dy with transposed weights is the input gradient of a 5x5 same convolution") {
  check_input_gradient(convolution(20, 7, 7, 33, 5, 1, 2), 3);
}
