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
  // Room for `count` elements of T, valid until the next call.
  template <class T>
  T* get(std::size_t count) {
    return reinterpret_cast<T*>(bytes_.reserve((count * sizeof(T) + 63) / 64 * 64));
  }

 private:
  Buffer<unsigned char, Backend> bytes_;
};

}  // namespace laminar
