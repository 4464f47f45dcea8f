// Winograd F(2x2, 3x3) and, in float, F(4x4, 3x3): the forward and the input
// gradient by either equal the naive convolution in double for every output
// size (odd, one tile, less than one), padding, channel count off
// the vector width, batch (images are grouped per work item, so batches that do
// not divide the group) and epilogue; and the dispatch of ops<cpu> picks it where
// its rule says.
//
// Agreement is |got - want| <= 1e-4 * max(1, |want|), as for the direct kernels:
// inputs are standard normal and weights scaled by 1 / sqrt(Cin * 9), so every
// output is of order 1 and one missing or doubled term (>= 1 / sqrt(Cin * 9),
// 0.02 at 256 channels) is far outside it. The transforms add up to 16 terms
// (F(2x2)) or 36 with coefficients up to 8 (F(4x4)) before the products, so
// Winograd's rounding error is larger than the direct kernel's: below 1e-5
// here for F(2x2), up to about 3e-5 for F(4x4) at 256 channels.
//
// The bf16 transforms (for the vdpbf16ps kernels) equal the tile-by-tile
// reference of support/winograd_reference.hpp, which rounds the same float
// transforms to bf16, to float summation (1e-4 as above; one transformed value
// rounded the other way moves an output by ~2^-8 / sqrt(Cin * 9), above it at
// the shapes here), and the exact convolution to bf16 precision.
#include <doctest/doctest.h>

#include <omp.h>

#include <laminar/backend/cpu/conv.hpp>  // the kernels themselves, not only ops<cpu>
#include <laminar/backend/cpu/ops.hpp>
#include <type_traits>
#include <vector>

#include "support/convolution.hpp"
#include "support/reference_convolution.hpp"
#include "support/winograd_reference.hpp"

using namespace laminar;
using namespace laminar::cpu_detail;

#if defined(__AVX512F__)

namespace {

constexpr double tolerance = 1e-4;

using laminar_test::convolution;
using laminar_test::naive_forward;
using laminar_test::naive_input_gradient;
using laminar_test::relative_difference;
using laminar_test::worst_error;

const laminar_test::SeededNormal normal_values(2026);

std::vector<double> relu(std::vector<double> values) {
  for (double& v : values) v = v < 0 ? 0 : v;
  return values;
}

// The forward by Winograd plan P: F(2x2, 3x3) (winograd::Plan) or F(4x4, 3x3)
// (Plan4), whichever the dispatch would pick.
template <class P>
void winograd_forward(const ConvGeometry& g, int batch, const float* x, const float* w, const float* bias, float* y,
                      Workspace<cpu>& ws, ConvEpilogue epilogue = ConvEpilogue::none) {
  winograd_pass<float, P>(
      g, batch, x, [&](const BlockedConv& b, float* packed) { pack_forward_weights(b, w, packed); }, bias, y, ws,
      epilogue, ConvLayouts{});
}

template <class P>
void check_forward_by(const ConvGeometry& g, int batch) {
  CAPTURE(P::out_tile);
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 1);
  const std::vector<float> w = normal_values.kernel_weights(g, 2);
  const std::vector<float> bias = normal_values(g.out_channels, 3);
  Workspace<cpu> ws;
  // Pre-filled, so an output pixel the transform never writes shows.
  std::vector<float> y(std::size_t(long(batch) * g.out_channels * g.out_pixels()), 1e9f);
  winograd_forward<P>(g, batch, x.data(), w.data(), bias.data(), y.data(), ws);
  const double error = worst_error(y, naive_forward(g, batch, x, w, bias.data()));
  CHECK(error <= tolerance);
  std::fill(y.begin(), y.end(), 1e9f);
  winograd_forward<P>(g, batch, x.data(), w.data(), nullptr, y.data(), ws);
  CHECK(worst_error(y, naive_forward(g, batch, x, w, nullptr)) <= tolerance);
  std::fill(y.begin(), y.end(), 1e9f);
  winograd_forward<P>(g, batch, x.data(), w.data(), bias.data(), y.data(), ws, ConvEpilogue::relu);
  CHECK(worst_error(y, relu(naive_forward(g, batch, x, w, bias.data()))) <= tolerance);
}

