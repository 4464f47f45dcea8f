// The tuning workflow tools: the initial-loss check, overfitting a tiny subset,
// the learning-rate range test, random search, and the snapshots they rely on.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <laminar/data/idx.hpp>
#include <laminar/laminar.hpp>
#include <laminar/train/lr_finder.hpp>
#include <laminar/train/sanity.hpp>
#include <laminar/train/search.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/model.hpp"

#include "support/files.hpp"

using namespace laminar;

namespace {

using ConvNet = Sequential<Input<1, 8, 8>, Conv<3, 3, 16>, BatchNorm, ReLU, GlobalAvgPool, Dense<3>>;
using DenseNet = Sequential<Input<1, 8, 8>, Flatten, Dense<32>, ReLU, Dense<3>>;

// Pixels and labels drawn independently: nothing to learn but memorisation.
data::Dataset random_dataset(long count, std::uint64_t seed) {
  data::Dataset d{1,
                  8,
                  8,
                  3,
                  std::vector<std::uint8_t>(std::size_t(count) * 64),
                  std::vector<std::uint8_t>(std::size_t(count)),
                  "random-8x8"};
  for (std::size_t i = 0; i < d.images.size(); ++i) d.images[i] = std::uint8_t(philox::bits(seed, 1, 0, i) & 255u);
  for (std::size_t i = 0; i < d.labels.size(); ++i) d.labels[i] = std::uint8_t(philox::bits(seed, 2, 0, i) % 3u);
  return d;
}

// The class sets the image's brightness, under noise: a pattern a net learns.
data::Dataset bright_dataset(long count, std::uint64_t seed) {
  data::Dataset d = random_dataset(count, seed);
  d.source = "brightness-8x8";
  for (long n = 0; n < count; ++n)
    for (long k = 0; k < 64; ++k) {
      std::uint8_t& pixel = d.images[std::size_t(n * 64 + k)];
      pixel = std::uint8_t(pixel % 100 + 70 * d.labels[std::size_t(n)]);
    }
  return d;
}

using laminar_test::parameter;

// Every parameter and statistic, as bytes, to compare bit for bit.
template <class M>
std::vector<std::vector<unsigned char>> bytes_of(const M& model) {
  std::vector<std::vector<unsigned char>> all;
  for (const auto& p : model.parameters()) {
    const auto* begin = reinterpret_cast<const unsigned char*>(p.parameter->value());
    all.emplace_back(begin, begin + p.parameter->size * long(sizeof(typename M::value_type)));
  }
  return all;
}

// Momentum SGD with the optional state interface (visit_state, a step count),
// so the snapshot's optimizer path is tested whatever optim.hpp offers.
template <class M>
class VisitableMomentum {
  using T = typename M::value_type;

 public:
  VisitableMomentum(M& model, double lr) : lr_(lr) {
    for (const auto& named : model.parameters())
      if (named.parameter->trainable())
        slots_.push_back(
            {named.name + "/velocity", named.parameter, std::vector<T>(std::size_t(named.parameter->size))});
  }
  double learning_rate() const { return lr_; }
  void set_learning_rate(double lr) { lr_ = lr; }
  long step_count() const { return steps_; }
  void set_step_count(long count) { steps_ = count; }
  void step() {
    ++steps_;
    for (auto& s : slots_)
      for (long i = 0; i < s.parameter->size; ++i) {
        s.velocity[std::size_t(i)] = T(0.9) * s.velocity[std::size_t(i)] + s.parameter->grad()[i];
        s.parameter->value()[i] -= T(lr_) * s.velocity[std::size_t(i)];
      }
  }
  template <class F>
  void visit_state(F&& f) {
    for (auto& s : slots_) f(static_cast<const std::string&>(s.key), s.velocity.data(), long(s.velocity.size()));
  }
  std::vector<std::vector<T>> velocities() const {
    std::vector<std::vector<T>> all;
    for (const auto& s : slots_) all.push_back(s.velocity);
    return all;
  }

