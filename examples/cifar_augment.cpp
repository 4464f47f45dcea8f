// CIFAR-10 through the batch loader with the light augmentation preset
// (reflect-pad 4 + crop, flip, Cutout 16): a small BatchNorm CNN trained on
// data_batch_1..4 and validated on data_batch_5, with warmup + cosine.
//
//   cifar_augment [--data DIR] [--epochs N] [--batch N] [--lr X] [--seed N] [--test FILE]
#include <chrono>
#include <cstdio>
#include <string>

#include <laminar/laminar.hpp>

#include "options.hpp"

using namespace laminar;

using Net = Sequential<Input<3, 32, 32>,
                       Conv<3, 3, 32>, BatchNorm, ReLU,
                       Conv<3, 3, 32>, BatchNorm, ReLU, MaxPool<2>,    // 32 x 16 x 16
                       Conv<3, 3, 64>, BatchNorm, ReLU,
                       Conv<3, 3, 64>, BatchNorm, ReLU, MaxPool<2>,    // 64 x 8 x 8
                       Conv<3, 3, 128>, BatchNorm, ReLU, MaxPool<2>,   // 128 x 4 x 4
                       GlobalAvgPool, Dense<10>>;

int main(int argc, char** argv) try {
  const auto start = std::chrono::steady_clock::now();
  examples::Options args(argc, argv, "cifar_augment");
  const std::string dir = args.text("--data", "build/data/cifar10");
  const int epochs = args.integer("--epochs", 5);
  const int batch = args.integer("--batch", 128);
  const double lr = args.real("--lr", 0.1);
  const auto seed = std::uint64_t(args.integer("--seed", 1));
  const std::string test_file = args.text("--test", "");
  args.finish();

  const auto data = data::cifar10(dir);
  std::printf("CIFAR-10 from %s: %ld train (batches 1-4), %ld validation (batch 5)\n", dir.c_str(), data.train.size(),
              data.valid.size());
  std::printf("%s", describe<Net>().c_str());
  Model<Net, cpu> model(seed);
  optim::SGD opt(model, {.lr = lr, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4});
  const auto history = train::fit(model, opt, data.train,
                                  {.epochs = epochs, .batch = batch, .seed = seed,
                                   .schedule = schedule::warmup(1) + schedule::cosine(),
                                   .augment = augment::cifar_light(), .validation = &data.valid});
  if (!test_file.empty()) {
    const auto test = train::evaluate(model, data::read_cifar10(test_file), history.normalization,
                                      {.tta = augment::TestTime::flip_translate});
    std::printf("test (%s, 6-view TTA): %s", test_file.c_str(), test.report().c_str());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("validation accuracy %.2f%% after %d epochs\n", 100 * history.epochs.back().valid_accuracy,
              int(history.epochs.size()));
  std::printf("wall time %s (%.1f s)\n", train::format_duration(seconds).c_str(), seconds);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "cifar_augment: %s\n", e.what());
  return 1;
}
