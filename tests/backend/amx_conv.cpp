// The AMX bf16 convolution: its packers put to_bf16 of every element where the
// AMX layouts say (and zeros everywhere else), and through them amx_conv_forward
// equals a naive convolution in double on the bf16-rounded operands, forward and,
// with the transposed weights, as the input gradient of a stride-1 convolution.
//
// Products of two bf16 values are exact in float, so the kernel differs from the
// rounded reference only by float accumulation: agreement is
// |got - want| <= 1e-4 * max(1, |want|), want in double. Inputs are standard
// normal and weights are scaled by 1 / sqrt(Cin * KH * KW), so every output is of
// order 1 and one missing or doubled term (of order 1 / sqrt(Cin * KH * KW) >= 0.02
// here) is far outside it.
#include <doctest/doctest.h>

#include <cstddef>
#include <laminar/backend/cpu/amx_conv.hpp>
#include <laminar/core/error.hpp>
#include <vector>

#include "support/convolution.hpp"
#include "support/reference_convolution.hpp"

using namespace laminar;
using namespace laminar::cpu_detail;

namespace {

constexpr double tolerance = 1e-4;

using laminar_test::bf16_rounded;
using laminar_test::convolution;
using laminar_test::naive_forward;
using laminar_test::naive_input_gradient;
using laminar_test::worst_error;

const laminar_test::SeededNormal normal_values(2026);

bool amx_missing() {
  if (amx_available()) return false;
  MESSAGE("this machine does not grant Intel AMX: the AMX convolution is not exercised");
  return true;
}

#if LAMINAR_HAS_AMX

// Scratch on 64-byte lines, as a caller's workspace would be.
struct alignas(64) Line {
  std::byte bytes[64];
};
std::vector<Line> scratch_of(long bytes) { return std::vector<Line>((bytes + 63) / 64); }

// Through the one-call entry, with and without a bias, against the naive
// convolution on the rounded operands (the bias is added in float, not rounded).
void check_forward(const ConvGeometry& g, int batch) {
  if (amx_missing()) return;
  INFO("Cin " << g.in_channels << " H " << g.height << " W " << g.width << " Cout " << g.out_channels << " kernel "
              << g.kernel_h << "x" << g.kernel_w << " pad " << g.pad_top << " batch " << batch);
  REQUIRE(AmxConv::supports(g));
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 1);
  const std::vector<float> w = normal_values.kernel_weights(g, 2);
  const std::vector<float> bias = normal_values(g.out_channels, 3);
  std::vector<Line> scratch = scratch_of(amx_conv_forward_scratch(g, batch));
  std::vector<float> y(long(batch) * g.out_channels * g.out_pixels());
  amx_conv2d_forward(g, batch, x.data(), w.data(), bias.data(), y.data(), scratch.data());
  CHECK(worst_error(y, naive_forward(g, batch, bf16_rounded(x), bf16_rounded(w), bias.data())) <= tolerance);
  amx_conv2d_forward(g, batch, x.data(), w.data(), nullptr, y.data(), scratch.data());
  CHECK(worst_error(y, naive_forward(g, batch, bf16_rounded(x), bf16_rounded(w), nullptr)) <= tolerance);
}

void check_input_gradient(const ConvGeometry& g, int batch) {
  if (amx_missing()) return;
  INFO("Cin " << g.in_channels << " H " << g.height << " W " << g.width << " Cout " << g.out_channels << " kernel "
              << g.kernel_h << "x" << g.kernel_w << " pad " << g.pad_top << " batch " << batch);
  REQUIRE(AmxConv::supports_backward_data(g));
  const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 4);
  const std::vector<float> w = normal_values.kernel_weights(g, 5);
  std::vector<Line> scratch = scratch_of(amx_conv_backward_data_scratch(g, batch));
  std::vector<float> dx(long(batch) * g.in_channels * g.in_pixels());
  amx_conv2d_backward_data(g, batch, dy.data(), w.data(), dx.data(), scratch.data());
  CHECK(worst_error(dx, naive_input_gradient(g, batch, bf16_rounded(dy), bf16_rounded(w))) <= tolerance);
}

#else

void check_forward(const ConvGeometry&, int) { amx_missing(); }
void check_input_gradient(const ConvGeometry&, int) { amx_missing(); }

#endif

}  // namespace

