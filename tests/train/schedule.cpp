// Learning-rate schedules: every schedule against its closed form at chosen
// epochs, concatenation, reduce-on-plateau's rules, checkpoint state, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

#include <laminar/train/schedule.hpp>

using namespace laminar;

namespace {

train::EpochRecord record(int epoch, double valid_loss) {
  train::EpochRecord r;
  r.epoch = epoch;
  r.valid_loss = valid_loss;
  return r;
}

// Feeds valid_loss values for epochs first, first + 1, ... and returns the
// multiplier after each.
std::vector<double> feed(schedule::Schedule& s, const std::vector<double>& losses, int first = 1) {
  std::vector<double> multipliers;
  for (std::size_t i = 0; i < losses.size(); ++i) {
    const int epoch = first + int(i);
    s.observe(record(epoch, losses[i]));
    multipliers.push_back(s(epoch, 100));
  }
  return multipliers;
}

// The message of the laminar::Error that `call` throws, or "" (and a failed check) when it throws none.
std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.what();
  }
  FAIL_CHECK("no laminar::Error was thrown");
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a default schedule is the constant 1") {
  const schedule::Schedule s;
  CHECK(s(0.0, 10) == 1.0);
  CHECK(s(7.5, 10) == 1.0);
  CHECK(s.describe() == "constant(1)");
  CHECK(s.state().empty());
}

TEST_CASE("constant gives its multiplier and a bounded constant hands over at its end") {
  const auto s = schedule::constant(0.5, 2) + schedule::constant(0.25);
  CHECK(s(0.0, 10) == 0.5);
  CHECK(s(1.99, 10) == 0.5);
  CHECK(s(2.0, 10) == 0.25);
  CHECK(s(9.0, 10) == 0.25);
}

TEST_CASE("warmup rises linearly from its start value and holds 1 past its end") {
  const auto s = schedule::warmup(4, 0.2);
  // 0.2 + (1 - 0.2) * t / 4: t = 1 -> 0.4, t = 3 -> 0.8
  CHECK(s(0.0, 10) == doctest::Approx(0.2).epsilon(1e-15));
  CHECK(s(1.0, 10) == doctest::Approx(0.4).epsilon(1e-15));
  CHECK(s(3.0, 10) == doctest::Approx(0.8).epsilon(1e-15));
  CHECK(s(6.0, 10) == doctest::Approx(1.0).epsilon(1e-15));
}

TEST_CASE("warmup then cosine matches the closed form at its start, join, middle and end") {
  const auto s = schedule::warmup(2) + schedule::cosine();
  const double total = 12;  // cosine covers epochs 2..12, L = 10
  CHECK(s(0.0, total) == 0.0);
  CHECK(s(1.0, total) == doctest::Approx(0.5).epsilon(1e-15));  // e / 2
  CHECK(s(2.0, total) == doctest::Approx(1.0).epsilon(1e-15));  // t = 0: (1 + cos 0) / 2
  // t = 2.5: (1 + cos(pi / 4)) / 2 = (1 + 0.7071067811865476) / 2
  CHECK(s(4.5, total) == doctest::Approx(0.8535533905932738).epsilon(1e-14));
  // t = 5: (1 + cos(pi / 2)) / 2 = 0.5
  CHECK(s(7.0, total) == doctest::Approx(0.5).epsilon(1e-14));
  // t = 10: (1 + cos pi) / 2 = 0
  CHECK(std::abs(s(12.0, total)) < 1e-15);
}

TEST_CASE("cosine with a floor decays to the floor") {
  const auto s = schedule::cosine(0.1);
  // floor + (1 - floor)(1 + cos(pi t / L)) / 2 with L = 10: t = 5 -> 0.1 + 0.9 * 0.5 = 0.55
  CHECK(s(5.0, 10) == doctest::Approx(0.55).epsilon(1e-14));
  CHECK(s(10.0, 10) == doctest::Approx(0.1).epsilon(1e-14));
}

