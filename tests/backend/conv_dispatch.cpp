// ops<cpu>'s convolutions, whichever algorithm they pick for a geometry (direct
// blocked kernels for float on AVX-512, im2col otherwise), equal the im2col +
// GEMM reference in every pass, and a float network's forward and gradients equal
// the same network in double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <laminar/backend/cpu/conv.hpp>  // the kernels themselves, not only ops<cpu>

#include "support/convolution.hpp"
#include "support/gradient_check.hpp"
#include "support/model.hpp"
#include "support/reference_convolution.hpp"

using namespace laminar;
using laminar_test::convolution;
using laminar_test::relative_difference;

namespace {

const laminar_test::SeededNormal normal_values(11);

void check_passes_match_reference(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.height);
  CAPTURE(g.kernel_h);
  CAPTURE(g.stride_h);
  CAPTURE(batch);
  const long in = long(batch) * g.in_channels * g.in_pixels(), out = long(batch) * g.out_channels * g.out_pixels();
  const auto x = normal_values(in, 1), dy = normal_values(out, 2), w = normal_values(g.out_channels * g.patch(), 3),
             bias = normal_values(g.out_channels, 4);
  Workspace<cpu> ws, reference_ws;

  // 1e-5 of the largest output; where F(4x4, 3x3) runs, 3e-5: its transforms'
  // coefficients (up to 8) leave about 20x F(2x2)'s rounding, measured up to
  // 1.3e-5 of the largest output at 256 channels (tests/backend/winograd_conv.cpp).
  const auto tolerance = [](const ConvGeometry& run, cpu_detail::ConvPass pass) {
#if defined(__AVX512F__)
    if (cpu_detail::use_winograd(run, pass) && cpu_detail::use_winograd4(pass == cpu_detail::ConvPass::backward_data
                                                                            ? cpu_detail::transposed_convolution(run)
                                                                            : run))
      return 3e-5;
#endif
    (void)run, (void)pass;
    return 1e-5;
  };

  std::vector<float> y(static_cast<std::size_t>(out)), y_ref(y.size());
  ops<cpu>::conv2d_forward(g, batch, x.data(), w.data(), bias.data(), y.data(), ws);
  cpu_detail::im2col_conv_forward(g, batch, x.data(), w.data(), bias.data(), y_ref.data(), reference_ws);
  CHECK(relative_difference(y, y_ref) < tolerance(g, cpu_detail::ConvPass::forward));

