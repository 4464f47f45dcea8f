// Input<C,H,W> or Input<N>: the first entry of a Sequential, naming the shape of
// one sample. It has no computation.
#pragma once

#include "../core/shape.hpp"

namespace laminar {

template <int... Dims>
struct Input {
  using shape = Shape<Dims...>;
};

}  // namespace laminar