TEST_CASE("amx convolution takes stride 1 only and the input gradient only for padding below the kernel") {
  CHECK(AmxConv::supports(convolution(64, 32, 32, 64, 3, 1, 1)));
  CHECK(AmxConv::supports(convolution(3, 32, 32, 24, 2, 1, 0)));
  CHECK_FALSE(AmxConv::supports(convolution(64, 32, 32, 64, 3, 2, 1)));
  CHECK_FALSE(AmxConv::supports(convolution(64, 32, 32, 64, 3, 3, 1, 2, 1, 1)));
  CHECK(AmxConv::supports_backward_data(convolution(20, 7, 7, 33, 5, 1, 2)));
  CHECK_FALSE(AmxConv::supports_backward_data(convolution(20, 7, 7, 33, 3, 1, 3)));
  CHECK_FALSE(AmxConv::supports_backward_data(convolution(20, 8, 8, 33, 3, 2, 1)));
}

TEST_CASE("amx convolution extents follow the padded width with a slack for the last tile") {
  const AmxConv a(convolution(33, 31, 31, 40, 3, 1, 1));
  CHECK(a.in_blocks == 2);
  CHECK(a.out_blocks == 3);
  CHECK(a.padded_height == 33);
  CHECK(a.padded_width == 33);
  CHECK(a.plane_pixels == 33 * 33 + 2 + 16);
  CHECK(a.input_image() == 2L * (33 * 33 + 18) * 32);
  CHECK(a.output_image() == 3L * 31 * 33 * 16);
  CHECK(a.packed_weights() == 3L * 2 * 9 * 512);
  CHECK(amx_conv_forward_scratch(a.g, 5) == 5 * (a.input_image() * 2 + a.output_image() * 4) + a.packed_weights() * 2);
}

TEST_CASE("amx input packing puts every rounded pixel at its padded place with zeros elsewhere") {
  // 33 channels: one full block of 32 and one of a single channel; pad 2 on a 5x7 image.
  const ConvGeometry g = convolution(33, 5, 7, 8, 5, 1, 2);
  const AmxConv a(g);
  const int batch = 2;
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 6);
  std::vector<bf16_bits> packed(batch * a.input_image(), bf16_bits(0x7fc0));  // NaN: every element must be written
  pack_amx_input(a, batch, x.data(), packed.data());
  long wrong = 0;
  for (int n = 0; n < batch; ++n)
    for (int ib = 0; ib < a.in_blocks; ++ib)
      for (long p = 0; p < a.plane_pixels; ++p)
        for (int c = 0; c < 32; ++c) {
          const int channel = ib * 32 + c;
          const long py = p / a.padded_width, px = p % a.padded_width;
          const long yy = py - g.pad_top, xx = px - g.pad_left;
          const bool inside = p < long(a.padded_height) * a.padded_width && yy >= 0 && yy < g.height && xx >= 0 &&
                              xx < g.width && channel < g.in_channels;
          const bf16_bits want =
              inside ? to_bf16(x[((long(n) * g.in_channels + channel) * g.height + yy) * g.width + xx]) : 0;
          wrong += packed[((long(n) * a.in_blocks + ib) * a.plane_pixels + p) * 32 + c] != want;
        }
  CHECK(wrong == 0);
}

TEST_CASE("amx weight packing orders each tap as sixteen channel pairs by sixteen outputs") {
  const ConvGeometry g = convolution(40, 6, 6, 20, 3, 1, 1);
  const AmxConv a(g);
  const std::vector<float> w = normal_values.kernel_weights(g, 7);
  std::vector<bf16_bits> packed(a.packed_weights(), bf16_bits(0x7fc0));
  pack_amx_weights(a, w.data(), packed.data());
  long wrong = 0, index = 0;
  for (int ob = 0; ob < a.out_blocks; ++ob)
    for (int ib = 0; ib < a.in_blocks; ++ib)
      for (int ky = 0; ky < 3; ++ky)
        for (int kx = 0; kx < 3; ++kx)
          for (int k = 0; k < 16; ++k)
            for (int o = 0; o < 16; ++o)
              for (int j = 0; j < 2; ++j, ++index) {
                const int out = ob * 16 + o, in = ib * 32 + 2 * k + j;
                const bf16_bits want =
                    out < g.out_channels && in < g.in_channels
                        ? to_bf16(w[((long(out) * g.in_channels + in) * 3 + ky) * 3 + kx])
                        : 0;
                wrong += packed[index] != want;
              }
  CHECK(index == a.packed_weights());
  CHECK(wrong == 0);
}

