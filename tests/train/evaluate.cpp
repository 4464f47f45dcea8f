// train::evaluate: accuracy, top-5, per-class accuracy, the confusion matrix and
// the mean loss of a hand-set model on a hand-made dataset; batching, errors,
// the training mode, and test-time augmentation averaging the views' logits.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <laminar/backend/cpu/ops.hpp>
#include <laminar/layers/dense.hpp>
#include <laminar/layers/dropout.hpp>
#include <laminar/layers/flatten.hpp>
#include <laminar/net/model.hpp>
#include <laminar/net/sequential.hpp>
#include <laminar/train/evaluate.hpp>
#include <string>
#include <vector>

#include "support/model.hpp"

using namespace laminar;

namespace {

using Net = Sequential<Input<1, 1, 2>, Flatten, Dense<3>>;
using M = Model<Net, cpu, double>;
using SevenClassNet = Sequential<Input<1, 1, 2>, Flatten, Dense<7>>;

using laminar_test::set_parameter;

data::Dataset dataset(int channels, int height, int width, int classes, std::vector<std::uint8_t> images,
                      std::vector<std::uint8_t> labels) {
  data::Dataset d{channels, height, width, classes, std::move(images), std::move(labels), "the test set"};
  REQUIRE(long(d.images.size()) == d.size() * d.sample_size());
  return d;
}

// -log softmax(z)[label], the closed form.
double cross_entropy(const std::vector<double>& z, int label) {
  double sum = 0;
  for (const double v : z) sum += std::exp(v);
  return std::log(sum) - z[std::size_t(label)];
}

// Against the smoothed target (1 - s) one-hot + s / K.
double smoothed_cross_entropy(const std::vector<double>& z, int label, double s) {
  double sum = 0;
  for (const double v : z) sum += std::exp(v);
  const double log_sum = std::log(sum), k = double(z.size());
  double loss = 0;
  for (std::size_t c = 0; c < z.size(); ++c)
    loss -= ((int(c) == label ? 1 - s : 0) + s / k) * (z[c] - log_sum);
  return loss;
}

// Pixels 0 or 255 give inputs 0 or 1 under the unit normalisation. With
//   W = [[1, 0], [0, 1], [0.6, 0.6]],  b = (0.1, 0, 0)
// the four images have the logits and predictions
//   A = (255, 0):   (1.1, 0, 0.6)  -> 0
//   B = (0, 255):   (0.1, 1, 0.6)  -> 1
//   C = (255, 255): (1.1, 1, 1.2)  -> 2
//   Z = (0, 0):     (0.1, 0, 0)    -> 0
void set_three_class_model(M& model) {
  set_parameter(model, "2.weight", {1, 0, 0, 1, 0.6, 0.6});
  set_parameter(model, "2.bias", {0.1, 0, 0});
}
const std::vector<double> logits_a = {1.1, 0, 0.6}, logits_b = {0.1, 1, 0.6}, logits_c = {1.1, 1, 1.2},
                          logits_z = {0.1, 0, 0};

// Samples A/0, B/1, C/2, B/0, A/1, C/0, Z/0: right are A/0, B/1, C/2 and Z/0.
data::Dataset seven_samples() {
  return dataset(1, 1, 2, 3, {255, 0, 0, 255, 255, 255, 0, 255, 255, 0, 255, 255, 0, 0}, {0, 1, 2, 0, 1, 0, 0});
}

double seven_samples_loss() {
  return (cross_entropy(logits_a, 0) + cross_entropy(logits_b, 1) + cross_entropy(logits_c, 2) +
          cross_entropy(logits_b, 0) + cross_entropy(logits_a, 1) + cross_entropy(logits_c, 0) +
          cross_entropy(logits_z, 0)) /
         7;
}

const data::Normalization unit = data::Normalization::unit(1);

}  // namespace

TEST_CASE("evaluate reports the share of samples whose largest logit is the label") {
  M model;
  set_three_class_model(model);
  const auto e = train::evaluate(model, seven_samples(), unit);
  CHECK(e.count == 7);
  CHECK(e.classes == 3);
  CHECK(e.accuracy == doctest::Approx(4.0 / 7).epsilon(1e-15));
}

TEST_CASE("evaluate reports each class's accuracy and sample count") {
  M model;
  set_three_class_model(model);
  const auto e = train::evaluate(model, seven_samples(), unit);
  CHECK(e.per_class_count == std::vector<long>{4, 2, 1});
  REQUIRE(e.per_class_accuracy.size() == 3);
  CHECK(e.per_class_accuracy[0] == doctest::Approx(0.5).epsilon(1e-15));  // A/0 and Z/0 of four
  CHECK(e.per_class_accuracy[1] == doctest::Approx(0.5).epsilon(1e-15));  // B/1 of two
  CHECK(e.per_class_accuracy[2] == doctest::Approx(1.0).epsilon(1e-15));  // C/2
}

