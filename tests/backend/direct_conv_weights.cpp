// The direct weight-gradient kernel: pack_input(x), pack_output(dy), the kernel and
// unpack_weights give dw[o][i][ky][kx] = sum over n, oy, ox of
// x[n][i][oy*sh + ky - pad_top][ox*sw + kx - pad_left] dy[n][o][oy][ox] and dbias = sum of
// dy, computed naively in double, for the vector and the scalar kernel at 1, 2 and 3
// threads; and the same bits from two runs.
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

using laminar_test::check_close;
using laminar_test::naive_bias_gradient;
using laminar_test::naive_weight_gradient;
using laminar_test::NaiveSums;

const laminar_test::SeededNormal normal_values(20240611);

ConvGeometry square(int in_channels, int size, int out_channels, int kernel, int stride, int pad) {
  return laminar_test::convolution(in_channels, size, size, out_channels, kernel, stride, pad);
}

struct Gradients {
  std::vector<float> dw, dbias;
};

using Kernel = void (*)(const BlockedConv&, int, const float*, const float*, float*, float*, float*);

// Runs `kernel` with `threads` OpenMP threads on outputs filled with NaN, so that a
// value the kernel fails to overwrite shows. Restores the thread count afterwards.
Gradients run(Kernel kernel, const ConvGeometry& g, int batch, const std::vector<float>& x,
              const std::vector<float>& dy, int threads, bool with_bias = true) {
  const BlockedConv b(g);
  std::vector<float> packed_x(batch * b.input_image()), packed_dy(batch * b.output_image());
  pack_input(b, batch, x.data(), packed_x.data());
  pack_output(b, batch, dy.data(), packed_dy.data());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> packed_dw(b.packed_weights(), nan);
  Gradients out;
  out.dw.assign(long(g.out_channels) * g.in_channels * g.kernel_h * g.kernel_w, nan);
  out.dbias.assign(g.out_channels, nan);
  const int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
  std::vector<float> scratch(direct_conv_weights_scratch(b, omp_get_max_threads()), nan);
  kernel(b, batch, packed_x.data(), packed_dy.data(), packed_dw.data(), with_bias ? out.dbias.data() : nullptr,
         scratch.data());
  omp_set_num_threads(previous);
  unpack_weights(b, packed_dw.data(), out.dw.data());
  return out;
}

// Both kernels at 1, 2 and 3 threads against the naive sums (relative error 1e-4 of
// the sum of |terms|), and the vector kernel against the scalar one, which adds the
// same products in the same order (1e-5 of the same scale: only the rounding of the
// fused multiply-add differs).
void check_geometry(const ConvGeometry& g, int batch) {
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 1);
  const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 2);
  const NaiveSums dw = naive_weight_gradient(g, batch, x, dy), dbias = naive_bias_gradient(g, batch, dy);
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    const Gradients vector = run(direct_conv_backward_weights, g, batch, x, dy, threads);
    const Gradients scalar = run(direct_conv_backward_weights_scalar, g, batch, x, dy, threads);
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
}  // namespace

TEST_CASE("direct weight gradient of a 3x3 same convolution of 3 channels at batch 1 is the naive sum") {
  check_geometry(square(3, 7, 20, 3, 1, 1), 1);
}

TEST_CASE("direct weight gradient of a 5x5 same convolution of 20 channels at batch 3 is the naive sum") {
  check_geometry(square(20, 15, 33, 5, 1, 2), 3);
}

TEST_CASE("direct weight gradient of a 1x1 convolution of 33 channels at batch 5 is the naive sum") {
  check_geometry(square(33, 31, 3, 1, 1, 0), 5);
}

TEST_CASE("direct weight gradient of a 2x2 valid convolution at batch 4 is the naive sum") {
  check_geometry(square(20, 15, 20, 2, 1, 0), 4);
}

TEST_CASE("direct weight gradient of a stride-2 same convolution of an odd-sized image is the naive sum") {
  check_geometry(square(33, 15, 20, 3, 2, 1), 5);
}

TEST_CASE("direct weight gradient of a stride-2 same convolution of an even-sized image is the naive sum") {
  check_geometry(square(20, 16, 33, 3, 2, 1), 3);
}

TEST_CASE("direct weight gradient of a 1x3 kernel with strides 2 and 1 is the naive sum") {
  check_geometry(laminar_test::convolution(20, 7, 15, 33, 1, 3, 2, 1, 0, 1), 3);
}

TEST_CASE("direct weight gradient of 24 channels, a block and a half, at width 31 is the naive sum") {
  check_geometry(square(24, 31, 64, 3, 1, 1), 3);
}

TEST_CASE("direct weight gradient of 12 channels, three quarters of a block, at width 15 is the naive sum") {
  check_geometry(square(12, 15, 20, 3, 1, 1), 5);
}

TEST_CASE("direct weight gradient of the CIFAR first stage, 64x32x32 to 64, is the naive sum") {
  check_geometry(square(64, 32, 64, 3, 1, 1), 2);
}

TEST_CASE("direct weight gradient of the CIFAR second stage, 128x16x16 to 128, is the naive sum") {
  check_geometry(square(128, 16, 128, 3, 1, 1), 2);
}

TEST_CASE("direct weight gradient of the CIFAR third stage, 256x8x8 to 256, is the naive sum") {
  check_geometry(square(256, 8, 256, 3, 1, 1), 3);
}

TEST_CASE("direct weight gradient gives the same bits in two runs for a given thread count") {
  // Batch 4 splits the images between two threads, batch 5 the dw items.
  const ConvGeometry g = square(20, 15, 33, 3, 1, 1);
  for (int batch : {4, 5}) {
    CAPTURE(batch);
    const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 3);
    const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 4);
    const Gradients first = run(direct_conv_backward_weights, g, batch, x, dy, 2);
    const Gradients second = run(direct_conv_backward_weights, g, batch, x, dy, 2);
    CHECK(same_bits(first.dw, second.dw));
    CHECK(same_bits(first.dbias, second.dbias));
  }
}

TEST_CASE("direct weight gradient without a bias pointer gives the same weight gradient") {
  const ConvGeometry g = square(20, 15, 33, 3, 1, 1);
  for (int batch : {4, 5}) {
    CAPTURE(batch);
    const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 5);
    const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 6);
    const Gradients with_bias = run(direct_conv_backward_weights, g, batch, x, dy, 2);
    const Gradients without_bias = run(direct_conv_backward_weights, g, batch, x, dy, 2, false);
    CHECK(same_bits(with_bias.dw, without_bias.dw));
  }
}
