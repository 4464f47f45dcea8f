// The one gradient check every layer goes through (after dlib's test_layer):
// Model<Net, cpu, double> on random input, loss = sum(r ⊙ y) for a fixed random r,
// and backward's input and parameter gradients against central differences.
// Also the few helpers the layer tests share (test numbers, forward into a
// vector); parameters by name come from model.hpp.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <laminar/laminar.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "model.hpp"

namespace laminar_test {

// Test numbers from splitmix64, independent of the library's own Philox so a
// Philox bug cannot hide itself.
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * double(next() >> 11) * 0x1.0p-53; }
  std::vector<double> uniform(std::size_t n, double lo, double hi) {
    std::vector<double> v(n);
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }

 private:
  std::uint64_t state_;
};

template <class M>
using input_view =
    laminar::View<const typename M::value_type, laminar::cpu, typename M::input_shape>;
template <class M>
using output_view =
    laminar::View<const typename M::value_type, laminar::cpu, typename M::output_shape>;

// Runs forward on `batch` samples at x and returns a copy of the output.
template <class M>
std::vector<typename M::value_type> forward(M& model, const typename M::value_type* x, int batch) {
  const auto y = model.forward(input_view<M>{x, batch});
  return {y.data, y.data + y.size()};
}

}  // namespace laminar_test

namespace gradient_check {

using laminar_test::Random;

enum class Mode { train, eval };

struct Options {
  int batch = 2;
  std::uint64_t seed = 1;  // initialisation, input, r and the dropout seed
  Mode mode = Mode::train;
  std::uint32_t step = 3;  // dropout step, the same for every evaluation
  double input_low = -1, input_high = 1;
  // How the model keeps its image activations: the double reference runs
  // planar by default; blocked checks the blocked layout's code paths.
  laminar::Layout images = laminar::Layout::planar;
};

// Central differences with h = 1e-6 in double: truncation error ~ h^2 f''' / 6
// (~1e-13); rounding ~ eps |loss| / h, which measures up to ~3e-9 on the whole
// network of tests/net/gradient.cpp and ~1e-9 on single layers.
inline constexpr double step = 1e-6;

// Relative error of an analytic gradient a against a numeric one n:
//   |a - n| / max(|a| + |n|, error_floor).
// Where gradients are of order one it is the symmetric relative error; where both
// are near zero (a dropped element, a non-maximum of a pooling window, a bias in
// front of BatchNorm) error_floor turns it into an absolute error of at most
// error_floor * tolerance = 1e-8, above the finite-difference rounding but far
// below any real mistake. Measured worst cases: 7e-8 on single layers and residual
// blocks, 2e-7 on the whole network.
inline constexpr double error_floor = 1e-2;
inline constexpr double tolerance = 1e-6;

inline double relative_error(double analytic, double numeric) {
  return std::abs(analytic - numeric) /
         std::max(std::abs(analytic) + std::abs(numeric), error_floor);
}

struct TensorReport {
  std::string name;  // "input" or the parameter's name
  long size = 0;
  double max_error = 0, largest_gradient = 0;
  long worst = 0;
  double worst_analytic = 0, worst_numeric = 0;
};

struct Report {
  std::vector<TensorReport> tensors;
  bool repeatable = true;  // a second backward wrote the same gradients

