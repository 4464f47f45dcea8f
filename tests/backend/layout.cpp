// The cpu backend's blocked layout (core/layout.hpp): the conversions put each
// element where the index formula says, and every primitive that sees channels
// (pointwise evaluation, per-channel sums, pooling, each convolution algorithm
// in each pass and arithmetic) gives on blocked tensors what it gives on
// planar ones.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <laminar/backend/cpu/conv.hpp>  // the kernels themselves, not only ops<cpu>
#include <laminar/laminar.hpp>

#include "support/convolution.hpp"
#include "support/reference_convolution.hpp"

using namespace laminar;
using laminar_test::convolution;
using laminar_test::relative_difference;

namespace {

const laminar_test::SeededNormal normal_values(23);

template <class T>
std::vector<T> to_blocked(const std::vector<T>& planar, int batch, int channels, long pixels) {
  std::vector<T> blocked(planar.size());
  ops<cpu>::convert(blocked.data(), Layout::blocked, planar.data(), Layout::planar, batch, channels, pixels);
  return blocked;
}
template <class T>
std::vector<T> to_planar(const std::vector<T>& blocked, int batch, int channels, long pixels) {
  std::vector<T> planar(blocked.size());
  ops<cpu>::convert(planar.data(), Layout::planar, blocked.data(), Layout::blocked, batch, channels, pixels);
  return planar;
}

template <class T>
void check_conversion(int batch, int channels, long pixels) {
  CAPTURE(batch);
  CAPTURE(channels);
  CAPTURE(pixels);
  std::vector<T> planar(std::size_t(batch) * channels * pixels);
  for (std::size_t i = 0; i < planar.size(); ++i) planar[i] = T(i);
  const std::vector<T> blocked = to_blocked(planar, batch, channels, pixels);
  long misplaced = 0;
  for (int n = 0; n < batch; ++n)
    for (int c = 0; c < channels; ++c)
      for (long p = 0; p < pixels; ++p)
        misplaced += blocked[std::size_t(((long(n) * (channels / 16) + c / 16) * pixels + p) * 16 + c % 16)] !=
                     planar[std::size_t((long(n) * channels + c) * pixels + p)];
  CHECK(misplaced == 0);
  CHECK(to_planar(blocked, batch, channels, pixels) == planar);
}

}  // namespace

TEST_CASE("the layout conversions put element (n, c, p) at ((n, c / 16, p) * 16 + c % 16) and back") {
  check_conversion<float>(3, 32, 49);
  check_conversion<float>(2, 16, 64);
  check_conversion<float>(5, 48, 1);
  check_conversion<double>(2, 32, 15);
  check_conversion<float>(128, 32, 1024);  // large enough to stream around the cache
}

namespace {

// A 16-multiple tensor's worth of normal values and the per-channel vectors the
// expressions below broadcast.
struct PointwiseCase {
  int batch = 3, channels = 32;
  long pixels = 35;
  std::vector<float> x = normal_values(long(batch) * channels * pixels, 1);
  std::vector<float> y = normal_values(long(batch) * channels * pixels, 2);
  std::vector<float> scale = normal_values(channels, 3), shift = normal_values(channels, 4);
  std::vector<float> xb = to_blocked(x, batch, channels, pixels), yb = to_blocked(y, batch, channels, pixels);
};

}  // namespace