TEST_CASE("a class without samples has NaN accuracy and count zero") {
  M model;
  set_three_class_model(model);
  const auto e = train::evaluate(model, dataset(1, 1, 2, 3, {255, 0, 0, 255, 0, 255}, {0, 1, 0}), unit);
  CHECK(e.per_class_count == std::vector<long>{2, 1, 0});
  CHECK(e.per_class_accuracy[0] == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(e.per_class_accuracy[1] == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(std::isnan(e.per_class_accuracy[2]));
}

TEST_CASE("the confusion matrix counts true labels in rows against predictions in columns") {
  M model;
  set_three_class_model(model);
  const auto e = train::evaluate(model, seven_samples(), unit);
  // A/0, Z/0 -> (0, 0); B/0 -> (0, 1); C/0 -> (0, 2); A/1 -> (1, 0); B/1 -> (1, 1); C/2 -> (2, 2).
  const long expected[3][3] = {{2, 1, 1}, {1, 1, 0}, {0, 0, 1}};
  REQUIRE(e.confusion.size() == 9);
  for (int truth = 0; truth < 3; ++truth)
    for (int predicted = 0; predicted < 3; ++predicted) {
      INFO("truth " << truth << ", predicted " << predicted);
      CHECK(e.confused(truth, predicted) == expected[truth][predicted]);
    }
}

TEST_CASE("the evaluation loss is the mean cross-entropy of the logits") {
  M model;
  set_three_class_model(model);
  const auto e = train::evaluate(model, seven_samples(), unit);
  CHECK(e.loss == doctest::Approx(seven_samples_loss()).epsilon(1e-12));
}

TEST_CASE("a batch size that does not divide the dataset gives the same metrics") {
  M model;
  set_three_class_model(model);
  for (const int batch : {2, 3, 6, 100}) {
    INFO("batch " << batch);
    const auto e = train::evaluate(model, seven_samples(), unit, {.batch = batch});
    CHECK(e.count == 7);
    CHECK(e.accuracy == doctest::Approx(4.0 / 7).epsilon(1e-15));
    CHECK(e.loss == doctest::Approx(seven_samples_loss()).epsilon(1e-12));
    CHECK(e.confusion == std::vector<long>{2, 1, 1, 1, 1, 0, 0, 0, 1});
  }
}

TEST_CASE("top-5 counts the samples whose label is among the five largest logits") {
  // Zero weights and b = (6, 5, 4, 3, 2, 1, 0): class k is ranked k + 1 for every image.
  Model<SevenClassNet, cpu, double> model;
  set_parameter(model, "2.weight", std::vector<double>(14, 0.0));
  set_parameter(model, "2.bias", {6, 5, 4, 3, 2, 1, 0});
  // Labels ranked 1, 5, 6 and 7: the first two are in the top five, only the first is top-1.
  const auto e = train::evaluate(model, dataset(1, 1, 2, 7, {9, 80, 0, 0, 255, 3, 17, 17}, {0, 4, 5, 6}), unit);
  CHECK(e.top5 == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(e.accuracy == doctest::Approx(0.25).epsilon(1e-15));
}

TEST_CASE("a label tied with the fifth largest logit counts in the top five") {
  // b = (6, 5, 4, 3, 2, 2, 0): class 5 ties class 4 for fifth place; four classes score strictly higher.
  Model<SevenClassNet, cpu, double> model;
  set_parameter(model, "2.weight", std::vector<double>(14, 0.0));
  set_parameter(model, "2.bias", {6, 5, 4, 3, 2, 2, 0});
  const auto e = train::evaluate(model, dataset(1, 1, 2, 7, {0, 0}, {5}), unit);
  CHECK(e.top5 == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(e.accuracy == doctest::Approx(0.0));
}

TEST_CASE("with fewer than five classes every sample is in the top five") {
  M model;
  set_three_class_model(model);
  CHECK(train::evaluate(model, seven_samples(), unit).top5 == doctest::Approx(1.0).epsilon(1e-15));
}

TEST_CASE("the short form takes the batch size and the loss") {
  M model;
  set_three_class_model(model);
  const auto e = train::evaluate(model, seven_samples(), unit, 3, loss::CrossEntropy{.label_smoothing = 0.1});
  const double expected = (smoothed_cross_entropy(logits_a, 0, 0.1) + smoothed_cross_entropy(logits_b, 1, 0.1) +
                           smoothed_cross_entropy(logits_c, 2, 0.1) + smoothed_cross_entropy(logits_b, 0, 0.1) +
                           smoothed_cross_entropy(logits_a, 1, 0.1) + smoothed_cross_entropy(logits_c, 0, 0.1) +
                           smoothed_cross_entropy(logits_z, 0, 0.1)) /
                          7;
  CHECK(e.loss == doctest::Approx(expected).epsilon(1e-12));
  CHECK(e.accuracy == doctest::Approx(4.0 / 7).epsilon(1e-15));
}

TEST_CASE("evaluate rejects a dataset whose images have another shape than the network's input") {
  M model;
  CHECK_THROWS_AS(train::evaluate(model, dataset(1, 2, 1, 3, {0, 0}, {0}), unit), Error);
  CHECK_THROWS_AS(train::evaluate(model, dataset(2, 1, 1, 3, {0, 0}, {0}), data::Normalization::unit(2)), Error);
}

TEST_CASE("evaluate rejects a dataset with more classes than the network outputs") {
  M model;
  CHECK_THROWS_AS(train::evaluate(model, dataset(1, 1, 2, 4, {0, 0}, {3}), unit), Error);
}

TEST_CASE("evaluate rejects a label outside the network's outputs") {
  M model;
  CHECK_THROWS_AS(train::evaluate(model, dataset(1, 1, 2, 3, {0, 0, 0, 0}, {1, 3}), unit), Error);
}

TEST_CASE("evaluate rejects a normalisation for another number of channels") {
  M model;
  CHECK_THROWS_AS(train::evaluate(model, seven_samples(), data::Normalization::unit(3)), Error);
}

TEST_CASE("evaluate rejects a batch size below one") {
  M model;
  CHECK_THROWS_AS(train::evaluate(model, seven_samples(), unit, {.batch = 0}), Error);
  CHECK_THROWS_AS(train::evaluate(model, seven_samples(), unit, -2), Error);
}

TEST_CASE("evaluate leaves the model in the mode it found it in") {
  M model;
  model.train();
  train::evaluate(model, seven_samples(), unit);
  CHECK(model.training());
  model.eval();
  train::evaluate(model, seven_samples(), unit);
  CHECK_FALSE(model.training());
}

TEST_CASE("evaluate measures in evaluation mode, where dropout is the identity") {
  // In training mode dropout would zero or double every non-zero input, changing the logits.
  Model<Sequential<Input<1, 1, 2>, Flatten, Dropout<0.5>, Dense<3>>, cpu, double> model;
  set_parameter(model, "3.weight", {1, 0, 0, 1, 0.6, 0.6});
  set_parameter(model, "3.bias", {0.1, 0, 0});
  model.train();
  const auto e = train::evaluate(model, seven_samples(), unit);
  CHECK(e.loss == doctest::Approx(seven_samples_loss()).epsilon(1e-12));
  CHECK(e.accuracy == doctest::Approx(4.0 / 7).epsilon(1e-15));
}

TEST_CASE("flip test-time augmentation averages the logits of the image and its mirror") {
  // W = [[2, 0], [0, 1], [0, 0]], b = 0. Image (0, 255): logits (0, 1, 0), predicting 1;
  // its mirror (255, 0): (2, 0, 0). The mean (1, 0.5, 0) predicts the label 0.
  M model;
  set_parameter(model, "2.weight", {2, 0, 0, 1, 0, 0});
  set_parameter(model, "2.bias", {0, 0, 0});
  const auto samples = dataset(1, 1, 2, 3, {0, 255}, {0});
  const auto plain = train::evaluate(model, samples, unit);
  CHECK(plain.accuracy == doctest::Approx(0.0));
  CHECK(plain.loss == doctest::Approx(cross_entropy({0, 1, 0}, 0)).epsilon(1e-12));
  const auto flipped = train::evaluate(model, samples, unit, {.tta = augment::TestTime::flip});
  CHECK(flipped.accuracy == doctest::Approx(1.0));
  CHECK(flipped.loss == doctest::Approx(cross_entropy({1, 0.5, 0}, 0)).epsilon(1e-12));
}

TEST_CASE("flip_translate test-time augmentation averages the logits of six views") {
  // Identity weights: the logits are the mean view. Of the image (a, b, c) = (1, 0, 0),
  // with one-pixel reflected shifts, the views are
  //   (a, b, c), (b, a, b), (b, c, b), and flipped (c, b, a), (b, c, b), (b, a, b),
  // whose mean is ((a + 4b + c) / 6, (a + b + c) / 3, (a + 4b + c) / 6) = (1/6, 1/3, 1/6).
  Model<Sequential<Input<1, 1, 3>, Flatten, Dense<3>>, cpu, double> model;
  set_parameter(model, "2.weight", {1, 0, 0, 0, 1, 0, 0, 0, 1});
  set_parameter(model, "2.bias", {0, 0, 0});
  const auto e = train::evaluate(model, dataset(1, 1, 3, 3, {255, 0, 0}, {1}), unit,
                                 {.tta = augment::TestTime::flip_translate});
  CHECK(e.accuracy == doctest::Approx(1.0));
  CHECK(e.loss == doctest::Approx(cross_entropy({1.0 / 6, 1.0 / 3, 1.0 / 6}, 1)).epsilon(1e-12));
}

TEST_CASE("the report prints the headline metrics and one row per true class") {
  M model;
  set_three_class_model(model);
  const std::string report = train::evaluate(model, seven_samples(), unit).report();
  CHECK(report.starts_with("accuracy 57.14%  top-5 100.00%  loss "));
  CHECK(report.find("(7 images)\n") != std::string::npos);
  CHECK(report.find("\n    0    50.00%       4 |                2     1     1\n") != std::string::npos);
  CHECK(report.find("\n    2   100.00%       1 |                0     0     1\n") != std::string::npos);
}

TEST_CASE("the report headline is whole even for an enormous loss") {
  train::Evaluation e;
  e.loss = 1e300;
  e.count = 3;
  const std::string report = e.report();
  CHECK(report.find(".0000  (3 images)\n") != std::string::npos);
}
