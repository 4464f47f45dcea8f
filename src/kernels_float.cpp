// laminar::kernels, part 1: convolution and GEMM in float and double, compiled
// once for every program that links the library (backend/cpu/kernels.hpp).
#include "laminar/backend/cpu/conv.hpp"
#include "laminar/backend/cpu/gemm.hpp"
#include "laminar/backend/cpu/kernels.hpp"
#include "laminar/backend/cpu/ops.hpp"  // Workspace<cpu> allocates through ops<cpu>

#if !LAMINAR_COMPILED_KERNELS
#error "laminar's kernel library is compiled with LAMINAR_COMPILED_KERNELS=1 (the laminar::kernels target sets it)"
#endif

namespace laminar::cpu_detail::kernels {

void conv2d_forward(const ConvGeometry& g, int batch, const float* x, const float* w, const float* bias, float* y,
                    Workspace<cpu>& ws, ConvEpilogue epilogue, ConvLayouts layouts) {
  cpu_detail::conv2d_forward(g, batch, x, w, bias, y, ws, epilogue, layouts);
}

void conv2d_forward(const ConvGeometry& g, int batch, const double* x, const double* w, const double* bias,
                    double* y, Workspace<cpu>& ws, ConvEpilogue epilogue, ConvLayouts layouts) {
  cpu_detail::conv2d_forward(g, batch, x, w, bias, y, ws, epilogue, layouts);
}

void conv2d_backward_data(const ConvGeometry& g, int batch, const float* dy, const float* w, float* dx,
                          Workspace<cpu>& ws, ConvLayouts layouts) {
  cpu_detail::conv2d_backward_data(g, batch, dy, w, dx, ws, layouts);
}

void conv2d_backward_data(const ConvGeometry& g, int batch, const double* dy, const double* w, double* dx,
                          Workspace<cpu>& ws, ConvLayouts layouts) {
  cpu_detail::conv2d_backward_data(g, batch, dy, w, dx, ws, layouts);
}

void conv2d_backward_weights(const ConvGeometry& g, int batch, const float* x, const float* dy, float* dw,
                             float* dbias, Workspace<cpu>& ws, ConvLayouts layouts) {
  cpu_detail::conv2d_backward_weights(g, batch, x, dy, dw, dbias, ws, layouts);
}

void conv2d_backward_weights(const ConvGeometry& g, int batch, const double* x, const double* dy, double* dw,
                             double* dbias, Workspace<cpu>& ws, ConvLayouts layouts) {
  cpu_detail::conv2d_backward_weights(g, batch, x, dy, dw, dbias, ws, layouts);
}

void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  cpu_detail::gemm(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, double alpha, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) {
  cpu_detail::gemm(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace laminar::cpu_detail::kernels
