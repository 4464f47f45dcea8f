// The cpu backend's convolutions. Three algorithms: im2col + Eigen GEMM per
// image in NCHW (any element type; the reference the fast paths are tested
// against); direct AVX-512 kernels over the blocked layout of blocked.hpp
// (float, and bf16 through vdpbf16ps or AMX), which repack NCHW at their edges;
// and over the same layout Winograd F(2x2, 3x3) for the forward and input
// gradient of 3x3 stride-1 convolutions (winograd_conv.hpp). use_direct_conv()
// and use_winograd() pick per geometry and pass. The bf16_ versions multiply
// bf16-rounded float operands (core/precision.hpp); through Winograd, the
// operands rounded are the transformed tiles and kernels.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "../../core/backend.hpp"
#include "../../core/error.hpp"
#include "../../core/geometry.hpp"
#include "../../core/workspace.hpp"
#include "amx_conv.hpp"
#include "amx_conv_weights.hpp"
#include "bf16.hpp"
#include "blocked.hpp"
#include "direct_conv.hpp"
#include "direct_conv_weights.hpp"
#include "gemm.hpp"
#include "winograd_conv.hpp"

namespace laminar::cpu_detail {

// Unrolls one sample's receptive fields into a (patch, out_pixels) matrix.
template <class T>
void im2col(const ConvGeometry& g, const T* x /* (C, H, W) */, T* col /* (C*KH*KW, OH*OW) */) {
  for (int c = 0; c < g.in_channels; ++c)
    for (int ky = 0; ky < g.kernel_h; ++ky)
      for (int kx = 0; kx < g.kernel_w; ++kx) {
        T* row = col + ((long(c) * g.kernel_h + ky) * g.kernel_w + kx) * g.out_pixels();
        const T* plane = x + long(c) * g.in_pixels();
        for (int oy = 0; oy < g.out_height; ++oy) {
          T* out = row + long(oy) * g.out_width;
          const int iy = oy * g.stride_h - g.pad_top + ky;
          if (iy < 0 || iy >= g.height) {
            std::fill(out, out + g.out_width, T(0));
            continue;
          }
          const T* in = plane + long(iy) * g.width;
          for (int ox = 0; ox < g.out_width; ++ox) {
            const int ix = ox * g.stride_w - g.pad_left + kx;
            out[ox] = (ix >= 0 && ix < g.width) ? in[ix] : T(0);
          }
        }
      }
}

// The adjoint of im2col: adds each column entry back onto the pixel it came from.
template <class T>
void col2im_add(const ConvGeometry& g, const T* col, T* dx /* (C, H, W) */) {
  for (int c = 0; c < g.in_channels; ++c)
    for (int ky = 0; ky < g.kernel_h; ++ky)
      for (int kx = 0; kx < g.kernel_w; ++kx) {
        const T* row = col + ((long(c) * g.kernel_h + ky) * g.kernel_w + kx) * g.out_pixels();
        T* plane = dx + long(c) * g.in_pixels();
        for (int oy = 0; oy < g.out_height; ++oy) {
          const int iy = oy * g.stride_h - g.pad_top + ky;
          if (iy < 0 || iy >= g.height) continue;
          const T* in = row + long(oy) * g.out_width;
          T* out = plane + long(iy) * g.width;
          for (int ox = 0; ox < g.out_width; ++ox) {
            const int ix = ox * g.stride_w - g.pad_left + kx;
            if (ix >= 0 && ix < g.width) out[ix] += in[ox];
          }
        }
      }
}

// --- im2col + GEMM ------------------------------------------------------------

// y (N, Cout, OH, OW) = conv(x (N, Cin, H, W), w (Cout, Cin*KH*KW)) + bias (Cout)
template <class T>
void im2col_conv_forward(const ConvGeometry& g, int batch, const T* x, const T* w, const T* bias, T* y,
                         Workspace<cpu>& ws, ConvEpilogue epilogue = ConvEpilogue::none) {
  const long K = g.patch(), P = g.out_pixels();
  const bool pointwise = g.is_pointwise();
  T* cols = pointwise ? nullptr : ws.get<T>(std::size_t(omp_get_max_threads()) * K * P);
  const bool parallel = double(batch) * K * P * g.out_channels > parallel_threshold;
#pragma omp parallel if (parallel)
  {
    T* col = pointwise ? nullptr : cols + omp_get_thread_num() * K * P;
#pragma omp for schedule(static)
    for (int n = 0; n < batch; ++n) {
      const T* xn = x + long(n) * g.in_channels * g.in_pixels();
      if (!pointwise) im2col(g, xn, col);
      T* yn = y + long(n) * g.out_channels * P;
      gemm(false, false, g.out_channels, int(P), int(K), T(1), w, int(K), pointwise ? xn : col, int(P), T(0), yn,
           int(P));
      if (bias)
        for (int c = 0; c < g.out_channels; ++c)
          for (long p = 0; p < P; ++p) yn[c * P + p] += bias[c];
      if (epilogue == ConvEpilogue::relu)
        for (long i = 0; i < g.out_channels * P; ++i) yn[i] = yn[i] < T(0) ? T(0) : yn[i];
    }
  }
}

// dx (N, Cin, H, W) = conv^T(dy, w)
template <class T>
void im2col_conv_backward_data(const ConvGeometry& g, int batch, const T* dy, const T* w, T* dx, Workspace<cpu>& ws) {
  const long K = g.patch(), P = g.out_pixels();
  const bool pointwise = g.is_pointwise();
  T* cols = pointwise ? nullptr : ws.get<T>(std::size_t(omp_get_max_threads()) * K * P);
  const bool parallel = double(batch) * K * P * g.out_channels > parallel_threshold;
#pragma omp parallel if (parallel)
  {
    T* col = pointwise ? nullptr : cols + omp_get_thread_num() * K * P;
#pragma omp for schedule(static)
    for (int n = 0; n < batch; ++n) {
      T* dxn = dx + long(n) * g.in_channels * g.in_pixels();
      const T* dyn = dy + long(n) * g.out_channels * P;
      if (pointwise) {
        gemm(true, false, int(K), int(P), g.out_channels, T(1), w, int(K), dyn, int(P), T(0), dxn, int(P));
      } else {
        gemm(true, false, int(K), int(P), g.out_channels, T(1), w, int(K), dyn, int(P), T(0), col, int(P));
        std::fill(dxn, dxn + g.in_channels * g.in_pixels(), T(0));
        col2im_add(g, col, dxn);
      }
    }
  }
}

// dw (Cout, Cin*KH*KW) = sum_n dy_n col_n^T ; dbias (Cout) = sum dy. Each thread
// accumulates its own partial sums, reduced once at the end.
template <class T>
void im2col_conv_backward_weights(const ConvGeometry& g, int batch, const T* x, const T* dy, T* dw, T* dbias,
                                  Workspace<cpu>& ws) {
  const long K = g.patch(), P = g.out_pixels(), C = g.out_channels;
  const bool pointwise = g.is_pointwise();
  const int threads = omp_get_max_threads();
  const long per_thread = C * K + C + (pointwise ? 0 : K * P);
  T* scratch = ws.get<T>(std::size_t(threads) * per_thread);
  int used = 1;
  const bool parallel = double(batch) * K * P * C > parallel_threshold;
#pragma omp parallel if (parallel)
  {
    const int t = omp_get_thread_num();
#pragma omp single
    used = omp_get_num_threads();
    T* dw_t = scratch + t * per_thread;
    T* db_t = dw_t + C * K;
    T* col = db_t + C;
    std::fill(dw_t, dw_t + C * K + C, T(0));
#pragma omp for schedule(static)
    for (int n = 0; n < batch; ++n) {
      const T* xn = x + long(n) * g.in_channels * g.in_pixels();
      if (!pointwise) im2col(g, xn, col);
      const T* dyn = dy + long(n) * C * P;
      gemm(false, true, int(C), int(K), int(P), T(1), dyn, int(P), pointwise ? xn : col, int(P), T(1), dw_t, int(K));
      for (long c = 0; c < C; ++c) {
        T s = 0;
        for (long p = 0; p < P; ++p) s += dyn[c * P + p];
        db_t[c] += s;
      }
    }
  }
  for (long i = 0; i < C * K + C; ++i) {
    T s = 0;
    for (int t = 0; t < used; ++t) s += scratch[t * per_thread + i];
    if (i < C * K)
      dw[i] = s;
    else if (dbias)
      dbias[i - C * K] = s;
  }
}

// --- kernels that read and write planar tensors only -------------------------------

// im2col, AMX and the vdpbf16ps weight gradient read and write planar NCHW. On
// tensors the model keeps blocked (core/layout.hpp) they run on planar copies
// in workspace slot 2, converted at the pass's edges; the kernels themselves
// use slots 0 and 1.
template <class T>
struct PlanarCopies {
  T* next;
  // t itself where it is planar, else its planar copy.
  const T* read(const T* t, Layout layout, int batch, int channels, long pixels) {
    if (layout == Layout::planar) return t;
    T* copy = next;
    next += long(batch) * channels * pixels;
    blocked_to_planar(batch, channels, pixels, t, copy);
    return copy;
  }
  // Where a pass writes t: t itself where it is planar, else a planar copy
  // that written() moves into t.
  T* write(T* t, Layout layout, int batch, int channels, long pixels) {
    if (layout == Layout::planar) return t;
    T* copy = next;
    next += long(batch) * channels * pixels;
    return copy;
  }
  static void written(const T* copy, T* t, Layout layout, int batch, int channels, long pixels) {
    if (layout == Layout::blocked) planar_to_blocked(batch, channels, pixels, copy, t);
  }
};

// Elements of slot 2 the planar copies of a pass on g take: its image tensors
// that are blocked.
inline long planar_copies_size(const ConvGeometry& g, int batch, ConvLayouts layouts) {
  return long(batch) * ((layouts.input == Layout::blocked ? g.in_channels * g.in_pixels() : 0) +
                        (layouts.output == Layout::blocked ? g.out_channels * g.out_pixels() : 0));
}

template <class T>
PlanarCopies<T> planar_copies(const ConvGeometry& g, int batch, ConvLayouts layouts, Workspace<cpu>& ws) {
  const long size = planar_copies_size(g, batch, layouts);
  return {size ? ws.get<T>(std::size_t(size), 2) : nullptr};
}

// run(x, y) of a forward pass on planar tensors.
template <class T, class Run>
void planar_forward(const ConvGeometry& g, int batch, const T* x, T* y, Workspace<cpu>& ws, ConvLayouts layouts,
                    const Run& run) {
  PlanarCopies<T> copies = planar_copies<T>(g, batch, layouts, ws);
  const T* xp = copies.read(x, layouts.input, batch, g.in_channels, g.in_pixels());
  T* yp = copies.write(y, layouts.output, batch, g.out_channels, g.out_pixels());
  run(xp, yp);
  copies.written(yp, y, layouts.output, batch, g.out_channels, g.out_pixels());
}

// run(dy, dx) of an input gradient on planar tensors: dy -> dx has the
// tensors of the transposed convolution's forward pass (whatever the stride:
// only the channels and pixels count here).
template <class T, class Run>
void planar_backward_data(const ConvGeometry& g, int batch, const T* dy, T* dx, Workspace<cpu>& ws,
                          ConvLayouts layouts, const Run& run) {
  planar_forward(transposed_convolution(g), batch, dy, dx, ws, {layouts.output, layouts.input}, run);
}

// run(x, dy) of a weight gradient on planar tensors.
template <class T, class Run>
auto planar_backward_weights(const ConvGeometry& g, int batch, const T* x, const T* dy, Workspace<cpu>& ws,
                             ConvLayouts layouts, const Run& run) {
  PlanarCopies<T> copies = planar_copies<T>(g, batch, layouts, ws);
  const T* xp = copies.read(x, layouts.input, batch, g.in_channels, g.in_pixels());
  const T* dyp = copies.read(dy, layouts.output, batch, g.out_channels, g.out_pixels());
  return run(xp, dyp);
}

// --- direct convolution over the blocked layout ----------------------------------

// The direct kernels' input: a planar x is packed (transposed into channel
// blocks, a zero border added) into the workspace; a blocked one is read as it
// is where it needs no border, else padded by each thread an image at a time
// as the kernel reaches it (or, where the kernel sweeps by weights rather than
// by image, packed whole). Floats of scratch that takes:
inline long direct_input_scratch(const BlockedConv& b, int batch, Layout layout) {
  if (layout == Layout::blocked) {
    if (blocked_input_is_packed(b)) return 0;
    if (direct_conv_pads_per_thread(b)) return direct_conv_padding_scratch(b, omp_get_max_threads());
  }
  return long(batch) * b.input_image();
}

// The direct forward kernel of b on x in `layout`, with direct_input_scratch floats of scratch.
inline void direct_forward_from(const BlockedConv& b, int batch, const float* x, Layout layout, const float* packed_w,
                                const float* bias, float* packed_y, float* scratch, ConvEpilogue epilogue) {
  if (layout == Layout::blocked && blocked_input_is_packed(b))
    return direct_conv_forward(b, batch, x, packed_w, bias, packed_y, epilogue);
  if (layout == Layout::blocked && direct_conv_pads_per_thread(b))
    return direct_conv_forward_blocked(b, batch, x, packed_w, bias, packed_y, scratch, epilogue);
  pack_input(b, batch, x, scratch, layout);
  direct_conv_forward(b, batch, scratch, packed_w, bias, packed_y, epilogue);
}

// For T = float. A planar result is unpacked from the kernels' blocked one; a
// blocked result or output gradient is the kernels' own.
template <class T>
void direct_conv2d_forward(const ConvGeometry& g, int batch, const T* x, const T* w, const T* bias, T* y,
                           Workspace<cpu>& ws, ConvEpilogue epilogue = ConvEpilogue::none, ConvLayouts layouts = {}) {
  const BlockedConv b(g);
  const bool blocked_y = layouts.output == Layout::blocked;
  const long input = direct_input_scratch(b, batch, layouts.input);
  const long output = blocked_y ? 0 : long(batch) * b.output_image();
  T* packed_w = ws.get<T>(std::size_t(b.packed_weights() + output + input));
  T* packed_y = blocked_y ? y : packed_w + b.packed_weights();
  pack_forward_weights(b, w, packed_w);
  direct_forward_from(b, batch, x, layouts.input, packed_w, bias, packed_y, packed_w + b.packed_weights() + output,
                      epilogue);
  if (!blocked_y) unpack_output(b, batch, packed_y, y);
}

// Stride 1 only (has_transposed_convolution): dx is the forward convolution of dy
// with the flipped, transposed kernel.
template <class T>
void direct_conv2d_backward_data(const ConvGeometry& g, int batch, const T* dy, const T* w, T* dx, Workspace<cpu>& ws,
                                 ConvLayouts layouts = {}) {
  const BlockedConv t(transposed_convolution(g));
  const bool blocked_dx = layouts.input == Layout::blocked;
  const long input = direct_input_scratch(t, batch, layouts.output);
  const long output = blocked_dx ? 0 : long(batch) * t.output_image();
  T* packed_w = ws.get<T>(std::size_t(t.packed_weights() + output + input));
  T* packed_dx = blocked_dx ? dx : packed_w + t.packed_weights();
  pack_transposed_weights(t, g, w, packed_w);
  direct_forward_from(t, batch, dy, layouts.output, packed_w, nullptr, packed_dx,
                      packed_w + t.packed_weights() + output, ConvEpilogue::none);
  if (!blocked_dx) unpack_output(t, batch, packed_dx, dx);
}

#if defined(__AVX512F__)
// The input gradient of a strided convolution (stride s, any kernel and
// padding) as s_h * s_w stride-1 convolutions of dy by the direct kernel, one
// per phase of dx's pixels: the pixels iy = q + s m of phase q take the taps
// ky = r + s j with r = (q + pad) mod s, from dy rows m + (q + pad - r) / s - j.
// Each phase is a convolution with the flipped, transposed sub-kernel of those
// taps, written straight to its interleaved pixels of dx (OutputPlacement);
// the phases share one padded copy of dy. A phase without taps (a 1x1 kernel's
// odd pixels) is zero. Same FLOPs as the convolution itself, where im2col +
// GEMM paid a column buffer and a scatter.
struct GradientPhase {
  int first_tap, taps;  // taps first_tap, first_tap + s, ...
  int shift;            // dx pixel m of the phase reads dy pixels m + shift - j
  int pixels;           // dx pixels in the phase along the axis
};

inline GradientPhase gradient_phase(int q, int stride, int pad, int kernel, int extent) {
  const int r = (q + pad) % stride;
  return {r, r < kernel ? (kernel - r + stride - 1) / stride : 0, (q + pad - r) / stride,
          q < extent ? (extent - q + stride - 1) / stride : 0};
}

template <class T>
void direct_conv2d_backward_data_phases(const ConvGeometry& g, int batch, const T* dy, const T* w, T* dx,
                                        Workspace<cpu>& ws, ConvLayouts layouts) {
  // The border dy needs for every phase's windows, above and below (left and right).
  int top = 0, bottom = 0, left = 0, right = 0;
  for (int q = 0; q < g.stride_h; ++q) {
    const GradientPhase p = gradient_phase(q, g.stride_h, g.pad_top, g.kernel_h, g.height);
    if (p.taps == 0 || p.pixels == 0) continue;
    top = std::max(top, p.taps - 1 - p.shift);
    bottom = std::max(bottom, p.pixels - 1 + p.shift - (g.out_height - 1));
  }
  for (int q = 0; q < g.stride_w; ++q) {
    const GradientPhase p = gradient_phase(q, g.stride_w, g.pad_left, g.kernel_w, g.width);
    if (p.taps == 0 || p.pixels == 0) continue;
    left = std::max(left, p.taps - 1 - p.shift);
    right = std::max(right, p.pixels - 1 + p.shift - (g.out_width - 1));
  }
  // dy packed with that border: the input of a convolution with dy's extents and padding.
  ConvGeometry dy_geometry{g.out_channels, g.out_height, g.out_width, g.in_channels, 1, 1, 1, 1, 1, 1, top, left};
  BlockedConv packed(dy_geometry);
  packed.padded_height = top + g.out_height + bottom;
  packed.padded_width = left + g.out_width + right;
  const BlockedConv full(g);  // dx's blocks
  const long dx_image = long(full.in_blocks) * g.in_pixels() * channel_block;
  const bool blocked_dx = layouts.input == Layout::blocked;
  const long weights = long(full.in_blocks) * full.out_blocks * g.kernel_h * g.kernel_w * channel_block * channel_block;
  T* packed_dy = ws.get<T>(std::size_t(batch * packed.input_image() + weights + (blocked_dx ? 0 : batch * dx_image)));
  T* packed_w = packed_dy + batch * packed.input_image();
  T* target = blocked_dx ? dx : packed_w + weights;
  pack_input(packed, batch, dy, packed_dy, layouts.output);
  bool empty_phase = false;
  for (int qy = 0; qy < g.stride_h; ++qy)
    for (int qx = 0; qx < g.stride_w; ++qx) {
      const GradientPhase py = gradient_phase(qy, g.stride_h, g.pad_top, g.kernel_h, g.height);
      const GradientPhase px = gradient_phase(qx, g.stride_w, g.pad_left, g.kernel_w, g.width);
      empty_phase |= (py.taps == 0 || px.taps == 0) && py.pixels > 0 && px.pixels > 0;
    }
  if (empty_phase) std::fill(target, target + batch * dx_image, T(0));
  for (int qy = 0; qy < g.stride_h; ++qy)
    for (int qx = 0; qx < g.stride_w; ++qx) {
      const GradientPhase py = gradient_phase(qy, g.stride_h, g.pad_top, g.kernel_h, g.height);
      const GradientPhase px = gradient_phase(qx, g.stride_w, g.pad_left, g.kernel_w, g.width);
      if (py.taps == 0 || px.taps == 0 || py.pixels == 0 || px.pixels == 0) continue;
      // (Cin, phase pixels) = the stride-1 convolution of dy (Cout channels) with the phase's taps.
      BlockedConv phase(ConvGeometry{g.out_channels, g.out_height, g.out_width, g.in_channels, py.pixels, px.pixels,
                                     py.taps, px.taps, 1, 1, 0, 0});
      phase.padded_height = packed.padded_height;
      phase.padded_width = packed.padded_width;
      pack_weights(phase,
                   [&](int o, int i, int jy, int jx) {
                     const int ky = py.first_tap + g.stride_h * (py.taps - 1 - jy);
                     const int kx = px.first_tap + g.stride_w * (px.taps - 1 - jx);
                     return w[((long(i) * g.in_channels + o) * g.kernel_h + ky) * g.kernel_w + kx];
                   },
                   packed_w);
      // The window of dx pixel 0 of the phase starts at dy pixel shift - (taps - 1).
      const long origin = (long(top + py.shift - (py.taps - 1)) * packed.padded_width + left + px.shift -
                           (px.taps - 1)) * channel_block;
      const long row = long(g.width) * channel_block;
      direct_conv_forward_placed(phase, batch, packed_dy + origin, packed.input_image(), packed_w,
                                 {target + qy * row + long(qx) * channel_block, dx_image, g.in_pixels() * channel_block,
                                  g.stride_h * row, long(g.stride_w) * channel_block});
    }
  if (!blocked_dx) {
    // dx's blocks as the output of a convolution with dx's extents.
    const BlockedConv dx_blocks(ConvGeometry{g.out_channels, g.out_height, g.out_width, g.in_channels, g.height,
                                             g.width, 1, 1, 1, 1, 0, 0});
    unpack_output(dx_blocks, batch, target, dx);
  }
}
#endif

template <class T>
void direct_conv2d_backward_weights(const ConvGeometry& g, int batch, const T* x, const T* dy, T* dw, T* dbias,
                                    Workspace<cpu>& ws, ConvLayouts layouts = {}) {
  const BlockedConv b(g);
  const bool blocked_dy = layouts.output == Layout::blocked;
  const bool packed = layouts.input == Layout::blocked && blocked_input_is_packed(b);
  const long scratch = direct_conv_weights_scratch(b, omp_get_max_threads());
  const long input = packed ? 0 : long(batch) * b.input_image();
  const long output = blocked_dy ? 0 : long(batch) * b.output_image();
  T* packed_dw = ws.get<T>(std::size_t(b.packed_weights() + scratch + input + output));
  const T* packed_x = x;  // a blocked x that needs no border is its own packed form
  if (!packed) {
    T* target = packed_dw + b.packed_weights() + scratch;
    pack_input(b, batch, x, target, layouts.input);
    packed_x = target;
  }
  const T* packed_dy = dy;
  if (!blocked_dy) {
    pack_output(b, batch, dy, packed_dw + b.packed_weights() + scratch + input);
    packed_dy = packed_dw + b.packed_weights() + scratch + input;
  }
  direct_conv_backward_weights(b, batch, packed_x, packed_dy, packed_dw, dbias, packed_dw + b.packed_weights());
  unpack_weights(b, packed_dw, dw);
}

// --- Winograd F(2x2, 3x3) and F(4x4, 3x3) over the blocked layout ------------------

// Whether a float forward (or the transposed convolution of an input gradient)
// that runs as Winograd takes F(4x4, 3x3) rather than F(2x2, 3x3); defined
// with the other choices below.
inline bool use_winograd4(const ConvGeometry& run);

#if defined(__AVX512F__)
// One call's operands in the workspace (slot 0): the packed input and output
// (where the input or output in `layouts` is planar, else empty), the blocked
// weights, their transform (as Element), and the threads' tiles, for a plan P
// of F(2x2, 3x3) or F(4x4, 3x3).
template <class Element, class P>
struct WinogradOperands {
  float *input, *output, *weights;
  Element* transformed;
  float* tiles;

