// The 2x2 stride-2 max pooling fast path of the cpu backend equals the generic
// window loop bit for bit, forward and backward: on random values, on windows
// with ties (the first maximum takes the gradient), with NaN, and on odd sizes
// whose last row and column no window covers.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <laminar/laminar.hpp>
#include <vector>

using namespace laminar;

namespace {

void check_fast_path_matches_windows(int channels, int height, int width, int batch) {
  CAPTURE(height);
  CAPTURE(width);
  const PoolGeometry g{channels, height, width, height / 2, width / 2, 2, 2, 2, 2};
  REQUIRE(cpu_detail::is_two_by_two(g));
  const long in = long(batch) * channels * height * width, out = long(batch) * channels * g.out_height * g.out_width;
  std::vector<float> x(static_cast<std::size_t>(in)), dy(static_cast<std::size_t>(out));
  for (long i = 0; i < in; ++i) {
    // Coarse values so many windows hold ties; every 97th value NaN.
    x[std::size_t(i)] = i % 97 == 5 ? std::nanf("") : std::round(float(philox::normal(3, 1, 0, std::uint64_t(i))) * 2);
  }
  for (long i = 0; i < out; ++i) dy[std::size_t(i)] = float(philox::normal(3, 2, 0, std::uint64_t(i)));

  std::vector<float> y(dy.size()), y_windows(dy.size()), dx(x.size(), 7.f), dx_windows(x.size());
  ops<cpu>::pool2d_forward(PoolKind::max, g, batch, x.data(), y.data());
  cpu_detail::pool2d_forward_windows(PoolKind::max, g, batch, x.data(), y_windows.data());
  CHECK(std::memcmp(y.data(), y_windows.data(), y.size() * sizeof(float)) == 0);

  ops<cpu>::pool2d_backward(PoolKind::max, g, batch, x.data(), dy.data(), dx.data());
  cpu_detail::pool2d_backward_windows(PoolKind::max, g, batch, x.data(), dy.data(), dx_windows.data());
  CHECK(std::memcmp(dx.data(), dx_windows.data(), dx.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("2x2 max pooling's fast path equals the generic window loop on even sizes") {
  check_fast_path_matches_windows(16, 32, 32, 3);
  check_fast_path_matches_windows(5, 8, 8, 1);
}

TEST_CASE("2x2 max pooling's fast path equals the generic window loop on odd sizes") {
  check_fast_path_matches_windows(4, 31, 31, 2);
  check_fast_path_matches_windows(3, 15, 7, 3);
  check_fast_path_matches_windows(2, 3, 3, 1);
  check_fast_path_matches_windows(3, 15, 8, 2);  // only the last row outside every window
  check_fast_path_matches_windows(3, 8, 15, 2);  // only the last column
  check_fast_path_matches_windows(24, 31, 31, 4);  // large enough to run on every thread
  check_fast_path_matches_windows(2, 7, 41, 2);    // 20 windows a row: a full step of 16 and a tail
}
