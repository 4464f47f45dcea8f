// The default example: a small BatchNorm CNN trained on Fashion-MNIST (the
// Debian package dataset-fashion-mnist), with Nesterov SGD, a short linear
// warmup and a linear decay to zero. Prints a progress line per epoch, the
// validation accuracy (last 5,000 training images), the test accuracy and the
// wall time.
//
//   fashion_mnist [--data DIR] [--epochs N] [--batch N] [--lr X] [--seed N] [--precision float|bf16]
//
// --precision bf16 multiplies the convolutions' operands in bf16 (float master
// weights and activations; see laminar/core/precision.hpp).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fashion_mnist_net.hpp"
#include "options.hpp"

using namespace laminar;

int main(int argc, char** argv) try {
  const auto start = std::chrono::steady_clock::now();
  examples::Options args(argc, argv, "fashion_mnist");
  examples::FashionRecipe recipe;
  const std::string dir = args.text("--data", "/usr/share/datasets/fashion-mnist");
  recipe.epochs = args.integer("--epochs", recipe.epochs);
  recipe.batch = args.integer("--batch", recipe.batch);
  recipe.peak_lr = args.real("--lr", recipe.peak_lr);
  const auto seed = std::uint64_t(args.integer("--seed", 1));
  const std::string precision = args.text("--precision", "float");
  if (precision != "float" && precision != "bf16")
    throw Error("--precision must be float or bf16, got \"" + precision + "\"");
  args.finish();

  const auto data = data::fashion_mnist(dir);
  std::printf("Fashion-MNIST from %s: %ld train, %ld validation, %ld test images\n", dir.c_str(),
              data.train.size(), data.valid.size(), data.test.size());
  std::printf("%s", describe<examples::FashionNet>().c_str());

  Model<examples::FashionNet, cpu> model(seed);
  if (precision == "bf16") model.set_arithmetic(Arithmetic::bf16);
  std::printf("precision %s\n", precision.c_str());
  optim::SGD opt(model, recipe.optimizer());
  const auto history = train::fit(model, opt, data.train,
                                  {.epochs = recipe.epochs, .batch = recipe.batch, .seed = seed,
                                   .schedule = recipe.schedule(),
                                   .validation = &data.valid});
  const auto test = train::evaluate(model, data.test, history.normalization);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("test accuracy %.2f%% (%ld images), loss %.4f\n", 100 * test.accuracy, test.count, test.loss);
  std::printf("wall time %s (%.1f s)\n", train::format_duration(seconds).c_str(), seconds);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_mnist: %s\n", e.what());
  return 1;
}