  std::vector<float> dx(static_cast<std::size_t>(in)), dx_ref(dx.size());
  ops<cpu>::conv2d_backward_data(g, batch, dy.data(), w.data(), dx.data(), ws);
  cpu_detail::im2col_conv_backward_data(g, batch, dy.data(), w.data(), dx_ref.data(), reference_ws);
  CHECK(relative_difference(dx, dx_ref) < tolerance(g, cpu_detail::ConvPass::backward_data));

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

TEST_CASE("strided input gradients, as phases of the direct kernel, equal the im2col reference") {
  // Every phase shape: taps 1 and 2 (3x3, stride 2), a tapless phase (1x1 and
  // 2x2 kernels), strides 3 and (2, 1), no padding, padding 2, odd sizes whose
  // last phase is a pixel shorter, channels off the vector width.
  check_passes_match_reference(convolution(16, 15, 13, 32, 3, 2, 1), 2);
  check_passes_match_reference(convolution(20, 9, 9, 17, 3, 2, 0), 3);
  check_passes_match_reference(convolution(16, 12, 12, 16, 2, 2, 0), 2);
  check_passes_match_reference(convolution(16, 13, 11, 32, 1, 2, 0), 1);
  check_passes_match_reference(convolution(8, 14, 11, 16, 5, 2, 2), 2);
  check_passes_match_reference(convolution(16, 16, 17, 16, 3, 3, 1), 2);
  check_passes_match_reference(convolution(16, 10, 9, 32, 3, 3, 2, 1, 1, 1), 3);
}

TEST_CASE("a float network through the cpu convolutions matches the same network in double") {
  using Net = Sequential<Input<20, 9, 9>, Conv<3, 3, 33>, ReLU, Conv<3, 3, 17, 2>, ReLU, Conv<1, 1, 16>, Flatten,
                         Dense<5>>;
  Model<Net, cpu, float> single;
  Model<Net, cpu, double> reference;
  single.initialize(5);
  reference.initialize(5);
  const int batch = 3;
  const auto input = normal_values(long(batch) * Net::input_shape::size, 7);
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

namespace {

// The ReLU epilogue writes exactly what a ReLU pass after the convolution
// would: x < 0 ? 0 : x per element, a NaN kept (one NaN input poisons the sums
// of its windows).
template <class T>
void check_relu_epilogue(const ConvGeometry& g, int batch, Arithmetic arithmetic) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.kernel_h);
  CAPTURE(batch);
  const long in = long(batch) * g.in_channels * g.in_pixels(), out = long(batch) * g.out_channels * g.out_pixels();
  const auto xf = normal_values(in, 8), wf = normal_values(g.out_channels * g.patch(), 9),
             bf = normal_values(g.out_channels, 10);
  std::vector<T> x(xf.begin(), xf.end()), w(wf.begin(), wf.end()), bias(bf.begin(), bf.end());
  x[std::size_t(in / 2)] = std::numeric_limits<T>::quiet_NaN();
  Workspace<cpu> ws;
  std::vector<T> plain(static_cast<std::size_t>(out)), fused(plain.size());
  ops<cpu>::conv2d_forward(g, batch, x.data(), w.data(), bias.data(), plain.data(), ws, arithmetic);
  ops<cpu>::conv2d_forward(g, batch, x.data(), w.data(), bias.data(), fused.data(), ws, arithmetic, ConvEpilogue::relu);
  long nans = 0, zeros = 0, mismatches = 0;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    if (std::isnan(plain[i])) {
      nans += std::isnan(fused[i]);
      continue;
    }
    const T expected = plain[i] < T(0) ? T(0) : plain[i];
    zeros += expected == T(0);
    mismatches += std::memcmp(&expected, &fused[i], sizeof(T)) != 0;
  }
  CHECK(mismatches == 0);
  CHECK(zeros > 0);
  CHECK(nans == std::count_if(plain.begin(), plain.end(), [](T v) { return std::isnan(v); }));
  CHECK(nans > 0);
}

}  // namespace

TEST_CASE("the relu epilogue of every convolution path equals relu applied after it") {
  check_relu_epilogue<float>(convolution(20, 9, 11, 33, 3, 1, 1), 3, Arithmetic::native);   // direct kernels
  check_relu_epilogue<float>(convolution(16, 16, 16, 32, 3, 2, 1), 2, Arithmetic::native);  // strided
  check_relu_epilogue<float>(convolution(24, 15, 15, 64, 3, 1, 1), 1, Arithmetic::bf16);
  check_relu_epilogue<double>(convolution(20, 9, 11, 33, 3, 1, 1), 3, Arithmetic::native);  // im2col
  check_relu_epilogue<double>(convolution(8, 6, 6, 4, 1, 1, 0), 2, Arithmetic::native);     // pointwise im2col
}

TEST_CASE("the scalar direct kernel applies the relu epilogue as the vector kernel does") {
  const ConvGeometry g = convolution(20, 9, 11, 33, 3, 1, 1);
  const cpu_detail::BlockedConv b(g);
  const int batch = 2;
  const auto x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 11),
             w = normal_values(g.out_channels * g.patch(), 12);
  std::vector<float> packed_x(std::size_t(batch * b.input_image())), packed_w(std::size_t(b.packed_weights()));
  cpu_detail::pack_input(b, batch, x.data(), packed_x.data());
  cpu_detail::pack_forward_weights(b, w.data(), packed_w.data());
  std::vector<float> vector(std::size_t(batch * b.output_image())), scalar(vector.size());
  cpu_detail::direct_conv_forward(b, batch, packed_x.data(), packed_w.data(), nullptr, vector.data(),
                                  ConvEpilogue::relu);
  cpu_detail::direct_conv_forward_scalar(b, batch, packed_x.data(), packed_w.data(), nullptr, scalar.data(),
                                         ConvEpilogue::relu);
  CHECK(relative_difference(vector, scalar) < 1e-5);
  CHECK(*std::min_element(vector.begin(), vector.end()) == 0.0f);
  CHECK(*std::min_element(scalar.begin(), scalar.end()) == 0.0f);
}
