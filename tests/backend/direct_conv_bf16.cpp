// The bf16 direct convolution: pack_input_bf16 and the bf16 weight packers put
// to_bf16 of every element where their layouts say, and through them
// direct_conv_forward_bf16 (vector and scalar) equals a naive convolution in
// double on the bf16-rounded operands, forward and, with the transposed
// weights, as the input gradient of a stride-1 convolution.
//
// Products of two bf16 values are exact in float, so the kernel differs from
// the rounded reference only by float accumulation: agreement is
// |got - want| <= 1e-4 * max(1, |want|), want in double, as for the float
// kernel. Inputs are standard normal and weights are scaled by
// 1 / sqrt(Cin * KH * KW), so every output is of order 1 and one missing or
// doubled term (of order 1 / sqrt(Cin * KH * KW) >= 0.02 here) is far outside it.
#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <laminar/backend/cpu/direct_conv.hpp>
#include <memory>
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

const laminar_test::SeededNormal normal_values(2025);

enum class Kernel { vector, scalar };

// Unpacked y (N, Cout, OH, OW) of the bf16 kernel on x (N, Cin, H, W) and packed weights.
std::vector<float> bf16_convolution(const BlockedConv& b, int batch, const std::vector<float>& x,
                                    const std::vector<bf16_bits>& packed_w, const float* bias, Kernel kernel) {
  std::vector<bf16_bits> packed_x(batch * b.input_image());
  std::vector<float> packed_y(batch * b.output_image(), -1.0f);
  pack_input_bf16(b, batch, x.data(), packed_x.data());
  if (kernel == Kernel::vector)
    direct_conv_forward_bf16(b, batch, packed_x.data(), packed_w.data(), bias, packed_y.data());
  else
    direct_conv_forward_bf16_scalar(b, batch, packed_x.data(), packed_w.data(), bias, packed_y.data());
  std::vector<float> y(long(batch) * b.g.out_channels * b.g.out_pixels());
  unpack_output(b, batch, packed_y.data(), y.data());
  return y;
}

std::vector<float> bf16_forward(const ConvGeometry& g, int batch, const std::vector<float>& x,
                                const std::vector<float>& w, const float* bias, Kernel kernel = Kernel::vector) {
  const BlockedConv b(g);
  std::vector<bf16_bits> packed_w(b.packed_weights());
  pack_forward_weights_bf16(b, w.data(), packed_w.data());
  return bf16_convolution(b, batch, x, packed_w, bias, kernel);
}

// Both kernels against the rounded reference, with and without a bias.
void check_forward(const ConvGeometry& g, int batch) {
  CAPTURE(g.in_channels);
  CAPTURE(g.out_channels);
  CAPTURE(g.width);
  CAPTURE(g.kernel_w);
  CAPTURE(batch);
  const std::vector<float> x = normal_values(long(batch) * g.in_channels * g.in_pixels(), 1);
  const std::vector<float> w = normal_values.kernel_weights(g, 2);
  const std::vector<float> bias = normal_values(g.out_channels, 3);
  const std::vector<double> want = naive_forward(g, batch, bf16_rounded(x), bf16_rounded(w), bias.data());
  CHECK(worst_error(bf16_forward(g, batch, x, w, bias.data()), want) <= tolerance);
  CHECK(worst_error(bf16_forward(g, batch, x, w, bias.data(), Kernel::scalar), want) <= tolerance);
  const std::vector<double> unbiased = naive_forward(g, batch, bf16_rounded(x), bf16_rounded(w), nullptr);
  CHECK(worst_error(bf16_forward(g, batch, x, w, nullptr), unbiased) <= tolerance);
}

// dx through the bf16 forward kernel on dy packed for the transposed convolution.
void check_input_gradient(const ConvGeometry& g, int batch) {
  REQUIRE(has_transposed_convolution(g));
  const std::vector<float> dy = normal_values(long(batch) * g.out_channels * g.out_pixels(), 4);
  const std::vector<float> w = normal_values.kernel_weights(g, 5);
  const BlockedConv transposed(transposed_convolution(g));
  std::vector<bf16_bits> packed_w(transposed.packed_weights());
  pack_transposed_weights_bf16(transposed, g, w.data(), packed_w.data());
  const std::vector<double> want = naive_input_gradient(g, batch, bf16_rounded(dy), bf16_rounded(w));
  for (const Kernel kernel : {Kernel::vector, Kernel::scalar})
    CHECK(worst_error(bf16_convolution(transposed, batch, dy, packed_w, nullptr, kernel), want) <= tolerance);
}

