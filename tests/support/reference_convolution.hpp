// What the backend convolution tests check their kernels against: seeded normal
// data, bf16 rounding, naive convolutions in double (forward, input gradient,
// weight and bias gradient) and the error metrics they compare by.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <laminar/backend/cpu/bf16.hpp>
#include <laminar/core/geometry.hpp>
#include <laminar/core/philox.hpp>
#include <limits>
#include <random>
#include <vector>

namespace laminar_test {

// Standard normal floats from Philox: element i of stream s is the draw
// (seed, s, 0, i), so each test file keeps its own seed and each tensor its
// own stream.
class SeededNormal {
 public:
  explicit SeededNormal(std::uint64_t seed) : seed_(seed) {}

  std::vector<float> operator()(long count, std::uint32_t stream, double scale = 1.0) const {
    std::vector<float> values(count);
    for (long i = 0; i < count; ++i)
      values[i] = float(scale * laminar::philox::normal(seed_, stream, 0, std::uint64_t(i)));
    return values;
  }

  // Weights (Cout, Cin, KH, KW) scaled by 1 / sqrt(Cin * KH * KW), so that a
  // convolution of standard normal inputs has outputs of order 1.
  std::vector<float> kernel_weights(const laminar::ConvGeometry& g, std::uint32_t stream) const {
    return (*this)(long(g.out_channels) * g.patch(), stream, 1.0 / std::sqrt(double(g.patch())));
  }

 private:
  std::uint64_t seed_;
};

// The floats the bf16 operands stand for.
inline std::vector<float> bf16_rounded(std::vector<float> values) {
  for (float& value : values) value = laminar::cpu_detail::round_to_bf16(value);
  return values;
}

// y (N, Cout, OH, OW) = bias + conv(x (N, Cin, H, W), w (Cout, Cin, KH, KW)) in
// double; window positions in the padding read zero.
inline std::vector<double> naive_forward(const laminar::ConvGeometry& g, int batch, const std::vector<float>& x,
                                         const std::vector<float>& w, const float* bias) {
  std::vector<double> y(long(batch) * g.out_channels * g.out_pixels());
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < g.out_channels; ++o)
      for (int oy = 0; oy < g.out_height; ++oy)
        for (int ox = 0; ox < g.out_width; ++ox) {
          double sum = bias ? bias[o] : 0.0;
          for (int i = 0; i < g.in_channels; ++i)
            for (int ky = 0; ky < g.kernel_h; ++ky)
              for (int kx = 0; kx < g.kernel_w; ++kx) {
                const int iy = oy * g.stride_h + ky - g.pad_top, ix = ox * g.stride_w + kx - g.pad_left;
                if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
                sum += double(w[((long(o) * g.in_channels + i) * g.kernel_h + ky) * g.kernel_w + kx]) *
                       x[((long(n) * g.in_channels + i) * g.height + iy) * g.width + ix];
              }
          y[((long(n) * g.out_channels + o) * g.out_height + oy) * g.out_width + ox] = sum;
        }
  return y;
}

// dx (N, Cin, H, W) = conv^T(dy, w) in double: each dy pixel scatters through
// the kernel onto the input pixels its window covered.
inline std::vector<double> naive_input_gradient(const laminar::ConvGeometry& g, int batch,
                                                const std::vector<float>& dy, const std::vector<float>& w) {
  std::vector<double> dx(long(batch) * g.in_channels * g.in_pixels(), 0.0);
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < g.out_channels; ++o)
      for (int oy = 0; oy < g.out_height; ++oy)
        for (int ox = 0; ox < g.out_width; ++ox)
          for (int i = 0; i < g.in_channels; ++i)
            for (int ky = 0; ky < g.kernel_h; ++ky)
              for (int kx = 0; kx < g.kernel_w; ++kx) {
                const int iy = oy * g.stride_h + ky - g.pad_top, ix = ox * g.stride_w + kx - g.pad_left;
                if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
                dx[((long(n) * g.in_channels + i) * g.height + iy) * g.width + ix] +=
                    double(w[((long(o) * g.in_channels + i) * g.kernel_h + ky) * g.kernel_w + kx]) *
                    dy[((long(n) * g.out_channels + o) * g.out_height + oy) * g.out_width + ox];
              }
  return dx;
}

// Naive sums in double with the sum of |terms| of each beside it: the scale a
// float sum's rounding error grows with.
struct NaiveSums {
  std::vector<double> values, magnitudes;
};

