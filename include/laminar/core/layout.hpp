// How a batch of image activations lies in memory. Users hand in and get back
// planar NCHW; inside a model a backend may keep an image tensor blocked,
//   (N, C/k, H, W, k)   with k = ops<B>::channel_block (16 floats on the cpu),
// the layout its convolution kernels read and write, so that no layer between
// two convolutions converts. Only shapes whose channel count is a multiple of k
// are blocked; a 1x1 image and a flat Shape<N> read the same either way.
#pragma once

namespace laminar {

enum class Layout : unsigned char { planar, blocked };

inline const char* layout_name(Layout layout) { return layout == Layout::blocked ? "blocked" : "planar"; }

// The layouts of a convolution's image tensors: x and dx in `input`, y and dy
// in `output`.
struct ConvLayouts {
  Layout input = Layout::planar;
  Layout output = Layout::planar;
};

}  // namespace laminar
