// Model weights in checkpoints: exact round trips (BatchNorm statistics
// included), strict loading that names what does not fit and changes nothing,
// partial loading for a new head, and float/double conversion.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <laminar/laminar.hpp>
#include <map>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/gradient_check.hpp"
#include <laminar/io/weights.hpp>

using namespace laminar;
using laminar_test::Random;
using test_files::contains;

namespace {

// Parameters: 1.weight (4*2*3*3 = 72), 1.bias (4), 2.gamma, 2.beta,
// 2.running_mean, 2.running_var (4 each), 5.weight (Width * 100), 5.bias (Width).
template <int Width>
using Net = Sequential<Input<2, 5, 5>, Conv<3, 3, 4>, BatchNorm, ReLU, Flatten, Dense<Width>>;

template <class M>
using Snapshot = std::map<std::string, std::vector<typename M::value_type>>;

template <class M>
Snapshot<M> snapshot(const M& model) {
  Snapshot<M> values;
  for (const auto& p : model.parameters())
    values[p.name].assign(p.parameter->value(), p.parameter->value() + p.parameter->size);
  return values;
}

// Every parameter drawn afresh, running variances positive, so no value is a
// default a failed load could leave behind unnoticed.
template <class M>
void randomize(M& model, std::uint64_t seed) {
  Random random(seed);
  for (const auto& p : model.parameters()) {
    const bool variance = p.name.ends_with("running_var");
    for (long i = 0; i < p.parameter->size; ++i)
      p.parameter->value()[i] =
          typename M::value_type(variance ? random.uniform(0.5, 2.0) : random.uniform(-1.0, 1.0));
  }
}

std::string file(const std::string& name) { return test_files::scratch("weights", name).string(); }

template <class M>
std::vector<typename M::value_type> evaluate(M& model) {
  Random random(99);
  const auto x = random.uniform(3 * 2 * 5 * 5, -1.0, 1.0);
  const std::vector<typename M::value_type> input(x.begin(), x.end());
  model.eval();
  return laminar_test::forward(model, input.data(), 3);
}

}  // namespace

TEST_CASE("saved weights load back identically, statistics included, and give the same output") {
  Model<Net<3>, cpu, float> source(1);
  randomize(source, 11);
  const std::string path = file("round_trip.ckpt");
  io::save_weights(path, source);

  Model<Net<3>, cpu, float> target(2);
  io::load_weights(path, target);
  CHECK(snapshot(target) == snapshot(source));
  CHECK(evaluate(target) == evaluate(source));
}

TEST_CASE("write_parameters stores every parameter, the network description and the element type") {
  Model<Net<3>, cpu, double> model(1);
  io::CheckpointWriter w;
  io::write_parameters(w, model, "ema/");
  const auto r = io::CheckpointReader::parse(w.serialize(), "memory");
  CHECK(r.names() == std::vector<std::string>{"ema/network", "ema/element_type", "ema/1.weight",
                                              "ema/1.bias", "ema/2.gamma", "ema/2.beta",
                                              "ema/2.running_mean", "ema/2.running_var",
                                              "ema/5.weight", "ema/5.bias"});
  CHECK(r.text("ema/network") == describe<Net<3>>());
  CHECK(r.text("ema/element_type") == "f64");
  CHECK(r.array<double>("ema/2.running_var") == std::vector<double>(4, 1.0));
  CHECK(r.count("ema/5.weight") == 300);

  Model<Net<3>, cpu, double> copy(5);
  io::read_parameters(r, copy, {}, "ema/");
  CHECK(snapshot(copy) == snapshot(model));
}

TEST_CASE("a network with another head width is refused naming the parameter and leaves the model unchanged") {
  Model<Net<3>, cpu, float> source(1);
  const std::string path = file("width_3.ckpt");
  io::save_weights(path, source);

  Model<Net<4>, cpu, float> target(2);
  const auto before = snapshot(target);
  CHECK_THROWS_WITH_AS(io::load_weights(path, target),
                       contains("cannot load " + path +
                                " into this model: parameter 5.weight has 300 values in the file but "
                                "400 in the model (the file was saved from a different network than "
                                "this model's)"),
                       Error);
  CHECK(snapshot(target) == before);
}

