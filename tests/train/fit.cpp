// train::fit end to end: the default example's network learns Fashion-MNIST in
// one epoch, and data that does not fit the network is refused by name.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <laminar/laminar.hpp>
#include <laminar/data/idx.hpp>

#include "../../examples/fashion_mnist_net.hpp"
#include "support/model.hpp"

using namespace laminar;

TEST_CASE("the default network reaches 85% Fashion-MNIST test accuracy after one epoch") {
  const auto data = data::fashion_mnist(LAMINAR_FASHION_MNIST_DIR);
  examples::FashionRecipe recipe;
  recipe.epochs = 1;
  Model<examples::FashionNet, cpu> model(1);
  optim::SGD opt(model, recipe.optimizer());
  const auto history = train::fit(model, opt, data.train,
                                  {.epochs = 1, .batch = recipe.batch, .seed = 1,
                                   .schedule = recipe.schedule(),
                                   .verbose = false});
  const auto test = train::evaluate(model, data.test, history.normalization);
  MESSAGE("one epoch: test accuracy " << test.accuracy << ", train loss " << history.epochs[0].train_loss);
  CHECK(test.count == 10000);
  CHECK(test.accuracy >= 0.85);
}

TEST_CASE("fit refuses data whose samples do not match the network input") {
  using Net = Sequential<Input<3, 8, 8>, Flatten, Dense<10>>;
  Model<Net, cpu> model;
  optim::SGD opt(model, {});
  data::Dataset wrong{1, 8, 8, 10, std::vector<std::uint8_t>(64 * 4), {0, 1, 2, 3}, "four-gray-images"};
  CHECK_THROWS_WITH_AS(train::fit(model, opt, wrong, {.epochs = 1, .verbose = false}),
                       doctest::Contains("four-gray-images has samples of 1x8x8 but the network expects Shape<3,8,8>"),
                       Error);
}

TEST_CASE("fit stops with a message when the loss becomes NaN") {
  using Net = Sequential<Input<1, 4, 4>, Flatten, Dense<2>>;
  Model<Net, cpu> model;
  optim::SGD opt(model, {.lr = 1e38, .momentum = 0.0});
  data::Dataset d{1, 4, 4, 2, std::vector<std::uint8_t>(16 * 8), {0, 1, 0, 1, 0, 1, 0, 1}, "pattern"};
  for (std::size_t i = 0; i < d.images.size(); ++i) d.images[i] = std::uint8_t((i * 97) % 256);
  CHECK_THROWS_WITH_AS(train::fit(model, opt, d, {.epochs = 3, .batch = 2, .verbose = false}),
                       doctest::Contains("the loss became"), Error);
}

namespace {

// A small learnable task: 4x4 gray images whose class is the brightest quadrant,
// with a fixed pseudo-random texture, `n` samples.
data::Dataset quadrants(int n, std::uint64_t seed = 5) {
  data::Dataset d{1, 4, 4, 4, std::vector<std::uint8_t>(std::size_t(n) * 16), std::vector<std::uint8_t>(std::size_t(n)),
                  "quadrants"};
  std::uint64_t state = seed;
  const auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return std::uint32_t(state >> 33);
  };
  for (int i = 0; i < n; ++i) {
    const int label = int(next() % 4);
    d.labels[std::size_t(i)] = std::uint8_t(label);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        const int quadrant = (y / 2) * 2 + x / 2;
        d.images[std::size_t(i) * 16 + std::size_t(y * 4 + x)] =
            std::uint8_t((quadrant == label ? 140 : 40) + int(next() % 90));
      }
  }
  return d;
}

using SmallNet = Sequential<Input<1, 4, 4>, Conv<3, 3, 6>, BatchNorm, ReLU, Dropout<0.2>, Flatten, Dense<4>>;


std::string scratch_path(const std::string& name) {
  const std::string directory = std::string(LAMINAR_TEST_TMP_DIR) + "/fit-" + std::to_string(::getpid());
  std::filesystem::create_directories(directory);
  return directory + "/" + name;
}

}  // namespace