  double max_error() const {
    double e = 0;
    for (const auto& t : tensors) e = std::max(e, t.max_error);
    return e;
  }
  double largest_gradient() const {
    double g = 0;
    for (const auto& t : tensors) g = std::max(g, t.largest_gradient);
    return g;
  }
  std::string summary() const {
    std::ostringstream s;
    s.precision(3);
    for (const auto& t : tensors)
      s << t.name << " (" << t.size << "): max relative error " << t.max_error << " at " << t.worst
        << " (analytic " << t.worst_analytic << ", numeric " << t.worst_numeric
        << "), largest |gradient| " << t.largest_gradient << "\n";
    return s.str();
  }
};

struct NoPreparation {
  template <class M>
  void operator()(M&) const {}
};

// A preparation for evaluation-mode checks: training-mode forwards on inputs in
// [low, high], so BatchNorm's running statistics are far from their initial (0, 1).
struct TrainStatisticsFirst {
  int forwards = 3, batch = 4;
  double low = 1, high = 3;
  template <class M>
  void operator()(M& model) const {
    const std::vector<double> x =
        Random(99).uniform(std::size_t(batch) * M::input_shape::size, low, high);
    model.train();
    for (int k = 0; k < forwards; ++k) model.forward(laminar_test::input_view<M>{x.data(), batch});
  }
};

// Builds Model<Net, cpu, double>(seed), gives biases and BatchNorm shifts random
// values and scales random values in [0.5, 1.5] (so a backward that forgets gamma
// or a bias is caught), calls prepare(model), sets the mode and measures.
template <class Net, class Prepare = NoPreparation>
Report run(const Options& options = {}, Prepare prepare = {}) {
  using laminar::Role;
  using M = laminar::Model<Net, laminar::cpu, double>;
  M model(options.seed);
  model.set_image_layout(options.images);
  Random random(options.seed * 7919 + 17);
  for (const auto& p : model.parameters()) {
    double* v = p.parameter->value();
    switch (p.parameter->role) {
      case Role::bias:
      case Role::shift:
        for (long k = 0; k < p.parameter->size; ++k) v[k] = random.uniform(-0.5, 0.5);
        break;
      case Role::scale:
        for (long k = 0; k < p.parameter->size; ++k) v[k] = random.uniform(0.5, 1.5);
        break;
      case Role::weight:
      case Role::statistic:
        break;
    }
  }
  prepare(model);
  model.train(options.mode == Mode::train);
  model.set_seed(options.seed);
  model.set_step(options.step);

  const int batch = options.batch;
  const long in_size = long(batch) * M::input_shape::size;
  const long out_size = long(batch) * M::output_shape::size;
  std::vector<double> x =
      random.uniform(std::size_t(in_size), options.input_low, options.input_high);
  const std::vector<double> r = random.uniform(std::size_t(out_size), -1, 1);

  auto loss = [&] {
    const auto y = model.forward(laminar_test::input_view<M>{x.data(), batch});
    long double sum = 0;
    for (long i = 0; i < out_size; ++i) sum += (long double)r[i] * y.data[i];
    return double(sum);
  };

  // The analytic gradients, taken twice: backward writes, it does not add.
  struct Trainable {
    std::string name;
    laminar::Parameter<double, laminar::cpu>* parameter;
  };
  std::vector<Trainable> trainable;
  for (const auto& p : model.parameters())
    if (p.parameter->trainable()) trainable.push_back({p.name, p.parameter});
  auto gradients = [&] {
    std::vector<std::vector<double>> g;
    g.emplace_back(std::size_t(in_size), 0.0);
    loss();
    model.backward(laminar_test::output_view<M>{r.data(), batch}, g[0].data());
    for (const auto& t : trainable)
      g.emplace_back(t.parameter->grad(), t.parameter->grad() + t.parameter->size);
    return g;
  };
  const std::vector<std::vector<double>> analytic = gradients();
  Report report;
  report.repeatable = gradients() == analytic;

  auto measure = [&](const std::string& name, double* values, long size,
                     const std::vector<double>& a) {
    TensorReport t{name, size};
    for (long k = 0; k < size; ++k) {
      const double original = values[k];
      const double up = original + step, down = original - step;
      values[k] = up;
      const double loss_up = loss();
      values[k] = down;
      const double loss_down = loss();
      values[k] = original;
      const double numeric = (loss_up - loss_down) / (up - down);
      const double e = relative_error(a[std::size_t(k)], numeric);
      t.largest_gradient = std::max(t.largest_gradient, std::abs(numeric));
      if (k == 0 || e > t.max_error) {
        t.max_error = e;
        t.worst = k;
        t.worst_analytic = a[std::size_t(k)];
        t.worst_numeric = numeric;
      }
    }
    report.tensors.push_back(t);
  };
  measure("input", x.data(), in_size, analytic[0]);
  for (std::size_t i = 0; i < trainable.size(); ++i)
    measure(trainable[i].name, trainable[i].parameter->value(), trainable[i].parameter->size,
            analytic[i + 1]);
  return report;
}

// The check itself: every gradient within `tolerance`, some gradient clearly
// non-zero (a comparison of zeros with zeros proves nothing), and a second
// backward identical to the first.
template <class Net, class Prepare = NoPreparation>
void require_gradients_match(const Options& options = {}, Prepare prepare = {}) {
  const Report report = run<Net>(options, prepare);
  INFO(report.summary());
  CHECK(report.repeatable);
  CHECK(report.largest_gradient() > 1e-2);
  REQUIRE(report.max_error() < tolerance);
}

}  // namespace gradient_check
