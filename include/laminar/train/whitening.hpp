// Patch whitening of a first convolution from the training data (Coates & Ng
// 2011's whitened patches, used as a fixed first layer by airbench, Jordan
// 2024): the filters are the eigenvectors of the patches' second moments, each
// scaled by 1 / sqrt(eigenvalue + epsilon), so the layer's outputs on the data
// are decorrelated with variances l / (l + epsilon).
#pragma once

#include <Eigen/Eigenvalues>
#include <cmath>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../data/batch.hpp"
#include "../data/dataset.hpp"
#include "init.hpp"

namespace laminar::init {

struct WhiteningOptions {
  long images = 5000;      // the first this many training images give the patches
  double epsilon = 5e-4;   // added to each eigenvalue: limits the gain of near-constant directions
};

// S = (1/n) sum v v^T over every side x side patch v (stride 1, no padding) of
// the first `images` images, normalised as the loader normalises them, with v
// ordered (channel, row, column) as a convolution filter is. Not centred.
inline Eigen::MatrixXd patch_second_moments(const data::Dataset& d, const data::Normalization& norm, int side,
                                            long images) {
  norm.check(d.channels, "patch_second_moments", d.source);
  if (side < 1 || side > d.height || side > d.width)
    throw Error("patch_second_moments: a " + std::to_string(side) + "x" + std::to_string(side) +
                " patch does not fit the " + std::to_string(d.height) + "x" + std::to_string(d.width) + " images of " +
                d.source);
  const long count = std::min(images, d.size());
  if (count < 1) throw Error("patch_second_moments: " + d.source + " has no images");
  const int dims = d.channels * side * side, rows = d.height - side + 1, columns = d.width - side + 1;
  Eigen::MatrixXd total = Eigen::MatrixXd::Zero(dims, dims);
#pragma omp parallel
  {
    Eigen::MatrixXd local = Eigen::MatrixXd::Zero(dims, dims);
    Eigen::VectorXd v(dims);
    std::vector<double> image(std::size_t(d.sample_size()));
#pragma omp for schedule(static)
    for (long n = 0; n < count; ++n) {
      const std::uint8_t* pixels = d.image(n);
      for (int c = 0; c < d.channels; ++c)
        for (long k = 0; k < long(d.height) * d.width; ++k) {
          const long at = c * long(d.height) * d.width + k;
          image[std::size_t(at)] = (pixels[at] / 255.0 - norm.mean[std::size_t(c)]) / norm.std[std::size_t(c)];
        }
      for (int y = 0; y < rows; ++y)
        for (int x = 0; x < columns; ++x) {
          int j = 0;
          for (int c = 0; c < d.channels; ++c)
            for (int ky = 0; ky < side; ++ky)
              for (int kx = 0; kx < side; ++kx)
                v[j++] = image[std::size_t((long(c) * d.height + y + ky) * d.width + x + kx)];
          local.selfadjointView<Eigen::Lower>().rankUpdate(v);
        }
    }
#pragma omp critical(laminar_patch_second_moments)
    total += local;
  }
  total = total.selfadjointView<Eigen::Lower>();
  return total / double(count * rows * columns);
}

// Sets the weight `prefix` selects (one convolution over the data's channels,
// square kernel) to the whitening filters, largest eigenvalue first. With
// Cout = 2 C k^2 the second half are the first half negated (airbench), so a
// ReLU-like activation after it keeps both signs; with Cout = C k^2 there is
// one filter per eigenvector. The bias is left as it is.
template <class M>
void patch_whitening(M& model, const std::string& prefix, const data::Dataset& d, const data::Normalization& norm,
                     WhiteningOptions o = {}) {
  using T = typename M::value_type;
  using B = typename M::backend;
  if (!(o.epsilon >= 0) || !std::isfinite(o.epsilon))
    throw Error("init::patch_whitening: epsilon must be finite and not negative, got " + std::to_string(o.epsilon));
  Parameter<T, B>* weight = nullptr;
  std::string name;
  for (const auto& named : model.parameters()) {
    if (named.parameter->role != Role::weight || !selects(prefix, named.name)) continue;
    if (weight)
      throw Error("init::patch_whitening: prefix \"" + prefix + "\" selects both " + name + " and " + named.name +
                  "; name one convolution");
    weight = named.parameter;
    name = named.name;
  }
  if (!weight)
    throw Error("init::patch_whitening: prefix \"" + prefix + "\" selects no weight parameter of the model; its "
                "parameters are " + detail::some_parameter_names(model));
  const int side = detail::square_kernel_side(*weight, name, "patch_whitening");
  const long dims = long(d.channels) * side * side, outputs = weight->size / weight->fan_in;
  if (weight->fan_in != dims)
    throw Error("init::patch_whitening: weight " + name + " reads " + std::to_string(weight->fan_in) +
                " values per output but " + d.source + " has " + std::to_string(d.channels) + " channels, so its " +
                std::to_string(side) + "x" + std::to_string(side) + " patches have " + std::to_string(dims));
  if (outputs != dims && outputs != 2 * dims)
    throw Error("init::patch_whitening: weight " + name + " has " + std::to_string(outputs) + " filters; whitening " +
                std::to_string(dims) + "-value patches needs " + std::to_string(dims) + " or " +
                std::to_string(2 * dims) + " (with the negatives)");

  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(patch_second_moments(d, norm, side, o.images));
  if (eigen.info() != Eigen::Success)
    throw Error("init::patch_whitening: the eigendecomposition of " + d.source + "'s patch moments failed");
  std::vector<T> host(std::size_t(weight->size));
  for (long f = 0; f < dims; ++f) {
    const long k = dims - 1 - f;  // Eigen sorts eigenvalues ascending
    const double scale = 1.0 / std::sqrt(std::max(eigen.eigenvalues()[k], 0.0) + o.epsilon);
    for (long j = 0; j < dims; ++j) {
      const double value = eigen.eigenvectors()(j, k) * scale;
      host[std::size_t(f * dims + j)] = T(value);
      if (outputs == 2 * dims) host[std::size_t((f + dims) * dims + j)] = T(-value);
    }
  }
  ops<B>::copy_to_device(weight->value(), host.data(), weight->size);
}

}  // namespace laminar::init