// A buffer of `count` elements starting on a 64-byte boundary, or `shift`
// elements past one, so that packing takes its streaming or its plain stores.
class Bf16Buffer {
 public:
  Bf16Buffer(long count, int shift) : storage_(count + 64, bf16_bits(0xffff)) {
    void* start = storage_.data();
    std::size_t space = storage_.size() * sizeof(bf16_bits);
    data_ = static_cast<bf16_bits*>(std::align(64, sizeof(bf16_bits), start, space)) + shift;
  }
  bf16_bits* data() { return data_; }

 private:
  std::vector<bf16_bits> storage_;
  bf16_bits* data_;
};

// Normal values, with the cases of round-to-nearest-even at fixed places: ties
// either way, the values beside a tie, subnormals (to signed zero), the largest
// float (to infinity), infinity and NaN.
std::vector<float> rounding_cases(long count) {
  std::vector<float> x = normal_values(count, 6);
  const std::uint32_t cases[] = {0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u, 0x00012345u, 0x80012345u,
                                 0x7f7fffffu, 0xff800000u, 0x7fc00000u, 0xc0fe8000u};
  for (long k = 0; k < count; k += 37) x[k] = std::bit_cast<float>(cases[(k / 37) % std::size(cases)]);
  return x;
}

// Counts the elements of pack_input_bf16 that are not to_bf16 of pack_input's.
long pack_input_differences(const ConvGeometry& g, int batch, int shift) {
  const BlockedConv b(g);
  const std::vector<float> x = rounding_cases(long(batch) * g.in_channels * g.in_pixels());
  std::vector<float> want(batch * b.input_image());
  pack_input(b, batch, x.data(), want.data());
  Bf16Buffer got(batch * b.input_image(), shift);
  pack_input_bf16(b, batch, x.data(), got.data());
  long wrong = 0;
  for (long k = 0; k < long(want.size()); ++k) wrong += got.data()[k] != to_bf16(want[k]);
  return wrong;
}

// Counts the packed weights not equal to to_bf16(weight(ob*16 + o, ib*16 + 2k + j, ky, kx))
// at [ob][ib][ky][kx][k][o][j], or not zero outside the real channels of `b`.
template <class Weight>
long misplaced_weights(const BlockedConv& b, const std::vector<bf16_bits>& packed, const Weight& weight) {
  const ConvGeometry& g = b.g;
  long wrong = 0, e = 0;
  for (int ob = 0; ob < b.out_blocks; ++ob)
    for (int ib = 0; ib < b.in_blocks; ++ib)
      for (int ky = 0; ky < g.kernel_h; ++ky)
        for (int kx = 0; kx < g.kernel_w; ++kx)
          for (int k = 0; k < channel_block / 2; ++k)
            for (int o = 0; o < channel_block; ++o)
              for (int j = 0; j < 2; ++j, ++e) {
                const int out = ob * channel_block + o, in = ib * channel_block + 2 * k + j;
                const bool real = out < g.out_channels && in < g.in_channels;
                wrong += packed[e] != (real ? to_bf16(weight(out, in, ky, kx)) : bf16_bits(0));
              }
  return wrong + (e != long(packed.size()));
}

}  // namespace

TEST_CASE("pack_input_bf16 holds to_bf16 of every element pack_input writes") {
  for (const ConvGeometry& g : {convolution(3, 7, 7, 16, 3, 1, 1), convolution(20, 15, 15, 16, 5, 1, 2),
                                convolution(33, 31, 31, 16, 3, 2, 1), convolution(16, 8, 8, 16, 1, 1, 0)})
    for (const int batch : {1, 3})
      for (const int shift : {0, 3}) {
        CAPTURE(g.in_channels);
        CAPTURE(batch);
        CAPTURE(shift);
        CHECK(pack_input_differences(g, batch, shift) == 0);
      }
}

TEST_CASE("pack_input_bf16 streams a batch larger than the caches element for element") {
  // 64 x 34 x 34 x 16 bf16 per image: 40 images are 5.9 MB, past the streaming threshold of 16 MB only at
  // 114 images, so take 120 on a line boundary, and the same batch off it.
  const ConvGeometry g = convolution(64, 32, 32, 64, 3, 1, 1);
  REQUIRE(120 * BlockedConv(g).input_image() * long(sizeof(bf16_bits)) > streaming_floats * long(sizeof(float)));
  CHECK(pack_input_differences(g, 120, 0) == 0);
  CHECK(pack_input_differences(g, 120, 5) == 0);
}