  WinogradOperands(const P& p, int batch, Workspace<cpu>& ws, ConvLayouts layouts)
      : input(ws.get<float>(std::size_t(winograd_workspace_floats<Element, P>(
            p.g, batch, omp_get_max_threads(), layouts.input == Layout::planar,
            layouts.output == Layout::planar)))),
        output(input + (layouts.input == Layout::planar ? long(batch) * p.packed.input_image() : 0)),
        weights(output + (layouts.output == Layout::planar ? long(batch) * p.output.output_image() : 0)),
        transformed(reinterpret_cast<Element*>(weights + p.packed.packed_weights())),
        tiles(weights + p.packed.packed_weights() + winograd::floats_for<Element>(p.transformed_weights())) {}
};

// The tiles' source: a planar x packed into `packed` (with its zero border), a
// blocked one read where it is, its windows cut at the edges.
template <class P>
winograd::InputImages winograd_input(const P& p, int batch, const float* x, Layout layout, float* packed) {
  if (layout == Layout::blocked) return winograd::InputImages::blocked(p, x);
  pack_input(p.packed, batch, x, packed);
  return winograd::InputImages::packed(p, packed);
}

// The convolution g (the forward pass, or the transposed convolution of an
// input gradient, whose weights `pack` lays out) by the Winograd plan P.
template <class Element, class P, class PackWeights>
void winograd_pass(const ConvGeometry& g, int batch, const float* x, const PackWeights& pack, const float* bias,
                   float* y, Workspace<cpu>& ws, ConvEpilogue epilogue, ConvLayouts layouts) {
  const P p(g);
  const WinogradOperands<Element, P> o(p, batch, ws, layouts);
  const bool blocked_y = layouts.output == Layout::blocked;
  pack(p.packed, o.weights);
  winograd_conv_forward(p, batch, winograd_input(p, batch, x, layouts.input, o.input), o.weights, bias,
                        blocked_y ? y : o.output, o.transformed, o.tiles, epilogue);
  if (!blocked_y) unpack_output(p.output, batch, o.output, y);
}

// Element is the transformed operands' type: float, or bf16_bits for the bf16
// policy on the vdpbf16ps kernels (bf16_conv2d_forward). Float passes that
// use_winograd4 picks run as F(4x4, 3x3).
template <class Element = float>
void winograd_conv2d_forward(const ConvGeometry& g, int batch, const float* x, const float* w, const float* bias,
                             float* y, Workspace<cpu>& ws, ConvEpilogue epilogue = ConvEpilogue::none,
                             ConvLayouts layouts = {}) {
  const auto pack = [&](const BlockedConv& b, float* packed) { pack_forward_weights(b, w, packed); };
  if constexpr (std::is_same_v<Element, float>)
    if (use_winograd4(g))
      return winograd_pass<Element, winograd::Plan4>(g, batch, x, pack, bias, y, ws, epilogue, layouts);
  winograd_pass<Element, winograd::Plan>(g, batch, x, pack, bias, y, ws, epilogue, layouts);
}

// The input gradient of a 3x3 stride-1 convolution is the 3x3 stride-1
// convolution of dy with the flipped, transposed kernel: its input is dy (in
// layouts.output) and its output dx (in layouts.input).
template <class Element = float>
void winograd_conv2d_backward_data(const ConvGeometry& g, int batch, const float* dy, const float* w, float* dx,
                                   Workspace<cpu>& ws, ConvLayouts layouts = {}) {
  const ConvGeometry t = transposed_convolution(g);
  const auto pack = [&](const BlockedConv& b, float* packed) { pack_transposed_weights(b, g, w, packed); };
  const ConvLayouts swapped{layouts.output, layouts.input};
  if constexpr (std::is_same_v<Element, float>)
    if (use_winograd4(t))
      return winograd_pass<Element, winograd::Plan4>(t, batch, dy, pack, nullptr, dx, ws, ConvEpilogue::none, swapped);
  winograd_pass<Element, winograd::Plan>(t, batch, dy, pack, nullptr, dx, ws, ConvEpilogue::none, swapped);
}

// The weight and bias gradients of a 3x3 stride-1 convolution by the plan P.
template <class Element, class P>
void winograd_weights_pass(const ConvGeometry& g, int batch, const float* x, const float* dy, float* dw, float* dbias,
                           Workspace<cpu>& ws, ConvLayouts layouts) {
  const P p(g);
  const bool blocked_dy = layouts.output == Layout::blocked;
  const long input = layouts.input == Layout::blocked ? 0 : long(batch) * p.packed.input_image();
  const long output = blocked_dy ? 0 : long(batch) * p.output.output_image();
  const long scratch = winograd_weights_scratch<Element>(p, omp_get_max_threads());
  float* packed_x = ws.get<float>(std::size_t(input + output + p.output.packed_weights() + scratch));
  float* packed_dw = packed_x + input + output;
  const float* packed_dy = dy;
  if (!blocked_dy) {
    pack_output(p.output, batch, dy, packed_x + input);
    packed_dy = packed_x + input;
  }
  winograd_conv_backward_weights<Element>(p, batch, winograd_input(p, batch, x, layouts.input, packed_x), packed_dy,
                                          packed_dw, dbias, packed_dw + p.output.packed_weights());
  unpack_weights(p.output, packed_dw, dw);
}

// The weight and bias gradients of a 3x3 stride-1 convolution, the transformed
// tiles multiplied as Element: float, or bf16_bits on the vdpbf16ps kernels
// (bf16_conv2d_backward_weights). Float gradients that use_winograd4 picks run
// as F(4x4, 3x3).
template <class Element = float>
void winograd_conv2d_backward_weights(const ConvGeometry& g, int batch, const float* x, const float* dy, float* dw,
                                      float* dbias, Workspace<cpu>& ws, ConvLayouts layouts = {}) {
  if constexpr (std::is_same_v<Element, float>)
    if (use_winograd4(g))
      return winograd_weights_pass<Element, winograd::Plan4>(g, batch, x, dy, dw, dbias, ws, layouts);
  winograd_weights_pass<Element, winograd::Plan>(g, batch, x, dy, dw, dbias, ws, layouts);
}
#endif

// --- choice -----------------------------------------------------------------------

// The direct kernels exist for float where the compiler targets AVX-512 (their
// scalar fallback is for testing, slower than im2col).
template <class T>
inline constexpr bool direct_conv_available =
#if defined(__AVX512F__)
    std::is_same_v<T, float>;
#else
    false;
#endif

enum class ConvPass { forward, backward_data, backward_weights };

// LAMINAR_CONV in the environment overrides the choice of algorithm for every
// float convolution, for comparing them on a whole network: `im2col`, `direct`
// (the direct kernels, no Winograd), `winograd` (F(2x2, 3x3) wherever it
// applies, direct elsewhere) or `winograd4` (the same with F(4x4, 3x3) for the
// float forward and input gradient). It is read once; any other value is an
// error.
enum class ConvChoice { automatic, im2col, direct, winograd, winograd4 };

inline ConvChoice conv_choice_from(const char* value) {
  if (!value || !*value) return ConvChoice::automatic;
  if (std::strcmp(value, "im2col") == 0) return ConvChoice::im2col;
  if (std::strcmp(value, "direct") == 0) return ConvChoice::direct;
  if (std::strcmp(value, "winograd") == 0) return ConvChoice::winograd;
  if (std::strcmp(value, "winograd4") == 0) return ConvChoice::winograd4;
  throw Error(std::string("LAMINAR_CONV=\"") + value + "\": expected im2col, direct, winograd or winograd4");
}

inline ConvChoice forced_conv_choice() {
  static const ConvChoice choice = conv_choice_from(std::getenv("LAMINAR_CONV"));
  return choice;
}

inline bool use_direct_conv(const ConvGeometry& g, ConvPass pass) {
  if (forced_conv_choice() == ConvChoice::im2col) return false;
  // The input gradient is a direct convolution for stride 1 only.
  return pass != ConvPass::backward_data || has_transposed_convolution(g);
}

// Whether the input gradient of g, which has no transposed convolution (a
// stride above 1), runs as phases of the direct kernel
// (direct_conv2d_backward_data_phases) rather than im2col.
inline bool use_gradient_phases(const ConvGeometry& g) {
  return forced_conv_choice() != ConvChoice::im2col && !has_transposed_convolution(g);
}

// Whether F(4x4, 3x3) pays for a float forward or input gradient whose
// (transposed) convolution is `run`: from 16 -> 16 channels up
// (Cin Cout / (Cin + Cout) >= 8), where its contraction, 36 multiplies per
// channel pair for 16 outputs, beat both the direct kernel and F(2x2)'s 16 for
// 4 on the Emerald Rapids Xeon of docs/benchmarks.md (2026-12-08: 16 -> 16 at
// 32x32 2.07-2.72 ms against direct's 2.35-3.42, 64 -> 64 at 8x8 1.16-1.24
// against F(2x2)'s 1.42-1.66), and only where its tiles take fewer multiplies
// than F(2x2)'s: not on 5x5 and 6x6 outputs, whose 4x4 tiles cover 8x8.
inline bool winograd4_pays(const ConvGeometry& run) {
  if (!winograd_applicable(run)) return false;
  const long product = long(run.in_channels) * run.out_channels, sum = run.in_channels + run.out_channels;
  const long tiles2 = long((run.out_height + 1) / 2) * ((run.out_width + 1) / 2);
  const long tiles4 = long((run.out_height + 3) / 4) * ((run.out_width + 3) / 4);
  return product >= 8 * sum && 36 * tiles4 < 16 * tiles2;
}

// Whether a pass of g runs as Winograd F(2x2, 3x3) on transformed operands of
// Element: float, or bf16_bits on the vdpbf16ps kernels. `run` is the
// convolution actually computed: g itself, or for the input gradient its
// transposed convolution. The transforms cost in proportion to Cin + Cout a
// tile and save in proportion to Cin * Cout, so by default the forward and
// input gradient run as Winograd where Cin Cout / (Cin + Cout) reaches a
// threshold: 16 for float, where on a 2-core Zen 4 at batch 128 it was 1.2-1.6x
// faster than the direct kernel from 32 -> 32 channels up (and 24 -> 64),
// slower at 16 -> 16 and 3 -> 32; 32 for bf16, whose contraction runs twice as
// fast while the transforms do not: there it was 1.1-1.7x faster from 64 -> 64
// at 16x16 and 8x8 up, level at 64 -> 64 at 15x15 and 256 -> 256 at 3x3, slower
// at 32 -> 32. The weight gradient, whose direct kernels are slower, won in
// both precisions from 16 -> 16 (32 -> 32 for bf16) up, by 1.1-1.6x, and lost at
// 3 -> 32 and on 3x3 outputs, whose 2x2 tiles multiply 64 times for 81 direct
// products: it runs where the ratio reaches 8 and the tiles take at most 2/3 of
// the direct multiplies (docs/benchmarks.md, 2026-12-03).
template <class Element = float>
bool use_winograd(const ConvGeometry& g, ConvPass pass) {
  if (!use_direct_conv(g, pass)) return false;
  const ConvGeometry run = pass == ConvPass::backward_data ? transposed_convolution(g) : g;
  if (!winograd_applicable(run)) return false;
  constexpr long threshold = std::is_same_v<Element, float> ? 16 : 32;
  const long product = long(run.in_channels) * run.out_channels, sum = run.in_channels + run.out_channels;
  const long tiles = long((run.out_height + 1) / 2) * ((run.out_width + 1) / 2);
  switch (forced_conv_choice()) {
    case ConvChoice::winograd:
    case ConvChoice::winograd4: return true;
    case ConvChoice::automatic:
      if (pass == ConvPass::backward_weights) {
        const long tiles4 = long((run.out_height + 3) / 4) * ((run.out_width + 3) / 4);
        if (std::is_same_v<Element, float> && winograd4_pays(run) && 3 * 36 * tiles4 <= 2 * 9 * run.out_pixels())
          return true;
        return product >= 8 * sum && 3 * 16 * tiles <= 2 * 9 * run.out_pixels();
      }
      if (std::is_same_v<Element, float> && winograd4_pays(run)) return true;
      return product >= threshold * sum;
    default: return false;
  }
}

// F(4x4, 3x3) for a float forward or transposed convolution `run` that runs as
// Winograd, by default where winograd4_pays.
inline bool use_winograd4(const ConvGeometry& run) {
  switch (forced_conv_choice()) {
    case ConvChoice::winograd4: return true;
    case ConvChoice::automatic: return winograd4_pays(run);
    default: return false;
  }
}

// The convolution of float or double operands in their own precision, every
// output a sum of the products w * x themselves (direct or im2col): what the
// emulated bf16 passes run, whose products of bf16 values must stay exact.
template <class T>
void product_conv2d_forward(const ConvGeometry& g, int batch, const T* x, const T* w, const T* bias, T* y,
                            Workspace<cpu>& ws, ConvEpilogue epilogue = ConvEpilogue::none, ConvLayouts layouts = {}) {
  if constexpr (direct_conv_available<T>)
    if (use_direct_conv(g, ConvPass::forward))
      return direct_conv2d_forward(g, batch, x, w, bias, y, ws, epilogue, layouts);
  planar_forward(g, batch, x, y, ws, layouts,
                 [&](const T* xp, T* yp) { im2col_conv_forward(g, batch, xp, w, bias, yp, ws, epilogue); });
}

template <class T>
void product_conv2d_backward_data(const ConvGeometry& g, int batch, const T* dy, const T* w, T* dx,
                                  Workspace<cpu>& ws, ConvLayouts layouts = {}) {
#if defined(__AVX512F__)
  if constexpr (direct_conv_available<T>) {
    if (use_direct_conv(g, ConvPass::backward_data))
      return direct_conv2d_backward_data(g, batch, dy, w, dx, ws, layouts);
    if (use_gradient_phases(g)) return direct_conv2d_backward_data_phases(g, batch, dy, w, dx, ws, layouts);
  }
#endif
  planar_backward_data(g, batch, dy, dx, ws, layouts,
                       [&](const T* dyp, T* dxp) { im2col_conv_backward_data(g, batch, dyp, w, dxp, ws); });
}

// The convolution of float or double operands in their own precision, by the
// fastest algorithm for g: Winograd where use_winograd says, else as above.
// x and dx are in layouts.input, y and dy in layouts.output.
template <class T>
void conv2d_forward(const ConvGeometry& g, int batch, const T* x, const T* w, const T* bias, T* y, Workspace<cpu>& ws,
                    ConvEpilogue epilogue = ConvEpilogue::none, ConvLayouts layouts = {}) {
  if constexpr (direct_conv_available<T>)
    if (use_winograd(g, ConvPass::forward))
      return winograd_conv2d_forward(g, batch, x, w, bias, y, ws, epilogue, layouts);
  product_conv2d_forward(g, batch, x, w, bias, y, ws, epilogue, layouts);
}

template <class T>
void conv2d_backward_data(const ConvGeometry& g, int batch, const T* dy, const T* w, T* dx, Workspace<cpu>& ws,
                          ConvLayouts layouts = {}) {
  if constexpr (direct_conv_available<T>)
    if (use_winograd(g, ConvPass::backward_data))
      return winograd_conv2d_backward_data(g, batch, dy, w, dx, ws, layouts);
  product_conv2d_backward_data(g, batch, dy, w, dx, ws, layouts);
}

template <class T>
void product_conv2d_backward_weights(const ConvGeometry& g, int batch, const T* x, const T* dy, T* dw, T* dbias,
                                     Workspace<cpu>& ws, ConvLayouts layouts = {}) {
  if constexpr (direct_conv_available<T>)
    if (use_direct_conv(g, ConvPass::backward_weights))
      return direct_conv2d_backward_weights(g, batch, x, dy, dw, dbias, ws, layouts);
  planar_backward_weights(g, batch, x, dy, ws, layouts, [&](const T* xp, const T* dyp) {
    im2col_conv_backward_weights(g, batch, xp, dyp, dw, dbias, ws);
  });
}

template <class T>
void conv2d_backward_weights(const ConvGeometry& g, int batch, const T* x, const T* dy, T* dw, T* dbias,
                             Workspace<cpu>& ws, ConvLayouts layouts = {}) {
  if constexpr (direct_conv_available<T>)
    if (use_winograd(g, ConvPass::backward_weights))
      return winograd_conv2d_backward_weights(g, batch, x, dy, dw, dbias, ws, layouts);
  product_conv2d_backward_weights(g, batch, x, dy, dw, dbias, ws, layouts);
}

// --- bf16 arithmetic ----------------------------------------------------------------

// Which kernels multiply bf16 operands on this machine, decided once.
//   amx: tile matrix multiplies (amx_conv.hpp), where the CPU has AMX and the
//     kernel grants it (amx_available; LAMINAR_AMX=0 turns it off): stride-1
//     passes; strided ones are emulated.
//   dot_product: vdpbf16ps (direct_conv.hpp, direct_conv_weights.hpp), on AMD
//     cores, where bf16 dot products run at twice the float rate: on a 2-core
//     Zen 4 (family 25, model 17) a register-only loop reached 443-465 GFLOP/s
//     against 222-233 for FMA, and net C's convolutions ran at 54-80% of that
//     (docs/benchmarks.md, 2026-12-02, night).
//   emulated: the float kernels on operand copies rounded to bf16, the same
//     products summed in another order. Intel's vdpbf16ps issues every second
//     cycle (measured 0.5-0.7x the float kernels on an Emerald Rapids Xeon), so
//     without AMX this is the faster bf16 there; also what machines without
//     AVX-512 BF16 run.
enum class Bf16Kernels { amx, dot_product, emulated };

inline Bf16Kernels bf16_kernels() {
  if (amx_available()) return Bf16Kernels::amx;
#if defined(__AVX512BF16__) && defined(__x86_64__)
  static const Bf16Kernels kernels = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    __get_cpuid(0, &eax, &ebx, &ecx, &edx);
    const bool amd = ebx == 0x68747541u && edx == 0x69746e65u && ecx == 0x444d4163u;  // "AuthenticAMD"
    return amd ? Bf16Kernels::dot_product : Bf16Kernels::emulated;
  }();
  return kernels;
#else
  return Bf16Kernels::emulated;
#endif
}

