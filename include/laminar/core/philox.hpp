// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11): a counter-based generator. A random number is a pure function of
// (seed, stream, step, element), so a dropout mask or an augmentation is the same
// on any backend, any thread count, and after a resume from a checkpoint.
#pragma once

#include <cmath>
#include <cstdint>

#include "config.hpp"

namespace laminar::philox {

struct Block {
  std::uint32_t v[4];
};

LAMINAR_HD inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                               std::uint32_t& lo) {
  const std::uint64_t p = std::uint64_t(a) * b;
  hi = std::uint32_t(p >> 32);
  lo = std::uint32_t(p);
}

// The raw bijection: 128-bit counter, 64-bit key, ten rounds.
LAMINAR_HD inline Block philox4x32(Block ctr, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round) {
      k0 += w0;
      k1 += w1;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(m0, ctr.v[0], hi0, lo0);
    mulhilo(m1, ctr.v[2], hi1, lo1);
    ctr = Block{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
  }
  return ctr;
}

// 32 random bits for one element of one stream at one step. Four consecutive
// elements share one Philox call; the counter is (element / 4, step, stream).
LAMINAR_HD inline std::uint32_t bits(std::uint64_t seed, std::uint32_t stream,
                                     std::uint32_t step, std::uint64_t element) {
  const std::uint64_t block = element >> 2;
  const Block r = philox4x32(
      Block{{std::uint32_t(block), std::uint32_t(block >> 32), step, stream}},
      std::uint32_t(seed), std::uint32_t(seed >> 32));
  // Selects rather than indexes, so a loop over elements vectorises (an indexed
  // read from the block would be a per-lane stack access).
  const std::uint32_t lane = std::uint32_t(element & 3);
  return lane == 0 ? r.v[0] : lane == 1 ? r.v[1] : lane == 2 ? r.v[2] : r.v[3];
}

// Uniform in [0, 1) with 24 random bits: exactly representable in float, so the
// float and double backends draw the same numbers.
LAMINAR_HD inline float uniform(std::uint64_t seed, std::uint32_t stream, std::uint32_t step,
                                std::uint64_t element) {
  return float(bits(seed, stream, step, element) >> 8) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller over elements 2k and 2k+1 of the stream.
LAMINAR_HD inline double normal(std::uint64_t seed, std::uint32_t stream, std::uint32_t step,
                                std::uint64_t element) {
  const std::uint64_t pair = element & ~std::uint64_t(1);
  const double u1 = (double(bits(seed, stream, step, pair) >> 8) + 1.0) / 16777217.0;
  const double u2 = double(bits(seed, stream, step, pair + 1) >> 8) / 16777216.0;
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 6.283185307179586 * u2;
  return (element & 1) ? radius * std::sin(angle) : radius * std::cos(angle);
}

}  // namespace laminar::philox
