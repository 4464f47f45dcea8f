// Philox4x32-10 against the known-answer vectors of Random123 (Salmon et al.,
// SC'11; tests/kat_vectors), the (seed, stream, step, element) counter layout,
// and the uniform and normal draws built on it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <laminar/laminar.hpp>

using namespace laminar;

namespace {
struct KnownAnswer {
  philox::Block counter;
  std::uint32_t key0, key1;
  philox::Block expected;
};

void check(const KnownAnswer& k) {
  const philox::Block out = philox::philox4x32(k.counter, k.key0, k.key1);
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(out.v[i] == k.expected.v[i]);
  }
}
}  // namespace

// The three "philox4x32 10" lines of Random123's kat_vectors: counter (4 words),
// key (2 words), expected output (4 words).
TEST_CASE("philox4x32-10 of counter 0 and key 0 is the Random123 known answer") {
  check({{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}});
}

TEST_CASE("philox4x32-10 of an all-ones counter and key is the Random123 known answer") {
  check({{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
         0xffffffff,
         0xffffffff,
         {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}});
}

TEST_CASE("philox4x32-10 of the digits of pi is the Random123 known answer") {
  check({{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
         0xa4093822,
         0x299f31d0,
         {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}});
}

TEST_CASE(
    "random bits come from counter (element / 4, step, stream) and key seed, word element % 4") {
  const std::uint64_t seed = 0x0123456789abcdefull;
  for (std::uint64_t element : {0ull, 1ull, 6ull, 0x500000003ull}) {
    CAPTURE(element);
    const std::uint64_t block = element / 4;
    const philox::Block r = philox::philox4x32(
        {{std::uint32_t(block), std::uint32_t(block >> 32), 17u, 3u}}, 0x89abcdefu, 0x01234567u);
    CHECK(philox::bits(seed, 3, 17, element) == r.v[element % 4]);
  }
}

TEST_CASE("philox uniform is the top 24 of the random bits over 2^24, so at most 1 - 2^-24") {
  for (std::uint64_t element = 0; element < 64; ++element)
    CHECK(philox::uniform(9, 1, 2, element) ==
          float(philox::bits(9, 1, 2, element) >> 8) / 16777216.0f);
}

TEST_CASE("philox uniform has mean 1/2 and variance 1/12 over many draws") {
  // n = 200000: the mean's standard deviation is 0.29 / sqrt(n) = 6.5e-4.
  const int n = 200000;
  double sum = 0, squares = 0, low = 1, high = 0;
  for (int i = 0; i < n; ++i) {
    const double u = philox::uniform(42, 7, 0, std::uint64_t(i));
    sum += u, squares += u * u;
    low = std::min(low, u), high = std::max(high, u);
  }
  const double mean = sum / n;
  CHECK(std::abs(mean - 0.5) < 0.003);
  CHECK(std::abs(squares / n - mean * mean - 1.0 / 12) < 0.002);
  CHECK(low >= 0.0);
  CHECK(high < 1.0);
}

TEST_CASE("philox draws are a pure function of seed, stream, step and element") {
  CHECK(philox::uniform(5, 2, 3, 11) == philox::uniform(5, 2, 3, 11));
  CHECK(philox::normal(5, 2, 3, 11) == philox::normal(5, 2, 3, 11));
  const std::uint32_t base = philox::bits(5, 2, 3, 11);
  CHECK(philox::bits(6, 2, 3, 11) != base);
  CHECK(philox::bits(5, 1, 3, 11) != base);
  CHECK(philox::bits(5, 2, 4, 11) != base);
  CHECK(philox::bits(5, 2, 3, 12) != base);
  CHECK(philox::bits(5ull | (1ull << 40), 2, 3, 11) != base);  // the seed's high word is used
}

TEST_CASE("philox normal has mean 0 and variance 1 over many draws") {
  const int n = 200000;
  double sum = 0, squares = 0;
  for (int i = 0; i < n; ++i) {
    const double z = philox::normal(42, 7, 0, std::uint64_t(i));
    sum += z, squares += z * z;
  }
  CHECK(std::abs(sum / n) < 0.01);
  CHECK(std::abs(squares / n - 1) < 0.01);
}
