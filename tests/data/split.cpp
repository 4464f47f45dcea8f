// split_validation: the validation part is stratified by class, fixed by the
// seed, and the two parts are disjoint, cover the data and keep its order.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <set>
#include <vector>

#include "support/files.hpp"
#include <laminar/data/split.hpp>

namespace {

using laminar::Error;
using laminar::data::Dataset;
using laminar::data::split_validation;
using test_files::contains;

// `sizes[c]` samples of class c, interleaved; each 2-byte image is its index.
Dataset numbered(const std::vector<long>& sizes) {
  Dataset d{2, 1, 1, int(sizes.size()), {}, {}, "numbered"};
  std::vector<long> left = sizes;
  long index = 0;
  for (bool any = true; any;) {
    any = false;
    for (std::size_t c = 0; c < left.size(); ++c) {
      if (left[c] == 0) continue;
      --left[c];
      any = true;
      d.labels.push_back(std::uint8_t(c));
      d.images.push_back(std::uint8_t(index >> 8));
      d.images.push_back(std::uint8_t(index));
      ++index;
    }
  }
  return d;
}

// The original indices of a part, read back from its images.
std::vector<long> indices(const Dataset& part) {
  std::vector<long> out;
  for (long i = 0; i < part.size(); ++i) out.push_back(long(part.image(i)[0]) << 8 | part.image(i)[1]);
  return out;
}

std::vector<long> per_class(const Dataset& part, int classes) {
  std::vector<long> counts(std::size_t(classes), 0);
  for (auto label : part.labels) ++counts[label];
  return counts;
}

}  // namespace

TEST_CASE("split_validation gives each class its share of the count, rounded down") {
  const Dataset d = numbered({500, 300, 200});
  const auto splits = split_validation(d, 100, 1);
  CHECK(per_class(splits.valid, 3) == std::vector<long>{50, 30, 20});
  CHECK(per_class(splits.train, 3) == std::vector<long>{450, 270, 180});
}

TEST_CASE("split_validation hands the leftover samples to the classes with the largest remainders") {
  // Shares of 10 out of 9 + 6 + 3 = 18 are 5, 3.33 and 1.67: 5 and 3 by rounding
  // down, and the one left over goes to the class with remainder 0.67.
  const Dataset d = numbered({9, 6, 3});
  const auto splits = split_validation(d, 10, 3);
  CHECK(per_class(splits.valid, 3) == std::vector<long>{5, 3, 2});
  // Equal remainders: the smaller label first.
  const auto even = split_validation(numbered({5, 5, 5}), 4, 3);
  CHECK(per_class(even.valid, 3) == std::vector<long>{2, 1, 1});
}

TEST_CASE("split_validation is disjoint and covers every sample, each part in the original order") {
  const Dataset d = numbered({40, 25, 17, 1});
  const auto splits = split_validation(d, 21, 9);
  REQUIRE(splits.valid.size() == 21);
  REQUIRE(splits.train.size() == d.size() - 21);
  const std::vector<long> train = indices(splits.train), valid = indices(splits.valid);
  CHECK(std::is_sorted(train.begin(), train.end()));
  CHECK(std::is_sorted(valid.begin(), valid.end()));
  std::vector<long> all = train;
  all.insert(all.end(), valid.begin(), valid.end());
  std::sort(all.begin(), all.end());
  std::vector<long> expected(std::size_t(d.size()));
  for (long i = 0; i < d.size(); ++i) expected[std::size_t(i)] = i;
  CHECK(all == expected);
  // Labels travel with their images.
  for (long i = 0; i < splits.valid.size(); ++i)
    CHECK(splits.valid.labels[std::size_t(i)] == d.labels[std::size_t(valid[std::size_t(i)])]);
  CHECK(splits.test.size() == 0);
  CHECK(splits.train.channels == 2);
  CHECK(splits.valid.classes == 4);
}

TEST_CASE("split_validation with the same seed chooses the same samples, another seed others") {
  const Dataset d = numbered({100, 100});
  const auto first = split_validation(d, 20, 42), again = split_validation(d, 20, 42),
             other = split_validation(d, 20, 43);
  CHECK(indices(first.valid) == indices(again.valid));
  CHECK(indices(first.valid) != indices(other.valid));
  CHECK(per_class(other.valid, 2) == std::vector<long>{10, 10});
}

TEST_CASE("split_validation with a fraction takes the nearest whole number of samples") {
  const Dataset d = numbered({50, 50});
  CHECK(split_validation(d, 0.1, 0).valid.size() == 10);
  CHECK(split_validation(d, 0.125f, 0).valid.size() == 13);  // 12.5 rounds away from zero
  CHECK(split_validation(d, 0.0, 0).valid.size() == 0);
  CHECK(split_validation(d, 0.0, 0).train.size() == 100);
}

TEST_CASE("split_validation of all samples leaves train empty") {
  const auto splits = split_validation(numbered({3, 4}), 7, 0);
  CHECK(splits.valid.size() == 7);
  CHECK(splits.train.size() == 0);
}

TEST_CASE("split_validation rejects a count outside 0..size and a fraction outside 0 to 1") {
  const Dataset d = numbered({5, 5});
  CHECK_THROWS_WITH_AS(split_validation(d, -1, 0), contains("count = -1 is outside 0..10, the samples in numbered"),
                       Error);
  CHECK_THROWS_WITH_AS(split_validation(d, 11, 0), contains("count = 11 is outside 0..10"), Error);
  CHECK_THROWS_WITH_AS(split_validation(d, 1.0, 0), contains("fraction = 1.000000 is outside [0, 1)"), Error);
  CHECK_THROWS_WITH_AS(split_validation(d, -0.5, 0), contains("is outside [0, 1)"), Error);
}
