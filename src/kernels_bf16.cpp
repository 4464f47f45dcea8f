// laminar::kernels, part 2: the bf16 convolution passes (AMX, vdpbf16ps or
// emulated, as conv.hpp picks), compiled once (backend/cpu/kernels.hpp). A
// translation unit of its own so that a parallel build compiles the two halves
// at once.
#include "laminar/backend/cpu/conv.hpp"
#include "laminar/backend/cpu/kernels.hpp"
#include "laminar/backend/cpu/ops.hpp"  // Workspace<cpu> allocates through ops<cpu>

#if !LAMINAR_COMPILED_KERNELS
#error "laminar's kernel library is compiled with LAMINAR_COMPILED_KERNELS=1 (the laminar::kernels target sets it)"
#endif

namespace laminar::cpu_detail::kernels {

void bf16_conv2d_forward(const ConvGeometry& g, int batch, const float* x, const float* w, const float* bias,
                         float* y, Workspace<cpu>& ws, ConvEpilogue epilogue, ConvLayouts layouts) {
  cpu_detail::bf16_conv2d_forward(g, batch, x, w, bias, y, ws, epilogue, layouts);
}

void bf16_conv2d_backward_data(const ConvGeometry& g, int batch, const float* dy, const float* w, float* dx,
                               Workspace<cpu>& ws, ConvLayouts layouts) {
  cpu_detail::bf16_conv2d_backward_data(g, batch, dy, w, dx, ws, layouts);
}

bool bf16_conv2d_backward_weights(const ConvGeometry& g, int batch, const float* x, const float* dy, float* dw,
                                  float* dbias, Workspace<cpu>& ws, ConvLayouts layouts) {
  return cpu_detail::bf16_conv2d_backward_weights(g, batch, x, dy, dw, dbias, ws, layouts);
}

bool bf16_prefers_planar() { return cpu_detail::bf16_prefers_planar(); }

}  // namespace laminar::cpu_detail::kernels
