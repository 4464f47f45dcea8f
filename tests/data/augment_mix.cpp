// Mixup and CutMix: targets are distributions, l follows Beta(a, a), images are
// the stated blends, and CutMix's l is the unpasted area.
#include <doctest/doctest.h>

#include <cmath>
#include <laminar/data/augment/mix.hpp>
#include <numeric>
#include <vector>

using namespace laminar;

TEST_CASE("mixup targets are distributions that put l on the label and 1 - l on the partner's") {
  augment::Mixer<double> mixer({.kind = augment::MixKind::mixup, .alpha = 0.4});
  const int n = 6, classes = 5;
  std::vector<double> images(n * 2 * 2 * 2), targets(n * classes);
  std::iota(images.begin(), images.end(), 0.0);
  const std::vector<double> original = images;
  std::vector<int> labels{0, 1, 2, 3, 4, 0};
  const double l = mixer.apply(images.data(), labels.data(), n, 2, 2, 2, classes, 11, 3, targets.data());
  REQUIRE(l > 0.0);
  REQUIRE(l < 1.0);
  const auto partners = data::permutation(n, 11 ^ 0x4d49585550ull, 3);
  for (int i = 0; i < n; ++i) {
    double sum = 0;
    for (int k = 0; k < classes; ++k) sum += targets[i * classes + k];
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-12));
    const long j = partners[std::size_t(i)];
    if (labels[std::size_t(j)] != labels[std::size_t(i)])
      CHECK(targets[i * classes + labels[i]] == doctest::Approx(l));
    for (int k = 0; k < 8; ++k)
      CHECK(images[i * 8 + k] == doctest::Approx(l * original[i * 8 + k] + (1 - l) * original[j * 8 + k]));
  }
}

TEST_CASE("mixup weights follow Beta(alpha, alpha): mean 1/2, variance 1/(4(2 alpha + 1))") {
  const double alpha = 0.5;
  augment::Mixer<float> mixer({.alpha = alpha});
  double sum = 0, sum_sq = 0;
  const int draws = 20000;
  for (int step = 0; step < draws; ++step) {
    const double l = mixer.lambda(5, std::uint32_t(step));
    REQUIRE(l >= 0.0);
    REQUIRE(l <= 1.0);
    sum += l;
    sum_sq += l * l;
  }
  const double mean = sum / draws, variance = sum_sq / draws - mean * mean;
  CHECK(mean == doctest::Approx(0.5).epsilon(0.02));
  CHECK(variance == doctest::Approx(1 / (4 * (2 * alpha + 1))).epsilon(0.05));
}

TEST_CASE("a batch is left unmixed with probability 1 - p") {
  augment::Mixer<float> mixer({.alpha = 1.0, .probability = 0.3});
  int mixed = 0;
  for (int step = 0; step < 10000; ++step) mixed += mixer.lambda(8, std::uint32_t(step)) < 1.0;
  CHECK(double(mixed) / 10000 == doctest::Approx(0.3).epsilon(0.05));
}

TEST_CASE("cutmix pastes one box from the partner and l is the area left of the original") {
  augment::Mixer<float> mixer({.kind = augment::MixKind::cutmix, .alpha = 1.0});
  const int n = 4, c = 3, h = 8, w = 8, classes = 3;
  std::vector<float> images(n * c * h * w), targets(n * classes);
  for (int i = 0; i < n; ++i) std::fill(images.begin() + i * c * h * w, images.begin() + (i + 1) * c * h * w, float(i + 1));
  std::vector<int> labels{0, 1, 2, 0};
  for (std::uint32_t step = 0; step < 20; ++step) {
    auto batch = images;
    const double l = mixer.apply(batch.data(), labels.data(), n, c, h, w, classes, 2, step, targets.data());
    const auto partners = data::permutation(n, 2 ^ 0x4d49585550ull, step);
    for (int i = 0; i < n; ++i) {
      long from_partner = 0;
      for (int k = 0; k < c * h * w; ++k) {
        const float v = batch[i * c * h * w + k];
        CHECK((v == float(i + 1) || v == float(partners[std::size_t(i)] + 1)));
        from_partner += v != float(i + 1);
      }
      if (partners[std::size_t(i)] != i)
        CHECK(1.0 - double(from_partner) / (c * h * w) == doctest::Approx(l));
      double sum = 0;
      for (int k = 0; k < classes; ++k) sum += targets[i * classes + k];
      CHECK(sum == doctest::Approx(1.0));
    }
  }
}

TEST_CASE("label smoothing in mixed targets keeps rows summing to one") {
  augment::Mixer<double> mixer({.alpha = 1.0, .label_smoothing = 0.1});
  std::vector<double> images(2 * 4, 1.0), targets(2 * 10);
  std::vector<int> labels{3, 7};
  mixer.apply(images.data(), labels.data(), 2, 1, 2, 2, 10, 1, 1, targets.data());
  for (int i = 0; i < 2; ++i) {
    double sum = 0, smallest = 1;
    for (int k = 0; k < 10; ++k) {
      sum += targets[i * 10 + k];
      smallest = std::min(smallest, targets[i * 10 + k]);
    }
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(smallest == doctest::Approx(0.01).epsilon(1e-9));
  }
}

TEST_CASE("mixer rejects a non-positive alpha by name") {
  CHECK_THROWS_WITH_AS(augment::Mixer<float>({.alpha = 0.0}), doctest::Contains("alpha must be positive"), Error);
}