// dw[o][i][ky][kx] = sum over n, oy, ox of
// x[n][i][oy * sh + ky - pad_top][ox * sw + kx - pad_left] * dy[n][o][oy][ox].
inline NaiveSums naive_weight_gradient(const laminar::ConvGeometry& g, int batch, const std::vector<float>& x,
                                       const std::vector<float>& dy) {
  const long weights = long(g.out_channels) * g.in_channels * g.kernel_h * g.kernel_w;
  NaiveSums dw{std::vector<double>(weights, 0.0), std::vector<double>(weights, 0.0)};
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < g.out_channels; ++o)
      for (int oy = 0; oy < g.out_height; ++oy)
        for (int ox = 0; ox < g.out_width; ++ox) {
          const double d = dy[((long(n) * g.out_channels + o) * g.out_height + oy) * g.out_width + ox];
          for (int i = 0; i < g.in_channels; ++i)
            for (int ky = 0; ky < g.kernel_h; ++ky)
              for (int kx = 0; kx < g.kernel_w; ++kx) {
                const int iy = oy * g.stride_h + ky - g.pad_top, ix = ox * g.stride_w + kx - g.pad_left;
                if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
                const double term = x[((long(n) * g.in_channels + i) * g.height + iy) * g.width + ix] * d;
                const long e = ((long(o) * g.in_channels + i) * g.kernel_h + ky) * g.kernel_w + kx;
                dw.values[e] += term;
                dw.magnitudes[e] += std::abs(term);
              }
        }
  return dw;
}

// dbias[o] = sum over n, oy, ox of dy[n][o][oy][ox].
inline NaiveSums naive_bias_gradient(const laminar::ConvGeometry& g, int batch, const std::vector<float>& dy) {
  NaiveSums dbias{std::vector<double>(g.out_channels, 0.0), std::vector<double>(g.out_channels, 0.0)};
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < g.out_channels; ++o)
      for (long p = 0; p < g.out_pixels(); ++p) {
        const double d = dy[(long(n) * g.out_channels + o) * g.out_pixels() + p];
        dbias.values[o] += d;
        dbias.magnitudes[o] += std::abs(d);
      }
  return dbias;
}

// The largest |got - want| / max(1, |want|): relative where want is large,
// absolute near zero; NaN where any element's error is NaN.
template <class Want>
double worst_error(const std::vector<float>& got, const std::vector<Want>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0;
  for (std::size_t k = 0; k < got.size(); ++k) {
    const double error = std::abs(got[k] - double(want[k])) / std::max(1.0, std::abs(double(want[k])));
    if (!(error <= worst)) worst = error;
  }
  return worst;
}

// Checks |value - reference| <= tolerance * max(1, scale) element by element,
// scale being the sum of |terms| of each reference sum (NaiveSums::magnitudes).
inline void check_close(const std::vector<float>& value, const std::vector<double>& reference,
                        const std::vector<double>& scale, double tolerance) {
  REQUIRE(value.size() == reference.size());
  long bad = 0;
  double worst = 0;
  for (std::size_t e = 0; e < value.size(); ++e) {
    const double error = std::abs(double(value[e]) - reference[e]) / std::max(1.0, scale[e]);
    if (!(error <= tolerance)) ++bad;
    if (!(error <= worst)) worst = error;
  }
  CAPTURE(worst);
  CHECK(bad == 0);
}

// The largest |a - b| over the largest |b|: convolution sums mix signs, so a
// per-element relative error means nothing near zero.
template <class A, class B>
double relative_difference(const A& a, const B& b) {
  double difference = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference = std::max(difference, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return difference / std::max(scale, 1e-30);
}

// Normal values with, every seventh element, one whose bf16 rounding is a corner
// case: ties to even in both directions, subnormals (flushed to zero),
// infinities, a NaN. From <random>, which is cheaper than Philox for the
// packers' tens of millions.
inline std::vector<float> values_with_corner_cases(long count, std::uint32_t seed) {
  const float corners[] = {1.0f + 0x1p-8f,  1.0f + 3 * 0x1p-8f, -(1.0f + 0x1p-8f),
                           1e-40f,          -1e-40f,            std::numeric_limits<float>::infinity(),
                           -0.0f,           std::numeric_limits<float>::quiet_NaN()};
  std::mt19937 generator(seed);
  std::normal_distribution<float> distribution;
  std::vector<float> v(count);
  for (long e = 0; e < count; ++e) v[e] = e % 7 == 0 ? corners[(e / 7) % std::size(corners)] : distribution(generator);
  return v;
}

// `count` elements of `storage`, starting `shift` elements past a 64-byte
// boundary, filled with a NaN pattern that no packer writes, so that an
// unwritten element shows. Shift 0 lets a packer take its streaming path,
// shift 1 keeps it off.
inline laminar::cpu_detail::bf16_bits* aligned_within(std::vector<laminar::cpu_detail::bf16_bits>& storage,
                                                      long count, int shift) {
  storage.assign(count + 64, laminar::cpu_detail::bf16_bits(0x7fab));
  const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
  return storage.data() + (64 - address % 64) % 64 / sizeof(laminar::cpu_detail::bf16_bits) + shift;
}

}  // namespace laminar_test