void check_forward(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.height);
  CAPTURE(g.width);
  CAPTURE(g.pad_top);
  CAPTURE(batch);
  REQUIRE(winograd_applicable(g));
  check_forward_by<winograd::Plan>(g, batch);
  check_forward_by<winograd::Plan4>(g, batch);
}

// The input gradient is the forward of the transposed convolution, by either plan.
void check_input_gradient(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.height);
  CAPTURE(g.pad_top);
  CAPTURE(batch);
  const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 4);
  const std::vector<float> w = normal_values.kernel_weights(g, 5);
  const std::vector<double> want = naive_input_gradient(g, batch, dy, w);
  const auto pack = [&](const BlockedConv& b, float* packed) { pack_transposed_weights(b, g, w.data(), packed); };
  Workspace<cpu> ws;
  std::vector<float> dx(std::size_t(long(batch) * g.in_channels * g.in_pixels()), 1e9f);
  winograd_pass<float, winograd::Plan>(transposed_convolution(g), batch, dy.data(), pack, nullptr, dx.data(), ws,
                                       ConvEpilogue::none, ConvLayouts{});
  CHECK(worst_error(dx, want) <= tolerance);
  std::fill(dx.begin(), dx.end(), 1e9f);
  winograd_pass<float, winograd::Plan4>(transposed_convolution(g), batch, dy.data(), pack, nullptr, dx.data(), ws,
                                        ConvEpilogue::none, ConvLayouts{});
  CHECK(worst_error(dx, want) <= tolerance);
  std::fill(dx.begin(), dx.end(), 1e9f);
  winograd_conv2d_backward_data(g, batch, dy.data(), w.data(), dx.data(), ws);  // as dispatched
  CHECK(worst_error(dx, want) <= tolerance);
}

// Rounded, but not by nothing and by no more than bf16's precision allows.
bool near_bf16(double difference) { return difference > 1e-5 && difference < 2e-2; }

// dw and dbias at 1, 2 and 3 threads (each thread sums its own share of the
// images), to 1e-4 of the exact gradient's sum of |terms| (the scale of its
// sums' rounding, as for the direct kernel): in float against the naive sums;
// on bf16 tiles against the tile-by-tile reference that rounds the same
// transforms, and within bf16 precision of the exact gradient. dbias sums the
// float dy in both. The same bits from a second run.
template <class Element>
void check_weight_gradient(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.height);
  CAPTURE(g.width);
  CAPTURE(g.pad_top);
  CAPTURE(batch);
  constexpr bool rounded = !std::is_same_v<Element, float>;
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), rounded ? 13 : 11);
  const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), rounded ? 14 : 12);
  const laminar_test::NaiveSums exact = laminar_test::naive_weight_gradient(g, batch, x, dy);
  const laminar_test::NaiveSums dbias = laminar_test::naive_bias_gradient(g, batch, dy);
  std::vector<double> want = exact.values;
  if constexpr (rounded) want = laminar_test::winograd_bf16_weight_gradient(g, batch, x, dy);
  const int previous = omp_get_max_threads();
  // As dispatched, and in float by each plan.
  using Run = void (*)(const ConvGeometry&, int, const float*, const float*, float*, float*, Workspace<cpu>&,
                       ConvLayouts);
  std::vector<Run> runs{[](const ConvGeometry& g, int batch, const float* x, const float* dy, float* dw, float* db,
                           Workspace<cpu>& ws, ConvLayouts) {
    winograd_conv2d_backward_weights<Element>(g, batch, x, dy, dw, db, ws);
  }};
  if constexpr (!rounded) {
    runs.push_back(&winograd_weights_pass<float, winograd::Plan>);
    runs.push_back(&winograd_weights_pass<float, winograd::Plan4>);
  }
  for (std::size_t run = 0; run < runs.size(); ++run)
    for (int threads : {1, 2, 3}) {
      CAPTURE(run);
      CAPTURE(threads);
      omp_set_num_threads(threads);
      Workspace<cpu> ws;
      std::vector<float> dw(want.size(), 1e9f), db(std::size_t(g.out_channels), 1e9f);
      runs[run](g, batch, x.data(), dy.data(), dw.data(), db.data(), ws, ConvLayouts{});
      laminar_test::check_close(dw, want, exact.magnitudes, tolerance);
      if (rounded) CHECK(near_bf16(relative_difference(dw, exact.values)));
      laminar_test::check_close(db, dbias.values, dbias.magnitudes, tolerance);
      std::vector<float> again(want.size(), 0.0f);
      runs[run](g, batch, x.data(), dy.data(), again.data(), static_cast<float*>(nullptr), ws, ConvLayouts{});
      CHECK(again == dw);
    }
  omp_set_num_threads(previous);
}

}  // namespace

