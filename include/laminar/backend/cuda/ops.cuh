// The cuda backend's primitives, compiled only under nvcc: device memory
// (plain cudaMalloc, no managed memory), checked transfers, and the pointwise
// evaluator, parallel_for and per-channel reduction as grid-stride kernels.
// Every CUDA call is checked; an error names the call and CUDA's message.
// Convolution, GEMM, pooling and the loss on this backend are the CUDA issue's.
// It defines no channel_block, so every tensor it sees is planar
// (core/layout.hpp); the layout arguments the layers pass are always planar.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "../../core/backend.hpp"
#include "../../core/error.hpp"
#include "../../core/layout.hpp"
#include "../../core/workspace.hpp"

namespace laminar {

namespace cuda_detail {

inline void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess)
    throw Error(std::string("cuda: ") + call + " failed: " + cudaGetErrorString(status));
}

#define LAMINAR_CUDA_CHECK(call) ::laminar::cuda_detail::check((call), #call)

constexpr int block_size = 256;

inline int grid_for(long n) {
  const long blocks = (n + block_size - 1) / block_size;
  return int(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

template <class F>
__global__ void parallel_for_kernel(long n, F f) {
  for (long i = blockIdx.x * long(blockDim.x) + threadIdx.x; i < n; i += long(gridDim.x) * blockDim.x)
    f(i);
}

template <class T, class E>
struct Assign {
  T* out;
  E e;
  __device__ void operator()(long i) const { out[i] = T(e(i, 0)); }
};

// Over (N, C, pixels): the channel of element i is (i / pixels) % C.
template <class T, class E>
struct AssignPerChannel {
  T* out;
  E e;
  int channels;
  long pixels;
  __device__ void operator()(long i) const { out[i] = T(e(i, int((i / pixels) % channels))); }
};

template <class T>
struct Fill {
  T* out;
  T value;
  __device__ void operator()(long i) const { out[i] = value; }
};

// One block per channel; threads stride over (sample, pixel) and reduce in
// shared memory.
template <class T, class E>
__global__ void sum_per_channel_kernel(T* out, int batch, int channels, long pixels, E e) {
  using Acc = double;
  __shared__ Acc partial[block_size];
  const int c = blockIdx.x;
  Acc total = 0;
  const long count = long(batch) * pixels;
  for (long k = threadIdx.x; k < count; k += blockDim.x) {
    const long n = k / pixels, p = k % pixels;
    total += Acc(e((n * channels + c) * pixels + p, c));
  }
  partial[threadIdx.x] = total;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (int(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[c] = T(partial[0]);
}

inline void check_launch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

// Reduces each thread's two totals over the block into first[c] and second[c].
template <class T>
__device__ void store_block_sums2(T* first, T* second, int c, double total_a, double total_b) {
  __shared__ double partial_a[block_size], partial_b[block_size];
  partial_a[threadIdx.x] = total_a;
  partial_b[threadIdx.x] = total_b;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (int(threadIdx.x) < stride) {
      partial_a[threadIdx.x] += partial_a[threadIdx.x + stride];
      partial_b[threadIdx.x] += partial_b[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    first[c] = T(partial_a[0]);
    second[c] = T(partial_b[0]);
  }
}

// sum_per_channel_kernel for two expressions at once, in one read of the tensor:
// the sums of a and of b (Store false), or out = a and the sums of a and of
// a * b with a evaluated once (Store true).
template <bool Store, class T, class A, class E>
__global__ void sum2_per_channel_kernel(T* out, T* first, T* second, int batch, int channels, long pixels, A a,
                                        E b) {
  using Acc = double;
  const int c = blockIdx.x;
  Acc total_a = 0, total_b = 0;
  const long count = long(batch) * pixels;
  for (long k = threadIdx.x; k < count; k += blockDim.x) {
    const long n = k / pixels, p = k % pixels;
    const long i = (n * channels + c) * pixels + p;
    const T value = T(a(i, c));
    total_a += Acc(value);
    if constexpr (Store) {
      out[i] = value;
      total_b += Acc(value * T(b(i, c)));
    } else {
      total_b += Acc(b(i, c));
    }
  }
  store_block_sums2(first, second, c, total_a, total_b);
}

}  // namespace cuda_detail

template <>
struct ops<cuda> {
  static constexpr bool available = true;

  // Throws "no CUDA device" when the machine has none; Model<Net, cuda> calls it.
  static void require_device() {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess || count == 0)
      throw Error(std::string("cuda: no CUDA device is available (") +
                  (status == cudaSuccess ? "cudaGetDeviceCount found 0 devices" : cudaGetErrorString(status)) +
                  "); use Model<Net, cpu> on this machine");
  }

  static void* allocate(std::size_t bytes) {
    void* p = nullptr;
    if (bytes) LAMINAR_CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
  }
  static void deallocate(void* p) { cudaFree(p); }

  template <class T>
  static void copy_to_device(T* dst, const T* src, long n) {
    if (n) LAMINAR_CUDA_CHECK(cudaMemcpy(dst, src, std::size_t(n) * sizeof(T), cudaMemcpyHostToDevice));
  }
  template <class T>
  static void copy_to_host(T* dst, const T* src, long n) {
    if (n) LAMINAR_CUDA_CHECK(cudaMemcpy(dst, src, std::size_t(n) * sizeof(T), cudaMemcpyDeviceToHost));
  }
  template <class T>
  static void copy(T* dst, const T* src, long n) {
    if (n) LAMINAR_CUDA_CHECK(cudaMemcpy(dst, src, std::size_t(n) * sizeof(T), cudaMemcpyDeviceToDevice));
  }
  template <class T>
  static void fill(T* dst, long n, T value) {
    parallel_for(n, cuda_detail::Fill<T>{dst, value});
  }

  // Every tensor on this backend is planar: converting is copying.
  template <class T>
  static void convert(T* out, Layout to, const T* in, Layout from, int batch, int channels, long pixels) {
    if (to != Layout::planar || from != Layout::planar)
      throw Error("cuda: the blocked layout is the cpu backend's; this backend keeps every tensor planar");
    copy(out, in, long(batch) * channels * pixels);
  }

  template <class F>
  static void parallel_for(long n, const F& f) {
    if (n <= 0) return;
    cuda_detail::parallel_for_kernel<<<cuda_detail::grid_for(n), cuda_detail::block_size>>>(n, f);
    cuda_detail::check_launch("parallel_for_kernel launch");
  }

  template <class T, class E>
  static void eval(T* out, long n, const E& e) {
    static_assert(!E::per_channel, "PER_CHANNEL_EXPRESSION_NEEDS_THE_CHANNEL_EXTENT_FORM_OF_EVAL");
    parallel_for(n, cuda_detail::Assign<T, E>{out, e});
  }

  template <class T, class E>
  static void eval(T* out, int batch, int channels, long pixels, const E& e, Layout = Layout::planar) {
    parallel_for(long(batch) * channels * pixels,
                 cuda_detail::AssignPerChannel<T, E>{out, e, channels, pixels});
  }

  template <class T, class E>
  static void sum_per_channel(T* out, int batch, int channels, long pixels, const E& e, Layout = Layout::planar) {
    cuda_detail::sum_per_channel_kernel<<<channels, cuda_detail::block_size>>>(out, batch, channels, pixels, e);
    cuda_detail::check_launch("sum_per_channel_kernel launch");
  }

  // first[c], second[c]: the sums of a and of b over channel c, in one read.
  template <class T, class A, class E>
  static void sum2_per_channel(T* first, T* second, int batch, int channels, long pixels, const A& a,
                               const E& b, Layout = Layout::planar) {
    cuda_detail::sum2_per_channel_kernel<false><<<channels, cuda_detail::block_size>>>(
        static_cast<T*>(nullptr), first, second, batch, channels, pixels, a, b);
    cuda_detail::check_launch("sum2_per_channel_kernel launch");
  }

  // out = a, first[c], second[c] the sums of a and of a * b over channel c, a
  // evaluated once per element.
  template <class T, class A, class E>
  static void eval_sum2_per_channel(T* out, T* first, T* second, int batch, int channels, long pixels, const A& a,
                                    const E& b, Layout = Layout::planar) {
    cuda_detail::sum2_per_channel_kernel<true><<<channels, cuda_detail::block_size>>>(out, first, second, batch,
                                                                                     channels, pixels, a, b);
    cuda_detail::check_launch("sum2_per_channel_kernel launch");
  }
};

}  // namespace laminar