TEST_CASE("a run resumed from its mid-run checkpoint ends bit-identical to the uninterrupted run") {
  // Every piece of state fit keeps is exercised: momentum, the schedule, the
  // weight average, dropout and mixing steps, augmentation, accumulation.
  const data::Dataset d = quadrants(96);
  const std::string path = scratch_path("resume-{epoch}.ckpt");
  const auto options = [&](int epochs) {
    train::FitOptions o{.epochs = epochs, .batch = 16, .seed = 11};
    o.schedule = schedule::warmup(1) + schedule::cosine();
    o.augment = augment::hflip().with(0.5f);
    o.mix = augment::MixOptions{.kind = augment::MixKind::mixup, .alpha = 0.4};
    o.validation_split = 0.25;
    o.ema = 0.9;
    o.accumulate = 2;
    o.checkpoint = path;
    o.verbose = false;
    return o;
  };
  Model<SmallNet, cpu> whole(3);
  optim::SGD whole_opt(whole, {.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4});
  const auto full = train::fit(whole, whole_opt, d, options(4));

  Model<SmallNet, cpu> resumed(99);  // other initial weights: the checkpoint must overwrite them all
  optim::SGD resumed_opt(resumed, {.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4});
  auto o = options(4);
  o.resume = train::detail::epoch_path(path, 2);
  o.checkpoint.clear();
  const auto rest = train::fit(resumed, resumed_opt, d, o);

  CHECK(laminar_test::all_values(resumed) == laminar_test::all_values(whole));
  REQUIRE(rest.epochs.size() == full.epochs.size());
  for (std::size_t e = 0; e < full.epochs.size(); ++e) {
    CHECK(rest.epochs[e].train_loss == full.epochs[e].train_loss);
    CHECK(rest.epochs[e].valid_accuracy == full.epochs[e].valid_accuracy);
    CHECK(rest.epochs[e].learning_rate == full.epochs[e].learning_rate);
  }
  REQUIRE(rest.steps.size() == full.steps.size());
  CHECK(rest.steps.back().loss == full.steps.back().loss);
}

TEST_CASE("resuming with another seed or other data is refused by name") {
  const data::Dataset d = quadrants(32);
  const std::string path = scratch_path("refuse.ckpt");
  Model<SmallNet, cpu> model(1);
  optim::SGD opt(model, {.lr = 0.01});
  train::fit(model, opt, d, {.epochs = 1, .batch = 8, .seed = 2, .checkpoint = path, .verbose = false});
  CHECK_THROWS_WITH_AS(train::fit(model, opt, d, {.epochs = 2, .batch = 8, .seed = 3, .resume = path, .verbose = false}),
                       doctest::Contains("seed 2, this run has 3"), Error);
  const data::Dataset other = quadrants(32, 6);
  CHECK_THROWS_WITH_AS(train::fit(model, opt, other, {.epochs = 2, .batch = 8, .seed = 2, .resume = path, .verbose = false}),
                       doctest::Contains("training data of 32 samples"), Error);
}

TEST_CASE("two accumulated micro-batches take the same step as one batch of both") {
  // No BatchNorm or dropout, whose statistics and masks depend on the batching.
  using Net = Sequential<Input<1, 4, 4>, Conv<3, 3, 3>, ReLU, Flatten, Dense<4>>;
  const data::Dataset d = quadrants(32);
  Model<Net, cpu, double> one(4), two(4);
  optim::SGD opt_one(one, {.lr = 0.1, .momentum = 0.9}), opt_two(two, {.lr = 0.1, .momentum = 0.9});
  const auto norm = data::Normalization::unit(1);
  train::fit(one, opt_one, d, {.epochs = 2, .batch = 16, .normalization = norm, .shuffle = false, .verbose = false});
  train::fit(two, opt_two, d,
             {.epochs = 2, .batch = 8, .normalization = norm, .accumulate = 2, .shuffle = false, .verbose = false});
  const auto a = laminar_test::all_values(one), b = laminar_test::all_values(two);
  for (std::size_t p = 0; p < a.size(); ++p)
    for (std::size_t k = 0; k < a[p].size(); ++k) CHECK(b[p][k] == doctest::Approx(a[p][k]).epsilon(1e-12));
}

TEST_CASE("fit holds out a stratified validation split and records its metrics each epoch") {
  const data::Dataset d = quadrants(80);
  Model<SmallNet, cpu> model(2);
  optim::SGD opt(model, {.lr = 0.05});
  const auto h = train::fit(model, opt, d, {.epochs = 3, .batch = 16, .validation_split = 0.25, .verbose = false});
  REQUIRE(h.epochs.size() == 3);
  for (const auto& e : h.epochs) {
    CHECK(std::isfinite(e.valid_loss));
    CHECK(e.valid_accuracy >= 0.0);
  }
  // 60 training samples at batch 16: four steps per epoch.
  CHECK(h.steps.size() == 12);
}

TEST_CASE("the NaN guard names the layer whose parameters went non-finite") {
  using Net = Sequential<Input<1, 4, 4>, Conv<3, 3, 2>, ReLU, Flatten, Dense<4>>;
  Model<Net, cpu> model(1);
  model.parameters()[0].parameter->value()[3] = std::nanf("");
  optim::SGD opt(model, {.lr = 0.01});
  CHECK_THROWS_WITH_AS(train::fit(model, opt, quadrants(16), {.epochs = 1, .batch = 8, .verbose = false}),
                       doctest::Contains("at epoch 1, step 1 of 2 (learning rate 0.01"), Error);
  CHECK_THROWS_WITH_AS(train::fit(model, opt, quadrants(16), {.epochs = 1, .batch = 8, .verbose = false}),
                       doctest::Contains("parameter 1.weight of layer 1 (Conv<3,3,2>)"), Error);
}