TEST_CASE("winograd forward matches the naive convolution at even and odd output sizes") {
  check_forward(convolution(32, 16, 16, 32, 3, 1, 1), 2);
  check_forward(convolution(24, 31, 31, 64, 3, 1, 1), 1);  // airbench's first conv: odd, 31 = 15 tiles + 1
  check_forward(convolution(64, 15, 15, 48, 3, 1, 1), 3);
  check_forward(convolution(40, 7, 7, 36, 3, 1, 1), 5);  // 4 images a work item: the last item holds 1
  check_forward(convolution(33, 3, 3, 32, 3, 1, 1), 17);  // 16 images a work item
  check_forward(convolution(20, 1, 1, 20, 3, 1, 1), 3);   // one output pixel, the window mostly border
  check_forward(convolution(17, 5, 12, 18, 3, 1, 1), 2);  // not square
}

TEST_CASE("winograd forward matches the naive convolution for channel counts off the vector width") {
  check_forward(convolution(3, 32, 32, 32, 3, 1, 1), 2);
  check_forward(convolution(17, 9, 9, 33, 3, 1, 1), 3);
  check_forward(convolution(48, 8, 8, 5, 3, 1, 1), 1);
}

TEST_CASE("winograd forward matches the naive convolution without padding and with padding 2") {
  check_forward(convolution(20, 10, 10, 24, 3, 1, 0), 3);  // 8x8 out
  check_forward(convolution(20, 9, 11, 24, 3, 1, 0), 2);   // 7x9 out
  check_forward(convolution(16, 6, 6, 40, 3, 1, 2), 1);    // 8x8 out
}

TEST_CASE("winograd forward matches the naive convolution at the cifar shapes") {
  check_forward(convolution(64, 32, 32, 64, 3, 1, 1), 1);
  check_forward(convolution(128, 16, 16, 128, 3, 1, 1), 1);
  check_forward(convolution(256, 7, 7, 256, 3, 1, 1), 2);
}

TEST_CASE("winograd input gradient matches the naive input gradient") {
  check_input_gradient(convolution(64, 15, 15, 256, 3, 1, 1), 2);
  check_input_gradient(convolution(24, 31, 31, 64, 3, 1, 1), 1);
  check_input_gradient(convolution(33, 7, 7, 40, 3, 1, 1), 3);
  check_input_gradient(convolution(20, 10, 10, 17, 3, 1, 0), 2);  // transposed padding 2
  check_input_gradient(convolution(16, 6, 6, 40, 3, 1, 2), 3);    // transposed padding 0
}

