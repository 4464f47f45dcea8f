// float against the double reference: one network with a residual block,
// BatchNorm and dropout, built from the same seed, agrees in its outputs and in
// every gradient.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;

namespace {
using Block = Residual<Conv<3, 3, 4>, BatchNorm, ReLU, Conv<3, 3, 4>, BatchNorm>;
using Net = Sequential<Input<2, 6, 6>, Conv<3, 3, 4>, BatchNorm, ReLU,  // 4 x 6 x 6
                       Block, ReLU, Dropout<0.25>,                      // 4 x 6 x 6
                       MaxPool<2>, Flatten, Dense<3>>;                  // 36 -> 3

constexpr int batch = 4;
constexpr std::uint64_t seed = 8;

// Agreement of a float result f with the double reference d, element by element:
//   |f - d| / max(|f| + |d|, 0.1) < 1e-4.
// This network's gradients reach 2 to 6 in every tensor, so the floor makes values
// below 0.1 an absolute comparison at 1e-5 (a few 1e-6 of the tensor's scale). They
// need one: a conv bias in front of BatchNorm has an exactly zero gradient, which
// float computes as a sum of 144 cancelling terms, leaving ~1e-6 of rounding.
constexpr double tolerance = 1e-4;
double disagreement(const float* f, const double* d, long n) {
  double worst = 0;
  for (long i = 0; i < n; ++i)
    worst = std::max(worst, std::abs(double(f[i]) - d[i]) /
                                std::max(std::abs(double(f[i])) + std::abs(d[i]), 0.1));
  return worst;
}

struct Pair {
  Model<Net, cpu, float> single{seed};
  Model<Net, cpu, double> reference{seed};
  std::vector<float> x, r;
  std::vector<double> xd, rd;

  explicit Pair(bool training) {
    laminar_test::Random random(3);
    // Inputs and r drawn in double and rounded to float, so both models see the same numbers.
    for (double v : random.uniform(std::size_t(batch) * Net::input_shape::size, -1, 1))
      x.push_back(float(v));
    for (double v : random.uniform(std::size_t(batch) * Net::output_shape::size, -1, 1))
      r.push_back(float(v));
    xd.assign(x.begin(), x.end());
    rd.assign(r.begin(), r.end());
    if (!training) {  // running statistics from one training forward, then evaluation
      single.train(), reference.train();
      single.forward(laminar_test::input_view<Model<Net, cpu, float>>{x.data(), batch});
      reference.forward(laminar_test::input_view<Model<Net, cpu, double>>{xd.data(), batch});
    }
    single.train(training), reference.train(training);
    single.set_seed(5), reference.set_seed(5);
    single.set_step(2), reference.set_step(2);
  }

  // Runs forward and backward on both and returns the largest disagreement, with
  // a line per tensor for the failure message.
  double compare(std::string& report) {
    std::ostringstream out;
    double worst = 0;
    auto note = [&](const std::string& name, double e) {
      out << name << ": " << e << "\n";
      worst = std::max(worst, e);
    };
    const std::vector<float> yf = laminar_test::forward(single, x.data(), batch);
    const std::vector<double> yd = laminar_test::forward(reference, xd.data(), batch);
    note("output", disagreement(yf.data(), yd.data(), long(yf.size())));
    std::vector<float> dxf(x.size());
    std::vector<double> dxd(x.size());
    single.backward(laminar_test::output_view<Model<Net, cpu, float>>{r.data(), batch}, dxf.data());
    reference.backward(laminar_test::output_view<Model<Net, cpu, double>>{rd.data(), batch},
                       dxd.data());
    note("input gradient", disagreement(dxf.data(), dxd.data(), long(dxf.size())));
    const auto& pf = single.parameters();
    const auto& pd = reference.parameters();
    REQUIRE(pf.size() == pd.size());
    for (std::size_t i = 0; i < pf.size(); ++i) {
      const auto& f = *pf[i].parameter;
      const auto& d = *pd[i].parameter;
      note(pf[i].name, disagreement(f.value(), d.value(), f.size));
      if (f.trainable()) note(pf[i].name + " gradient", disagreement(f.grad(), d.grad(), f.size));
    }
    report = out.str();
    return worst;
  }
};
}  // namespace

TEST_CASE("float and double models from the same seed start from the same parameters") {
  Model<Net, cpu, float> single(seed);
  Model<Net, cpu, double> reference(seed);
  const auto& pf = single.parameters();
  const auto& pd = reference.parameters();
  REQUIRE(pf.size() == pd.size());
  long different = 0;
  for (std::size_t i = 0; i < pf.size(); ++i) {
    CHECK(pf[i].name == pd[i].name);
    for (long k = 0; k < pf[i].parameter->size; ++k)
      different += pf[i].parameter->value()[k] != float(pd[i].parameter->value()[k]);
  }
  CHECK(different == 0);
}

TEST_CASE("float agrees with the double reference in outputs and gradients in training mode") {
  Pair pair(true);
  std::string report;
  const double worst = pair.compare(report);
  INFO(report);
  CHECK(worst < tolerance);
}

TEST_CASE("float agrees with the double reference in outputs and gradients in eval mode") {
  Pair pair(false);
  std::string report;
  const double worst = pair.compare(report);
  INFO(report);
  CHECK(worst < tolerance);
}