TEST_CASE("fit rewrites its epoch and step logs after every epoch") {
  const std::string csv = scratch_path("epochs.csv"), json = scratch_path("run.json"), steps = scratch_path("steps.csv");
  Model<SmallNet, cpu> model(2);
  optim::SGD opt(model, {.lr = 0.05});
  const auto h = train::fit(model, opt, quadrants(48),
                            {.epochs = 2, .batch = 16, .validation_split = 0.25, .log_csv = csv, .log_json = json,
                             .log_steps_csv = steps, .verbose = false});
  const auto epochs = train::read_epoch_csv(csv);
  REQUIRE(epochs.size() == 2);
  CHECK(epochs[1].train_loss == h.epochs[1].train_loss);
  CHECK(train::read_step_csv(steps).size() == h.steps.size());
  CHECK(train::read_json(json).epochs.size() == 2);
}

TEST_CASE("early stopping ends the run and says why in the history") {
  // Without BatchNorm, whose running statistics move even at learning rate 0,
  // nothing changes, so the first epoch stays the best.
  using Net = Sequential<Input<1, 4, 4>, Conv<3, 3, 2>, ReLU, Flatten, Dense<4>>;
  Model<Net, cpu> model(2);
  optim::SGD opt(model, {.lr = 0.0});
  const auto h = train::fit(model, opt, quadrants(48),
                            {.epochs = 10, .batch = 16, .validation_split = 0.25,
                             .callbacks = {train::early_stopping({.monitor = "valid_loss", .patience = 2})},
                             .verbose = false});
  CHECK(h.epochs.size() == 3);
  CHECK(h.stop_reason.find("has not improved for 2 epochs since epoch 1") != std::string::npos);
}

TEST_CASE("frozen layers keep their weights through fit while the head trains") {
  Model<SmallNet, cpu> model(2);
  train::freeze_layers(model, 1, 2);
  const auto before = laminar_test::all_values(model);
  optim::SGD opt(model, {.lr = 0.05});
  train::fit(model, opt, quadrants(32), {.epochs = 1, .batch = 16, .verbose = false});
  const auto after = laminar_test::all_values(model);
  const auto& names = model.parameters();
  for (std::size_t p = 0; p < names.size(); ++p) {
    INFO(names[p].name);
    if (names[p].name.starts_with("1.") || names[p].name == "2.gamma" || names[p].name == "2.beta")
      CHECK(after[p] == before[p]);
    else if (names[p].parameter->trainable())
      CHECK(after[p] != before[p]);
  }
}

TEST_CASE("distillation from a teacher that matches the student exactly gives the cross-entropy term alone") {
  // With alpha = 1 the loss is plain cross-entropy, so the run equals one without a teacher.
  const data::Dataset d = quadrants(32);
  Model<SmallNet, cpu> teacher(8), student(3), plain(3);
  optim::SGD opt_s(student, {.lr = 0.05}), opt_p(plain, {.lr = 0.05});
  const auto with = train::fit(student, opt_s, d,
                               {.epochs = 1, .batch = 16, .teacher = train::distill(teacher, {.alpha = 1.0}), .verbose = false});
  const auto without = train::fit(plain, opt_p, d, {.epochs = 1, .batch = 16, .verbose = false});
  CHECK(with.epochs[0].train_loss == doctest::Approx(without.epochs[0].train_loss).epsilon(1e-6));
  CHECK(laminar_test::all_values(student) == laminar_test::all_values(plain));
}

TEST_CASE("max_steps stops mid-epoch and after_step sees every step count once") {
  const data::Dataset d = quadrants(64);  // 4 steps of 16 per epoch
  Model<SmallNet, cpu> model(2), reference(2);
  optim::SGD opt(model, {.lr = 0.05, .momentum = 0.9}), reference_opt(reference, {.lr = 0.05, .momentum = 0.9});
  std::vector<long> seen;
  const auto h = train::fit(model, opt, d,
                            {.epochs = 5, .batch = 16, .seed = 3, .max_steps = 6,
                             .after_step = [&](long steps) { seen.push_back(steps); }, .verbose = false});
  CHECK(seen == std::vector<long>{1, 2, 3, 4, 5, 6});
  REQUIRE(h.steps.size() == 6);
  REQUIRE(h.epochs.size() == 2);  // the second epoch ran half its steps
  CHECK(h.steps.back().epoch == doctest::Approx(1.25));
  // The same six steps as a run of two epochs whose last two steps never happen:
  // identical up to step 6, so the weights equal the 6-step prefix of a longer run.
  std::vector<std::vector<float>> at_six;
  train::fit(reference, reference_opt, d,
             {.epochs = 2, .batch = 16, .seed = 3,
              .after_step = [&](long steps) {
                if (steps == 6) at_six = laminar_test::all_values(reference);
              },
              .verbose = false});
  CHECK(laminar_test::all_values(model) == at_six);
}

TEST_CASE("a negative max_steps is refused by name") {
  const data::Dataset d = quadrants(16);
  Model<SmallNet, cpu> model(2);
  optim::SGD opt(model, {});
  CHECK_THROWS_WITH_AS(train::fit(model, opt, d, {.epochs = 1, .max_steps = -1, .verbose = false}),
                       doctest::Contains("max_steps = -1 is negative"), Error);
}