TEST_CASE("strict loading names a parameter the file lacks and one the model lacks") {
  using Body = Sequential<Input<2, 5, 5>, Conv<3, 3, 4>, BatchNorm, ReLU, Flatten>;
  const std::string body_path = file("body.ckpt"), full_path = file("full.ckpt");
  io::save_weights(body_path, Model<Body, cpu, float>(1));
  io::save_weights(full_path, Model<Net<3>, cpu, float>(1));

  Model<Net<3>, cpu, float> full(2);
  const auto full_before = snapshot(full);
  CHECK_THROWS_WITH_AS(io::load_weights(body_path, full),
                       contains("parameter 5.weight (300 values) is missing from the file"), Error);
  CHECK(snapshot(full) == full_before);

  Model<Body, cpu, float> body(2);
  const auto body_before = snapshot(body);
  CHECK_THROWS_WITH_AS(io::load_weights(full_path, body),
                       contains("the file's parameter 5.weight (300 values) is not in the model"), Error);
  CHECK(snapshot(body) == body_before);
}

TEST_CASE("non-strict loading takes the body and keeps a new head of another width") {
  Model<Net<3>, cpu, float> source(1);
  randomize(source, 12);
  const std::string path = file("pretrained.ckpt");
  io::save_weights(path, source);

  Model<Net<4>, cpu, float> target(2);
  auto expected = snapshot(target);
  for (const auto& [name, values] : snapshot(source))
    if (!name.starts_with("5.")) expected[name] = values;
  io::load_weights(path, target, {.strict = false});
  CHECK(snapshot(target) == expected);
}

TEST_CASE("skip_prefixes keep those layers' values even where the sizes match") {
  Model<Net<3>, cpu, float> source(1);
  randomize(source, 13);
  const std::string path = file("same_head.ckpt");
  io::save_weights(path, source);

  Model<Net<3>, cpu, float> target(2);
  auto expected = snapshot(target);
  for (const auto& [name, values] : snapshot(source))
    if (!name.starts_with("5.")) expected[name] = values;
  io::load_weights(path, target, {.skip_prefixes = {"5."}, .strict = false});
  CHECK(snapshot(target) == expected);

  // Strict loading with the head skipped accepts the same file and still keeps the head.
  Model<Net<3>, cpu, float> strict_target(2);
  io::load_weights(path, strict_target, {.skip_prefixes = {"5."}});
  CHECK(snapshot(strict_target) == expected);
}

TEST_CASE("a file whose parameters match none of the model's is refused") {
  using Other = Sequential<Input<7>, Dense<2>>;
  const std::string path = file("other.ckpt");
  io::save_weights(path, Model<Other, cpu, float>(1));
  Model<Net<3>, cpu, float> target(2);
  const auto before = snapshot(target);
  CHECK_THROWS_WITH_AS(io::load_weights(path, target, {.strict = false}),
                       contains("no parameter of the file matches one of the model's by name and size"),
                       Error);
  CHECK(snapshot(target) == before);

  io::CheckpointWriter w;
  w.add_text("note", "no weights here");
  const std::string empty_path = file("no_weights.ckpt");
  w.save(empty_path);
  CHECK_THROWS_WITH_AS(io::load_weights(empty_path, target),
                       contains(empty_path + ": holds no model weights under \"model/\""), Error);
}

TEST_CASE("a float checkpoint loads into a double model exactly and a double one rounds into float") {
  Model<Net<3>, cpu, float> single(1);
  randomize(single, 14);
  const std::string single_path = file("single.ckpt");
  io::save_weights(single_path, single);

  Model<Net<3>, cpu, double> reference(2);
  io::load_weights(single_path, reference);
  for (const auto& [name, values] : snapshot(single)) {
    CAPTURE(name);
    CHECK(snapshot(reference)[name] == std::vector<double>(values.begin(), values.end()));
  }
  // The same weights in double give the float run's output to float rounding:
  // each output sums about a hundred products, a relative error near 1e-6.
  const std::vector<float> y_single = evaluate(single);
  const std::vector<double> y_reference = evaluate(reference);
  REQUIRE(y_single.size() == y_reference.size());
  for (std::size_t i = 0; i < y_single.size(); ++i)
    CHECK(double(y_single[i]) == doctest::Approx(y_reference[i]).epsilon(1e-5));

  randomize(reference, 15);
  const std::string double_path = file("double.ckpt");
  io::save_weights(double_path, reference);
  Model<Net<3>, cpu, float> rounded(3);
  io::load_weights(double_path, rounded);
  for (const auto& [name, values] : snapshot(reference)) {
    CAPTURE(name);
    std::vector<float> expected;
    for (double v : values) expected.push_back(float(v));
    CHECK(snapshot(rounded)[name] == expected);
  }
}
