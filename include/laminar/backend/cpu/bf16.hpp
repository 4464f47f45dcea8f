// bfloat16 on the cpu: the top 16 bits of an IEEE float. The bf16 compute policy
// rounds a convolution's operands to it and accumulates their products in float;
// these scalar conversions are bit-exact with the AVX-512 ones (vcvtneps2bf16).
#pragma once

#include <bit>
#include <cstdint>

namespace laminar::cpu_detail {

using bf16_bits = std::uint16_t;

// Round to nearest, ties to even, as vcvtneps2bf16 does: it also treats subnormal
// inputs as zero (keeping the sign) and turns every NaN into a quiet NaN.
inline bf16_bits to_bf16(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7f800000u) == 0) return bf16_bits((bits >> 16) & 0x8000u);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return bf16_bits((bits >> 16) | 0x0040u);
  return bf16_bits((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

inline float from_bf16(bf16_bits value) { return std::bit_cast<float>(std::uint32_t(value) << 16); }

// The float a bf16 operand stands for.
inline float round_to_bf16(float value) { return from_bf16(to_bf16(value)); }

}  // namespace laminar::cpu_detail
