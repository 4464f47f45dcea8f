// Backend policies. A backend is a tag type; its primitives (memory, pointwise
// evaluation, per-channel reduction, gemm, convolution, pooling) are the
// specialisation ops<Backend>, provided by backend/<name>/. Layers are written
// once against ops<B> and never name a backend.
#pragma once

namespace laminar {

struct cpu {
  static constexpr const char* name = "cpu";
};
struct cuda {
  static constexpr const char* name = "cuda";
};

template <class Backend>
struct ops;  // specialised by each backend

// Whether a backend's primitives are visible in this translation unit
// (ops<cuda> exists only under nvcc).
template <class Backend>
concept AvailableBackend = requires { ops<Backend>::available; };

}  // namespace laminar
