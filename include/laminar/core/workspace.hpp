// Workspace<Backend>: scratch memory shared by the layers of a model, used by one
// primitive at a time. It grows to the largest request and then stays, so steady
// state training allocates nothing.
#pragma once

#include <cstddef>

#include "buffer.hpp"

namespace laminar {

template <class Backend>
class Workspace {
 public:
  // Room for `count` elements of T, valid until the next call for the same
  // slot. Slot 0 is the primitives' scratch; slot 1 holds operands a primitive
  // converts before handing them to another, which then uses slot 0; slot 2
  // holds planar copies of blocked tensors for kernels that read only planar
  // ones (core/layout.hpp), which may themselves use slots 0 and 1; slot 3 a
  // fused op's gradient between its normalisation's backward and its
  // convolution's, which use the others.
  template <class T>
  T* get(std::size_t count, int slot = 0) {
    return reinterpret_cast<T*>(bytes_[slot].reserve((count * sizeof(T) + 63) / 64 * 64));
  }

 private:
  Buffer<unsigned char, Backend> bytes_[4];
};

}  // namespace laminar
