// Callbacks decided from the history alone: the best epoch by a metric, early
// stopping, saving the best weights and the overfitting warning, each driven by
// a synthetic History one epoch at a time.
#include <doctest/doctest.h>

#include <cmath>
#include <laminar/train/callbacks.hpp>
#include <string>
#include <vector>

using namespace laminar;
using train::EpochRecord;
using train::History;

namespace {

const double not_a_number = std::nan("");

EpochRecord record(int epoch, double valid_loss, double valid_accuracy = not_a_number) {
  EpochRecord r;
  r.epoch = epoch;
  r.valid_loss = valid_loss;
  r.valid_accuracy = valid_accuracy;
  return r;
}

History losses(const std::vector<double>& valid_loss) {
  History h;
  for (std::size_t i = 0; i < valid_loss.size(); ++i) h.epochs.push_back(record(int(i) + 1, valid_loss[i]));
  return h;
}

History accuracies(const std::vector<double>& valid_accuracy) {
  History h;
  for (std::size_t i = 0; i < valid_accuracy.size(); ++i)
    h.epochs.push_back(record(int(i) + 1, not_a_number, valid_accuracy[i]));
  return h;
}

// The epochs (1-based) after which the callback stopped the run, feeding it
// the history one epoch longer each time, as fit does.
std::vector<int> stops(const train::Callback& callback, const History& full) {
  std::vector<int> epochs;
  History h;
  for (const auto& r : full.epochs) {
    h.epochs.push_back(r);
    train::FitControl control;
    callback.on_epoch_end(h, control);
    if (control.stopping()) epochs.push_back(r.epoch);
  }
  return epochs;
}

// The epochs after which save_best wrote, and the paths it wrote to.
struct Saves {
  std::vector<int> epochs;
  std::vector<std::string> paths;
};
Saves saves(const train::Callback& callback, const History& full) {
  Saves s;
  History h;
  for (const auto& r : full.epochs) {
    h.epochs.push_back(r);
    train::FitControl control;
    control.verbose = false;
    control.save_weights = [&](const std::string& path) {
      s.epochs.push_back(r.epoch);
      s.paths.push_back(path);
    };
    callback.on_epoch_end(h, control);
  }
  return s;
}

}  // namespace

TEST_CASE("the best epoch of a loss is the one with the lowest value") {
  const auto best = train::best_epoch(losses({3, 2, 2.5, 1.5, 1.6}), "valid_loss");
  REQUIRE(best.has_value());
  CHECK(*best == 3);
}

TEST_CASE("the best epoch of an accuracy is the one with the highest value") {
  const auto best = train::best_epoch(accuracies({0.5, 0.7, 0.6, 0.8, 0.75}), "valid_accuracy");
  REQUIRE(best.has_value());
  CHECK(*best == 3);
}

TEST_CASE("a later epoch equal to the best does not replace it") {
  CHECK(train::best_epoch(losses({2, 1, 1, 3}), "valid_loss") == 1u);
  CHECK(train::best_epoch(accuracies({0.4, 0.9, 0.9}), "valid_accuracy") == 1u);
}

TEST_CASE("an improvement counts only when it beats the best by more than min_delta") {
  // 0.95 and 0.92 are within 0.1 of 1.0; 0.85 is not.
  CHECK(train::best_epoch(losses({1.0, 0.95, 0.92}), "valid_loss", 0.1) == 0u);
  CHECK(train::best_epoch(losses({1.0, 0.95, 0.85}), "valid_loss", 0.1) == 2u);
  // Measured from the best, not from the previous epoch: 0.5 -> 0.58 -> 0.66 creeps past 0.6.
  CHECK(train::best_epoch(accuracies({0.5, 0.58, 0.66}), "valid_accuracy", 0.1) == 2u);
  CHECK(train::best_epoch(accuracies({0.5, 0.58, 0.59}), "valid_accuracy", 0.1) == 0u);
}