TEST_CASE("pack_forward_weights_bf16 puts each input channel pair beside its 16 outputs") {
  for (const ConvGeometry& g : {convolution(33, 8, 8, 20, 3, 1, 1), convolution(3, 8, 8, 40, 1, 1, 0),
                                ConvGeometry{16, 9, 9, 17, 8, 7, 2, 3, 1, 1, 0, 0}}) {
    const BlockedConv b(g);
    const std::vector<float> w = normal_values.kernel_weights(g, 7);
    std::vector<bf16_bits> packed(b.packed_weights(), bf16_bits(0xffff));
    pack_forward_weights_bf16(b, w.data(), packed.data());
    CHECK(misplaced_weights(b, packed, [&](int o, int i, int ky, int kx) {
            return w[((long(o) * g.in_channels + i) * g.kernel_h + ky) * g.kernel_w + kx];
          }) == 0);
  }
}

TEST_CASE("pack_transposed_weights_bf16 packs the flipped kernel with input and output swapped") {
  for (const ConvGeometry& g : {convolution(33, 8, 8, 20, 3, 1, 1), convolution(20, 8, 8, 3, 1, 1, 0),
                                ConvGeometry{17, 9, 9, 16, 8, 7, 2, 3, 1, 1, 0, 0}}) {
    const BlockedConv transposed(transposed_convolution(g));
    const std::vector<float> w = normal_values.kernel_weights(g, 8);
    std::vector<bf16_bits> packed(transposed.packed_weights(), bf16_bits(0xffff));
    pack_transposed_weights_bf16(transposed, g, w.data(), packed.data());
    // Output channel o of the transposed convolution is input channel o of g.
    CHECK(misplaced_weights(transposed, packed, [&](int o, int i, int ky, int kx) {
            return w[((long(i) * g.in_channels + o) * g.kernel_h + g.kernel_h - 1 - ky) * g.kernel_w + g.kernel_w -
                     1 - kx];
          }) == 0);
  }
}

TEST_CASE("bf16 direct convolution matches the rounded reference for a 3x3 same convolution at batch 1") {
  check_forward(convolution(20, 9, 9, 33, 3, 1, 1), 1);
}

TEST_CASE("bf16 direct convolution matches the rounded reference at odd batches from three input channels") {
  check_forward(convolution(3, 12, 12, 20, 3, 1, 1), 3);
  check_forward(convolution(3, 10, 10, 33, 3, 1, 1), 5);
}

TEST_CASE("bf16 direct convolution matches the rounded reference for a 1x1 convolution") {
  check_forward(convolution(33, 15, 15, 20, 1, 1, 0), 3);
}

TEST_CASE("bf16 direct convolution matches the rounded reference for a 2x2 valid convolution") {
  check_forward(convolution(3, 32, 32, 24, 2, 1, 0), 2);
}

TEST_CASE("bf16 direct convolution matches the rounded reference for a 5x5 same convolution") {
  check_forward(convolution(20, 7, 7, 33, 5, 1, 2), 3);
}

TEST_CASE("bf16 direct convolution matches the rounded reference at stride 2 with same padding") {
  check_forward(convolution(33, 15, 15, 40, 3, 2, 1), 3);
  check_forward(convolution(20, 32, 32, 32, 3, 2, 1), 1);
  check_forward(convolution(32, 16, 16, 48, 1, 2, 0), 3);
}

TEST_CASE("bf16 direct convolution matches the rounded reference at widths 7 15 and 31") {
  check_forward(convolution(24, 31, 31, 64, 3, 1, 1), 1);
  check_forward(convolution(24, 31, 31, 64, 3, 1, 0), 1);
  check_forward(convolution(40, 15, 15, 36, 3, 1, 1), 3);
  check_forward(convolution(33, 7, 7, 64, 3, 1, 1), 5);
  check_forward(convolution(64, 3, 3, 32, 3, 1, 1), 3);
}

TEST_CASE("bf16 direct convolution matches the rounded reference on the cifar shapes") {
  check_forward(convolution(16, 32, 32, 16, 3, 1, 1), 1);
  check_forward(convolution(64, 32, 32, 64, 3, 1, 1), 1);
  check_forward(convolution(128, 16, 16, 128, 3, 1, 1), 1);
  check_forward(convolution(256, 8, 8, 256, 3, 1, 1), 1);
}