TEST_CASE("warmup then step follows the 30 60 90 recipe with absolute milestones") {
  const auto s = schedule::warmup(5) + schedule::step({30, 60, 90});
  const double total = 120;
  CHECK(s(2.5, total) == doctest::Approx(0.5).epsilon(1e-15));  // 2.5 / 5
  CHECK(s(5.0, total) == 1.0);
  CHECK(s(29.9, total) == 1.0);
  // Milestones count from the run's start, not the step segment's (30, not 35).
  CHECK(s(30.0, total) == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(s(34.0, total) == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(s(59.0, total) == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(s(60.0, total) == doctest::Approx(0.01).epsilon(1e-15));
  CHECK(s(90.0, total) == doctest::Approx(0.001).epsilon(1e-15));
  CHECK(s(119.5, total) == doctest::Approx(0.001).epsilon(1e-15));
}

TEST_CASE("exponential decays by 0.94 per epoch in staircase and continuous form") {
  const auto stairs = schedule::exponential(0.94);
  CHECK(stairs(0.9, 10) == 1.0);                                     // 0.94^0
  CHECK(stairs(2.5, 10) == doctest::Approx(0.8836).epsilon(1e-14));  // 0.94^2
  const auto smooth = schedule::exponential(0.94, false);
  // 0.94^2.5 = 0.8836 * sqrt(0.94) = 0.8836 * 0.9695359714832659
  CHECK(smooth(2.5, 10) == doctest::Approx(0.8566819844026137).epsilon(1e-13));
}

TEST_CASE("exponential counts epochs from its own segment start") {
  const auto s = schedule::constant(1, 2) + schedule::exponential(0.5);
  CHECK(s(2.0, 10) == 1.0);    // t = 0
  CHECK(s(3.5, 10) == 0.5);    // t = 1.5, floor 1
  CHECK(s(5.0, 10) == 0.125);  // t = 3
}

TEST_CASE("linear goes from 1 to its end value and holds it past the segment") {
  const auto s = schedule::linear(0.1, 4);
  // 1 + (0.1 - 1) t / 4: t = 1 -> 0.775, t = 2 -> 0.55
  CHECK(s(1.0, 10) == doctest::Approx(0.775).epsilon(1e-15));
  CHECK(s(2.0, 10) == doctest::Approx(0.55).epsilon(1e-15));
  CHECK(s(6.0, 10) == doctest::Approx(0.1).epsilon(1e-15));
  // Open: L = total - start = 10, t = 5 -> 1 - 0.5 = 0.5
  CHECK(schedule::linear()(5.0, 10) == doctest::Approx(0.5).epsilon(1e-15));
}

TEST_CASE("piecewise_linear interpolates between knots and holds the last knot") {
  const auto s = schedule::piecewise_linear({{0, 1.0}, {2, 0.5}, {6, 0.1}});
  CHECK(s(1.0, 10) == doctest::Approx(0.75).epsilon(1e-15));  // halfway 1 -> 0.5
  CHECK(s(2.0, 10) == doctest::Approx(0.5).epsilon(1e-15));   // on a knot
  CHECK(s(4.0, 10) == doctest::Approx(0.3).epsilon(1e-15));   // 0.5 + (0.1 - 0.5) * 2 / 4
  CHECK(s(8.0, 10) == doctest::Approx(0.1).epsilon(1e-15));   // past the last knot
}

TEST_CASE("piecewise_linear knots are in segment time after an earlier segment") {
  const auto s = schedule::constant(1, 3) + schedule::piecewise_linear({{1, 0.8}, {3, 0.4}});
  CHECK(s(3.5, 10) == doctest::Approx(0.8).epsilon(1e-15));  // t = 0.5, before the first knot
  CHECK(s(5.0, 10) == doctest::Approx(0.6).epsilon(1e-15));  // t = 2, halfway 0.8 -> 0.4
}

TEST_CASE("one_cycle starts low, peaks at peak_at and ends at its end value") {
  const auto s = schedule::one_cycle();  // peak_at 0.3, start 1/25, end 1/250000, L = 10
  CHECK(s(0.0, 10) == doctest::Approx(0.04).epsilon(1e-15));
  // u = 0.15: 0.04 + 0.96 (1 - cos(pi / 2)) / 2 = 0.52
  CHECK(s(1.5, 10) == doctest::Approx(0.52).epsilon(1e-14));
  CHECK(s(3.0, 10) == doctest::Approx(1.0).epsilon(1e-15));
  // u = 0.65: (0.65 - 0.3) / 0.7 = 0.5, 4e-6 + (1 - 4e-6) * 0.5 = 0.500002
  CHECK(s(6.5, 10) == doctest::Approx(0.500002).epsilon(1e-14));
  CHECK(s(10.0, 10) == doctest::Approx(4e-6).epsilon(1e-9));
}

TEST_CASE("linear_scaling scales the base rate with the batch") {
  CHECK(schedule::linear_scaling(0.1, 1024) == doctest::Approx(0.4).epsilon(1e-15));      // 0.1 * 1024 / 256
  CHECK(schedule::linear_scaling(0.1, 64, 128) == doctest::Approx(0.05).epsilon(1e-15));  // 0.1 * 64 / 128
}

TEST_CASE("reduce_on_plateau cuts the multiplier once patience epochs have passed without improvement") {
  auto s = schedule::reduce_on_plateau({.factor = 0.5, .patience = 2, .threshold = 0});
  // Epoch 1 sets the best; epochs 2 and 3 are tolerated; the third bad epoch (4) cuts.
  CHECK(feed(s, {1.0, 1.0, 1.0, 1.0, 1.0}) == std::vector<double>{1, 1, 1, 0.5, 0.5});
}

TEST_CASE("reduce_on_plateau needs a relative improvement larger than threshold") {
  auto strict = schedule::reduce_on_plateau({.factor = 0.5, .patience = 0, .threshold = 0.1});
  // Best 1.0 needs a loss below 1 - 0.1 * 1 = 0.9: 0.95 is no improvement (cut), 0.89 is one.
  CHECK(feed(strict, {1.0, 0.95, 0.89}) == std::vector<double>{1, 0.5, 0.5});
  auto loose = schedule::reduce_on_plateau({.factor = 0.5, .patience = 0, .threshold = 0.01});
  CHECK(feed(loose, {1.0, 0.95, 0.89}) == std::vector<double>{1, 1, 1});
}

TEST_CASE("reduce_on_plateau does not count epochs during its cooldown") {
  auto s = schedule::reduce_on_plateau({.factor = 0.5, .patience = 0, .threshold = 0, .cooldown = 2});
  // 1: best. 2: bad, cut to 0.5, cooldown 2. 3, 4: cooldown. 5: bad, cut to 0.25.
  CHECK(feed(s, {1, 1, 1, 1, 1}) == std::vector<double>{1, 0.5, 0.5, 0.5, 0.25});
}

TEST_CASE("reduce_on_plateau never goes below min_multiplier") {
  auto s = schedule::reduce_on_plateau({.factor = 0.1, .patience = 0, .threshold = 0, .min_multiplier = 0.005});
  const auto m = feed(s, {1, 1, 1, 1, 1});
  // 1, 0.1, 0.01, then max(0.001, 0.005) = 0.005 and it stays there.
  CHECK(m[0] == 1);
  CHECK(m[1] == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(m[2] == doctest::Approx(0.01).epsilon(1e-15));
  CHECK(m[3] == 0.005);
  CHECK(m[4] == 0.005);
}

TEST_CASE("reduce_on_plateau ignores NaN metrics") {
  auto s = schedule::reduce_on_plateau({.patience = 1, .threshold = 0});
  // Three NaN epochs would exceed patience 1 if they counted.
  CHECK(feed(s, {1.0, NAN, NAN, NAN}) == std::vector<double>{1, 1, 1, 1});
  // Two real bad epochs do: 0.1.
  const auto m = feed(s, {1.0, 1.0}, 5);
  CHECK(m[0] == 1);
  CHECK(m[1] == doctest::Approx(0.1).epsilon(1e-15));
}

TEST_CASE("reduce_on_plateau on an accuracy treats higher values as better") {
  auto s = schedule::reduce_on_plateau({.monitor = "valid_accuracy", .factor = 0.5, .patience = 0, .threshold = 0});
  std::vector<double> m;
  for (int epoch = 1; double accuracy : {0.5, 0.6, 0.55}) {
    train::EpochRecord r;
    r.epoch = epoch++;
    r.valid_accuracy = accuracy;
    s.observe(r);
    m.push_back(s(epoch, 100));
  }
  // 0.6 improves on 0.5 (in min mode it would have cut); 0.55 does not.
  CHECK(m == std::vector<double>{1, 1, 0.5});
}

TEST_CASE("reduce_on_plateau after a warmup ignores the warmup epochs") {
  auto s = schedule::warmup(2) + schedule::reduce_on_plateau({.patience = 0, .threshold = 0});
  // Epochs 1 and 2 cover [0, 2), the warmup: had they counted, epoch 2 would already have cut.
  s.observe(record(1, 1.0));
  s.observe(record(2, 1.0));
  s.observe(record(3, 1.0));
  CHECK(s(3.0, 10) == 1.0);
  s.observe(record(4, 1.0));
  CHECK(s(4.0, 10) == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(s(1.0, 10) == doctest::Approx(0.5).epsilon(1e-15));  // the warmup itself is untouched
}

TEST_CASE("a copied schedule keeps its own plateau state") {
  auto original = schedule::reduce_on_plateau({.patience = 0, .threshold = 0});
  feed(original, {1.0});
  auto copy = original;
  feed(copy, {1.0}, 2);  // a bad epoch for the copy only: it cuts to 0.1
  CHECK(copy(2, 10) == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(original(2, 10) == 1.0);
  CHECK(original.state() == std::vector<double>{0, 1, 0, 0});
}

TEST_CASE("state and restore round-trip so a resumed schedule continues identically") {
  const auto make = [] {
    return schedule::warmup(1) +
           schedule::reduce_on_plateau({.factor = 0.5, .patience = 1, .threshold = 0.01, .cooldown = 1});
  };
  auto original = make();
  feed(original, {2.0, 1.0, 0.999, 0.998, 0.7, 0.71});
  const auto saved = original.state();
  // Epoch 1 is the warmup's. 2: best 1.0. 3, 4: 0.999 and 0.998 are not below 0.99, the second bad epoch
  // exceeds patience 1: one cut, cooldown 1. 5: 0.7 improves, the cooldown is spent. 6: 0.71 is not below
  // 0.7 - 0.007, one bad epoch. State (reductions, best, bad epochs, cooldown left) = (1, 0.7, 1, 0).
  CHECK(saved == std::vector<double>{1, 0.7, 1, 0});
  auto resumed = make();
  resumed.restore(saved);
  CHECK(resumed.state() == saved);
  const std::vector<double> rest = {0.75, 0.69, 0.7, 0.7, 0.7, 0.1};
  CHECK(feed(resumed, rest, 7) == feed(original, rest, 7));
  CHECK(resumed.state() == original.state());
}

TEST_CASE("describe names every segment in order") {
  CHECK((schedule::warmup(2) + schedule::cosine()).describe() == "warmup(2) + cosine(floor 0)");
  CHECK((schedule::warmup(5, 0.1) + schedule::step({30, 60, 90})).describe() ==
        "warmup(5, from 0.1) + step(30, 60, 90; gamma 0.1)");
  CHECK((schedule::exponential(0.94, true, 3) + schedule::linear(0.5)).describe() ==
        "exponential(gamma 0.94, staircase, 3 epochs) + linear(to 0.5)");
  CHECK((schedule::piecewise_linear({{0, 1}, {2, 0.5}}) + schedule::one_cycle()).describe() ==
        "piecewise_linear(0: 1, 2: 0.5) + one_cycle(peak at 0.3, start 0.04, end 4e-06)");
  CHECK(schedule::reduce_on_plateau().describe() ==
        "reduce_on_plateau(valid_loss, factor 0.1, patience 10, threshold 1e-04, cooldown 0, min 0)");
}

TEST_CASE("appending after an open segment throws naming the open segment") {
  const auto message = error_of([] { (void)(schedule::cosine() + schedule::warmup(1)); });
  CHECK(contains(message, "cosine(floor 0)"));
  CHECK(contains(message, "open"));
  // An empty schedule adds nothing, so it may follow an open one.
  CHECK((schedule::cosine() + schedule::Schedule()).describe() == "cosine(floor 0)");
}

TEST_CASE("segment lengths that are not positive throw naming the function and value") {
  CHECK(contains(error_of([] { schedule::warmup(0); }), "warmup: epochs must be positive and finite, got 0"));
  CHECK(contains(error_of([] { schedule::warmup(-1); }), "warmup"));
  CHECK(
      contains(error_of([] { schedule::cosine(0, -2); }), "cosine: epochs must be positive or schedule::open, got -2"));
  CHECK(contains(error_of([] { schedule::constant(1, 0); }), "constant: epochs"));
  CHECK(contains(error_of([] { schedule::linear(0, -0.5); }), "got -0.5"));
  CHECK(contains(error_of([] { schedule::one_cycle(0.3, 0.04, 4e-6, 0); }), "one_cycle: epochs"));
  CHECK(contains(error_of([] { schedule::exponential(0.9, true, NAN); }), "exponential: epochs"));
}

TEST_CASE("decay factors that are not positive throw naming the value") {
  CHECK(contains(error_of([] { schedule::step({30}, 0); }), "step: gamma must be positive and finite, got 0"));
  CHECK(contains(error_of([] { schedule::exponential(-0.5); }),
                 "exponential: gamma must be positive and finite, got -0.5"));
}

TEST_CASE("unsorted milestones and knots throw naming the out-of-order value") {
  CHECK(contains(error_of([] { schedule::step({30, 20}); }), "step: milestones must increase, but 20 follows 30"));
  CHECK(contains(error_of([] { schedule::step({-1}); }), "step: milestone -1"));
  CHECK(contains(error_of([] {
                   schedule::piecewise_linear({{0, 1}, {3, 0.5}, {2, 0.1}});
                 }),
                 "piecewise_linear: point epochs must increase, but 2 follows 3"));
  CHECK(contains(error_of([] {
                   schedule::piecewise_linear({{0, 1}});
                 }),
                 "piecewise_linear: needs at least two points, got 1"));
  CHECK(contains(error_of([] { schedule::piecewise_linear({{0, 1}, {1, -0.5}}); }), "got -0.5"));
}

TEST_CASE("multipliers outside their range throw naming the value") {
  CHECK(
      contains(error_of([] { schedule::constant(-2); }), "constant: multiplier must be a finite number >= 0, got -2"));
  CHECK(contains(error_of([] { schedule::warmup(2, -0.1); }), "warmup: from"));
  CHECK(contains(error_of([] { schedule::cosine(1.5); }), "cosine: floor must lie in [0, 1], got 1.5"));
  CHECK(contains(error_of([] { schedule::one_cycle(1.0); }),
                 "one_cycle: peak_at must lie strictly between 0 and 1, got 1"));
  CHECK(contains(error_of([] { schedule::one_cycle(0.3, 2.0); }), "one_cycle: start must lie in [0, 1], got 2"));
}

TEST_CASE("reduce_on_plateau options out of range throw naming the option and value") {
  CHECK(contains(error_of([] { schedule::reduce_on_plateau({.factor = 1.5}); }),
                 "reduce_on_plateau: factor must lie strictly between 0 and 1, got 1.5"));
  CHECK(contains(error_of([] { schedule::reduce_on_plateau({.factor = 0}); }), "factor"));
  CHECK(contains(error_of([] { schedule::reduce_on_plateau({.monitor = "val_loss"}); }),
                 "reduce_on_plateau: unknown monitor \"val_loss\""));
  CHECK(contains(error_of([] { schedule::reduce_on_plateau({.patience = -1}); }), "patience must be >= 0, got -1"));
  CHECK(contains(error_of([] { schedule::reduce_on_plateau({.threshold = -1e-3}); }), "threshold"));
  CHECK(contains(error_of([] { schedule::reduce_on_plateau({.cooldown = -2}); }), "cooldown must be >= 0, got -2"));
  CHECK(contains(error_of([] { schedule::reduce_on_plateau({.min_multiplier = 2}); }),
                 "min_multiplier must lie in [0, 1], got 2"));
}

TEST_CASE("evaluating outside the run throws naming the epoch or total") {
  const auto s = schedule::warmup(5) + schedule::cosine();
  CHECK(contains(error_of([&] { (void)s(1, 0); }), "total_epochs must be positive and finite, got 0"));
  CHECK(contains(error_of([&] { (void)s(-0.5, 10); }), "epoch must be >= 0, got -0.5"));
  CHECK(contains(error_of([&] { (void)s(11, 10); }), "epoch 11 is past total_epochs 10"));
  // The open cosine would start at the run's end: a schedule that does not fit the run.
  CHECK(contains(error_of([&] { (void)s(1, 5); }), "cosine(floor 0) starts at epoch 5"));
}

TEST_CASE("restore with the wrong number of values throws naming both counts") {
  auto s = schedule::reduce_on_plateau();
  CHECK(contains(error_of([&] { s.restore({1, 2}); }), "the state has 2 values but"));
  CHECK(contains(error_of([&] { s.restore({1, 2}); }), "keeps 4"));
  CHECK(contains(error_of([&] { s.restore({0.5, 1, 0, 0}); }), "state value 0 must be a count, got 0.5"));
  auto plain = schedule::cosine();
  CHECK(contains(error_of([&] { plain.restore({0}); }), "the state has 1 values but cosine(floor 0) keeps 0"));
}

TEST_CASE("observe rejects a record whose epoch is not 1-based") {
  auto s = schedule::reduce_on_plateau();
  CHECK(contains(error_of([&] { s.observe(record(0, 1.0)); }), "record.epoch must be a 1-based epoch number, got 0"));
}

TEST_CASE("linear_scaling rejects non-positive batches and rates") {
  CHECK(contains(error_of([] { schedule::linear_scaling(0.1, 0); }), "linear_scaling: batch must be positive, got 0"));
  CHECK(contains(error_of([] { schedule::linear_scaling(0.1, 32, -8); }), "reference_batch must be positive, got -8"));
  CHECK(contains(error_of([] { schedule::linear_scaling(-1, 32); }), "base_lr must be positive and finite, got -1"));
}
