// The training utilities in one run: the default Fashion-MNIST network trained
// with warmup + cosine, label smoothing and no-bias-decay, logging every epoch
// and step (CSV, JSON), drawing the curves (SVG), checkpointing every epoch —
// and then a second model resumed from the mid-run checkpoint, which must end
// with the same weights, bit for bit, and so the same test accuracy.
//
//   fashion_recipe [--data DIR] [--epochs N] [--batch N] [--lr X] [--seed N] [--out DIR]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "fashion_mnist_net.hpp"
#include "options.hpp"

using namespace laminar;

namespace {

struct Recipe {
  int epochs, batch;
  double lr;
  std::uint64_t seed;
  std::string out;

  train::FitOptions options(const data::Dataset& valid) const {
    train::FitOptions o{.epochs = epochs, .batch = batch, .seed = seed};
    o.schedule = schedule::warmup(1) + schedule::cosine();
    o.loss = loss::CrossEntropy{.label_smoothing = 0.1};
    o.validation = &valid;
    o.checkpoint = out + "/epoch-{epoch}.ckpt";
    o.log_csv = out + "/epochs.csv";
    o.log_json = out + "/run.json";
    o.log_steps_csv = out + "/steps.csv";
    return o;
  }
  // Nesterov SGD; biases and BatchNorm gamma/beta are not decayed (the default).
  optim::SGDOptions optimizer() const {
    return {.lr = lr, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4, .decay_bias_and_bn = false};
  }
};

template <class M>
bool same_weights(const M& a, const M& b) {
  for (std::size_t i = 0; i < a.parameters().size(); ++i) {
    const auto& p = *a.parameters()[i].parameter;
    const auto& q = *b.parameters()[i].parameter;
    for (long k = 0; k < p.size; ++k)
      if (p.value()[k] != q.value()[k]) return false;
  }
  return true;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) try {
  const auto start = std::chrono::steady_clock::now();
  examples::Options args(argc, argv, "fashion_recipe");
  const std::string dir = args.text("--data", "/usr/share/datasets/fashion-mnist");
  Recipe recipe{args.integer("--epochs", 6), args.integer("--batch", 128), args.real("--lr", 0.1),
                std::uint64_t(args.integer("--seed", 1)), args.text("--out", "fashion_recipe_out")};
  args.finish();
  if (recipe.epochs < 2) throw std::runtime_error("--epochs must be at least 2, to resume from the middle");
  std::filesystem::create_directories(recipe.out);

  const auto data = data::fashion_mnist(dir);
  std::printf("Fashion-MNIST from %s: %ld train, %ld validation (stratified), %ld test images\n", dir.c_str(),
              data.train.size(), data.valid.size(), data.test.size());
  std::printf("schedule %s, label smoothing 0.1, no-bias-decay, logs and checkpoints in %s/\n",
              (schedule::warmup(1) + schedule::cosine()).describe().c_str(), recipe.out.c_str());

  // The uninterrupted run.
  Model<examples::FashionNet, cpu> model(recipe.seed);
  optim::SGD opt(model, recipe.optimizer());
  const auto history = train::fit(model, opt, data.train, recipe.options(data.valid));
  const auto test = train::evaluate(model, data.test, history.normalization);
  plot::save_svg(recipe.out + "/curves.svg", plot::training_curves(history));
  std::printf("%s", test.report().c_str());
  std::printf("curves: %s/curves.svg (from %s/run.json; build/examples/plot_log redraws it)\n", recipe.out.c_str(),
              recipe.out.c_str());
  const double first_seconds = seconds_since(start);

  // The same run, resumed from the middle by a fresh process-like start: other
  // initial weights, a new optimizer, everything else from the checkpoint.
  const int middle = recipe.epochs / 2;
  Model<examples::FashionNet, cpu> resumed(recipe.seed + 1000);
  optim::SGD resumed_opt(resumed, recipe.optimizer());
  auto options = recipe.options(data.valid);
  options.resume = recipe.out + "/epoch-" + std::to_string(middle) + ".ckpt";
  options.checkpoint.clear();
  options.log_csv = recipe.out + "/resumed-epochs.csv";
  options.log_json = recipe.out + "/resumed-run.json";
  options.log_steps_csv = recipe.out + "/resumed-steps.csv";
  std::printf("resuming from %s\n", options.resume.c_str());
  const auto resumed_history = train::fit(resumed, resumed_opt, data.train, options);
  const auto resumed_test = train::evaluate(resumed, data.test, resumed_history.normalization);

  std::printf("uninterrupted: test accuracy %.2f%%, validation %.2f%%\n", 100 * test.accuracy,
              100 * history.epochs.back().valid_accuracy);
  std::printf("resumed at epoch %d: test accuracy %.2f%%, validation %.2f%%\n", middle, 100 * resumed_test.accuracy,
              100 * resumed_history.epochs.back().valid_accuracy);
  const bool identical = same_weights(model, resumed);
  std::printf("weights after the last epoch: %s\n", identical ? "bit-identical" : "DIFFERENT");
  std::printf("wall time %s (first run %s)\n", train::format_duration(seconds_since(start)).c_str(),
              train::format_duration(first_seconds).c_str());
  return identical && resumed_test.accuracy == test.accuracy ? 0 : 2;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_recipe: %s\n", e.what());
  return 1;
}
