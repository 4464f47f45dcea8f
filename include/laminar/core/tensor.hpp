// Tensor<T, Backend, Shape>: a batch of samples of a compile-time shape, owning
// its memory on the backend; View is the non-owning pointer + batch pair that
// layers and models pass around. Layout is logical NCHW (sample-major).
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "buffer.hpp"
#include "error.hpp"
#include "shape.hpp"

namespace laminar {

template <class T, class Backend, class S>
struct View {
  using shape = S;
  T* data = nullptr;
  int batch = 0;
  long size() const { return long(batch) * S::size; }
  // A mutable view converts to a read-only one.
  template <class U>
    requires(std::is_same_v<U, const T> && !std::is_const_v<T>)
  operator View<U, Backend, S>() const {
    return {data, batch};
  }
};

template <class T, class Backend, class S>
class Tensor {
 public:
  using shape = S;
  Tensor() = default;
  explicit Tensor(int batch) { resize(batch); }

  // Sets the batch size; memory grows when needed and is never returned.
  void resize(int batch) {
    if (batch < 0) throw Error("Tensor::resize: negative batch " + std::to_string(batch));
    buffer_.reserve(std::size_t(batch) * S::size);
    batch_ = batch;
  }

  int batch() const { return batch_; }
  long size() const { return long(batch_) * S::size; }
  T* data() { return buffer_.data(); }
  const T* data() const { return buffer_.data(); }
  View<T, Backend, S> view() { return {data(), batch_}; }
  View<const T, Backend, S> view() const { return {data(), batch_}; }
  operator View<T, Backend, S>() { return view(); }
  operator View<const T, Backend, S>() const { return view(); }

  void copy_from_host(const T* host) { ops<Backend>::copy_to_device(data(), host, size()); }
  void copy_to_host(T* host) const { ops<Backend>::copy_to_host(host, data(), size()); }
  std::vector<T> to_host() const {
    std::vector<T> v(static_cast<std::size_t>(size()));
    copy_to_host(v.data());
    return v;
  }

 private:
  Buffer<T, Backend> buffer_;
  int batch_ = 0;
};

}  // namespace laminar
