// SELU against BatchNorm + ReLU (the student report's comparison): the same
// 6-conv + 2-FC CIFAR-10 net, Xavier-initialised, once with SELU activations
// (the report: 79.31%) and once with BatchNorm + ReLU (the report: 76.53%).
// The log shows the net's layer table, a line per epoch (loss, accuracy,
// validation) and the closing validation accuracy; run both variants to fill
// the two rows of the report's table.
//
// Conv widths 32-32-M-64-64-M-128-128-M (3x3, same padding), FC 512, FC 10 are
// a reconstruction: the report names the layer counts, not the widths. Both
// variants take init::xavier_normal, as the report did, not the LeCun normal
// that SELU's fixed point assumes (Klambauer et al. 2017). Dropout sits where
// a Keras-style report net puts it: 0.25 after each pooling stage and 0.5
// before the last Dense, the same in both variants. Plain Dropout, not SELU's
// alpha dropout: laminar has only the former, and the comparison keeps the
// regulariser equal. Adam, lr 1e-3, batch 128, constant rate; no augmentation
// by default (the comparison is about activation and normalisation).
//
//   selu_cifar [--variant selu|bn] [--augment none|flip|light] [--lr 0.001] [--batch 128]
//              [--data DIR] [--epochs 30] [--seed N] [--test FILE] [--limit N] [--precision float|bf16]
#include <cstdio>
#include <stdexcept>
#include <string>

#include <laminar/laminar.hpp>

#include "cifar.hpp"

using namespace laminar;

using SeluNet = Sequential<Input<3, 32, 32>,
                           Conv<3, 3, 32>, SELU, Conv<3, 3, 32>, SELU, MaxPool<2>, Dropout<0.25>,     // 32 x 16 x 16
                           Conv<3, 3, 64>, SELU, Conv<3, 3, 64>, SELU, MaxPool<2>, Dropout<0.25>,     // 64 x 8 x 8
                           Conv<3, 3, 128>, SELU, Conv<3, 3, 128>, SELU, MaxPool<2>, Dropout<0.25>,   // 128 x 4 x 4
                           Flatten, Dense<512>, SELU, Dropout<0.5>, Dense<10>>;

using BatchNormNet = Sequential<Input<3, 32, 32>,
                                Conv<3, 3, 32>, BatchNorm, ReLU, Conv<3, 3, 32>, BatchNorm, ReLU, MaxPool<2>,
                                Dropout<0.25>,                                                           // 32 x 16 x 16
                                Conv<3, 3, 64>, BatchNorm, ReLU, Conv<3, 3, 64>, BatchNorm, ReLU, MaxPool<2>,
                                Dropout<0.25>,                                                           // 64 x 8 x 8
                                Conv<3, 3, 128>, BatchNorm, ReLU, Conv<3, 3, 128>, BatchNorm, ReLU, MaxPool<2>,
                                Dropout<0.25>,                                                           // 128 x 4 x 4
                                Flatten, Dense<512>, BatchNorm, ReLU, Dropout<0.5>, Dense<10>>;

struct Recipe {
  double lr = 1e-3;
  int batch = 128;
  std::string augment = "none";
};

train::Augmentation augmentation(const std::string& name) {
  if (name == "none") return {};
  if (name == "flip") return augment::hflip().with(0.5f);
  if (name == "light") return augment::cifar_light();
  throw std::runtime_error("--augment must be none, flip or light, got \"" + name + "\"");
}

template <class Net>
void run(const char* title, const examples::CifarFlags& flags, const Recipe& recipe) {
  const examples::Stopwatch clock;
  const auto data = examples::load_cifar10(flags);
  std::printf("%s, Xavier normal initialisation, Adam lr %g, batch %d, augmentation %s\n", title, recipe.lr,
              recipe.batch, recipe.augment.c_str());
  std::printf("%s", describe<Net>().c_str());
  Model<Net, cpu> model(flags.seed);
  init::xavier_normal(model, {.seed = flags.seed});
  examples::apply_precision(model, flags);
  optim::Adam opt(model, {.lr = recipe.lr});
  const auto history = train::fit(model, opt, data.train,
                                  {.epochs = flags.epochs, .batch = recipe.batch, .seed = flags.seed,
                                   .augment = augmentation(recipe.augment), .validation = &data.valid});
  examples::evaluate_test_file(model, flags, history);
  examples::print_summary(title, history, clock);
}

int main(int argc, char** argv) try {
  examples::Options args(argc, argv, "selu_cifar");
  const std::string variant = args.text("--variant", "selu");
  Recipe recipe;
  recipe.augment = args.text("--augment", recipe.augment);
  recipe.lr = args.real("--lr", recipe.lr);
  recipe.batch = args.integer("--batch", recipe.batch);
  const examples::CifarFlags flags = examples::cifar_flags(args, 30);
  args.finish();
  augmentation(recipe.augment);  // an unknown name fails before the data is read
  if (variant == "selu")
    run<SeluNet>("selu_cifar (SELU)", flags, recipe);
  else if (variant == "bn")
    run<BatchNormNet>("selu_cifar (BatchNorm + ReLU)", flags, recipe);
  else
    throw std::runtime_error("--variant must be selu or bn, got \"" + variant + "\"");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "selu_cifar: %s\n", e.what());
  return 1;
}