TEST_CASE("winograd weight gradient matches the naive sums at odd and even sizes, paddings and channel tails") {
  check_weight_gradient<float>(convolution(64, 15, 15, 256, 3, 1, 1), 2);
  check_weight_gradient<float>(convolution(24, 31, 31, 64, 3, 1, 1), 1);  // one image: a thread has nothing to do
  check_weight_gradient<float>(convolution(40, 7, 7, 36, 3, 1, 1), 5);   // 4 images a work item: the last holds 1
  check_weight_gradient<float>(convolution(33, 3, 3, 17, 3, 1, 1), 19);  // 16 images a work item
  check_weight_gradient<float>(convolution(20, 10, 10, 24, 3, 1, 0), 3);  // 8x8 out
  check_weight_gradient<float>(convolution(20, 9, 11, 24, 3, 1, 0), 2);   // 7x9 out
  check_weight_gradient<float>(convolution(16, 6, 6, 40, 3, 1, 2), 3);    // 8x8 out
  check_weight_gradient<float>(convolution(3, 1, 1, 5, 3, 1, 1), 2);      // one output pixel
}

TEST_CASE("the weight gradient runs as winograd from 16 -> 16 channels on outputs of 4x4 up, and 3x3 by F(4x4) in float") {
  if (forced_conv_choice() != ConvChoice::automatic) return;  // the environment overrides the rule
  CHECK(use_winograd(convolution(16, 32, 32, 16, 3, 1, 1), ConvPass::backward_weights));
  CHECK(use_winograd4(convolution(16, 32, 32, 16, 3, 1, 1)));
  CHECK(use_winograd(convolution(256, 7, 7, 256, 3, 1, 1), ConvPass::backward_weights));
  CHECK(use_winograd(convolution(64, 4, 4, 64, 3, 1, 1), ConvPass::backward_weights));
  // One 4x4 tile's 36 multiplies against the direct kernel's 81: F(4x4) only.
  CHECK(use_winograd(convolution(256, 3, 3, 256, 3, 1, 1), ConvPass::backward_weights));
  CHECK(use_winograd4(convolution(256, 3, 3, 256, 3, 1, 1)));
  CHECK_FALSE(use_winograd(convolution(3, 32, 32, 32, 3, 1, 1), ConvPass::backward_weights));
  CHECK_FALSE(use_winograd(convolution(64, 16, 16, 64, 3, 2, 1), ConvPass::backward_weights));
  CHECK(use_winograd<bf16_bits>(convolution(256, 7, 7, 256, 3, 1, 1), ConvPass::backward_weights));
  CHECK(use_winograd<bf16_bits>(convolution(32, 16, 16, 32, 3, 1, 1), ConvPass::backward_weights));
  CHECK_FALSE(use_winograd<bf16_bits>(convolution(256, 3, 3, 256, 3, 1, 1), ConvPass::backward_weights));
}

TEST_CASE("LAMINAR_CONV values parse, and an unknown one is an error that names it") {
  CHECK(conv_choice_from(nullptr) == ConvChoice::automatic);
  CHECK(conv_choice_from("") == ConvChoice::automatic);
  CHECK(conv_choice_from("im2col") == ConvChoice::im2col);
  CHECK(conv_choice_from("direct") == ConvChoice::direct);
  CHECK(conv_choice_from("winograd") == ConvChoice::winograd);
  CHECK(conv_choice_from("winograd4") == ConvChoice::winograd4);
  CHECK_THROWS_WITH_AS(conv_choice_from("wino"), doctest::Contains("LAMINAR_CONV=\"wino\""), Error);
}

