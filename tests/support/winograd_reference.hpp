// The bf16 Winograd F(2x2, 3x3) convolution as winograd_conv.hpp defines it,
// written out one tile and one channel at a time: each 4x4 input window's
// V = B^T d B and each kernel's U = G g G^T computed in float, in the kernel's
// order of operations, then rounded to bf16; their products summed and
// Y = A^T M A + bias taken in double. The vector code rounds the same floats,
// so it differs from this only by its float sums.
#pragma once

#include <laminar/backend/cpu/bf16.hpp>
#include <laminar/core/geometry.hpp>
#include <vector>

namespace laminar_test {

// G g G^T of one 3x3 kernel k (row-major), as 16 floats.
inline void winograd_kernel_transform(const float* k, float u[16]) {
  float t[4][3];  // G g
  for (int c = 0; c < 3; ++c) {
    const float k0 = k[c], k1 = k[3 + c], k2 = k[6 + c];
    t[0][c] = k0;
    t[1][c] = 0.5f * ((k0 + k1) + k2);
    t[2][c] = 0.5f * ((k0 - k1) + k2);
    t[3][c] = k2;
  }
  for (int r = 0; r < 4; ++r) {  // (G g) G^T
    u[r * 4 + 0] = t[r][0];
    u[r * 4 + 1] = 0.5f * ((t[r][0] + t[r][1]) + t[r][2]);
    u[r * 4 + 2] = 0.5f * ((t[r][0] - t[r][1]) + t[r][2]);
    u[r * 4 + 3] = t[r][2];
  }
}

// B^T d B of one 4x4 window, in place: down the columns, then along the rows.
inline void winograd_input_transform(float d[4][4]) {
  for (int c = 0; c < 4; ++c) {
    const float d0 = d[0][c], d1 = d[1][c], d2 = d[2][c], d3 = d[3][c];
    d[0][c] = d0 - d2;
    d[1][c] = d1 + d2;
    d[2][c] = d2 - d1;
    d[3][c] = d1 - d3;
  }
  for (int r = 0; r < 4; ++r) {
    const float d0 = d[r][0], d1 = d[r][1], d2 = d[r][2], d3 = d[r][3];
    d[r][0] = d0 - d2;
    d[r][1] = d1 + d2;
    d[r][2] = d2 - d1;
    d[r][3] = d1 - d3;
  }
}

// B^T d B of tile (ty, tx) of channel i of image n of x (N, Cin, H, W), zero
// outside the image, rounded to bf16.
template <class Value>
void rounded_input_tile(const laminar::ConvGeometry& g, const std::vector<float>& x, int n, int i, int ty, int tx,
                        Value v[16]) {
  float d[4][4];
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      const int iy = 2 * ty - g.pad_top + r, ix = 2 * tx - g.pad_left + c;
      const bool inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
      d[r][c] = inside ? x[((std::size_t(n) * g.in_channels + i) * g.height + iy) * g.width + ix] : 0.0f;
    }
  winograd_input_transform(d);
  for (int xi = 0; xi < 16; ++xi) v[xi] = laminar::cpu_detail::round_to_bf16(d[xi / 4][xi % 4]);
}

// y (N, Cout, OH, OW) of a 3x3 stride-1 convolution of x (N, Cin, H, W) with
// w (Cout, Cin, 3, 3), through bf16-rounded transforms.
inline std::vector<double> winograd_bf16_forward(const laminar::ConvGeometry& g, int batch,
                                                 const std::vector<float>& x, const std::vector<float>& w,
                                                 const float* bias) {
  using laminar::cpu_detail::round_to_bf16;
  const int cin = g.in_channels, cout = g.out_channels;
  std::vector<double> u(std::size_t(cout) * cin * 16);
  for (int o = 0; o < cout; ++o)
    for (int i = 0; i < cin; ++i) {
      float t[16];
      winograd_kernel_transform(&w[(std::size_t(o) * cin + i) * 9], t);
      for (int xi = 0; xi < 16; ++xi) u[(std::size_t(o) * cin + i) * 16 + xi] = round_to_bf16(t[xi]);
    }
  std::vector<double> y(std::size_t(batch) * cout * g.out_pixels());
  std::vector<double> v(std::size_t(cin) * 16);
  for (int n = 0; n < batch; ++n)
    for (int ty = 0; 2 * ty < g.out_height; ++ty)
      for (int tx = 0; 2 * tx < g.out_width; ++tx) {
        for (int i = 0; i < cin; ++i) rounded_input_tile(g, x, n, i, ty, tx, &v[std::size_t(i) * 16]);
        for (int o = 0; o < cout; ++o) {
          double m[16] = {};
          for (int i = 0; i < cin; ++i)
            for (int xi = 0; xi < 16; ++xi)
              m[xi] += u[(std::size_t(o) * cin + i) * 16 + xi] * v[std::size_t(i) * 16 + xi];
          double s[4][2];  // m A
          for (int r = 0; r < 4; ++r) {
            s[r][0] = m[r * 4] + m[r * 4 + 1] + m[r * 4 + 2];
            s[r][1] = m[r * 4 + 1] - m[r * 4 + 2] - m[r * 4 + 3];
          }
          for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 2; ++c) {
              const int oy = 2 * ty + r, ox = 2 * tx + c;
              if (oy >= g.out_height || ox >= g.out_width) continue;
              const double value = r == 0 ? s[0][c] + s[1][c] + s[2][c] : s[1][c] - s[2][c] - s[3][c];
              y[((std::size_t(n) * cout + o) * g.out_height + oy) * g.out_width + ox] = value + (bias ? bias[o] : 0.0);
            }
        }
      }
  return y;
}