TEST_CASE("per-channel evaluation and sums give the same on blocked tensors as on planar ones") {
  using namespace expr;
  const PointwiseCase t;
  const auto affine = [&](const float* x) { return in(x) * per_channel(t.scale.data()) + per_channel(t.shift.data()); };
  std::vector<float> planar(t.x.size()), blocked(t.x.size());
  ops<cpu>::eval(planar.data(), t.batch, t.channels, t.pixels, affine(t.x.data()));
  ops<cpu>::eval(blocked.data(), t.batch, t.channels, t.pixels, affine(t.xb.data()), Layout::blocked);
  CHECK(to_planar(blocked, t.batch, t.channels, t.pixels) == planar);

  std::vector<float> sum(32), sum_blocked(32), second(32), second_blocked(32);
  ops<cpu>::sum_per_channel(sum.data(), t.batch, t.channels, t.pixels, affine(t.x.data()));
  ops<cpu>::sum_per_channel(sum_blocked.data(), t.batch, t.channels, t.pixels, affine(t.xb.data()), Layout::blocked);
  CHECK(relative_difference(sum_blocked, sum) < 1e-6);

  ops<cpu>::sum2_per_channel(sum.data(), second.data(), t.batch, t.channels, t.pixels, in(t.x.data()),
                             in(t.x.data()) * in(t.y.data()));
  ops<cpu>::sum2_per_channel(sum_blocked.data(), second_blocked.data(), t.batch, t.channels, t.pixels,
                             in(t.xb.data()), in(t.xb.data()) * in(t.yb.data()), Layout::blocked);
  CHECK(relative_difference(sum_blocked, sum) < 1e-6);
  CHECK(relative_difference(second_blocked, second) < 1e-6);

  ops<cpu>::eval_sum2_per_channel(planar.data(), sum.data(), second.data(), t.batch, t.channels, t.pixels,
                                  affine(t.x.data()), in(t.y.data()));
  ops<cpu>::eval_sum2_per_channel(blocked.data(), sum_blocked.data(), second_blocked.data(), t.batch, t.channels,
                                  t.pixels, affine(t.xb.data()), in(t.yb.data()), Layout::blocked);
  CHECK(to_planar(blocked, t.batch, t.channels, t.pixels) == planar);
  CHECK(relative_difference(sum_blocked, sum) < 1e-6);
  CHECK(relative_difference(second_blocked, second) < 1e-6);
}

TEST_CASE("blocked per-channel sums do not depend on the thread count") {
  using namespace expr;
  const PointwiseCase t;
  std::vector<float> two(32), one(32);
  ops<cpu>::sum_per_channel(two.data(), t.batch, t.channels, t.pixels, in(t.xb.data()), Layout::blocked);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  ops<cpu>::sum_per_channel(one.data(), t.batch, t.channels, t.pixels, in(t.xb.data()), Layout::blocked);
  omp_set_num_threads(threads);
  CHECK(one == two);
}

namespace {

void check_pool(PoolKind kind, int channels, int height, int width, int kernel, int stride, int batch) {
  CAPTURE(int(kind));
  CAPTURE(height);
  CAPTURE(width);
  CAPTURE(kernel);
  CAPTURE(stride);
  const PoolGeometry g{channels, height, width, (height - kernel) / stride + 1, (width - kernel) / stride + 1,
                       kernel, kernel, stride, stride};
  const long in = long(batch) * channels * height * width, out = long(batch) * channels * g.out_height * g.out_width;
  std::vector<float> x = normal_values(in, 5);
  for (long i = 0; i < in; i += 5) x[std::size_t(i)] = x[std::size_t(i + 1 < in ? i + 1 : i)];  // ties
  x[std::size_t(in / 3)] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> dy = normal_values(out, 6);
  const long in_pixels = long(height) * width, out_pixels = long(g.out_height) * g.out_width;
  const auto xb = to_blocked(x, batch, channels, in_pixels), dyb = to_blocked(dy, batch, channels, out_pixels);
  std::vector<float> y(static_cast<std::size_t>(out)), yb(y.size()), dx(x.size(), 3.f), dxb(x.size(), 5.f);
  ops<cpu>::pool2d_forward(kind, g, batch, x.data(), y.data());
  ops<cpu>::pool2d_forward(kind, g, batch, xb.data(), yb.data(), Layout::blocked);
  const auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](float u, float v) { return u == v || (std::isnan(u) && std::isnan(v)); });
  };
  CHECK(same_bits(to_planar(yb, batch, channels, out_pixels), y));
  ops<cpu>::pool2d_backward(kind, g, batch, x.data(), dy.data(), dx.data());
  ops<cpu>::pool2d_backward(kind, g, batch, xb.data(), dyb.data(), dxb.data(), Layout::blocked);
  CHECK(relative_difference(to_planar(dxb, batch, channels, in_pixels), dx) < 1e-6);
}

}  // namespace

