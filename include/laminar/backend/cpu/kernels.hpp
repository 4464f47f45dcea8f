// The entry points through which ops<cpu> reaches the cpu backend's heavy
// kernels: convolution (conv.hpp) and GEMM (gemm.hpp) in float and double,
// and the bf16 convolution passes.
//
// Header-only by default: cpu_detail::kernels names the header functions
// themselves, and every translation unit that trains a network compiles the
// AVX-512, AMX and Winograd kernels behind them again (5-19 s of a CIFAR
// example's 23-45 s at -O3; docs/benchmarks.md, 2026-12-05). With
// LAMINAR_COMPILED_KERNELS defined to 1, which linking the CMake target
// laminar::kernels does, the same names are declarations of functions compiled
// once into that library (src/kernels_*.cpp), and this header pulls in none of
// the kernels. Both modes run the same code: the library's functions call the
// header ones.
#pragma once

#if !defined(LAMINAR_COMPILED_KERNELS)
#define LAMINAR_COMPILED_KERNELS 0
#endif

#if LAMINAR_COMPILED_KERNELS

#include "../../core/backend.hpp"
#include "../../core/geometry.hpp"
#include "../../core/layout.hpp"
#include "../../core/workspace.hpp"

namespace laminar::cpu_detail::kernels {

// conv.hpp's conv2d_* and gemm.hpp's gemm, for the element types the library
// is compiled for.
void conv2d_forward(const ConvGeometry& g, int batch, const float* x, const float* w, const float* bias, float* y,
                    Workspace<cpu>& ws, ConvEpilogue epilogue, ConvLayouts layouts);
void conv2d_forward(const ConvGeometry& g, int batch, const double* x, const double* w, const double* bias,
                    double* y, Workspace<cpu>& ws, ConvEpilogue epilogue, ConvLayouts layouts);
void conv2d_backward_data(const ConvGeometry& g, int batch, const float* dy, const float* w, float* dx,
                          Workspace<cpu>& ws, ConvLayouts layouts);
void conv2d_backward_data(const ConvGeometry& g, int batch, const double* dy, const double* w, double* dx,
                          Workspace<cpu>& ws, ConvLayouts layouts);
void conv2d_backward_weights(const ConvGeometry& g, int batch, const float* x, const float* dy, float* dw,
                             float* dbias, Workspace<cpu>& ws, ConvLayouts layouts);
void conv2d_backward_weights(const ConvGeometry& g, int batch, const double* x, const double* dy, double* dw,
                             double* dbias, Workspace<cpu>& ws, ConvLayouts layouts);
void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc);
void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, double alpha, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc);

// conv.hpp's bf16_conv2d_* and bf16_prefers_planar.
void bf16_conv2d_forward(const ConvGeometry& g, int batch, const float* x, const float* w, const float* bias,
                         float* y, Workspace<cpu>& ws, ConvEpilogue epilogue, ConvLayouts layouts);
void bf16_conv2d_backward_data(const ConvGeometry& g, int batch, const float* dy, const float* w, float* dx,
                               Workspace<cpu>& ws, ConvLayouts layouts);
bool bf16_conv2d_backward_weights(const ConvGeometry& g, int batch, const float* x, const float* dy, float* dw,
                                  float* dbias, Workspace<cpu>& ws, ConvLayouts layouts);
bool bf16_prefers_planar();

}  // namespace laminar::cpu_detail::kernels

#else

#include "conv.hpp"
#include "gemm.hpp"

namespace laminar::cpu_detail::kernels {
using cpu_detail::bf16_conv2d_backward_data;
using cpu_detail::bf16_conv2d_backward_weights;
using cpu_detail::bf16_conv2d_forward;
using cpu_detail::bf16_prefers_planar;
using cpu_detail::conv2d_backward_data;
using cpu_detail::conv2d_backward_weights;
using cpu_detail::conv2d_forward;
using cpu_detail::gemm;
}  // namespace laminar::cpu_detail::kernels

#endif