TEST_CASE("float winograd forward and input gradient: F(4x4) from Cin Cout / (Cin + Cout) >= 8 where it saves multiplies, else F(2x2) from 16") {
  if (forced_conv_choice() != ConvChoice::automatic) return;  // the environment overrides the rule
  const auto f4 = [](const ConvGeometry& g, ConvPass pass) {
    return use_winograd(g, pass) && use_winograd4(pass == ConvPass::backward_data ? transposed_convolution(g) : g);
  };
  CHECK(f4(convolution(64, 15, 15, 256, 3, 1, 1), ConvPass::forward));
  CHECK(f4(convolution(64, 15, 15, 256, 3, 1, 1), ConvPass::backward_data));
  CHECK(f4(convolution(32, 32, 32, 32, 3, 1, 1), ConvPass::forward));
  CHECK(f4(convolution(24, 31, 31, 64, 3, 1, 1), ConvPass::forward));
  CHECK(f4(convolution(16, 32, 32, 16, 3, 1, 1), ConvPass::forward));
  CHECK(f4(convolution(16, 32, 32, 32, 3, 1, 1), ConvPass::backward_data));
  CHECK(f4(convolution(256, 3, 3, 256, 3, 1, 1), ConvPass::forward));  // one 4x4 tile: 36 multiplies for 4 tiles' 64
  // 5x5 and 6x6 outputs: 4x4 tiles cover 8x8, as many multiplies as F(2x2)'s 3x3 tiles.
  CHECK(use_winograd(convolution(32, 5, 5, 32, 3, 1, 1), ConvPass::forward));
  CHECK_FALSE(use_winograd4(convolution(32, 5, 5, 32, 3, 1, 1)));
  CHECK_FALSE(use_winograd(convolution(16, 6, 6, 16, 3, 1, 1), ConvPass::forward));
  CHECK_FALSE(use_winograd(convolution(3, 32, 32, 32, 3, 1, 1), ConvPass::forward));
  CHECK_FALSE(use_winograd(convolution(8, 32, 32, 16, 3, 1, 1), ConvPass::forward));
  CHECK_FALSE(use_winograd(convolution(64, 16, 16, 64, 3, 2, 1), ConvPass::forward));
  CHECK_FALSE(use_winograd(convolution(64, 16, 16, 64, 1, 1, 0), ConvPass::forward));
}

#if defined(__AVX512BF16__)

namespace {

void check_bf16_forward(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.height);
  CAPTURE(g.width);
  CAPTURE(g.pad_top);
  CAPTURE(batch);
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 6);
  const std::vector<float> w = normal_values.kernel_weights(g, 7);
  const std::vector<float> bias = normal_values(g.out_channels, 8);
  const std::vector<double> want = laminar_test::winograd_bf16_forward(g, batch, x, w, bias.data());
  Workspace<cpu> ws;
  std::vector<float> y(std::size_t(long(batch) * g.out_channels * g.out_pixels()), 1e9f);
  winograd_conv2d_forward<bf16_bits>(g, batch, x.data(), w.data(), bias.data(), y.data(), ws);
  CHECK(worst_error(y, want) <= tolerance);
  CHECK(near_bf16(relative_difference(y, naive_forward(g, batch, x, w, bias.data()))));
  std::fill(y.begin(), y.end(), 1e9f);
  winograd_conv2d_forward<bf16_bits>(g, batch, x.data(), w.data(), nullptr, y.data(), ws, ConvEpilogue::relu);
  CHECK(worst_error(y, relu(laminar_test::winograd_bf16_forward(g, batch, x, w, nullptr))) <= tolerance);
}

void check_bf16_input_gradient(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.height);
  CAPTURE(g.pad_top);
  CAPTURE(batch);
  const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 9);
  const std::vector<float> w = normal_values.kernel_weights(g, 10);
  const std::vector<double> want = laminar_test::winograd_bf16_forward(
      transposed_convolution(g), batch, dy, laminar_test::flipped_transposed_kernel(g, w), nullptr);
  Workspace<cpu> ws;
  std::vector<float> dx(std::size_t(long(batch) * g.in_channels * g.in_pixels()), 1e9f);
  winograd_conv2d_backward_data<bf16_bits>(g, batch, dy.data(), w.data(), dx.data(), ws);
  CHECK(worst_error(dx, want) <= tolerance);
  CHECK(near_bf16(relative_difference(dx, naive_input_gradient(g, batch, dy, w))));
}

}  // namespace