TEST_CASE("pooling gives the same on blocked tensors as on planar ones, ties and NaN included") {
  check_pool(PoolKind::max, 32, 8, 8, 2, 2, 3);
  check_pool(PoolKind::max, 16, 7, 9, 2, 2, 2);  // odd sizes leave a row and column outside every window
  check_pool(PoolKind::max, 16, 7, 7, 3, 2, 2);
  check_pool(PoolKind::average, 32, 8, 6, 2, 2, 2);
  check_pool(PoolKind::average, 16, 5, 5, 3, 1, 1);
  check_pool(PoolKind::average, 48, 6, 6, 6, 1, 2);  // global
  check_pool(PoolKind::max, 16, 4, 5, 4, 1, 3);      // global, not square
}

namespace {

// The three passes of a convolution on blocked tensors against the same passes
// on planar ones, in every combination of input and output layouts the shapes
// allow. `run` takes (x, w, bias, y, layouts), ..., and runs one algorithm.
struct ConvPasses {
  ConvGeometry g;
  int batch;
  std::vector<float> x, dy, w, bias;
  ConvPasses(const ConvGeometry& geometry, int images)
      : g(geometry),
        batch(images),
        x(normal_values(long(images) * g.in_channels * g.in_pixels(), 7)),
        dy(normal_values(long(images) * g.out_channels * g.out_pixels(), 8)),
        w(normal_values(long(g.out_channels) * g.patch(), 9, 1.0 / std::sqrt(double(g.patch())))),
        bias(normal_values(g.out_channels, 10)) {}

  std::vector<float> in(const std::vector<float>& v, Layout layout) const {
    return layout == Layout::blocked ? to_blocked(v, batch, g.in_channels, g.in_pixels()) : v;
  }
  std::vector<float> out(const std::vector<float>& v, Layout layout) const {
    return layout == Layout::blocked ? to_blocked(v, batch, g.out_channels, g.out_pixels()) : v;
  }
  std::vector<float> planar_in(const std::vector<float>& v, Layout layout) const {
    return layout == Layout::blocked ? to_planar(v, batch, g.in_channels, g.in_pixels()) : v;
  }
  std::vector<float> planar_out(const std::vector<float>& v, Layout layout) const {
    return layout == Layout::blocked ? to_planar(v, batch, g.out_channels, g.out_pixels()) : v;
  }
};

template <class Forward, class BackwardData, class BackwardWeights>
void check_layouts(const ConvPasses& c, double tolerance, Forward forward, BackwardData backward_data,
                   BackwardWeights backward_weights) {
  CAPTURE(c.g.in_channels);
  CAPTURE(c.g.out_channels);
  CAPTURE(c.g.height);
  CAPTURE(c.g.width);
  CAPTURE(c.g.kernel_h);
  CAPTURE(c.g.stride_h);
  CAPTURE(c.batch);
  std::vector<float> y(c.dy.size()), dx(c.x.size()), dw(c.w.size()), db(c.bias.size());
  forward(c.x.data(), y.data(), ConvLayouts{});
  backward_data(c.dy.data(), dx.data(), ConvLayouts{});
  backward_weights(c.x.data(), c.dy.data(), dw.data(), db.data(), ConvLayouts{});
  for (const Layout input : {Layout::planar, Layout::blocked})
    for (const Layout output : {Layout::planar, Layout::blocked}) {
      if ((input == Layout::blocked && c.g.in_channels % 16) || (output == Layout::blocked && c.g.out_channels % 16))
        continue;
      if (input == Layout::planar && output == Layout::planar) continue;
      const std::string layouts_tried = std::string(layout_name(input)) + " -> " + layout_name(output);
      CAPTURE(layouts_tried);
      const ConvLayouts layouts{input, output};
      const auto x = c.in(c.x, input), dy = c.out(c.dy, output);
      std::vector<float> yl(y.size(), 7.f), dxl(dx.size(), 7.f), dwl(dw.size(), 7.f), dbl(db.size(), 7.f);
      forward(x.data(), yl.data(), layouts);
      CHECK(relative_difference(c.planar_out(yl, output), y) < tolerance);
      backward_data(dy.data(), dxl.data(), layouts);
      CHECK(relative_difference(c.planar_in(dxl, input), dx) < tolerance);
      backward_weights(x.data(), dy.data(), dwl.data(), dbl.data(), layouts);
      CHECK(relative_difference(dwl, dw) < tolerance);
      CHECK(relative_difference(dbl, db) < tolerance);
    }
}

// ops<cpu>'s own choice of algorithm, in float, bf16 or double.
void check_ops(const ConvGeometry& g, int batch, Arithmetic arithmetic = Arithmetic::native) {
  const ConvPasses c(g, batch);
  Workspace<cpu> ws;
  check_layouts(
      c, 1e-5,
      [&](const float* x, float* y, ConvLayouts l) {
        ops<cpu>::conv2d_forward(g, batch, x, c.w.data(), c.bias.data(), y, ws, arithmetic, ConvEpilogue::none, l);
      },
      [&](const float* dy, float* dx, ConvLayouts l) {
        ops<cpu>::conv2d_backward_data(g, batch, dy, c.w.data(), dx, ws, arithmetic, l);
      },
      [&](const float* x, const float* dy, float* dw, float* db, ConvLayouts l) {
        ops<cpu>::conv2d_backward_weights(g, batch, x, dy, dw, db, ws, arithmetic, l);
      });
}

}  // namespace

