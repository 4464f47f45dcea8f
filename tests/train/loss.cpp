// Losses on logits: cross-entropy (with and without label smoothing), soft-target
// cross-entropy and distillation, against hand computation, closed forms, their
// limits, and finite differences of their gradients in double.
#include <doctest/doctest.h>

#include <cmath>
#include <laminar/backend/cpu/ops.hpp>
#include <laminar/core/philox.hpp>
#include <laminar/train/loss.hpp>
#include <limits>
#include <utility>
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
    INFO("logit ", i, ": numeric ", numeric, ", analytic ", analytic[i]);
    CHECK(std::fabs(numeric - analytic[i]) / std::fmax(1e-8, std::fabs(numeric) + std::fabs(analytic[i])) < 1e-6);
  }
}

std::vector<double> random_logits(int count, unsigned long long seed, double spread) {
  auto v = std::vector<double>(std::size_t(count));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = spread * philox::normal(seed, 0, 0, i);
  return v;
}

// softmax(v / temperature) of one row, written out plainly (the inputs are small).
std::vector<double> tempered_softmax(const double* v, int classes, double temperature) {
  auto p = std::vector<double>(std::size_t(classes));
  double sum = 0;
  for (int k = 0; k < classes; ++k) sum += p[k] = std::exp(v[k] / temperature);
  for (double& x : p) x /= sum;
  return p;
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
  std::vector<double> logits = random_logits(batch * classes, 5, 2.0), grad(batch * classes);
  std::vector<int> labels{4, 0, 2};
  const loss::CrossEntropy ce;
  ce.compute<cpu>(logits.data(), labels.data(), batch, classes, grad.data());
  check_gradient(logits, grad, [&] {
    return ce.compute<cpu>(logits.data(), labels.data(), batch, classes, (double*)nullptr).loss;
  });
}

TEST_CASE("label-smoothed cross-entropy gradient matches finite differences in double") {
  const int batch = 3, classes = 5;
  std::vector<double> logits = random_logits(batch * classes, 5, 2.0), grad(batch * classes);
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
  std::vector<double> logits = random_logits(batch * classes, 9, 1.0), grad(8);
  std::vector<double> targets{0.1, 0.6, 0.3, 0.0, 0.25, 0.25, 0.25, 0.25};
  const loss::SoftTargetCrossEntropy ce;
  ce.compute<cpu>(logits.data(), targets.data(), batch, classes, grad.data());
  check_gradient(logits, grad, [&] {
    return ce.compute<cpu>(logits.data(), targets.data(), batch, classes, (double*)nullptr).loss;
  });
}

