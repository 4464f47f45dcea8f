// Softmax cross-entropy: values against hand computation, stability on large
// logits, label smoothing, and its gradient against finite differences.
#include <doctest/doctest.h>

#include <cmath>
#include <laminar/laminar.hpp>
#include <vector>

using namespace laminar;

namespace {
// Central differences of loss(logits) against the analytic gradient, in double.
template <class Loss>
void check_gradient(std::vector<double>& logits, const std::vector<double>& analytic, const Loss& loss) {
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double h = 1e-6, saved = logits[i];
    logits[i] = saved + h;
    const double plus = loss();
    logits[i] = saved - h;
    const double minus = loss();
    logits[i] = saved;
    const double numeric = (plus - minus) / (2 * h);
    CHECK(std::fabs(numeric - analytic[i]) / std::fmax(1e-8, std::fabs(numeric) + std::fabs(analytic[i])) < 1e-6);
  }
}
}  // namespace

TEST_CASE("cross-entropy of uniform logits is ln(classes) and its gradient is softmax minus one-hot") {
  std::vector<double> logits(2 * 4, 0.5), grad(8);
  std::vector<int> labels{1, 3};
  const auto r = loss::CrossEntropy{}.compute<cpu>(logits.data(), labels.data(), 2, 4, grad.data());
  CHECK(r.loss == doctest::Approx(std::log(4.0)).epsilon(1e-12));
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 4; ++k)
      CHECK(grad[n * 4 + k] == doctest::Approx((0.25 - (k == labels[n])) / 2).epsilon(1e-12));
}

TEST_CASE("cross-entropy matches the hand-computed value and counts correct predictions") {
  // Row 0: logits (1, 2, 3), label 2: loss = ln(e + e^2 + e^3) - 3 = 0.40760596.
  // Row 1: logits (0, 0, 10), label 0: loss = ln(2 + e^10) - 0 = 10.0000908.
  std::vector<double> logits{1, 2, 3, 0, 0, 10};
  std::vector<int> labels{2, 0};
  const auto r = loss::CrossEntropy{}.compute<cpu>(logits.data(), labels.data(), 2, 3, (double*)nullptr);
  const double expected = (std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3 +
                           std::log(2 + std::exp(10.0))) / 2;
  CHECK(r.loss == doctest::Approx(expected).epsilon(1e-12));
  CHECK(r.correct == 1);
}

TEST_CASE("cross-entropy stays finite for logits far beyond exp's range") {
  std::vector<float> logits{1000.f, -1000.f, 0.f}, grad(3);
  std::vector<int> labels{1};
  const auto r = loss::CrossEntropy{}.compute<cpu>(logits.data(), labels.data(), 1, 3, grad.data());
  CHECK(r.loss == doctest::Approx(2000.0).epsilon(1e-6));
  CHECK(grad[0] == doctest::Approx(1.0));
  CHECK(grad[1] == doctest::Approx(-1.0));
}

TEST_CASE("label smoothing mixes the one-hot target with the uniform distribution") {
  // Target for label 0 of 4 classes with s = 0.2: (0.85, 0.05, 0.05, 0.05).
  std::vector<double> logits{0.3, -0.2, 0.9, 0.1}, grad(4);
  std::vector<int> labels{0};
  const auto r = loss::CrossEntropy{.label_smoothing = 0.2}.compute<cpu>(logits.data(), labels.data(), 1, 4,
                                                                         grad.data());
  double log_sum = 0;
  for (double z : logits) log_sum += std::exp(z);
  log_sum = std::log(log_sum);
  const double target[4] = {0.85, 0.05, 0.05, 0.05};
  double expected = 0;
  for (int k = 0; k < 4; ++k) {
    expected -= target[k] * (logits[k] - log_sum);
    CHECK(grad[k] == doctest::Approx(std::exp(logits[k] - log_sum) - target[k]).epsilon(1e-12));
  }
  CHECK(r.loss == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("cross-entropy gradient matches finite differences in double") {
  const int batch = 3, classes = 5;
  std::vector<double> logits(batch * classes), grad(batch * classes);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = 2 * philox::normal(5, 0, 0, i);
  std::vector<int> labels{4, 0, 2};
  const loss::CrossEntropy ce{.label_smoothing = 0.1};
  ce.compute<cpu>(logits.data(), labels.data(), batch, classes, grad.data());
  check_gradient(logits, grad, [&] {
    return ce.compute<cpu>(logits.data(), labels.data(), batch, classes, (double*)nullptr).loss;
  });
}

TEST_CASE("soft-target cross-entropy with one-hot targets equals label cross-entropy") {
  std::vector<double> logits{0.2, -1.0, 2.5, 0.7, 0.1, -0.3}, g_soft(6), g_label(6);
  std::vector<double> targets{0, 0, 1, 1, 0, 0};
  std::vector<int> labels{2, 0};
  const auto soft = loss::SoftTargetCrossEntropy{}.compute<cpu>(logits.data(), targets.data(), 2, 3, g_soft.data());
  const auto hard = loss::CrossEntropy{}.compute<cpu>(logits.data(), labels.data(), 2, 3, g_label.data());
  CHECK(soft.loss == doctest::Approx(hard.loss).epsilon(1e-12));
  CHECK(soft.correct == hard.correct);
  for (int i = 0; i < 6; ++i) CHECK(g_soft[i] == doctest::Approx(g_label[i]).epsilon(1e-12));
}

TEST_CASE("soft-target cross-entropy gradient matches finite differences in double") {
  const int batch = 2, classes = 4;
  std::vector<double> logits(8), grad(8);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = philox::normal(9, 0, 0, i);
  std::vector<double> targets{0.1, 0.6, 0.3, 0.0, 0.25, 0.25, 0.25, 0.25};
  const loss::SoftTargetCrossEntropy ce;
  ce.compute<cpu>(logits.data(), targets.data(), batch, classes, grad.data());
  check_gradient(logits, grad, [&] {
    return ce.compute<cpu>(logits.data(), targets.data(), batch, classes, (double*)nullptr).loss;
  });
}