// Whether the bf16 passes on this machine want planar tensors: the AMX kernels
// read and write planar ones only (blocked ones would be converted at every
// pass) and the vdpbf16ps packers transpose planar planes in registers; only
// the emulated passes, the float kernels on rounded copies, take blocked
// tensors as they are. A float model switched to bf16 arithmetic keeps its
// activations planar where this holds (Model::set_arithmetic).
inline bool bf16_prefers_planar() { return bf16_kernels() != Bf16Kernels::emulated; }

inline void round_all_to_bf16(const float* in, long n, float* out) {
#pragma omp parallel for schedule(static) if (n > (1l << 16))
  for (long i = 0; i < n; ++i) out[i] = round_to_bf16(in[i]);
}

// The vdpbf16ps passes: bf16 blocked operands in the workspace (slot 0),
// float results.
inline void dot_product_conv2d_forward(const ConvGeometry& g, int batch, const float* x, const float* w,
                                       const float* bias, float* y, Workspace<cpu>& ws,
                                       ConvEpilogue epilogue = ConvEpilogue::none, ConvLayouts layouts = {}) {
  const BlockedConv b(g);
  const bool blocked_y = layouts.output == Layout::blocked;
  const long input = long(batch) * b.input_image(), output = blocked_y ? 0 : long(batch) * b.output_image();
  auto* packed_y = ws.get<float>(std::size_t(output) + std::size_t(input + b.packed_weights() + 1) / 2);
  auto* packed_x = reinterpret_cast<bf16_bits*>(packed_y + output);
  bf16_bits* packed_w = packed_x + input;
  pack_input_bf16(b, batch, x, packed_x, layouts.input);
  pack_forward_weights_bf16(b, w, packed_w);
  direct_conv_forward_bf16(b, batch, packed_x, packed_w, bias, blocked_y ? y : packed_y, epilogue);
  if (!blocked_y) unpack_output(b, batch, packed_y, y);
}

