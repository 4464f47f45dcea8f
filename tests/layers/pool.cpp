// Pooling: output shapes, forward values against hand computation (overlapping
// windows, stride larger than the window, all-negative windows), max pooling's
// gradient routing, and gradients against finite differences.
#include <doctest/doctest.h>

#include <type_traits>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;
using laminar_test::forward;

namespace {
template <class Net>
using Out = typename Net::output_shape;

// 4x4, the bottom windows all negative (a max that starts from 0 would show):
//    1  5 |  2  0
//    3  4 |  8  1
//   ------+------
//   -3 -1 | -2 -5
//   -7 -4 | -6 -9
const std::vector<double> four_by_four{1, 5, 2, 0, 3, 4, 8, 1, -3, -1, -2, -5, -7, -4, -6, -9};

// 5x5 for windows of 2 with stride 3: rows and columns 0-1 and 3-4 are pooled,
// row 2 and column 2 (the 99s and 0s) are skipped.
const std::vector<double> strided{1,  2,  0,  3,  4,   //
                                  6,  5,  0,  8,  7,   //
                                  99, 99, 99, 99, 99,  //
                                  9,  10, 0,  12, 11,  //
                                  14, 13, 0,  -1, -2};

template <class Net>
std::vector<double> pool(const std::vector<double>& x, int batch = 1) {
  Model<Net, cpu, double> model;
  return forward(model, x.data(), batch);
}
}  // namespace

TEST_CASE("pooling output shapes are floor((H - K) / S) + 1 and global pooling gives Shape<C>") {
  CHECK(std::is_same_v<Out<Sequential<Input<3, 4, 4>, MaxPool<2>>>, Shape<3, 2, 2>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 5>, MaxPool<2>>>, Shape<3, 2, 2>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 5>, MaxPool<3, 2>>>, Shape<3, 2, 2>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 5>, AvgPool<2, 3>>>, Shape<3, 2, 2>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 6, 4>, AvgPool<2>>>, Shape<3, 3, 2>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 7>, GlobalAvgPool>>, Shape<3>>);
  CHECK(std::is_same_v<Out<Sequential<Input<3, 5, 7>, GlobalMaxPool>>, Shape<3>>);
}

TEST_CASE("max pooling 2x2 takes each window's maximum, negative ones included") {
  // windows {1,5,3,4} {2,0,8,1} {-3,-1,-7,-4} {-2,-5,-6,-9}
  CHECK(pool<Sequential<Input<1, 4, 4>, MaxPool<2>>>(four_by_four) ==
        std::vector<double>{5, 8, -1, -2});
}

TEST_CASE("average pooling 2x2 takes each window's mean") {
  // sums 13, 11, -15, -22 over 4
  CHECK(pool<Sequential<Input<1, 4, 4>, AvgPool<2>>>(four_by_four) ==
        std::vector<double>{3.25, 2.75, -3.75, -5.5});
}

TEST_CASE("pooling with a stride larger than the window skips the rows and columns between") {
  // max:  {1,2,6,5} = 6, {3,4,8,7} = 8, {9,10,14,13} = 14, {12,11,-1,-2} = 12
  // mean: 14/4 = 3.5, 22/4 = 5.5, 46/4 = 11.5, 20/4 = 5
  CHECK(pool<Sequential<Input<1, 5, 5>, MaxPool<2, 3>>>(strided) ==
        std::vector<double>{6, 8, 14, 12});
  CHECK(pool<Sequential<Input<1, 5, 5>, AvgPool<2, 3>>>(strided) ==
        std::vector<double>{3.5, 5.5, 11.5, 5});
}

TEST_CASE("pooling drops the last row and column that no window covers") {
  // MaxPool<2> on 5x5 reads rows and columns 0-3 only: the 99s in row 4 and column 4 never win.
  std::vector<double> x(25, 99);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) x[r * 5 + c] = four_by_four[r * 4 + c];
  CHECK(pool<Sequential<Input<1, 5, 5>, MaxPool<2>>>(x) == std::vector<double>{5, 8, -1, -2});
}

TEST_CASE("overlapping max pooling windows share a maximum and add its gradients") {
  // MaxPool<3,2> on 5x5: the four windows (rows and columns 0-2 and 2-4) all hold
  // the centre pixel, set to 50, so all outputs are 50 and dx(2,2) = 1 + 2 + 3 + 4.
  using Net = Sequential<Input<1, 5, 5>, MaxPool<3, 2>>;
  std::vector<double> x(25);
  for (int i = 0; i < 25; ++i) x[i] = i % 7 - 3.0;
  x[12] = 50;
  Model<Net, cpu, double> model;
  CHECK(forward(model, x.data(), 1) == std::vector<double>{50, 50, 50, 50});
  const std::vector<double> dy{1, 2, 3, 4};
  std::vector<double> dx(25, -1), expected(25, 0);
  expected[12] = 10;
  model.backward(laminar_test::output_view<Model<Net, cpu, double>>{dy.data(), 1}, dx.data());
  CHECK(dx == expected);
}

TEST_CASE("max pooling routes a tied window's gradient to its first maximum") {
  using Net = Sequential<Input<1, 2, 2>, MaxPool<2>>;
  const std::vector<double> x{3, 3, 3, 3}, dy{1.5};
  std::vector<double> dx(4, -1);
  Model<Net, cpu, double> model;
  forward(model, x.data(), 1);
  model.backward(laminar_test::output_view<Model<Net, cpu, double>>{dy.data(), 1}, dx.data());
  CHECK(dx == std::vector<double>{1.5, 0, 0, 0});
}

TEST_CASE("global pooling reduces each channel's plane to its mean or maximum") {
  // Shape<2,2,3>: channel 0 = 1..6 (mean 3.5, max 6); channel 1 = {-1,-5,-2,-3,-4,-6}
  // (mean -21/6 = -3.5, max -1). A second sample is the first times 2.
  std::vector<double> x{1, 2, 3, 4, 5, 6, -1, -5, -2, -3, -4, -6};
  for (int i = 0; i < 12; ++i) x.push_back(2 * x[i]);
  CHECK(pool<Sequential<Input<2, 2, 3>, GlobalAvgPool>>(x, 2) ==
        std::vector<double>{3.5, -3.5, 7, -7});
  CHECK(pool<Sequential<Input<2, 2, 3>, GlobalMaxPool>>(x, 2) ==
        std::vector<double>{6, -1, 12, -2});
}

TEST_CASE("max pooling has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 4, 4>, MaxPool<2>>>();
}

TEST_CASE(
    "overlapping max pooling (stride below the window) has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 5, 5>, MaxPool<3, 2>>>();
}

TEST_CASE("max pooling with a stride above the window has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 5, 5>, MaxPool<2, 3>>>();
}

TEST_CASE("average pooling has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 4, 4>, AvgPool<2>>>();
  gradient_check::require_gradients_match<Sequential<Input<2, 5, 5>, AvgPool<3, 2>>>();
}

TEST_CASE("global average pooling has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, GlobalAvgPool>>({.batch = 3});
}

TEST_CASE("global max pooling has gradients matching finite differences") {
  gradient_check::require_gradients_match<Sequential<Input<2, 3, 3>, GlobalMaxPool>>({.batch = 3});
}