// The kernel of g's input gradient as a convolution: w^T (Cin, Cout, 3, 3)
// flipped, so that dx = conv(dy, w^T) in transposed_convolution(g).
inline std::vector<float> flipped_transposed_kernel(const laminar::ConvGeometry& g, const std::vector<float>& w) {
  std::vector<float> t(w.size());
  for (int o = 0; o < g.out_channels; ++o)
    for (int i = 0; i < g.in_channels; ++i)
      for (int k = 0; k < 9; ++k)
        t[(std::size_t(i) * g.out_channels + o) * 9 + 8 - k] = w[(std::size_t(o) * g.in_channels + i) * 9 + k];
  return t;
}

// dw (Cout, Cin, 3, 3) of a 3x3 stride-1 convolution of x (N, Cin, H, W) whose
// output gradient is dy (N, Cout, OH, OW), through bf16-rounded transforms: each
// tile's V = B^T d B and dP = A dY A^T (zero past the output's edge) computed in
// float in the kernel's order and rounded, dU = sum of V dP over tiles and
// dw = G^T dU G in double.
inline std::vector<double> winograd_bf16_weight_gradient(const laminar::ConvGeometry& g, int batch,
                                                         const std::vector<float>& x, const std::vector<float>& dy) {
  using laminar::cpu_detail::round_to_bf16;
  const int cin = g.in_channels, cout = g.out_channels;
  std::vector<double> du(std::size_t(cout) * cin * 16, 0.0);
  std::vector<double> v(std::size_t(cin) * 16), m(std::size_t(cout) * 16);
  for (int n = 0; n < batch; ++n)
    for (int ty = 0; 2 * ty < g.out_height; ++ty)
      for (int tx = 0; 2 * tx < g.out_width; ++tx) {
        for (int i = 0; i < cin; ++i) rounded_input_tile(g, x, n, i, ty, tx, &v[std::size_t(i) * 16]);
        for (int o = 0; o < cout; ++o) {
          float d[2][2];
          for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 2; ++c) {
              const int oy = 2 * ty + r, ox = 2 * tx + c;
              const bool inside = oy < g.out_height && ox < g.out_width;
              d[r][c] = inside ? dy[((std::size_t(n) * cout + o) * g.out_height + oy) * g.out_width + ox] : 0.0f;
            }
          float t[4][2];  // A dY
          for (int c = 0; c < 2; ++c) {
            t[0][c] = d[0][c];
            t[1][c] = d[0][c] + d[1][c];
            t[2][c] = d[0][c] - d[1][c];
            t[3][c] = 0.0f - d[1][c];
          }
          for (int r = 0; r < 4; ++r) {  // (A dY) A^T
            m[std::size_t(o) * 16 + r * 4 + 0] = round_to_bf16(t[r][0]);
            m[std::size_t(o) * 16 + r * 4 + 1] = round_to_bf16(t[r][0] + t[r][1]);
            m[std::size_t(o) * 16 + r * 4 + 2] = round_to_bf16(t[r][0] - t[r][1]);
            m[std::size_t(o) * 16 + r * 4 + 3] = round_to_bf16(0.0f - t[r][1]);
          }
        }
        for (int o = 0; o < cout; ++o)
          for (int i = 0; i < cin; ++i)
            for (int xi = 0; xi < 16; ++xi)
              du[(std::size_t(o) * cin + i) * 16 + xi] += v[std::size_t(i) * 16 + xi] * m[std::size_t(o) * 16 + xi];
      }
  // G^T dU G, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
  const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  std::vector<double> dw(std::size_t(cout) * cin * 9, 0.0);
  for (std::size_t k = 0; k < std::size_t(cout) * cin; ++k)
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b)
        for (int r = 0; r < 4; ++r)
          for (int c = 0; c < 4; ++c) dw[k * 9 + a * 3 + b] += G[r][a] * du[k * 16 + r * 4 + c] * G[c][b];
  return dw;
}

}  // namespace laminar_test
