// The element types a Model computes in. float and double compute in their own
// precision. bf16 is a compute policy, not a storage type: parameters,
// activations and gradients stay float (and the optimizer updates float master
// weights), while convolutions multiply operands rounded to bfloat16 and sum the
// products in float, the arithmetic of AVX-512 BF16's vdpbf16ps.
#pragma once

namespace laminar {

struct bf16 {};

// How a primitive multiplies: in its element type, or on bf16-rounded operands.
enum class Arithmetic { native, bf16 };

template <class Compute>
struct Precision {
  using storage = Compute;
  static constexpr Arithmetic arithmetic = Arithmetic::native;
};
template <>
struct Precision<bf16> {
  using storage = float;
  static constexpr Arithmetic arithmetic = Arithmetic::bf16;
};

}  // namespace laminar