TEST_CASE("every convolution pass gives the same on blocked tensors as on planar ones") {
  check_ops(convolution(16, 12, 10, 16, 3, 1, 1), 3);     // direct, each thread padding its images
  check_ops(convolution(32, 9, 7, 32, 3, 1, 1), 2);       // Winograd: windows cut at the edges
  check_ops(convolution(16, 11, 9, 32, 3, 2, 1), 3);      // strided: im2col input gradient on planar copies
  check_ops(convolution(16, 8, 8, 32, 1, 2, 0), 2);       // strided 1x1: the blocked input is its packed form
  check_ops(convolution(3, 10, 10, 16, 3, 1, 1), 2);      // planar input, blocked output
  check_ops(convolution(32, 10, 10, 24, 3, 1, 1), 2);     // blocked input, planar output
  check_ops(convolution(16, 9, 9, 48, 5, 1, 2), 1);       // 5x5
  check_ops(convolution(256, 4, 4, 256, 3, 1, 1), 2);     // weights beyond L2: the kernel sweeps by weights
  check_ops(convolution(16, 12, 10, 16, 3, 1, 1), 3, Arithmetic::bf16);
  check_ops(convolution(32, 9, 7, 64, 3, 2, 1), 2, Arithmetic::bf16);
}

TEST_CASE("each float convolution algorithm gives the same on blocked tensors as on planar ones") {
  for (const ConvGeometry& g : {convolution(16, 12, 10, 16, 3, 1, 1), convolution(32, 7, 9, 32, 3, 1, 1),
                                convolution(256, 5, 5, 256, 3, 1, 1)}) {
    const int batch = 2;
    const ConvPasses c(g, batch);
    Workspace<cpu> ws;
    check_layouts(
        c, 1e-5,
        [&](const float* x, float* y, ConvLayouts l) {
          cpu_detail::direct_conv2d_forward(g, batch, x, c.w.data(), c.bias.data(), y, ws, ConvEpilogue::none, l);
        },
        [&](const float* dy, float* dx, ConvLayouts l) {
          cpu_detail::direct_conv2d_backward_data(g, batch, dy, c.w.data(), dx, ws, l);
        },
        [&](const float* x, const float* dy, float* dw, float* db, ConvLayouts l) {
          cpu_detail::direct_conv2d_backward_weights(g, batch, x, dy, dw, db, ws, l);
        });
#if defined(__AVX512F__)
    check_layouts(
        c, 1e-5,
        [&](const float* x, float* y, ConvLayouts l) {
          cpu_detail::winograd_conv2d_forward(g, batch, x, c.w.data(), c.bias.data(), y, ws, ConvEpilogue::none, l);
        },
        [&](const float* dy, float* dx, ConvLayouts l) {
          cpu_detail::winograd_conv2d_backward_data(g, batch, dy, c.w.data(), dx, ws, l);
        },
        [&](const float* x, const float* dy, float* dw, float* db, ConvLayouts l) {
          cpu_detail::winograd_conv2d_backward_weights(g, batch, x, dy, dw, db, ws, l);
        });
#endif
  }
}