 private:
  struct Slot {
    std::string key;
    Parameter<T, cpu>* parameter;
    std::vector<T> velocity;
  };
  double lr_;
  long steps_ = 0;
  std::vector<Slot> slots_;
};

// A few optimizer steps on the first batch, so velocities are non-zero.
template <class M, class Opt>
void train_a_little(M& model, Opt& opt, const data::Dataset& d, const data::Normalization& norm, int steps) {
  using T = typename M::value_type;
  std::vector<long> order(32);
  for (long i = 0; i < 32; ++i) order[std::size_t(i)] = i;
  Tensor<T, cpu, typename M::input_shape> x(32);
  Tensor<T, cpu, typename M::output_shape> dlogits(32);
  std::vector<int> labels(32);
  data::gather(d, order.data(), 32, norm, x.data(), labels.data());
  model.train();
  for (int s = 0; s < steps; ++s) {
    auto logits = model.forward(x);
    loss::CrossEntropy{}.compute<cpu>(logits.data, labels.data(), 32, 3, dlogits.data());
    model.backward(dlogits);
    opt.step();
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

}  // namespace

// --- initial loss --------------------------------------------------------------

TEST_CASE("initial loss of a network whose logits are all zero is exactly ln of the class count") {
  const auto d = random_dataset(512, 3);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(1);
  auto& w = parameter(model, "5.weight");
  std::fill(w.value(), w.value() + w.size, 0.f);
  const auto r = train::sanity::initial_loss(model, d, norm);
  CHECK(r.expected == std::log(3.0));
  CHECK(r.loss == doctest::Approx(std::log(3.0)).epsilon(1e-6));
  CHECK(r.plausible);
}

TEST_CASE("initial loss of fresh networks ending in a global average pool is close to ln of the class count") {
  // The pooled features are near their common mean, about 0.4, so the He-initialised
  // logits have variance near 2 x 0.4^2 = 0.32: about 6% above ln 10 on average.
  using TenWay = Sequential<Input<1, 8, 8>, Conv<3, 3, 16>, BatchNorm, ReLU, GlobalAvgPool, Dense<10>>;
  auto d = random_dataset(1024, 3);
  d.classes = 10;
  for (std::size_t i = 0; i < d.labels.size(); ++i) d.labels[i] = std::uint8_t(philox::bits(3, 3, 0, i) % 10u);
  const auto norm = data::Normalization::standardize(d);
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    Model<TenWay, cpu> model(seed);
    const auto r = train::sanity::initial_loss(model, d, norm);
    CAPTURE(seed);
    CAPTURE(r.loss);
    CHECK(r.expected == std::log(10.0));
    CHECK(r.plausible);
  }
}

TEST_CASE("a huge last-layer weight makes the initial loss implausible") {
  const auto d = random_dataset(512, 3);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(1);
  auto& w = parameter(model, "5.weight");
  for (long i = 0; i < w.size; ++i) w.value()[i] *= 100.f;
  const auto r = train::sanity::initial_loss(model, d, norm);
  CHECK_FALSE(r.plausible);
  CHECK(r.loss > 1.15 * std::log(3.0));
}

TEST_CASE("initial_loss leaves the batchnorm running statistics and the mode as they were") {
  const auto d = bright_dataset(512, 4);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(2);
  model.eval();
  const auto before = bytes_of(model);
  train::sanity::initial_loss(model, d, norm, 128);
  CHECK(bytes_of(model) == before);
  CHECK_FALSE(model.training());
}

TEST_CASE("initial loss of a fresh he-initialised network on fashion-mnist is close to ln 10") {
  using FashionGap = Sequential<Input<1, 28, 28>, Conv<3, 3, 16>, BatchNorm, ReLU, MaxPool<2>, Conv<3, 3, 32>,
                                BatchNorm, ReLU, GlobalAvgPool, Dense<10>>;
  const auto data = data::fashion_mnist(LAMINAR_FASHION_MNIST_DIR);
  const auto norm = data::Normalization::standardize(data.train);
  Model<FashionGap, cpu> model(1);
  const auto r = train::sanity::initial_loss(model, data.train, norm);
  MESSAGE("fashion-mnist initial loss " << r.loss << " against ln 10 = " << r.expected);
  CHECK(r.expected == std::log(10.0));
  CHECK(r.plausible);
  CHECK(r.loss == doctest::Approx(std::log(10.0)).epsilon(0.15));
}

TEST_CASE("initial_loss refuses an empty dataset") {
  data::Dataset empty{1, 8, 8, 3, {}, {}, "nothing-here"};
  Model<ConvNet, cpu> model;
  CHECK_THROWS_WITH_AS(train::sanity::initial_loss(model, empty, data::Normalization::unit(1)),
                       doctest::Contains("initial_loss: data nothing-here is empty"), Error);
}

// --- overfitting a small subset ------------------------------------------------------

TEST_CASE("overfit_small_batch memorises two batches of random labels") {
  const auto d = random_dataset(256, 5);
  const auto norm = data::Normalization::standardize(d);
  Model<DenseNet, cpu> model(3);
  optim::SGD opt(model, {.lr = 0.05, .momentum = 0.9});
  const auto r = train::sanity::overfit_small_batch(model, opt, d, norm);
  MESSAGE("memorised in " << r.steps << " steps, loss " << r.loss);
  CHECK(r.reached);
  CHECK(r.accuracy >= 0.99);
  CHECK(r.steps <= 300);
  CHECK(r.steps % 2 == 0);  // whole passes over the two batches
  // The subset it names, evaluated afterwards, is indeed memorised; the rest of
  // the random labels cannot have been learnt.
  const auto order = data::permutation(d.size(), 0, 0);
  data::Dataset subset{1, 8, 8, 3, {}, {}, "subset"}, rest{1, 8, 8, 3, {}, {}, "rest"};
  for (long i = 0; i < d.size(); ++i) {
    data::Dataset& target = i < 64 ? subset : rest;
    const long k = order[std::size_t(i)];
    target.images.insert(target.images.end(), d.image(k), d.image(k) + 64);
    target.labels.push_back(d.labels[std::size_t(k)]);
  }
  CHECK(train::evaluate(model, subset, norm, 64).accuracy >= 0.99);
  CHECK(train::evaluate(model, rest, norm, 64).accuracy < 0.6);
}

TEST_CASE("overfit_small_batch reports not reached when the step budget runs out") {
  const auto d = random_dataset(256, 6);
  const auto norm = data::Normalization::standardize(d);
  Model<DenseNet, cpu> model(4);
  optim::SGD opt(model, {.lr = 0.0, .momentum = 0.0});
  const auto r = train::sanity::overfit_small_batch(model, opt, d, norm, 2, 32, 7);
  CHECK_FALSE(r.reached);
  CHECK(r.steps == 7);
  CHECK(r.accuracy < 0.99);
}

// --- learning-rate range test --------------------------------------------------------

TEST_CASE("lr_finder sweeps learning rates exponentially from start to end") {
  const auto d = bright_dataset(512, 7);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(5);
  optim::SGD opt(model, {.lr = 0.01, .momentum = 0.9});
  const auto r = train::lr_finder(model, opt, d, norm, {.start = 1e-5, .end = 1e-1, .steps = 21, .batch = 32});
  REQUIRE(r.lrs.size() == 21);
  CHECK_FALSE(r.diverged);
  CHECK(r.lrs.front() == 1e-5);
  CHECK(r.lrs.back() == doctest::Approx(1e-1).epsilon(1e-13));
  // (1e-1 / 1e-5)^(1/20) = 10^(1/5) per step.
  for (std::size_t i = 1; i < r.lrs.size(); ++i)
    CHECK(r.lrs[i] / r.lrs[i - 1] == doctest::Approx(std::pow(10.0, 0.2)).epsilon(1e-12));
  CHECK(r.losses.size() == 21);
  CHECK(r.smoothed.size() == 21);
}

TEST_CASE("lr_finder leaves the parameters, statistics, learning rate, mode and step as they were") {
  const auto d = bright_dataset(512, 8);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(6);
  optim::SGD opt(model, {.lr = 0.02, .momentum = 0.9});
  model.eval();
  model.set_step(17);
  const auto before = bytes_of(model);
  train::lr_finder(model, opt, d, norm, {.start = 1e-4, .end = 1.0, .steps = 30, .batch = 32});
  CHECK(bytes_of(model) == before);
  CHECK(opt.learning_rate() == 0.02);
  CHECK_FALSE(model.training());
  CHECK(model.step() == 17);
}

TEST_CASE("lr_finder restores an optimizer state it can visit, and its step count") {
  const auto d = bright_dataset(512, 9);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(7);
  VisitableMomentum opt(model, 0.01);
  train_a_little(model, opt, d, norm, 3);
  const auto velocities = opt.velocities();
  const auto before = bytes_of(model);
  REQUIRE(opt.step_count() == 3);
  REQUIRE(velocities.front() != std::vector<float>(velocities.front().size(), 0.f));
  train::lr_finder(model, opt, d, norm, {.start = 1e-4, .end = 1.0, .steps = 20, .batch = 32});
  CHECK(opt.velocities() == velocities);
  CHECK(opt.step_count() == 3);
  CHECK(opt.learning_rate() == 0.01);
  CHECK(bytes_of(model) == before);
}

TEST_CASE("lr_finder smooths the loss with the debiased exponential moving average") {
  const auto d = bright_dataset(512, 10);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(8);
  optim::SGD opt(model, {.lr = 0.01, .momentum = 0.9});
  const auto r =
      train::lr_finder(model, opt, d, norm, {.start = 1e-4, .end = 1e-1, .steps = 10, .batch = 32, .smoothing = 0.9});
  REQUIRE(r.losses.size() >= 3);
  const auto& l = r.losses;
  // a_i = 0.9 a_{i-1} + 0.1 l_i from a_{-1} = 0, divided by 1 - 0.9^(i+1):
  //   s_0 = l_0;  s_1 = (0.9 l_0 + l_1) / 1.9;  s_2 = (0.81 l_0 + 0.9 l_1 + l_2) / 2.71.
  CHECK(r.smoothed[0] == doctest::Approx(l[0]).epsilon(1e-12));
  CHECK(r.smoothed[1] == doctest::Approx((0.9 * l[0] + l[1]) / 1.9).epsilon(1e-12));
  CHECK(r.smoothed[2] == doctest::Approx((0.81 * l[0] + 0.9 * l[1] + l[2]) / 2.71).epsilon(1e-12));
  // The recorded losses are those of different batches at moving weights, not one value repeated.
  CHECK(l[0] != l[1]);
}

TEST_CASE("lr_finder suggests a learning rate inside the sweep where the loss falls") {
  const auto d = bright_dataset(1024, 11);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(9);
  optim::SGD opt(model, {.lr = 0.01, .momentum = 0.9});
  const auto r = train::lr_finder(model, opt, d, norm, {.start = 1e-4, .end = 3.0, .steps = 60, .batch = 32});
  MESSAGE("suggested " << r.suggested << ", minimum at " << r.min_loss_lr << ", " << r.lrs.size() << " steps");
  CHECK(r.suggested >= r.lrs.front());
  CHECK(r.suggested <= r.lrs.back());
  const auto at = std::find(r.lrs.begin(), r.lrs.end(), r.suggested);
  REQUIRE(at != r.lrs.end());
  const std::size_t i = std::size_t(at - r.lrs.begin());
  const std::size_t before = i == 0 ? 0 : i - 1, after = std::min(i + 1, r.lrs.size() - 1);
  CHECK(r.smoothed[after] < r.smoothed[before]);
  const auto lowest = std::find(r.lrs.begin(), r.lrs.end(), r.min_loss_lr);
  REQUIRE(lowest != r.lrs.end());
  CHECK(r.smoothed[std::size_t(lowest - r.lrs.begin())] == *std::min_element(r.smoothed.begin(), r.smoothed.end()));
  // The sweep learnt something: the lowest smoothed loss is below chance.
  CHECK(*std::min_element(r.smoothed.begin(), r.smoothed.end()) < std::log(3.0));
}

TEST_CASE("lr_finder writes lr, loss and smoothed loss per step to the csv file") {
  const auto d = bright_dataset(512, 12);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(10);
  optim::SGD opt(model, {.lr = 0.01, .momentum = 0.9});
  const std::string path = test_files::scratch("tune", "lr_finder.csv").string();
  const auto r =
      train::lr_finder(model, opt, d, norm, {.start = 1e-4, .end = 1e-1, .steps = 12, .batch = 32, .csv = path});
  const auto lines = lines_of(read_text(path));
  REQUIRE(lines.size() == r.lrs.size() + 1);
  CHECK(lines[0] == "lr,loss,smoothed");
  for (std::size_t i = 0; i < r.lrs.size(); ++i) {
    char* cursor = nullptr;
    const char* row = lines[i + 1].c_str();
    const double lr = std::strtod(row, &cursor);
    REQUIRE(*cursor == ',');
    const double loss = std::strtod(cursor + 1, &cursor);
    REQUIRE(*cursor == ',');
    const double smoothed = std::strtod(cursor + 1, &cursor);
    CHECK(*cursor == '\0');
    CHECK(lr == r.lrs[i]);
    CHECK(loss == r.losses[i]);
    CHECK(smoothed == r.smoothed[i]);
  }
}

TEST_CASE("lr_finder stops early and reports divergence when the end learning rate is absurd") {
  const auto d = bright_dataset(512, 13);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(11);
  optim::SGD opt(model, {.lr = 0.01, .momentum = 0.9});
  const auto before = bytes_of(model);
  const auto r = train::lr_finder(model, opt, d, norm, {.start = 1e-3, .end = 1e8, .steps = 80, .batch = 32});
  MESSAGE("stopped after " << r.lrs.size() << " of 80 steps at lr " << r.lrs.back());
  CHECK(r.diverged);
  CHECK(r.lrs.size() < 80);
  const double last = r.smoothed.back();
  const double best = *std::min_element(r.smoothed.begin(), r.smoothed.end() - 1);
  CHECK((!std::isfinite(last) || last > 4.0 * best));
  CHECK(bytes_of(model) == before);
  CHECK(opt.learning_rate() == 0.01);
}

TEST_CASE("lr_finder refuses a sweep whose start is not below its end or that has fewer than two steps") {
  const auto d = bright_dataset(64, 14);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model;
  optim::SGD opt(model, {.lr = 0.01, .momentum = 0.9});
  CHECK_THROWS_WITH_AS(train::lr_finder(model, opt, d, norm, {.start = 1.0, .end = 0.1}),
                       doctest::Contains("lr_finder: start = 1 must be below end = 0.1"), Error);
  CHECK_THROWS_WITH_AS(train::lr_finder(model, opt, d, norm, {.steps = 1}),
                       doctest::Contains("lr_finder: steps = 1 must be at least 2"), Error);
  CHECK_THROWS_WITH_AS(train::lr_finder(model, opt, d, norm, {.start = 0.0}), doctest::Contains("start positive"),
                       Error);
}

// --- snapshots -------------------------------------------------------------------------

TEST_CASE("a snapshot puts back the parameters and the optimizer state bit for bit") {
  const auto d = bright_dataset(256, 15);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(12);
  VisitableMomentum opt(model, 0.05);
  train_a_little(model, opt, d, norm, 2);
  const train::Snapshot snapshot(model, opt);
  const auto parameters = bytes_of(model);
  const auto velocities = opt.velocities();
  train_a_little(model, opt, d, norm, 3);
  REQUIRE(bytes_of(model) != parameters);
  snapshot.restore(model, opt);
  CHECK(bytes_of(model) == parameters);
  CHECK(opt.velocities() == velocities);
  CHECK(opt.step_count() == 2);
}

TEST_CASE("a snapshot taken without an optimizer refuses to restore one and changes nothing") {
  const auto d = bright_dataset(256, 16);
  const auto norm = data::Normalization::standardize(d);
  Model<ConvNet, cpu> model(13);
  VisitableMomentum opt(model, 0.05);
  const train::Snapshot snapshot(model);
  train_a_little(model, opt, d, norm, 2);
  const auto trained = bytes_of(model);
  CHECK_THROWS_WITH_AS(snapshot.restore(model, opt), doctest::Contains("taken without an optimizer"), Error);
  CHECK(bytes_of(model) == trained);
}

// --- random search -------------------------------------------------------------------

TEST_CASE("log-uniform samples lie in range and are uniform in log space") {
  std::vector<double> values;
  train::random_search({train::log_uniform("lr", 1e-4, 1e-1)}, 4000, 1, [&](const train::Point& p) {
    values.push_back(p.at("lr"));
    return 0.0;
  });
  REQUIRE(values.size() == 4000);
  double log_sum = 0, log_square = 0, sum = 0;
  for (double v : values) {
    CHECK(v >= 1e-4);
    CHECK(v < 1e-1);
    log_sum += std::log10(v);
    log_square += std::log10(v) * std::log10(v);
    sum += v;
  }
  const double log_mean = log_sum / 4000, log_variance = log_square / 4000 - log_mean * log_mean;
  // log10 uniform on [-4, -1]: mean -2.5 (standard error 0.866 / sqrt(4000) = 0.014),
  // variance 3^2 / 12 = 0.75 (standard error 0.011); four standard errors each.
  CHECK(std::abs(log_mean + 2.5) < 4 * 0.0137);
  CHECK(std::abs(log_variance - 0.75) < 4 * 0.0106);
  // The arithmetic mean of a log-uniform variable is (high - low) / ln(high / low) = 0.01446,
  // far from the uniform 0.05 (standard error 0.022 / sqrt(4000) = 0.00035).
  CHECK(std::abs(sum / 4000 - 0.0999 / std::log(1000.0)) < 4 * 0.00035);
}

TEST_CASE("uniform samples lie in range with the uniform mean") {
  double sum = 0;
  int below = 0;
  train::random_search({train::uniform("momentum", 0.8, 1.0)}, 4000, 2, [&](const train::Point& p) {
    const double m = p.at("momentum");
    below += m < 0.8 || m >= 1.0;
    sum += m;
    return 0.0;
  });
  CHECK(below == 0);
  // Mean 0.9, standard error 0.2 / sqrt(12 * 4000) = 0.00091.
  CHECK(std::abs(sum / 4000 - 0.9) < 4 * 0.00091);
}

TEST_CASE("random search returns its trials best first") {
  const std::vector<train::Dimension> space{train::uniform("x", -1, 1), train::log_uniform("lr", 1e-3, 1)};
  const auto score = [](const train::Point& p) { return -(p.at("x") - 0.3) * (p.at("x") - 0.3); };
  const auto highest = train::random_search(space, 50, 3, score);
  const auto lowest = train::random_search(space, 50, 3, score, false);
  REQUIRE(highest.size() == 50);
  for (std::size_t i = 1; i < highest.size(); ++i) {
    CHECK(highest[i - 1].score >= highest[i].score);
    CHECK(lowest[i - 1].score <= lowest[i].score);
  }
  CHECK(highest.front().score == score(highest.front().point));
  CHECK(highest.front().point == lowest.back().point);
}

TEST_CASE("random search with the same seed tries the same points") {
  const std::vector<train::Dimension> space{train::uniform("dropout", 0, 0.5), train::log_uniform("lr", 1e-4, 1)};
  std::vector<train::Point> first, second, other;
  train::random_search(space, 20, 7, [&](const train::Point& p) {
    first.push_back(p);
    return 0.0;
  });
  train::random_search(space, 20, 7, [&](const train::Point& p) {
    second.push_back(p);
    return 0.0;
  });
  train::random_search(space, 20, 8, [&](const train::Point& p) {
    other.push_back(p);
    return 0.0;
  });
  CHECK(first == second);
  CHECK(first != other);
  // More trials extend the search: its first points are the same.
  std::vector<train::Point> longer;
  train::random_search(space, 30, 7, [&](const train::Point& p) {
    longer.push_back(p);
    return 0.0;
  });
  CHECK(std::vector<train::Point>(longer.begin(), longer.begin() + 20) == first);
}

TEST_CASE("random search calls the objective once per trial") {
  int calls = 0;
  const auto trials =
      train::random_search({train::uniform("x", 0, 1)}, 17, 4, [&](const train::Point&) { return double(++calls); });
  CHECK(calls == 17);
  CHECK(trials.size() == 17);
  CHECK(trials.front().score == 17.0);
}

TEST_CASE("random search sorts nan scores last") {
  const auto objective = [](const train::Point& p) { return p.at("x") > 0.5 ? std::nan("") : p.at("x"); };
  for (const bool maximize : {true, false}) {
    const auto trials = train::random_search({train::uniform("x", 0, 1)}, 40, 5, objective, maximize);
    const auto first_nan =
        std::find_if(trials.begin(), trials.end(), [](const auto& t) { return std::isnan(t.score); });
    CAPTURE(maximize);
    REQUIRE(first_nan != trials.begin());
    REQUIRE(first_nan != trials.end());
    CHECK(std::all_of(first_nan, trials.end(), [](const auto& t) { return std::isnan(t.score); }));
  }
}

TEST_CASE("dimensions refuse empty ranges and log ranges that reach zero") {
  CHECK_THROWS_WITH_AS(train::uniform("x", 1, 1), doctest::Contains("uniform: dimension x has low = 1 and high = 1"),
                       Error);
  CHECK_THROWS_WITH_AS(train::log_uniform("lr", 0, 1),
                       doctest::Contains("log_uniform: log-scale dimension lr has low = 0; it must be positive"),
                       Error);
  CHECK_THROWS_WITH_AS(train::random_search({{"wd", -1, 1, true}}, 3, 0, [](const train::Point&) { return 0.0; }),
                       doctest::Contains("random_search: log-scale dimension wd has low = -1"), Error);
  CHECK_THROWS_WITH_AS(train::random_search({train::uniform("x", 0, 1), train::uniform("x", 2, 3)}, 3, 0,
                                            [](const train::Point&) { return 0.0; }),
                       doctest::Contains("dimension x appears twice"), Error);
}

TEST_CASE("write_trials_csv writes a header and one row per trial that reads back exactly") {
  const auto trials = train::random_search({train::log_uniform("lr", 1e-4, 1), train::uniform("momentum", 0.8, 1)}, 5,
                                           6, [](const train::Point& p) { return p.at("lr") * p.at("momentum"); });
  const std::string path = test_files::scratch("tune", "trials.csv").string();
  train::write_trials_csv(path, trials);
  const auto lines = lines_of(read_text(path));
  REQUIRE(lines.size() == 6);
  CHECK(lines[0] == "lr,momentum,score");
  for (std::size_t i = 0; i < trials.size(); ++i) {
    char* cursor = nullptr;
    const double lr = std::strtod(lines[i + 1].c_str(), &cursor);
    const double momentum = std::strtod(cursor + 1, &cursor);
    const double score = std::strtod(cursor + 1, &cursor);
    CHECK(lr == trials[i].point.at("lr"));
    CHECK(momentum == trials[i].point.at("momentum"));
    CHECK(score == trials[i].score);
  }
}
