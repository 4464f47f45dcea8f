// The bf16 compute policy: the rounding itself, ops<cpu>'s convolutions under
// Arithmetic::bf16 against float convolutions of the rounded operands, and
// Model<Net, cpu, bf16> against the same network in float.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <laminar/backend/cpu/conv.hpp>  // the kernels themselves, not only ops<cpu>
#include <laminar/laminar.hpp>
#include <vector>

#include "support/convolution.hpp"
#include "support/model.hpp"
#include "support/reference_convolution.hpp"
#include "support/winograd_reference.hpp"

using namespace laminar;
using laminar_test::bf16_rounded;
using laminar_test::convolution;
using laminar_test::relative_difference;

namespace {

const laminar_test::SeededNormal normal_values(13);

cpu_detail::bf16_bits bits_of(float value) { return cpu_detail::to_bf16(value); }
float float_of(std::uint32_t bits) { return std::bit_cast<float>(bits); }

// Each pass under bf16 equals the im2col float pass over the rounded operands up
// to float summation order, and differs from the unrounded float pass by about
// bf16's precision (2^-9 relative per operand), never by nothing. A pass that
// runs as Winograd on the vdpbf16ps kernels rounds its transformed operands
// instead: it equals the tile-by-tile reference of that.
bool runs_bf16_winograd(const ConvGeometry& g, cpu_detail::ConvPass pass) {
#if defined(__AVX512BF16__)
  return cpu_detail::bf16_kernels() == cpu_detail::Bf16Kernels::dot_product &&
         cpu_detail::use_winograd<cpu_detail::bf16_bits>(g, pass);
#else
  return false;
#endif
}

std::vector<float> as_float(const std::vector<double>& values) { return {values.begin(), values.end()}; }

void check_bf16_passes(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.height);
  CAPTURE(g.kernel_h);
  CAPTURE(g.stride_h);
  CAPTURE(batch);
  const long in = long(batch) * g.in_channels * g.in_pixels(), out = long(batch) * g.out_channels * g.out_pixels();
  const auto x = normal_values(in, 1), dy = normal_values(out, 2), w = normal_values(g.out_channels * g.patch(), 3),
             bias = normal_values(g.out_channels, 4);
  const auto xr = bf16_rounded(x), dyr = bf16_rounded(dy), wr = bf16_rounded(w);
  Workspace<cpu> ws, reference_ws;
  const auto near_bf16 = [](double difference) { return difference > 1e-5 && difference < 2e-2; };

  std::vector<float> y(static_cast<std::size_t>(out)), y_rounded(y.size()), y_float(y.size());
  ops<cpu>::conv2d_forward(g, batch, x.data(), w.data(), bias.data(), y.data(), ws, Arithmetic::bf16);
  if (runs_bf16_winograd(g, cpu_detail::ConvPass::forward))
    y_rounded = as_float(laminar_test::winograd_bf16_forward(g, batch, x, w, bias.data()));
  else
    cpu_detail::im2col_conv_forward(g, batch, xr.data(), wr.data(), bias.data(), y_rounded.data(), reference_ws);
  cpu_detail::im2col_conv_forward(g, batch, x.data(), w.data(), bias.data(), y_float.data(), reference_ws);
  CHECK(relative_difference(y, y_rounded) < 1e-5);
  CHECK(near_bf16(relative_difference(y, y_float)));

  std::vector<float> dx(static_cast<std::size_t>(in)), dx_rounded(dx.size()), dx_float(dx.size());
  ops<cpu>::conv2d_backward_data(g, batch, dy.data(), w.data(), dx.data(), ws, Arithmetic::bf16);
  if (runs_bf16_winograd(g, cpu_detail::ConvPass::backward_data))
    dx_rounded = as_float(laminar_test::winograd_bf16_forward(cpu_detail::transposed_convolution(g), batch, dy,
                                                              laminar_test::flipped_transposed_kernel(g, w), nullptr));
  else
    cpu_detail::im2col_conv_backward_data(g, batch, dyr.data(), wr.data(), dx_rounded.data(), reference_ws);
  cpu_detail::im2col_conv_backward_data(g, batch, dy.data(), w.data(), dx_float.data(), reference_ws);
  CHECK(relative_difference(dx, dx_rounded) < 1e-5);
  CHECK(near_bf16(relative_difference(dx, dx_float)));

