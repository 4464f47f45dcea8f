// ops<cpu>'s convolutions, whichever algorithm they pick for a geometry (direct
// blocked kernels for float on AVX-512, im2col otherwise), equal the im2col +
// GEMM reference in every pass, and a float network's forward and gradients equal
// the same network in double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "support/convolution.hpp"
#include "support/gradient_check.hpp"
#include "support/model.hpp"

using namespace laminar;
using laminar_test::convolution;

namespace {

std::vector<float> random_values(long n, std::uint32_t stream) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) v[std::size_t(i)] = float(philox::normal(11, stream, 0, std::uint64_t(i)));
  return v;
}

// Largest |a - b| relative to the largest |b|: the sums of a convolution mix
// terms of both signs, so a per-element relative error means nothing near zero.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double difference = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference = std::max(difference, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return difference / std::max(scale, 1e-30);
}

void check_passes_match_reference(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.height);
  CAPTURE(g.kernel_h);
  CAPTURE(g.stride_h);
  CAPTURE(batch);
  const long in = long(batch) * g.in_channels * g.in_pixels(), out = long(batch) * g.out_channels * g.out_pixels();
  const auto x = random_values(in, 1), dy = random_values(out, 2), w = random_values(g.out_channels * g.patch(), 3),
             bias = random_values(g.out_channels, 4);
  Workspace<cpu> ws, reference_ws;

  std::vector<float> y(static_cast<std::size_t>(out)), y_ref(y.size());
  ops<cpu>::conv2d_forward(g, batch, x.data(), w.data(), bias.data(), y.data(), ws);
  cpu_detail::im2col_conv_forward(g, batch, x.data(), w.data(), bias.data(), y_ref.data(), reference_ws);
  CHECK(relative_difference(y, y_ref) < 1e-5);

  std::vector<float> dx(static_cast<std::size_t>(in)), dx_ref(dx.size());
  ops<cpu>::conv2d_backward_data(g, batch, dy.data(), w.data(), dx.data(), ws);
  cpu_detail::im2col_conv_backward_data(g, batch, dy.data(), w.data(), dx_ref.data(), reference_ws);
  CHECK(relative_difference(dx, dx_ref) < 1e-5);

  std::vector<float> dw(w.size()), dw_ref(w.size()), db(bias.size()), db_ref(bias.size());
  ops<cpu>::conv2d_backward_weights(g, batch, x.data(), dy.data(), dw.data(), db.data(), ws);
  cpu_detail::im2col_conv_backward_weights(g, batch, x.data(), dy.data(), dw_ref.data(), db_ref.data(),
                                           reference_ws);
  CHECK(relative_difference(dw, dw_ref) < 1e-5);
  CHECK(relative_difference(db, db_ref) < 1e-5);
}


}  // namespace

TEST_CASE("cpu convolutions equal the im2col reference at the CIFAR shapes") {
  check_passes_match_reference(convolution(64, 32, 32, 64, 3, 1, 1), 2);
  check_passes_match_reference(convolution(128, 16, 16, 128, 3, 1, 1), 3);
  check_passes_match_reference(convolution(256, 8, 8, 256, 3, 1, 1), 2);
  check_passes_match_reference(convolution(24, 31, 31, 64, 3, 1, 1), 1);
}

TEST_CASE("cpu convolutions equal the im2col reference for channel counts off the vector width") {
  check_passes_match_reference(convolution(3, 32, 32, 32, 3, 1, 1), 3);
  check_passes_match_reference(convolution(20, 7, 9, 33, 3, 1, 1), 5);
  check_passes_match_reference(convolution(33, 15, 15, 20, 3, 1, 1), 1);
}

TEST_CASE("cpu convolutions equal the im2col reference for other kernels, strides and paddings") {
  check_passes_match_reference(convolution(16, 8, 8, 16, 1, 1, 0), 3);    // pointwise
  check_passes_match_reference(convolution(3, 32, 32, 24, 2, 1, 0), 2);   // the airbench whitening conv
  check_passes_match_reference(convolution(16, 11, 11, 32, 5, 1, 2), 1);  // 5x5 same
  check_passes_match_reference(convolution(16, 32, 32, 32, 3, 2, 1), 3);  // strided: input gradient by im2col
  check_passes_match_reference(convolution(16, 16, 16, 32, 1, 2, 0), 2);  // strided 1x1 shortcut
}

TEST_CASE("a float network through the cpu convolutions matches the same network in double") {
  using Net = Sequential<Input<20, 9, 9>, Conv<3, 3, 33>, ReLU, Conv<3, 3, 17, 2>, ReLU, Conv<1, 1, 16>, Flatten,
                         Dense<5>>;
  Model<Net, cpu, float> single;
  Model<Net, cpu, double> reference;
  single.initialize(5);
  reference.initialize(5);
  const int batch = 3;
  const auto input = random_values(long(batch) * Net::input_shape::size, 7);
  std::vector<double> input_double(input.begin(), input.end());

  const auto y = laminar_test::forward(single, input.data(), batch);
  const auto y_ref = laminar_test::forward(reference, input_double.data(), batch);
  REQUIRE(y.size() == y_ref.size());
  double worst = 0;
  for (std::size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::abs(double(y[i]) - y_ref[i]));
  CHECK(worst < 1e-4);

  const std::vector<float> dy(y.size(), 1.f);
  const std::vector<double> dy_double(y.size(), 1.0);
  single.backward(View<const float, cpu, Net::output_shape>{dy.data(), batch});
  reference.backward(View<const double, cpu, Net::output_shape>{dy_double.data(), batch});
  for (const auto& p : reference.parameters()) {
    CAPTURE(p.name);
    const auto& q = laminar_test::parameter(single, p.name);
    const std::vector<float> g(q.grad(), q.grad() + q.size);
    const std::vector<double> g_ref(p.parameter->grad(), p.parameter->grad() + p.parameter->size);
    double difference = 0, scale = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      difference = std::max(difference, std::abs(double(g[i]) - g_ref[i]));
      scale = std::max(scale, std::abs(g_ref[i]));
    }
    CHECK(difference <= 1e-4 * std::max(scale, 1.0));
  }
}
