// Training checkpoints: a checkpoint that does not fit the run — another
// optimizer, a missing or unexpected weight average, a damaged or foreign file —
// is refused with the file's name and leaves model and optimizer untouched; the
// best-weights callback writes a file that io:: loads with its normalisation.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <laminar/laminar.hpp>
#include <string>
#include <vector>

#include "support/model.hpp"

using namespace laminar;

namespace {

using Net = Sequential<Input<1, 4, 4>, Conv<3, 3, 3>, BatchNorm, ReLU, Flatten, Dense<3>>;

data::Dataset stripes(int n) {
  data::Dataset d{1, 4, 4, 3, std::vector<std::uint8_t>(std::size_t(n) * 16), std::vector<std::uint8_t>(std::size_t(n)),
                  "stripes"};
  for (int i = 0; i < n; ++i) {
    const int label = i % 3;
    d.labels[std::size_t(i)] = std::uint8_t(label);
    for (int k = 0; k < 16; ++k) d.images[std::size_t(i) * 16 + k] = std::uint8_t(k % 4 == label ? 200 : 20 + 7 * i % 50);
  }
  return d;
}

std::string scratch(const std::string& name) {
  const std::string directory = std::string(LAMINAR_TEST_TMP_DIR) + "/checkpoint-" + std::to_string(::getpid());
  std::filesystem::create_directories(directory);
  return directory + "/" + name;
}


// A checkpoint of one epoch of SGD training, written to `name`.
std::string trained_checkpoint(const std::string& name, double ema = 0) {
  const std::string path = scratch(name);
  Model<Net, cpu> model(1);
  optim::SGD opt(model, {.lr = 0.05});
  train::fit(model, opt, stripes(24), {.epochs = 1, .batch = 8, .ema = ema, .checkpoint = path, .verbose = false});
  return path;
}

}  // namespace

TEST_CASE("a checkpoint written by another optimizer is refused and changes nothing") {
  const std::string path = trained_checkpoint("sgd.ckpt");
  Model<Net, cpu> model(7);
  optim::Adam opt(model, {});
  const auto before = laminar_test::all_values(model);
  CHECK_THROWS_WITH_AS(train::load_checkpoint(path, model, opt, nullptr),
                       doctest::Contains("was written by the SGD optimizer, not Adam"), Error);
  CHECK(laminar_test::all_values(model) == before);
}

TEST_CASE("resuming with or without a weight average must match the checkpoint") {
  const std::string plain = trained_checkpoint("plain.ckpt"), averaged = trained_checkpoint("averaged.ckpt", 0.9);
  Model<Net, cpu> model(7);
  optim::SGD opt(model, {.lr = 0.05});
  CHECK_THROWS_WITH_AS(train::fit(model, opt, stripes(24), {.epochs = 2, .batch = 8, .ema = 0.9, .resume = plain, .verbose = false}),
                       doctest::Contains("has no weight average, but this run keeps one"), Error);
  CHECK_THROWS_WITH_AS(train::fit(model, opt, stripes(24), {.epochs = 2, .batch = 8, .resume = averaged, .verbose = false}),
                       doctest::Contains("has a weight average, but this run keeps none"), Error);
}

TEST_CASE("a damaged training checkpoint is an error naming the file, and the model keeps its weights") {
  const std::string path = trained_checkpoint("damaged.ckpt");
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    char byte = 0;
    f.read(&byte, 1);
    f.seekp(200);
    byte = char(byte ^ 0x5a);
    f.write(&byte, 1);
  }
  Model<Net, cpu> model(7);
  optim::SGD opt(model, {.lr = 0.05});
  const auto before = laminar_test::all_values(model);
  CHECK_THROWS_WITH_AS(train::load_checkpoint(path, model, opt, nullptr), doctest::Contains(path.c_str()), Error);
  CHECK(laminar_test::all_values(model) == before);
}

TEST_CASE("a weights file is not a training checkpoint, and the message says how to load it") {
  const std::string path = scratch("weights-only.ckpt");
  Model<Net, cpu> model(3);
  io::save_weights(path, model);
  optim::SGD opt(model, {.lr = 0.05});
  CHECK_THROWS_WITH_AS(train::load_checkpoint(path, model, opt, nullptr), doctest::Contains("load it with io::load_weights"),
                       Error);
}

TEST_CASE("save_best writes the measured weights with their normalisation whenever validation improves") {
  const std::string path = scratch("best.weights");
  std::filesystem::remove(path);
  Model<Net, cpu> model(2);
  optim::SGD opt(model, {.lr = 0.05});
  const auto d = stripes(48);
  const auto h = train::fit(model, opt, d,
                            {.epochs = 3, .batch = 8, .validation_split = 0.25,
                             .callbacks = {train::save_best(path, "valid_loss")}, .verbose = false});
  REQUIRE(std::filesystem::exists(path));
  Model<Net, cpu> loaded(9);
  io::load_weights(path, loaded);
  const auto norm = io::load_normalization(path);
  CHECK(norm.mean == h.normalization.mean);
  CHECK(norm.std == h.normalization.std);
  // The last epoch was the best one exactly when the file holds the final weights.
  const bool last_is_best = *train::best_epoch(h, "valid_loss") + 1 == h.epochs.size();
  CHECK((laminar_test::all_values(loaded) == laminar_test::all_values(model)) == last_is_best);
}