  std::vector<float> dw(w.size()), dw_rounded(w.size()), dw_float(w.size()), db(bias.size()), db_float(bias.size());
  ops<cpu>::conv2d_backward_weights(g, batch, x.data(), dy.data(), dw.data(), db.data(), ws, Arithmetic::bf16);
  if (runs_bf16_winograd(g, cpu_detail::ConvPass::backward_weights))
    dw_rounded = as_float(laminar_test::winograd_bf16_weight_gradient(g, batch, x, dy));
  else
    cpu_detail::im2col_conv_backward_weights(g, batch, xr.data(), dyr.data(), dw_rounded.data(),
                                             static_cast<float*>(nullptr), reference_ws);
  cpu_detail::im2col_conv_backward_weights(g, batch, x.data(), dy.data(), dw_float.data(), db_float.data(),
                                           reference_ws);
  CHECK(relative_difference(dw, dw_rounded) < 1e-5);
  CHECK(near_bf16(relative_difference(dw, dw_float)));
  // The bias gradient sums the float dy: no rounding in it.
  CHECK(relative_difference(db, db_float) < 1e-5);
}

// ||a - b|| / ||b||, the error of a whole tensor.
double relative_norm(const std::vector<float>& a, const std::vector<float>& b) {
  double difference = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
    scale += double(b[i]) * double(b[i]);
  }
  return std::sqrt(difference / std::max(scale, 1e-300));
}

// The vdpbf16ps passes, called directly: bf16_kernels() picks them on AMD
// cores only, but they run (and must be right) wherever AVX-512 BF16 exists.
void check_dot_product_passes(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.height);
  CAPTURE(g.kernel_h);
  CAPTURE(batch);
  const long in = long(batch) * g.in_channels * g.in_pixels(), out = long(batch) * g.out_channels * g.out_pixels();
  const auto x = normal_values(in, 5), dy = normal_values(out, 6), w = normal_values(g.out_channels * g.patch(), 7),
             bias = normal_values(g.out_channels, 8);
  const auto xr = bf16_rounded(x), dyr = bf16_rounded(dy), wr = bf16_rounded(w);
  Workspace<cpu> ws, reference_ws;

  std::vector<float> y(static_cast<std::size_t>(out)), y_rounded(y.size());
  cpu_detail::dot_product_conv2d_forward(g, batch, x.data(), w.data(), bias.data(), y.data(), ws);
  cpu_detail::im2col_conv_forward(g, batch, xr.data(), wr.data(), bias.data(), y_rounded.data(), reference_ws);
  CHECK(relative_difference(y, y_rounded) < 1e-5);

  std::vector<float> dx(static_cast<std::size_t>(in)), dx_rounded(dx.size());
  cpu_detail::dot_product_conv2d_backward_data(g, batch, dy.data(), w.data(), dx.data(), ws);
  cpu_detail::im2col_conv_backward_data(g, batch, dyr.data(), wr.data(), dx_rounded.data(), reference_ws);
  CHECK(relative_difference(dx, dx_rounded) < 1e-5);

  std::vector<float> dw(w.size()), dw_rounded(w.size()), db(bias.size()), db_float(bias.size()), unused(w.size());
  cpu_detail::dot_product_conv2d_backward_weights(g, batch, x.data(), dy.data(), dw.data(), db.data(), ws);
  cpu_detail::im2col_conv_backward_weights(g, batch, xr.data(), dyr.data(), dw_rounded.data(),
                                           static_cast<float*>(nullptr), reference_ws);
  cpu_detail::im2col_conv_backward_weights(g, batch, x.data(), dy.data(), unused.data(), db_float.data(), reference_ws);
  CHECK(relative_difference(dw, dw_rounded) < 1e-5);
  CHECK(relative_difference(db, db_float) < 1e-5);
}

