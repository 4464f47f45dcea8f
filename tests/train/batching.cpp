// Shuffling and batch assembly: permutations are permutations, depend only on
// (seed, epoch), and gathering normalises exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <laminar/laminar.hpp>

using namespace laminar;

TEST_CASE("an epoch's order is a permutation fixed by seed and epoch") {
  const auto a = data::permutation(1000, 42, 3);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (long i = 0; i < 1000; ++i) REQUIRE(sorted[std::size_t(i)] == i);
  CHECK(a == data::permutation(1000, 42, 3));
  CHECK(a != data::permutation(1000, 42, 4));
  CHECK(a != data::permutation(1000, 43, 3));
}

TEST_CASE("gather normalises each channel and copies labels") {
  data::Dataset d{2, 1, 2, 3, {0, 255, 51, 102, /* sample 1 */ 255, 255, 0, 0}, {2, 0}, "test"};
  const data::Normalization norm{{0.5f, 0.2f}, {0.5f, 0.1f}};
  const long order[2] = {1, 0};
  float out[8];
  int labels[2];
  data::gather(d, order, 2, norm, out, labels);
  // sample 1 first: channel 0 (1 - 0.5) / 0.5 = 1, channel 1 (0 - 0.2) / 0.1 = -2
  CHECK(out[0] == doctest::Approx(1.0));
  CHECK(out[2] == doctest::Approx(-2.0));
  // sample 0: channel 0 pixels 0, 1 -> -1, 1; channel 1 pixels 0.2, 0.4 -> 0, 2
  CHECK(out[4] == doctest::Approx(-1.0));
  CHECK(out[5] == doctest::Approx(1.0));
  CHECK(out[6] == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(out[7] == doctest::Approx(2.0));
  CHECK(labels[0] == 0);
  CHECK(labels[1] == 2);
}

TEST_CASE("standardize computes per-channel mean and standard deviation") {
  data::Dataset d{1, 1, 2, 2, {0, 255, 255, 255}, {0, 1}, "test"};
  const auto n = data::Normalization::standardize(d);
  CHECK(n.mean[0] == doctest::Approx(0.75));
  CHECK(n.std[0] == doctest::Approx(std::sqrt(0.75 * 0.25)));
}
