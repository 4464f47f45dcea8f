// Buffer<T, Backend>: an owning, aligned, grow-only block of backend memory.
// Growing only (never shrinking) is what makes activations and workspaces an
// arena: after the first step at a batch size, a training loop allocates nothing.
#pragma once

#include <cstddef>
#include <utility>

#include "backend.hpp"

namespace laminar {

template <class T, class Backend>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t count) { reserve(count); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), capacity_(std::exchange(o.capacity_, 0)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~Buffer() { release(); }

  // Makes room for at least `count` elements; the contents are not kept.
  T* reserve(std::size_t count) {
    if (count > capacity_) {
      release();
      data_ = static_cast<T*>(ops<Backend>::allocate(count * sizeof(T)));
      capacity_ = count;
    }
    return data_;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t capacity() const { return capacity_; }

 private:
  void release() {
    if (data_) ops<Backend>::deallocate(data_);
    data_ = nullptr;
    capacity_ = 0;
  }
  T* data_ = nullptr;
  std::size_t capacity_ = 0;
};

}  // namespace laminar