inline void dot_product_conv2d_backward_data(const ConvGeometry& g, int batch, const float* dy, const float* w,
                                             float* dx, Workspace<cpu>& ws, ConvLayouts layouts = {}) {
  const BlockedConv t(transposed_convolution(g));
  const bool blocked_dx = layouts.input == Layout::blocked;
  const long input = long(batch) * t.input_image(), output = blocked_dx ? 0 : long(batch) * t.output_image();
  auto* packed_dx = ws.get<float>(std::size_t(output) + std::size_t(input + t.packed_weights() + 1) / 2);
  auto* packed_dy = reinterpret_cast<bf16_bits*>(packed_dx + output);
  bf16_bits* packed_w = packed_dy + input;
  pack_input_bf16(t, batch, dy, packed_dy, layouts.output);
  pack_transposed_weights_bf16(t, g, w, packed_w);
  direct_conv_forward_bf16(t, batch, packed_dy, packed_w, nullptr, blocked_dx ? dx : packed_dx);
  if (!blocked_dx) unpack_output(t, batch, packed_dx, dx);
}

// Planar operands only: it pairs images as it packs them.
inline void dot_product_conv2d_backward_weights(const ConvGeometry& g, int batch, const float* x, const float* dy,
                                                float* dw, float* dbias, Workspace<cpu>& ws) {
  const BlockedConv b(g);
  const long pairs = image_pairs(batch);
  const long scratch = direct_conv_weights_bf16_scratch(b, omp_get_max_threads());
  const long input = pairs * 2 * b.input_image(), output = pairs * 2 * b.output_image();
  auto* packed_dw = ws.get<float>(std::size_t(b.packed_weights() + scratch) + std::size_t(input + output + 1) / 2);
  auto* packed_x = reinterpret_cast<bf16_bits*>(packed_dw + b.packed_weights() + scratch);
  bf16_bits* packed_dy = packed_x + input;
  pack_input_pairs_bf16(b, batch, x, packed_x);
  pack_output_pairs_bf16(b, batch, dy, packed_dy);
  direct_conv_backward_weights_bf16(b, batch, packed_x, packed_dy, dy, packed_dw, dbias, packed_dw + b.packed_weights());
  unpack_weights(b, packed_dw, dw);
}