template <class M>
std::vector<float> forward_of(M& model, const std::vector<float>& input, int batch) {
  using Net = typename M::network;
  const auto y = model.forward(View<const float, cpu, typename Net::input_shape>{input.data(), batch});
  return {y.data, y.data + long(batch) * Net::output_shape::size};
}

}  // namespace

TEST_CASE("bf16 rounding is to nearest with ties to even") {
  CHECK(bits_of(1.0f) == 0x3f80);
  CHECK(bits_of(float_of(0x3f808000u)) == 0x3f80);  // 1 + 2^-8: a tie, down to the even 1
  CHECK(bits_of(float_of(0x3f818000u)) == 0x3f82);  // 1 + 3 * 2^-8: a tie, up to the even neighbour
  CHECK(bits_of(float_of(0x3f808001u)) == 0x3f81);  // just above the tie
  CHECK(bits_of(float_of(0x3f807fffu)) == 0x3f80);  // just below it
  CHECK(bits_of(-2.5f) == 0xc020);
  CHECK(cpu_detail::from_bf16(0x4049) == 3.140625f);
  CHECK(cpu_detail::round_to_bf16(3.14159265f) == 3.140625f);
}

TEST_CASE("bf16 rounding flushes subnormals, overflows to infinity and keeps NaN a NaN") {
  CHECK(bits_of(1e-40f) == 0x0000);
  CHECK(bits_of(-1e-40f) == 0x8000);
  CHECK(bits_of(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(bits_of(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(bits_of(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(std::isnan(cpu_detail::from_bf16(bits_of(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(cpu_detail::from_bf16(bits_of(float_of(0x7f800001u)))));  // a signalling NaN whose payload is all low bits
}

TEST_CASE("bf16 convolutions equal float convolutions of the rounded operands, or transforms, at the CIFAR shapes") {
  check_bf16_passes(convolution(64, 32, 32, 64, 3, 1, 1), 2);
  check_bf16_passes(convolution(128, 16, 16, 128, 3, 1, 1), 3);
  check_bf16_passes(convolution(256, 8, 8, 256, 3, 1, 1), 2);
  check_bf16_passes(convolution(24, 31, 31, 64, 3, 1, 0), 1);
  check_bf16_passes(convolution(16, 32, 32, 16, 3, 1, 1), 3);
}

TEST_CASE("bf16 convolutions equal float convolutions of the rounded operands off the vector width and stride") {
  check_bf16_passes(convolution(3, 32, 32, 24, 2, 1, 0), 2);    // the airbench whitening conv
  check_bf16_passes(convolution(20, 7, 9, 33, 3, 1, 1), 5);
  check_bf16_passes(convolution(33, 15, 15, 20, 5, 1, 2), 1);
  check_bf16_passes(convolution(16, 32, 32, 32, 3, 2, 1), 3);   // strided
  check_bf16_passes(convolution(16, 16, 16, 32, 1, 2, 0), 2);   // strided 1x1 shortcut
}

TEST_CASE("the vdpbf16ps convolution passes equal float convolutions of the rounded operands") {
  check_dot_product_passes(convolution(64, 32, 32, 64, 3, 1, 1), 2);
  check_dot_product_passes(convolution(24, 31, 31, 64, 3, 1, 0), 3);
  check_dot_product_passes(convolution(20, 7, 9, 33, 3, 1, 1), 5);
  check_dot_product_passes(convolution(3, 32, 32, 24, 2, 1, 0), 1);
  check_dot_product_passes(convolution(33, 15, 15, 20, 5, 1, 2), 1);
}

TEST_CASE("a bf16 model keeps float tensors and the float model's parameter names") {
  using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 16>, BatchNorm, ReLU, Flatten, Dense<4>>;
  static_assert(std::is_same_v<Model<Net, cpu, bf16>::value_type, float>);
  static_assert(std::is_same_v<Model<Net, cpu, bf16>::compute_type, bf16>);
  Model<Net, cpu, bf16> half;
  Model<Net, cpu, float> single;
  REQUIRE(half.parameters().size() == single.parameters().size());
  for (std::size_t i = 0; i < half.parameters().size(); ++i)
    CHECK(half.parameters()[i].name == single.parameters()[i].name);
}

// The network is smooth on purpose. Through ReLU, SELU (whose derivative jumps
// at 0) or max pooling, any relative
// perturbation e of the activations (bf16's is about 2^-9) flips the kinks and
// window winners within e of a tie, and each flip moves a gradient entry by a
// whole value: the gradients then differ by about sqrt(e) in norm (measured 3-5%
// here with ReLU) however exact the arithmetic, in every low-precision library.
TEST_CASE("a bf16 network's outputs and gradients are the float network's within 2e-2") {
  using Net = Sequential<Input<3, 16, 16>, Conv<3, 3, 32>, BatchNorm, GELU, AvgPool<2>, Conv<3, 3, 48>, BatchNorm,
                         GELU, Conv<3, 3, 16, 2>, Tanh, Flatten, Dense<10>>;
  Model<Net, cpu, bf16> half;
  Model<Net, cpu, float> single;
  half.initialize(21);
  single.initialize(21);
  const int batch = 5;
  const auto input = normal_values(long(batch) * Net::input_shape::size, 9);
  for (const bool training : {true, false}) {
    CAPTURE(training);
    half.train(training);
    single.train(training);
    const auto y = forward_of(half, input, batch), y_float = forward_of(single, input, batch);
    CHECK(relative_norm(y, y_float) < 2e-2);
    CHECK(relative_norm(y, y_float) > 1e-5);  // the bf16 path did run
    const auto dy = normal_values(long(y.size()), 10);
    std::vector<float> dx(input.size()), dx_float(input.size());
    half.backward(View<const float, cpu, Net::output_shape>{dy.data(), batch}, dx.data());
    single.backward(View<const float, cpu, Net::output_shape>{dy.data(), batch}, dx_float.data());
    CHECK(relative_norm(dx, dx_float) < 2e-2);
    for (const auto& p : single.parameters()) {
      // A convolution's bias under BatchNorm has gradient zero, so both models'
      // are rounding noise.
      if (!p.parameter->trainable() || p.name == "1.bias" || p.name == "5.bias") continue;
      CAPTURE(p.name);
      const auto& q = laminar_test::parameter(half, p.name);
      const std::vector<float> g(q.grad(), q.grad() + q.size), g_float(p.parameter->grad(),
                                                                       p.parameter->grad() + p.parameter->size);
      CHECK(relative_norm(g, g_float) < 2e-2);
    }
  }
}

TEST_CASE("a float model switched to bf16 arithmetic computes what a bf16 model computes") {
  using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 16>, BatchNorm, GELU, Flatten, Dense<4>>;
  Model<Net, cpu, bf16> half;
  Model<Net, cpu, float> switched;
  CHECK(half.arithmetic() == Arithmetic::bf16);
  CHECK(switched.arithmetic() == Arithmetic::native);
  switched.set_arithmetic(Arithmetic::bf16);
  half.initialize(3);
  switched.initialize(3);
  const int batch = 2;
  const auto input = normal_values(long(batch) * Net::input_shape::size, 5);
  CHECK(forward_of(half, input, batch) == forward_of(switched, input, batch));
}

TEST_CASE("bf16 arithmetic on a double model is refused by name") {
  using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 16>, Flatten, Dense<4>>;
  Model<Net, cpu, double> model;
  CHECK_THROWS_WITH_AS(model.set_arithmetic(Arithmetic::bf16),
                       doctest::Contains("bf16 arithmetic needs a float model"), Error);
  CHECK(model.arithmetic() == Arithmetic::native);
}