TEST_CASE("bf16 winograd weight gradient equals the bf16-rounded transforms, odd tile counts included") {
  check_weight_gradient<bf16_bits>(convolution(64, 15, 15, 256, 3, 1, 1), 2);
  check_weight_gradient<bf16_bits>(convolution(256, 7, 7, 64, 3, 1, 1), 5);  // 4 images an item: the last holds 1
  check_weight_gradient<bf16_bits>(convolution(24, 31, 31, 64, 3, 1, 1), 1);
  check_weight_gradient<bf16_bits>(convolution(17, 9, 9, 33, 3, 1, 1), 3);  // 25 tiles an image; items of 50, 25
  check_weight_gradient<bf16_bits>(convolution(20, 5, 5, 24, 3, 1, 1), 7);  // 9 tiles an image, 7 an item: 63
  check_weight_gradient<bf16_bits>(convolution(16, 6, 6, 40, 3, 1, 2), 2);
  check_weight_gradient<bf16_bits>(convolution(3, 1, 1, 5, 3, 1, 1), 1);  // one tile
}

TEST_CASE("bf16 winograd forward equals the bf16-rounded transforms at even and odd sizes and paddings") {
  check_bf16_forward(convolution(64, 15, 15, 256, 3, 1, 1), 2);
  check_bf16_forward(convolution(256, 7, 7, 256, 3, 1, 1), 5);  // 4 images a work item: the last holds 1
  check_bf16_forward(convolution(256, 3, 3, 64, 3, 1, 1), 17);
  check_bf16_forward(convolution(24, 31, 31, 64, 3, 1, 1), 1);
  check_bf16_forward(convolution(17, 9, 11, 33, 3, 1, 1), 3);  // an odd channel: a pair half in the zero tail
  check_bf16_forward(convolution(3, 8, 8, 20, 3, 1, 1), 2);    // one pair and a half
  check_bf16_forward(convolution(20, 10, 9, 24, 3, 1, 0), 2);
  check_bf16_forward(convolution(16, 6, 6, 40, 3, 1, 2), 1);
}

TEST_CASE("bf16 winograd input gradient equals the bf16-rounded transforms of the transposed convolution") {
  check_bf16_input_gradient(convolution(64, 15, 15, 256, 3, 1, 1), 2);
  check_bf16_input_gradient(convolution(33, 7, 7, 40, 3, 1, 1), 3);
  check_bf16_input_gradient(convolution(20, 10, 10, 17, 3, 1, 0), 2);
  check_bf16_input_gradient(convolution(16, 6, 6, 40, 3, 1, 2), 3);
}

TEST_CASE("bf16 winograd forward and input gradient are chosen where Cin Cout / (Cin + Cout) >= 32") {
  if (forced_conv_choice() != ConvChoice::automatic) return;  // the environment overrides the rule
  CHECK(use_winograd<bf16_bits>(convolution(64, 15, 15, 256, 3, 1, 1), ConvPass::forward));
  CHECK(use_winograd<bf16_bits>(convolution(64, 15, 15, 256, 3, 1, 1), ConvPass::backward_data));
  CHECK(use_winograd<bf16_bits>(convolution(64, 8, 8, 64, 3, 1, 1), ConvPass::forward));
  CHECK_FALSE(use_winograd<bf16_bits>(convolution(32, 16, 16, 32, 3, 1, 1), ConvPass::forward));
  CHECK(use_winograd<float>(convolution(32, 16, 16, 32, 3, 1, 1), ConvPass::forward));
  CHECK_FALSE(use_winograd<bf16_bits>(convolution(24, 31, 31, 64, 3, 1, 1), ConvPass::forward));
  CHECK_FALSE(use_winograd<bf16_bits>(convolution(64, 16, 16, 64, 3, 2, 1), ConvPass::forward));
}

#endif

#endif