// On the vdpbf16ps kernels, a 3x3 stride-1 forward or input gradient that
// use_winograd<bf16_bits> picks runs as Winograd on bf16 transformed tiles and
// kernels (each transformed in float from the float operands, then rounded).
// Where no bf16 kernel runs a pass (see bf16_kernels; also a strided input
// gradient and LAMINAR_CONV=im2col), the pass runs in float on copies of its
// operands rounded to bf16 (workspace slot 1, in the operands' own layout),
// never through Winograd, whose transforms would round the operands' sums and
// differences instead. The AMX kernels read and write planar tensors only.
inline void bf16_conv2d_forward(const ConvGeometry& g, int batch, const float* x, const float* w, const float* bias,
                                float* y, Workspace<cpu>& ws, ConvEpilogue epilogue = ConvEpilogue::none,
                                ConvLayouts layouts = {}) {
#if LAMINAR_HAS_AMX
  if (bf16_kernels() == Bf16Kernels::amx && AmxConv::supports(g) && use_direct_conv(g, ConvPass::forward))
    return planar_forward(g, batch, x, y, ws, layouts, [&](const float* xp, float* yp) {
      amx_conv2d_forward(g, batch, xp, w, bias, yp,
                         ws.get<unsigned char>(std::size_t(amx_conv_forward_scratch(g, batch))), epilogue);
    });
#endif
#if defined(__AVX512BF16__)
  if (bf16_kernels() == Bf16Kernels::dot_product && use_winograd<bf16_bits>(g, ConvPass::forward))
    return winograd_conv2d_forward<bf16_bits>(g, batch, x, w, bias, y, ws, epilogue, layouts);
#endif
  if (bf16_kernels() == Bf16Kernels::dot_product && use_direct_conv(g, ConvPass::forward))
    return dot_product_conv2d_forward(g, batch, x, w, bias, y, ws, epilogue, layouts);
  const long nx = long(batch) * g.in_channels * g.in_pixels(), nw = long(g.out_channels) * g.patch();
  float* rounded = ws.get<float>(std::size_t(nx + nw), 1);
  round_all_to_bf16(x, nx, rounded);
  round_all_to_bf16(w, nw, rounded + nx);
  product_conv2d_forward(g, batch, rounded, rounded + nx, bias, y, ws, epilogue, layouts);
}