TEST_CASE("distillation matches the hand-computed loss and gradient of a 2 by 3 batch") {
  // alpha = 0.5, T = 2; q = softmax(z), r = softmax(z / 2), p = softmax(u / 2).
  // Row 0: z = (0, 2 ln 2, 2 ln 3), u = (2 ln 3, 2 ln 2, 0), label 2:
  //   q = (1, 4, 9) / 14, r = (1, 2, 3) / 6, p = (3, 2, 1) / 6.
  //   CE = -ln(9/14) = 0.44183275; KL = 3/6 ln 3 + 2/6 ln 1 + 1/6 ln(1/3) = ln(3) / 3 = 0.36620410.
  //   loss = 0.5 * 0.44183275 + 0.5 * 4 * 0.36620410 = 0.95332457.
  //   gradient = 0.5 (q - onehot) + 0.5 * 2 (r - p) = (1/28 - 1/3, 1/7, -5/28 + 1/3) = (-25, 12, 13) / 84.
  // Row 1: z = (0, 0, 0), u = (0, 0, 2 ln 2), label 1:
  //   q = r = (1, 1, 1) / 3, p = (1, 1, 2) / 4.
  //   CE = ln 3 = 1.09861229; KL = 2/4 ln(3/4) + 2/4 ln(3/2) = ln(9/8) / 2 = 0.05889152.
  //   loss = 0.5 * 1.09861229 + 0.5 * 4 * 0.05889152 = 0.66708918.
  //   gradient = 0.5 (1/3, -2/3, 1/3) + ((1, 1, 1) / 3 - (1, 1, 2) / 4) = (1/4, -1/4, 0).
  // Mean loss = (0.95332457 + 0.66708918) / 2 = 0.81020687; the gradient is halved.
  // Correct: row 0's argmax 2 is its label; row 1's first largest, class 0, is not.
  const double ln2 = std::log(2.0), ln3 = std::log(3.0);
  std::vector<double> student{0, 2 * ln2, 2 * ln3, 0, 0, 0}, teacher{2 * ln3, 2 * ln2, 0, 0, 0, 2 * ln2}, grad(6);
  std::vector<int> labels{2, 1};
  const auto r = loss::Distillation{.alpha = 0.5, .temperature = 2.0}.compute<cpu>(
      student.data(), teacher.data(), labels.data(), (const double*)nullptr, 2, 3, grad.data());
  CHECK(r.loss == doctest::Approx(0.81020687).epsilon(1e-8));
  CHECK(r.correct == 1);
  const double expected[6] = {-25.0 / 168, 12.0 / 168, 13.0 / 168, 1.0 / 8, -1.0 / 8, 0.0};
  for (int i = 0; i < 6; ++i) CHECK(grad[i] == doctest::Approx(expected[i]).epsilon(1e-12));
}

TEST_CASE("distillation with alpha 1 equals label-smoothed cross-entropy exactly") {
  const int batch = 3, classes = 5;
  const std::vector<double> student = random_logits(batch * classes, 21, 2.0),
                            teacher = random_logits(batch * classes, 22, 3.0);
  std::vector<double> g_distill(batch * classes), g_ce(batch * classes);
  std::vector<int> labels{1, 4, 0};
  const auto distilled = loss::Distillation{.alpha = 1.0, .temperature = 3.0, .label_smoothing = 0.1}.compute<cpu>(
      student.data(), teacher.data(), labels.data(), (const double*)nullptr, batch, classes, g_distill.data());
  const auto ce = loss::CrossEntropy{.label_smoothing = 0.1}.compute<cpu>(student.data(), labels.data(), batch,
                                                                          classes, g_ce.data());
  CHECK(distilled.loss == ce.loss);
  CHECK(distilled.correct == ce.correct);
  CHECK(g_distill == g_ce);
}

TEST_CASE("distillation with alpha 1 and soft targets equals soft-target cross-entropy exactly") {
  const int batch = 2, classes = 4;
  const std::vector<float> student{0.3f, -1.2f, 2.0f, 0.4f, 1.1f, 0.0f, -0.7f, 0.9f},
                           teacher{1.0f, 2.0f, -3.0f, 0.5f, -0.2f, 0.8f, 0.1f, 1.5f},
                           targets{0.7f, 0.0f, 0.3f, 0.0f, 0.1f, 0.2f, 0.3f, 0.4f};
  std::vector<float> g_distill(8), g_soft(8);
  const auto distilled = loss::Distillation{.alpha = 1.0, .temperature = 2.0}.compute<cpu>(
      student.data(), teacher.data(), (const int*)nullptr, targets.data(), batch, classes, g_distill.data());
  const auto soft =
      loss::SoftTargetCrossEntropy{}.compute<cpu>(student.data(), targets.data(), batch, classes, g_soft.data());
  CHECK(distilled.loss == soft.loss);
  CHECK(distilled.correct == soft.correct);
  CHECK(g_distill == g_soft);
}