TEST_CASE("amx transposed weight packing flips the kernel and swaps its channel roles") {
  // A 2x3 kernel, so that a flip of the wrong axis shows.
  const ConvGeometry g = convolution(20, 6, 6, 40, 2, 3, 1, 1, 1, 1);
  const AmxConv t(transposed_convolution(g));
  REQUIRE(t.g.in_channels == 40);
  REQUIRE(t.g.out_channels == 20);
  const std::vector<float> w = normal_values.kernel_weights(g, 8);
  std::vector<bf16_bits> packed(t.packed_weights(), bf16_bits(0x7fc0));
  pack_amx_transposed_weights(t, g, w.data(), packed.data());
  long wrong = 0, index = 0;
  for (int ob = 0; ob < t.out_blocks; ++ob)
    for (int ib = 0; ib < t.in_blocks; ++ib)
      for (int ky = 0; ky < 2; ++ky)
        for (int kx = 0; kx < 3; ++kx)
          for (int k = 0; k < 16; ++k)
            for (int o = 0; o < 16; ++o)
              for (int j = 0; j < 2; ++j, ++index) {
                // Output channel of the transposed convolution = input channel of g, and vice versa.
                const int gi = ob * 16 + o, go = ib * 32 + 2 * k + j;
                const bf16_bits want =
                    gi < g.in_channels && go < g.out_channels
                        ? to_bf16(w[((long(go) * g.in_channels + gi) * 2 + (1 - ky)) * 3 + (2 - kx)])
                        : 0;
                wrong += packed[index] != want;
              }
  CHECK(index == t.packed_weights());
  CHECK(wrong == 0);
}

TEST_CASE("amx output unpacking drops the columns past the output width and the channel tail") {
  const ConvGeometry g = convolution(8, 5, 7, 20, 3, 1, 1);
  const AmxConv a(g);
  const int batch = 2;
  std::vector<float> packed(batch * a.output_image());
  for (std::size_t k = 0; k < packed.size(); ++k) packed[k] = float(k);
  std::vector<float> y(long(batch) * g.out_channels * g.out_pixels(), -1.0f);
  unpack_amx_output(a, batch, packed.data(), y.data());
  long wrong = 0;
  for (int n = 0; n < batch; ++n)
    for (int c = 0; c < g.out_channels; ++c)
      for (int oy = 0; oy < g.out_height; ++oy)
        for (int ox = 0; ox < g.out_width; ++ox) {
          const long from = (((long(n) * a.out_blocks + c / 16) * g.out_height + oy) * a.padded_width + ox) * 16 + c % 16;
          wrong += y[((long(n) * g.out_channels + c) * g.out_height + oy) * g.out_width + ox] != float(from);
        }
  CHECK(wrong == 0);
}

TEST_CASE("amx convolution matches the naive one for a 3x3 same convolution at batches 1 3 and 5") {
  check_forward(convolution(20, 9, 9, 33, 3, 1, 1), 1);
  check_forward(convolution(3, 12, 12, 20, 3, 1, 1), 3);
  check_forward(convolution(33, 10, 10, 16, 3, 1, 1), 5);
}

TEST_CASE("amx convolution matches the naive one for a 1x1 convolution") {
  check_forward(convolution(33, 15, 15, 20, 1, 1, 0), 3);
  check_forward(convolution(64, 8, 8, 128, 1, 1, 0), 1);
}

TEST_CASE("amx convolution matches the naive one for a 2x2 valid convolution") {
  check_forward(convolution(3, 32, 32, 24, 2, 1, 0), 3);
  check_forward(convolution(24, 4, 4, 33, 2, 1, 0), 5);
}

TEST_CASE("amx convolution matches the naive one for a 5x5 same convolution") {
  check_forward(convolution(20, 7, 7, 33, 5, 1, 2), 3);
  check_forward(convolution(16, 8, 8, 24, 5, 1, 2), 1);
}

TEST_CASE("amx convolution matches the naive one at widths 7 15 31 32 8 and 4") {
  check_forward(convolution(33, 7, 7, 64, 3, 1, 1), 5);
  check_forward(convolution(40, 15, 15, 36, 3, 1, 1), 3);
  check_forward(convolution(24, 31, 31, 64, 3, 1, 1), 1);
  check_forward(convolution(16, 32, 32, 16, 3, 1, 1), 1);
  check_forward(convolution(64, 8, 8, 64, 3, 1, 1), 3);
  check_forward(convolution(128, 4, 4, 256, 3, 1, 1), 3);
}

TEST_CASE("amx convolution matches the naive one on the cifar shapes") {
  check_forward(convolution(64, 32, 32, 64, 3, 1, 1), 1);
  check_forward(convolution(128, 16, 16, 128, 3, 1, 1), 1);
  check_forward(convolution(256, 8, 8, 256, 3, 1, 1), 1);
  check_forward(convolution(24, 31, 31, 64, 3, 1, 0), 1);
  check_forward(convolution(16, 32, 32, 16, 3, 1, 1), 3);
  check_forward(convolution(3, 32, 32, 24, 2, 1, 0), 1);
}