inline void bf16_conv2d_backward_data(const ConvGeometry& g, int batch, const float* dy, const float* w, float* dx,
                                      Workspace<cpu>& ws, ConvLayouts layouts = {}) {
#if LAMINAR_HAS_AMX
  if (bf16_kernels() == Bf16Kernels::amx && AmxConv::supports_backward_data(g) &&
      use_direct_conv(g, ConvPass::backward_data))
    return planar_backward_data(g, batch, dy, dx, ws, layouts, [&](const float* dyp, float* dxp) {
      amx_conv2d_backward_data(g, batch, dyp, w, dxp,
                               ws.get<unsigned char>(std::size_t(amx_conv_backward_data_scratch(g, batch))));
    });
#endif
#if defined(__AVX512BF16__)
  if (bf16_kernels() == Bf16Kernels::dot_product && use_winograd<bf16_bits>(g, ConvPass::backward_data))
    return winograd_conv2d_backward_data<bf16_bits>(g, batch, dy, w, dx, ws, layouts);
#endif
  if (bf16_kernels() == Bf16Kernels::dot_product && use_direct_conv(g, ConvPass::backward_data))
    return dot_product_conv2d_backward_data(g, batch, dy, w, dx, ws, layouts);
  const long ny = long(batch) * g.out_channels * g.out_pixels(), nw = long(g.out_channels) * g.patch();
  float* rounded = ws.get<float>(std::size_t(ny + nw), 1);
  round_all_to_bf16(dy, ny, rounded);
  round_all_to_bf16(w, nw, rounded + ny);
  product_conv2d_backward_data(g, batch, rounded, rounded + ny, dx, ws, layouts);
}