TEST_CASE("bf16 direct convolution matches the rounded reference with a lone last output block on narrow images") {
  check_forward(convolution(20, 5, 5, 40, 3, 1, 1), 3);
  check_forward(convolution(20, 7, 7, 16, 3, 1, 1), 2);
}

TEST_CASE("bf16 direct convolution matches the rounded reference for uneven kernels strides and paddings") {
  // A 3x5 kernel at strides 3 and 2 over a 10x13 image, padded 1 on top and
  // bottom, 2 on the left and right; then an odd channel count whose last pair
  // is half zero tail.
  check_forward(ConvGeometry{20, 10, 13, 24, 4, 7, 3, 5, 3, 2, 1, 2}, 3);
  check_forward(convolution(17, 11, 11, 18, 3, 3, 1), 2);
}

TEST_CASE("bf16 direct convolution rounds its operands rather than multiplying floats") {
  // bf16 keeps 8 significant bits, so the rounded operands move a sum of 180
  // products by about 2^-9 relative each; over 3 x 20 x 81 outputs the largest
  // departure from the float convolution is far above the float tolerance.
  const ConvGeometry g = convolution(20, 9, 9, 20, 3, 1, 1);
  const std::vector<float> x = normal_values(3L * g.in_channels * g.in_pixels(), 9);
  const std::vector<float> w = normal_values.kernel_weights(g, 10);
  CHECK(worst_error(bf16_forward(g, 3, x, w, nullptr), naive_forward(g, 3, x, w, nullptr)) > 20 * tolerance);
}

TEST_CASE("bf16 direct convolution leaves zeros in the channel tail of its packed output") {
  const ConvGeometry g = convolution(20, 9, 9, 20, 3, 1, 1);
  const BlockedConv b(g);
  const std::vector<float> x = normal_values(2L * g.in_channels * g.in_pixels(), 11);
  const std::vector<float> w = normal_values.kernel_weights(g, 12);
  const std::vector<float> bias = normal_values(g.out_channels, 13);
  std::vector<bf16_bits> packed_x(2 * b.input_image()), packed_w(b.packed_weights());
  std::vector<float> packed_y(2 * b.output_image(), -1.0f);
  pack_input_bf16(b, 2, x.data(), packed_x.data());
  pack_forward_weights_bf16(b, w.data(), packed_w.data());
  direct_conv_forward_bf16(b, 2, packed_x.data(), packed_w.data(), bias.data(), packed_y.data());
  int nonzero = 0;
  for (int n = 0; n < 2; ++n)
    for (long p = 0; p < g.out_pixels(); ++p)
      for (int c = g.out_channels % channel_block; c < channel_block; ++c)
        nonzero += packed_y[((long(n) * b.out_blocks + 1) * g.out_pixels() + p) * channel_block + c] != 0.0f;
  CHECK(nonzero == 0);
}

TEST_CASE("the vector and scalar bf16 direct convolutions agree") {
  for (const ConvGeometry& g : {convolution(48, 32, 32, 80, 3, 1, 1), convolution(40, 31, 31, 24, 3, 2, 1),
                                convolution(16, 9, 9, 48, 5, 3, 2), convolution(35, 4, 4, 40, 3, 1, 1)}) {
    const std::vector<float> x = normal_values(3L * g.in_channels * g.in_pixels(), 14);
    const std::vector<float> w = normal_values.kernel_weights(g, 15);
    const std::vector<float> bias = normal_values(g.out_channels, 16);
    CHECK(worst_error(bf16_forward(g, 3, x, w, bias.data()),
                      bf16_forward(g, 3, x, w, bias.data(), Kernel::scalar)) <= tolerance);
  }
}

TEST_CASE("bf16 convolution of dy with transposed weights is the input gradient of a 3x3 same convolution") {
  check_input_gradient(convolution(20, 9, 9, 33, 3, 1, 1), 3);
}

TEST_CASE("bf16 convolution of dy with transposed weights is the input gradient of a 1x1 convolution") {
  check_input_gradient(convolution(33, 8, 8, 20, 1, 1, 0), 2);
}

TEST_CASE("bf16 convolution of dy with transposed weights is the input gradient of a 2x2 valid convolution") {
  check_input_gradient(convolution(3, 32, 32, 24, 2, 1, 0), 2);
}

TEST_CASE("bf16 convolution of dy with transposed weights is the input gradient of a 5x5 same convolution") {
  check_input_gradient(convolution(20, 7, 7, 33, 5, 1, 2), 3);
}