TEST_CASE("amx convolution leaves zeros in the channel tail of its packed output even with a bias") {
  if (amx_missing()) return;
#if LAMINAR_HAS_AMX
  const ConvGeometry g = convolution(20, 9, 9, 20, 3, 1, 1);
  const AmxConv a(g);
  const int batch = 2;
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 9);
  const std::vector<float> w = normal_values.kernel_weights(g, 10);
  const std::vector<float> bias = normal_values(g.out_channels, 11);
  std::vector<bf16_bits> packed_x(batch * a.input_image()), packed_w(a.packed_weights());
  std::vector<float> packed_y(batch * a.output_image(), -1.0f);
  pack_amx_input(a, batch, x.data(), packed_x.data());
  pack_amx_weights(a, w.data(), packed_w.data());
  amx_conv_forward(a, batch, packed_x.data(), packed_w.data(), bias.data(), packed_y.data());
  long nonzero = 0;
  for (int n = 0; n < batch; ++n)
    for (long q = 0; q < a.output_pixels(); ++q)
      for (int c = g.out_channels % 16; c < 16; ++c)
        nonzero += packed_y[((long(n) * a.out_blocks + 1) * a.output_pixels() + q) * 16 + c] != 0.0f;
  CHECK(nonzero == 0);
#endif
}

TEST_CASE("amx convolution of an all-zero input is its bias") {
  if (amx_missing()) return;
#if LAMINAR_HAS_AMX
  const ConvGeometry g = convolution(33, 6, 6, 40, 3, 1, 1);
  const int batch = 3;
  const std::vector<float> x(long(batch) * g.in_channels * g.in_pixels(), 0.0f);
  const std::vector<float> w = normal_values.kernel_weights(g, 12);
  const std::vector<float> bias = normal_values(g.out_channels, 13);
  std::vector<Line> scratch = scratch_of(amx_conv_forward_scratch(g, batch));
  std::vector<float> y(long(batch) * g.out_channels * g.out_pixels());
  amx_conv2d_forward(g, batch, x.data(), w.data(), bias.data(), y.data(), scratch.data());
  long wrong = 0;
  for (int n = 0; n < batch; ++n)
    for (int c = 0; c < g.out_channels; ++c)
      for (long p = 0; p < g.out_pixels(); ++p) wrong += y[(long(n) * g.out_channels + c) * g.out_pixels() + p] != bias[c];
  CHECK(wrong == 0);
#endif
}

TEST_CASE("amx convolution refuses a strided convolution") {
  if (amx_missing()) return;
#if LAMINAR_HAS_AMX
  const ConvGeometry g = convolution(16, 8, 8, 16, 3, 2, 1);
  std::vector<float> x(16 * 64), w(16 * 16 * 9), y(16 * 16);
  std::vector<Line> scratch = scratch_of(amx_conv_forward_scratch(g, 1));
  CHECK_THROWS_AS(amx_conv2d_forward(g, 1, x.data(), w.data(), nullptr, y.data(), scratch.data()), Error);
  CHECK_THROWS_AS(amx_conv2d_backward_data(g, 1, y.data(), w.data(), x.data(), scratch.data()), Error);
#endif
}

TEST_CASE("amx convolution of dy with transposed weights is the input gradient of a 3x3 same convolution") {
  check_input_gradient(convolution(20, 9, 9, 33, 3, 1, 1), 1);
  check_input_gradient(convolution(33, 7, 7, 24, 3, 1, 1), 3);
  check_input_gradient(convolution(16, 15, 15, 3, 3, 1, 1), 5);
}

TEST_CASE("amx convolution of dy with transposed weights is the input gradient of a 1x1 convolution") {
  check_input_gradient(convolution(33, 8, 8, 20, 1, 1, 0), 3);
}

TEST_CASE("amx convolution of dy with transposed weights is the input gradient of a 2x2 valid convolution") {
  check_input_gradient(convolution(3, 32, 32, 24, 2, 1, 0), 3);
  check_input_gradient(convolution(24, 4, 4, 33, 2, 1, 0), 1);
}

TEST_CASE("amx convolution of dy with transposed weights is the input gradient of a 5x5 same convolution") {
  check_input_gradient(convolution(20, 7, 7, 33, 5, 1, 2), 3);
}

TEST_CASE("amx convolution of dy with transposed weights is the input gradient on the cifar shapes") {
  check_input_gradient(convolution(64, 32, 32, 64, 3, 1, 1), 1);
  check_input_gradient(convolution(128, 16, 16, 128, 3, 1, 1), 1);
  check_input_gradient(convolution(256, 8, 8, 256, 3, 1, 1), 1);
  check_input_gradient(convolution(24, 31, 31, 64, 3, 1, 0), 1);
  check_input_gradient(convolution(16, 32, 32, 16, 3, 1, 1), 3);
  check_input_gradient(convolution(128, 4, 4, 256, 3, 1, 1), 3);
}