// The AMX and vdpbf16ps kernels sum the float dy into dbias as they pack it; the
// emulated pass leaves dbias untouched and returns false, and the caller sums it
// (ops<cpu>::sum_per_channel), in float as every bias gradient is: the rounding
// of bf16 is for the products only.
inline bool bf16_conv2d_backward_weights(const ConvGeometry& g, int batch, const float* x, const float* dy, float* dw,
                                         float* dbias, Workspace<cpu>& ws, ConvLayouts layouts = {}) {
  if (bf16_kernels() == Bf16Kernels::amx && AmxWeightLayout::supports(g) &&
      use_direct_conv(g, ConvPass::backward_weights)) {
    return planar_backward_weights(g, batch, x, dy, ws, layouts, [&](const float* xp, const float* dyp) {
      const long bytes = amx_conv_backward_weights_scratch(g, batch, omp_get_max_threads());
      amx_conv2d_backward_weights(g, batch, xp, dyp, dw, dbias, ws.get<unsigned char>(std::size_t(bytes)));
      return true;
    });
  }
#if defined(__AVX512BF16__)
  if (bf16_kernels() == Bf16Kernels::dot_product && use_winograd<bf16_bits>(g, ConvPass::backward_weights)) {
    winograd_conv2d_backward_weights<bf16_bits>(g, batch, x, dy, dw, dbias, ws, layouts);
    return true;
  }
#endif
  if (bf16_kernels() == Bf16Kernels::dot_product && use_direct_conv(g, ConvPass::backward_weights)) {
    return planar_backward_weights(g, batch, x, dy, ws, layouts, [&](const float* xp, const float* dyp) {
      dot_product_conv2d_backward_weights(g, batch, xp, dyp, dw, dbias, ws);
      return true;
    });
  }
  const long nx = long(batch) * g.in_channels * g.in_pixels(), ny = long(batch) * g.out_channels * g.out_pixels();
  float* rounded = ws.get<float>(std::size_t(nx + ny), 1);
  round_all_to_bf16(x, nx, rounded);
  round_all_to_bf16(dy, ny, rounded + nx);
  product_conv2d_backward_weights(g, batch, rounded, rounded + nx, dw, static_cast<float*>(nullptr), ws, layouts);
  return false;
}

}  // namespace laminar::cpu_detail
