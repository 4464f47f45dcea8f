// The augmentation contract: pipelines compose left to right, `.with(p)` applies
// a transform to a fraction p of samples, and every sample's random numbers are
// fixed by (seed, epoch, index) alone, whatever the batch it arrives in.
#include <doctest/doctest.h>

#include <laminar/data/augment/transform.hpp>
#include <climits>
#include <cmath>
#include <numeric>
#include <vector>

using namespace laminar;
using augment::Draw;
using augment::Image;

namespace {

// Deterministic transforms whose order is visible in the result.
struct AddOne : augment::WithProbability<AddOne> {
  void operator()(const Image& in, const Image& out, Draw&) const {
    for (long i = 0; i < in.size(); ++i) out.data[i] = std::uint8_t(in.data[i] + 1);
  }
};
struct Double : augment::WithProbability<Double> {
  void operator()(const Image& in, const Image& out, Draw&) const {
    for (long i = 0; i < in.size(); ++i) out.data[i] = std::uint8_t(in.data[i] * 2);
  }
};
// Writes one random byte per pixel: shows which numbers a sample drew.
struct Noise : augment::WithProbability<Noise> {
  void operator()(const Image& in, const Image& out, Draw& draw) const {
    for (long i = 0; i < in.size(); ++i) out.data[i] = std::uint8_t(draw.integer(0, 255));
  }
};

std::vector<std::uint8_t> images(int n, int size) {
  std::vector<std::uint8_t> v(std::size_t(n) * size);
  std::iota(v.begin(), v.end(), std::uint8_t(0));
  return v;
}

}  // namespace

TEST_CASE("a pipeline applies its transforms left to right") {
  auto batch = images(2, 4);
  const auto before = batch;
  const long indices[2] = {0, 1};
  (AddOne{} | Double{}).apply(batch.data(), 2, 1, 2, 2, indices, 1, 0);
  for (std::size_t i = 0; i < batch.size(); ++i) CHECK(batch[i] == std::uint8_t((before[i] + 1) * 2));
  batch = before;
  (Double{} | AddOne{} | AddOne{}).apply(batch.data(), 2, 1, 2, 2, indices, 1, 0);
  for (std::size_t i = 0; i < batch.size(); ++i) CHECK(batch[i] == std::uint8_t(before[i] * 2 + 2));
}

TEST_CASE("with(p) applies a transform to about a fraction p of the samples") {
  const int n = 4000;
  auto batch = std::vector<std::uint8_t>(n, 10);
  std::vector<long> indices(n);
  std::iota(indices.begin(), indices.end(), 0L);
  augment::pipeline(AddOne{}.with(0.3f)).apply(batch.data(), n, 1, 1, 1, indices.data(), 5, 2);
  long changed = 0;
  for (auto v : batch) {
    REQUIRE((v == 10 || v == 11));
    changed += v == 11;
  }
  CHECK(double(changed) / n == doctest::Approx(0.3).epsilon(0.08));
}

TEST_CASE("with(0) never applies and with(1) always applies") {
  auto batch = images(50, 3);
  const auto before = batch;
  std::vector<long> indices(50);
  std::iota(indices.begin(), indices.end(), 0L);
  augment::pipeline(Noise{}.with(0.f)).apply(batch.data(), 50, 1, 1, 3, indices.data(), 1, 0);
  CHECK(batch == before);
  augment::pipeline(AddOne{}.with(1.f)).apply(batch.data(), 50, 1, 1, 3, indices.data(), 1, 0);
  for (std::size_t i = 0; i < batch.size(); ++i) CHECK(batch[i] == std::uint8_t(before[i] + 1));
}

TEST_CASE("a sample's augmentation depends on its index, seed and epoch, not on its batch") {
  const auto noise = augment::pipeline(Noise{});
  // Sample 7 alone, and sample 7 as the second of a batch of two.
  std::vector<std::uint8_t> alone(16), pair(32);
  const long just_seven[1] = {7}, three_and_seven[2] = {3, 7};
  noise.apply(alone.data(), 1, 1, 4, 4, just_seven, 9, 4);
  noise.apply(pair.data(), 2, 1, 4, 4, three_and_seven, 9, 4);
  CHECK(std::vector<std::uint8_t>(pair.begin() + 16, pair.end()) == alone);
  CHECK(std::vector<std::uint8_t>(pair.begin(), pair.begin() + 16) != alone);
  std::vector<std::uint8_t> other_epoch(16), other_seed(16);
  noise.apply(other_epoch.data(), 1, 1, 4, 4, just_seven, 9, 5);
  noise.apply(other_seed.data(), 1, 1, 4, 4, just_seven, 10, 4);
  CHECK(other_epoch != alone);
  CHECK(other_seed != alone);
}

TEST_CASE("two transforms of one pipeline draw from different streams") {
  std::vector<std::uint8_t> once(16), twice(16);
  const long index[1] = {0};
  augment::pipeline(Noise{}).apply(once.data(), 1, 1, 4, 4, index, 1, 0);
  (AddOne{} | Noise{}).apply(twice.data(), 1, 1, 4, 4, index, 1, 0);
  CHECK(once != twice);  // Noise at position 1 does not repeat position 0's numbers
}

TEST_CASE("a probability outside 0 to 1 is refused by name") {
  CHECK_THROWS_WITH_AS(AddOne{}.with(1.5f), doctest::Contains("probability 1.5"), Error);
}

TEST_CASE("draws cover their ranges: integer bounds inclusive, uniform below its upper bound") {
  Draw draw(3, 1, 42, 0);
  int low = 0, high = 0;
  for (int i = 0; i < 2000; ++i) {
    const int k = draw.integer(-2, 2);
    REQUIRE(k >= -2);
    REQUIRE(k <= 2);
    low += k == -2;
    high += k == 2;
    const float u = draw.uniform(0.5f, 1.5f);
    REQUIRE(u >= 0.5f);
    REQUIRE(u < 1.5f);
  }
  CHECK(low > 300);
  CHECK(high > 300);
}

TEST_CASE("normal draws have mean 0 and variance 1") {
  Draw draw(8, 0, 3, 2);
  double sum = 0, sum_sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double v = draw.normal();
    sum += v;
    sum_sq += v * v;
  }
  CHECK(std::abs(sum / n) < 0.03);
  CHECK(sum_sq / n == doctest::Approx(1.0).epsilon(0.04));
}

TEST_CASE("integer draws over the whole int range do not overflow") {
  Draw draw(5, 0, 7, 0);
  bool negative = false, positive = false;
  for (int i = 0; i < 64; ++i) {
    const int k = draw.integer(INT_MIN, INT_MAX);
    negative |= k < 0;
    positive |= k > 0;
  }
  CHECK(negative);
  CHECK(positive);
}

namespace {
// Throws on the sample whose first pixel is 13.
struct Refuse13 : augment::WithProbability<Refuse13> {
  void operator()(const Image& in, const Image& out, Draw&) const {
    if (in.data[0] == 13) throw Error("sample with first pixel 13 refused");
    augment::copy_image(in, out);
  }
};
}  // namespace

TEST_CASE("an exception inside a pipeline's parallel loop reaches the caller") {
  auto batch = images(8, 13);  // sample 1 starts with pixel 13
  const long indices[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const auto pipeline = augment::pipeline(Refuse13{});
  CHECK_THROWS_WITH_AS(pipeline.apply(batch.data(), 8, 1, 1, 13, indices, 0, 0), "sample with first pixel 13 refused",
                       Error);
}