TEST_CASE("NaN values never count as the best epoch") {
  CHECK(train::best_epoch(losses({not_a_number, 2, not_a_number, 1, not_a_number}), "valid_loss") == 3u);
  CHECK(train::best_epoch(losses({not_a_number, 2, std::log(0.0), 3}), "valid_loss") == 1u);  // -infinity is not finite
}

TEST_CASE("there is no best epoch when no epoch has a finite value") {
  CHECK_FALSE(train::best_epoch(losses({not_a_number, not_a_number}), "valid_loss").has_value());
  CHECK_FALSE(train::best_epoch(History{}, "valid_loss").has_value());
}

TEST_CASE("early stopping stops once patience epochs have passed since the best") {
  // Best at epoch 2; epochs 3 and 4 do not improve, so with patience 2 the run stops after epoch 4.
  const auto callback = train::early_stopping({.monitor = "valid_loss", .patience = 2});
  CHECK(stops(callback, losses({1.0, 0.8, 0.9, 0.85})) == std::vector<int>{4});
}

TEST_CASE("early stopping waits again after a new best") {
  // Best at 2, then a new best at 4: epoch 5 is one epoch after it, epoch 6 two.
  const auto callback = train::early_stopping({.monitor = "valid_loss", .patience = 2});
  CHECK(stops(callback, losses({1.0, 0.8, 0.9, 0.7, 0.75, 0.72})) == std::vector<int>{6});
}

TEST_CASE("early stopping watches a metric where higher is better") {
  const auto callback = train::early_stopping({.monitor = "valid_accuracy", .patience = 1});
  CHECK(stops(callback, accuracies({0.5, 0.6, 0.7, 0.65})) == std::vector<int>{4});
}

TEST_CASE("early stopping ignores improvements smaller than min_delta") {
  // 0.98 and 0.97 are within 0.05 of the best 1.0, so epoch 1 stays the best.
  const auto callback = train::early_stopping({.monitor = "valid_loss", .patience = 2, .min_delta = 0.05});
  CHECK(stops(callback, losses({1.0, 0.98, 0.97})) == std::vector<int>{3});
}

TEST_CASE("early stopping names the metric and the best epoch in its reason") {
  const auto callback = train::early_stopping({.monitor = "valid_loss", .patience = 1});
  History h = losses({1.0, 0.5, 0.7});
  train::FitControl control;
  callback.on_epoch_end(h, control);
  REQUIRE(control.stopping());
  CHECK(control.reason() == "early stopping: valid_loss has not improved for 1 epoch since epoch 2");
}

TEST_CASE("early stopping does nothing while no epoch has a finite value") {
  const auto callback = train::early_stopping({.monitor = "valid_loss", .patience = 1});
  CHECK(stops(callback, losses({not_a_number, not_a_number, not_a_number})).empty());
}

TEST_CASE("early stopping rejects a patience below one and a negative min_delta") {
  CHECK_THROWS_AS(train::early_stopping({.patience = 0}), Error);
  CHECK_THROWS_AS(train::early_stopping({.min_delta = -0.1}), Error);
  CHECK_THROWS_AS(train::early_stopping({.min_delta = not_a_number}), Error);
}

TEST_CASE("save_best saves only after an epoch that is the best so far") {
  // Best so far after epochs 1 (0.5), 2 (0.7) and 4 (0.8); not after 3 (0.6) or 5 (0.8, a tie).
  const auto s = saves(train::save_best("best.weights"), accuracies({0.5, 0.7, 0.6, 0.8, 0.8}));
  CHECK(s.epochs == std::vector<int>{1, 2, 4});
  CHECK(s.paths == std::vector<std::string>(3, "best.weights"));
}

TEST_CASE("save_best watches the metric it is given") {
  const auto s = saves(train::save_best("low.weights", "valid_loss"), losses({2, 3, 1, 1.5}));
  CHECK(s.epochs == std::vector<int>{1, 3});
}