TEST_CASE("the bf16 vdpbf16ps and Winograd passes give the same on blocked tensors as on planar ones") {
#if defined(__AVX512BF16__)
  const ConvGeometry g = convolution(32, 9, 7, 32, 3, 1, 1);
  const int batch = 3;
  const ConvPasses c(g, batch);
  Workspace<cpu> ws;
  // Its weight gradient reads planar operands only: the ops test above covers it.
  const auto no_weights = [&](const float*, const float*, float* dw, float* db, ConvLayouts) {
    std::fill(dw, dw + c.w.size(), 0.f);
    std::fill(db, db + c.bias.size(), 0.f);
  };
  check_layouts(
      c, 1e-5,
      [&](const float* x, float* y, ConvLayouts l) {
        cpu_detail::dot_product_conv2d_forward(g, batch, x, c.w.data(), c.bias.data(), y, ws, ConvEpilogue::none, l);
      },
      [&](const float* dy, float* dx, ConvLayouts l) {
        cpu_detail::dot_product_conv2d_backward_data(g, batch, dy, c.w.data(), dx, ws, l);
      },
      no_weights);
  check_layouts(
      c, 1e-5,
      [&](const float* x, float* y, ConvLayouts l) {
        cpu_detail::winograd_conv2d_forward<cpu_detail::bf16_bits>(g, batch, x, c.w.data(), c.bias.data(), y, ws,
                                                                  ConvEpilogue::none, l);
      },
      [&](const float* dy, float* dx, ConvLayouts l) {
        cpu_detail::winograd_conv2d_backward_data<cpu_detail::bf16_bits>(g, batch, dy, c.w.data(), dx, ws, l);
      },
      [&](const float* x, const float* dy, float* dw, float* db, ConvLayouts l) {
        cpu_detail::winograd_conv2d_backward_weights<cpu_detail::bf16_bits>(g, batch, x, dy, dw, db, ws, l);
      });
#else
  MESSAGE("no AVX-512 BF16 in this build: the vdpbf16ps passes are not compiled");
#endif
}

TEST_CASE("double convolutions on blocked tensors go through planar copies and give the same") {
  const ConvGeometry g = convolution(16, 7, 6, 32, 3, 1, 1);
  const int batch = 2;
  const ConvPasses c(g, batch);
  const auto d = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
  const auto f = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  const std::vector<double> w = d(c.w), bias = d(c.bias);
  Workspace<cpu> ws;
  check_layouts(
      c, 1e-12,
      [&](const float* x, float* y, ConvLayouts l) {
        const auto xd = d({x, x + c.x.size()});
        std::vector<double> yd(c.dy.size());
        ops<cpu>::conv2d_forward(g, batch, xd.data(), w.data(), bias.data(), yd.data(), ws, Arithmetic::native,
                                 ConvEpilogue::none, l);
        std::copy(yd.begin(), yd.end(), y);
      },
      [&](const float* dy, float* dx, ConvLayouts l) {
        const auto dyd = d({dy, dy + c.dy.size()});
        std::vector<double> dxd(c.x.size());
        ops<cpu>::conv2d_backward_data(g, batch, dyd.data(), w.data(), dxd.data(), ws, Arithmetic::native, l);
        const auto out = f(dxd);
        std::copy(out.begin(), out.end(), dx);
      },
      [&](const float* x, const float* dy, float* dw, float* db, ConvLayouts l) {
        const auto xd = d({x, x + c.x.size()}), dyd = d({dy, dy + c.dy.size()});
        std::vector<double> dwd(c.w.size()), dbd(c.bias.size());
        ops<cpu>::conv2d_backward_weights(g, batch, xd.data(), dyd.data(), dwd.data(), dbd.data(), ws,
                                          Arithmetic::native, l);
        std::copy(dwd.begin(), dwd.end(), dw);
        std::copy(dbd.begin(), dbd.end(), db);
      });
}