TEST_CASE("distillation with alpha 0 from a teacher equal to the student has zero loss and gradient") {
  const int batch = 3, classes = 4;
  const std::vector<double> logits = random_logits(batch * classes, 31, 2.0);
  std::vector<int> labels{0, 3, 1};
  for (double temperature : {0.5, 1.0, 4.0, 20.0}) {
    CAPTURE(temperature);
    std::vector<double> grad(batch * classes, 1.0);
    const auto r = loss::Distillation{.alpha = 0.0, .temperature = temperature}.compute<cpu>(
        logits.data(), logits.data(), labels.data(), (const double*)nullptr, batch, classes, grad.data());
    CHECK(r.loss == 0.0);
    for (double g : grad) CHECK(g == 0.0);
  }
}

TEST_CASE("distillation with alpha 0 is T squared times the KL divergence with gradient T times r minus p") {
  // KL(p || r) = sum p (ln p - ln r) and, per logit, d/dz (T^2 KL) = T (r - p),
  // with r = softmax(z / T), p = softmax(u / T); both averaged over the batch.
  const int batch = 2, classes = 5;
  const std::vector<double> student = random_logits(batch * classes, 41, 1.5),
                            teacher = random_logits(batch * classes, 42, 2.5);
  std::vector<int> labels{2, 3};
  for (double temperature : {0.5, 1.0, 3.0, 10.0}) {
    CAPTURE(temperature);
    std::vector<double> grad(batch * classes);
    const auto r = loss::Distillation{.alpha = 0.0, .temperature = temperature}.compute<cpu>(
        student.data(), teacher.data(), labels.data(), (const double*)nullptr, batch, classes, grad.data());
    double expected = 0;
    for (int n = 0; n < batch; ++n) {
      const auto q = tempered_softmax(student.data() + n * classes, classes, temperature);
      const auto p = tempered_softmax(teacher.data() + n * classes, classes, temperature);
      for (int k = 0; k < classes; ++k) {
        expected += temperature * temperature * p[k] * std::log(p[k] / q[k]) / batch;
        CHECK(grad[n * classes + k] == doctest::Approx(temperature * (q[k] - p[k]) / batch).epsilon(1e-12));
      }
    }
    CHECK(r.loss == doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("the T squared factor makes the soft gradient tend to a temperature-free limit") {
  // Expanding softmax(v / T)_k = (1 + y_k / T + (y_k^2 - m_y) / (2 T^2)) / K + O(T^-3),
  // y = v - mean(v), m_y = mean(y^2), gives per row
  //   T (r - p) = L + C / T + O(T^-2),  L = (y_z - y_u) / K,
  //   C = ((y_z^2 - m_z) - (y_u^2 - m_u)) / (2 K):
  // without T^2 the soft gradient would vanish as 1 / T; with it, it tends to L,
  // and T times the remaining gap tends to C.
  const int batch = 1, classes = 4;
  const std::vector<double> student = random_logits(classes, 51, 1.0), teacher = random_logits(classes, 52, 1.0);
  std::vector<int> labels{0};
  auto centred = [&](const std::vector<double>& v) {
    double mean = 0;
    for (double x : v) mean += x / classes;
    std::vector<double> y(v.size());
    for (std::size_t k = 0; k < v.size(); ++k) y[k] = v[k] - mean;
    double second = 0;
    for (double x : y) second += x * x / classes;
    return std::pair{y, second};
  };
  const auto [y_z, m_z] = centred(student);
  const auto [y_u, m_u] = centred(teacher);
  for (double temperature : {1e3, 1e4}) {
    CAPTURE(temperature);
    std::vector<double> grad(classes);
    loss::Distillation{.alpha = 0.0, .temperature = temperature}.compute<cpu>(
        student.data(), teacher.data(), labels.data(), (const double*)nullptr, batch, classes, grad.data());
    for (int k = 0; k < classes; ++k) {
      const double limit = (y_z[k] - y_u[k]) / classes;
      const double correction = ((y_z[k] * y_z[k] - m_z) - (y_u[k] * y_u[k] - m_u)) / (2 * classes);
      CHECK(grad[k] == doctest::Approx(limit).epsilon(1 / temperature));
      CHECK(temperature * (grad[k] - limit) == doctest::Approx(correction).epsilon(1 / temperature));
    }
  }
}

TEST_CASE("distillation gradient with labels matches finite differences at several temperatures and alphas") {
  const int batch = 3, classes = 5;
  std::vector<double> student = random_logits(batch * classes, 61, 2.0);
  const std::vector<double> teacher = random_logits(batch * classes, 62, 3.0);
  std::vector<int> labels{3, 0, 4};
  for (double temperature : {0.5, 1.0, 4.0, 10.0})
    for (double alpha : {0.0, 0.3, 0.7, 1.0}) {
      CAPTURE(temperature);
      CAPTURE(alpha);
      const loss::Distillation distill{.alpha = alpha, .temperature = temperature, .label_smoothing = 0.1};
      std::vector<double> grad(batch * classes);
      distill.compute<cpu>(student.data(), teacher.data(), labels.data(), (const double*)nullptr, batch, classes,
                           grad.data());
      check_gradient(student, grad, [&] {
        return distill
            .compute<cpu>(student.data(), teacher.data(), labels.data(), (const double*)nullptr, batch, classes,
                          (double*)nullptr)
            .loss;
      });
    }
}

TEST_CASE("distillation gradient with soft targets matches finite differences at several temperatures and alphas") {
  const int batch = 2, classes = 4;
  std::vector<double> student = random_logits(batch * classes, 71, 1.5);
  const std::vector<double> teacher = random_logits(batch * classes, 72, 2.0);
  const std::vector<double> targets{0.6, 0.4, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4};
  for (double temperature : {0.5, 1.0, 4.0, 10.0})
    for (double alpha : {0.0, 0.3, 0.7, 1.0}) {
      CAPTURE(temperature);
      CAPTURE(alpha);
      const loss::Distillation distill{.alpha = alpha, .temperature = temperature};
      std::vector<double> grad(batch * classes);
      distill.compute<cpu>(student.data(), teacher.data(), (const int*)nullptr, targets.data(), batch, classes,
                           grad.data());
      check_gradient(student, grad, [&] {
        return distill
            .compute<cpu>(student.data(), teacher.data(), (const int*)nullptr, targets.data(), batch, classes,
                          (double*)nullptr)
            .loss;
      });
    }
}

TEST_CASE("distillation with soft targets counts rows whose argmax is the target's argmax and ignores labels") {
  // Student argmaxes (2, 0, 1); target argmaxes (2, 1, 1); the labels disagree with both.
  const std::vector<double> student{0, 1, 3, 2, 1, 0, 0, 5, 1}, teacher(9, 0.0),
      targets{0.1, 0.2, 0.7, 0.3, 0.6, 0.1, 0.0, 1.0, 0.0};
  std::vector<int> labels{0, 2, 0};
  const loss::Distillation distill{.alpha = 0.4, .temperature = 2.0};
  const auto with_labels = distill.compute<cpu>(student.data(), teacher.data(), labels.data(), targets.data(), 3, 3,
                                                (double*)nullptr);
  const auto without_labels = distill.compute<cpu>(student.data(), teacher.data(), (const int*)nullptr,
                                                   targets.data(), 3, 3, (double*)nullptr);
  CHECK(with_labels.correct == 2);
  CHECK(with_labels.loss == without_labels.loss);
  CHECK(without_labels.correct == 2);
}

TEST_CASE("a teacher probability of zero contributes nothing to the distillation loss") {
  // Teacher (0, -inf) gives p = (1, 0); student (0, 0) gives r = (1/2, 1/2). With
  // alpha = 0, T = 2: loss = 4 * (1 * ln(1 / (1/2)) + 0) = 4 ln 2, gradient 2 (r - p) = (-1, 1).
  const double infinity = std::numeric_limits<double>::infinity();
  const std::vector<double> student{0, 0}, teacher{0, -infinity};
  std::vector<double> grad(2);
  std::vector<int> labels{0};
  const auto r = loss::Distillation{.alpha = 0.0, .temperature = 2.0}.compute<cpu>(
      student.data(), teacher.data(), labels.data(), (const double*)nullptr, 1, 2, grad.data());
  CHECK(r.loss == doctest::Approx(4 * std::log(2.0)).epsilon(1e-12));
  CHECK(grad[0] == doctest::Approx(-1.0).epsilon(1e-12));
  CHECK(grad[1] == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("distillation stays finite for logits far beyond exp's range") {
  // Label 1, alpha = 0.5, T = 4: CE = 2000; z / T = (250, -250, 0) gives
  // ln r = (0, -500, -250) and u / T = (-250, 250, 0) gives p = (0, 1, 0) to within
  // e^-250, so KL = 500 and loss = 0.5 * 2000 + 0.5 * 16 * 500 = 5000;
  // gradient = 0.5 (1, -1, 0) + 0.5 * 4 (1, -1, 0) = (2.5, -2.5, 0).
  const std::vector<float> student{1000.f, -1000.f, 0.f}, teacher{-1000.f, 1000.f, 0.f};
  std::vector<float> grad(3);
  std::vector<int> labels{1};
  const auto r = loss::Distillation{.alpha = 0.5, .temperature = 4.0}.compute<cpu>(
      student.data(), teacher.data(), labels.data(), (const float*)nullptr, 1, 3, grad.data());
  CHECK(r.loss == doctest::Approx(5000.0).epsilon(1e-9));
  CHECK(grad[0] == doctest::Approx(2.5));
  CHECK(grad[1] == doctest::Approx(-2.5));
  CHECK(grad[2] == doctest::Approx(0.0));
}

TEST_CASE("distillation rejects alpha outside 0 to 1 and temperatures that are not positive and finite") {
  const std::vector<double> logits{0.1, 0.2}, teacher{0.3, -0.1};
  std::vector<int> labels{1};
  auto run = [&](loss::Distillation d) {
    return d.compute<cpu>(logits.data(), teacher.data(), labels.data(), (const double*)nullptr, 1, 2,
                          (double*)nullptr);
  };
  CHECK_THROWS_WITH_AS(run({.alpha = 1.5}), doctest::Contains("alpha must lie in [0, 1], got 1.5"), Error);
  CHECK_THROWS_WITH_AS(run({.alpha = -0.25}), doctest::Contains("alpha must lie in [0, 1], got -0.25"), Error);
  CHECK_THROWS_WITH_AS(run({.alpha = std::nan("")}), doctest::Contains("alpha"), Error);
  CHECK_THROWS_WITH_AS(run({.temperature = 0.0}), doctest::Contains("temperature must be positive and finite, got 0"),
                       Error);
  CHECK_THROWS_WITH_AS(run({.temperature = -2.0}), doctest::Contains("got -2"), Error);
  CHECK_THROWS_WITH_AS(run({.temperature = std::numeric_limits<double>::infinity()}),
                       doctest::Contains("temperature"), Error);
  CHECK_THROWS_WITH_AS(run({.label_smoothing = 1.5}), doctest::Contains("label_smoothing"), Error);
}

TEST_CASE("distillation without labels or soft targets, or without a teacher, is an error") {
  const std::vector<double> logits{0.1, 0.2}, teacher{0.3, -0.1};
  std::vector<int> labels{1};
  const loss::Distillation distill;
  CHECK_THROWS_WITH_AS(distill.compute<cpu>(logits.data(), teacher.data(), (const int*)nullptr,
                                            (const double*)nullptr, 1, 2, (double*)nullptr),
                       doctest::Contains("neither labels nor soft targets"), Error);
  CHECK_THROWS_WITH_AS(distill.compute<cpu>(logits.data(), (const double*)nullptr, labels.data(),
                                            (const double*)nullptr, 1, 2, (double*)nullptr),
                       doctest::Contains("teacher"), Error);
}