TEST_CASE("save_best without a way to save weights is an error when it would save") {
  const auto callback = train::save_best("best.weights");
  History h = accuracies({0.5});
  train::FitControl control;
  control.verbose = false;
  CHECK_THROWS_AS(callback.on_epoch_end(h, control), Error);
}

TEST_CASE("save_best rejects an empty path") { CHECK_THROWS_AS(train::save_best(""), Error); }

TEST_CASE("callbacks reject an unknown metric name when they are made") {
  CHECK_THROWS_AS(train::early_stopping({.monitor = "val_loss"}), Error);
  CHECK_THROWS_AS(train::save_best("best.weights", "accuracy"), Error);
  CHECK_THROWS_AS(train::best_epoch(losses({1}), "validation_loss"), Error);
}

TEST_CASE("the overfitting warning fires once, at the first epoch where the condition holds") {
  // The condition at an epoch c with the two before it a, b: train accuracy - valid accuracy
  // > gap at c, valid loss a < b < c, train loss at c < at a.
  struct Row {
    double train_loss, train_accuracy, valid_loss, valid_accuracy;
  };
  const std::vector<Row> rows = {
      {1.0, 0.60, 1.00, 0.58},  // 1
      {0.8, 0.70, 0.90, 0.65},  // 2
      {0.6, 0.80, 0.95, 0.68},  // 3: valid loss rose once; gap 0.12
      {0.5, 0.85, 0.97, 0.70},  // 4: rose twice, train loss fell, gap 0.15 > 0.1: warn
      {0.4, 0.90, 0.99, 0.70},  // 5: still holds, already warned
      {0.3, 0.95, 1.10, 0.71},  // 6: still holds
  };
  History h;
  std::vector<int> warned;
  std::string message;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EpochRecord r;
    r.epoch = int(i) + 1;
    r.train_loss = rows[i].train_loss, r.train_accuracy = rows[i].train_accuracy;
    r.valid_loss = rows[i].valid_loss, r.valid_accuracy = rows[i].valid_accuracy;
    h.epochs.push_back(r);
    const std::string w = train::overfitting_warning(h, 0.1);
    if (!w.empty()) {
      warned.push_back(r.epoch);
      message = w;
    }
  }
  CHECK(warned == std::vector<int>{4});
  CHECK(message.find("training accuracy 85.00% vs validation 70.00% (gap 15.0 points)") != std::string::npos);
  CHECK(message.find("validation loss rising since epoch 2") != std::string::npos);
}

TEST_CASE("the overfitting warning needs the accuracy gap to exceed its threshold") {
  History h;
  const double valid_loss[] = {1.0, 1.1, 1.2}, train_loss[] = {1.0, 0.9, 0.8};
  for (int i = 0; i < 3; ++i) {
    EpochRecord r;
    r.epoch = i + 1;
    r.train_loss = train_loss[i], r.valid_loss = valid_loss[i];
    r.train_accuracy = 0.80, r.valid_accuracy = 0.75;  // a gap of 0.05
    h.epochs.push_back(r);
  }
  CHECK(train::overfitting_warning(h, 0.1).empty());
  CHECK_FALSE(train::overfitting_warning(h, 0.04).empty());
}

TEST_CASE("the overfitting warning needs the training loss to have fallen") {
  History h;
  const double valid_loss[] = {1.0, 1.1, 1.2}, train_loss[] = {0.5, 0.4, 0.5};
  for (int i = 0; i < 3; ++i) {
    EpochRecord r;
    r.epoch = i + 1;
    r.train_loss = train_loss[i], r.valid_loss = valid_loss[i];
    r.train_accuracy = 0.9, r.valid_accuracy = 0.6;
    h.epochs.push_back(r);
  }
  CHECK(train::overfitting_warning(h, 0.1).empty());
}

TEST_CASE("a stop request keeps the first reason") {
  train::FitControl control;
  CHECK_FALSE(control.stopping());
  control.stop("first");
  control.stop("second");
  CHECK(control.stopping());
  CHECK(control.reason() == "first");
}
