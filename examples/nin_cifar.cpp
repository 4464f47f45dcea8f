// Network in Network on CIFAR-10 (Lin, Chen & Yan 2014), the student report's
// final model: 89.8% after 164 epochs. Three blocks of a 3x3 convolution with
// 192 channels and two 1x1 "mlpconv" convolutions (the per-pixel MLP), max
// then average pooling between the blocks, each followed by dropout 0.5; the
// last block's second 1x1 convolution maps to the 10 classes and global
// average pooling turns the maps into logits (no Dense layer). SGD with
// momentum 0.9 and L2 weight decay 1e-4 (the Caffe NIN solver's), the rate
// divided by 10 at half and three quarters of the run (epochs 82 and 123 of
// 164), augmentation by the report's imgaug table (augment::imgaug_table()).
// The log shows the layer table, a line per epoch and the closing accuracy.
//
// Pooling is the paper's 3x3 window with stride 2 (32 -> 15 -> 7 pixels: no
// padding, so one row and column fewer than Caffe's rounding-up). The last
// 1x1 convolution has no ReLU after it, so the logits may be negative. The
// default variant adds BatchNorm after every convolution but the last: in a
// short check (640 images, 2 epochs, batch 64) the plain net, He-initialised,
// stayed at chance (loss 2.29) where the BatchNorm net learned. The plain net
// remains as --variant plain, at a tenth of the learning rate (0.01).
//
//   nin_cifar [--variant bn|plain] [--lr X] [--weight-decay 0.0001] [--batch 128]
//             [--data DIR] [--epochs 164] [--seed N] [--test FILE] [--limit N] [--precision float|bf16]
#include <cstdio>
#include <stdexcept>
#include <string>

#include <laminar/laminar.hpp>

#include "cifar.hpp"

using namespace laminar;

using PlainNet = Sequential<Input<3, 32, 32>,
                            Conv<3, 3, 192>, ReLU, Conv<1, 1, 192>, ReLU, Conv<1, 1, 192>, ReLU,
                            MaxPool<3, 2>, Dropout<0.5>,                                   // 192 x 15 x 15
                            Conv<3, 3, 192>, ReLU, Conv<1, 1, 192>, ReLU, Conv<1, 1, 192>, ReLU,
                            AvgPool<3, 2>, Dropout<0.5>,                                   // 192 x 7 x 7
                            Conv<3, 3, 192>, ReLU, Conv<1, 1, 192>, ReLU, Conv<1, 1, 10>,  // 10 x 7 x 7
                            GlobalAvgPool>;

using BatchNormNet = Sequential<Input<3, 32, 32>,
                                Conv<3, 3, 192>, BatchNorm, ReLU, Conv<1, 1, 192>, BatchNorm, ReLU,
                                Conv<1, 1, 192>, BatchNorm, ReLU, MaxPool<3, 2>, Dropout<0.5>,  // 192 x 15 x 15
                                Conv<3, 3, 192>, BatchNorm, ReLU, Conv<1, 1, 192>, BatchNorm, ReLU,
                                Conv<1, 1, 192>, BatchNorm, ReLU, AvgPool<3, 2>, Dropout<0.5>,  // 192 x 7 x 7
                                Conv<3, 3, 192>, BatchNorm, ReLU, Conv<1, 1, 192>, BatchNorm, ReLU,
                                Conv<1, 1, 10>,                                                 // 10 x 7 x 7
                                GlobalAvgPool>;

struct Recipe {
  double lr = 0.1;
  double weight_decay = 1e-4;
  int batch = 128;
};

template <class Net>
void run(const char* title, const examples::CifarFlags& flags, const Recipe& recipe) {
  const examples::Stopwatch clock;
  const auto data = examples::load_cifar10(flags);
  std::printf("%s: SGD lr %g, momentum 0.9, weight decay %g, batch %d, augmentation imgaug_table()\n", title,
              recipe.lr, recipe.weight_decay, recipe.batch);
  std::printf("%s", describe<Net>().c_str());
  Model<Net, cpu> model(flags.seed);
  examples::apply_precision(model, flags);
  optim::SGD opt(model, {.lr = recipe.lr, .momentum = 0.9, .weight_decay = recipe.weight_decay});
  const double epochs = flags.epochs;
  const auto history = train::fit(model, opt, data.train,
                                  {.epochs = flags.epochs, .batch = recipe.batch, .seed = flags.seed,
                                   .schedule = schedule::step({0.5 * epochs, 0.75 * epochs}, 0.1),
                                   .augment = augment::imgaug_table(), .validation = &data.valid});
  examples::evaluate_test_file(model, flags, history);
  examples::print_summary(title, history, clock);
}

int main(int argc, char** argv) try {
  examples::Options args(argc, argv, "nin_cifar");
  const std::string variant = args.text("--variant", "bn");
  if (variant != "bn" && variant != "plain")
    throw std::runtime_error("--variant must be bn or plain, got \"" + variant + "\"");
  Recipe recipe;
  recipe.lr = args.real("--lr", variant == "bn" ? 0.1 : 0.01);
  recipe.weight_decay = args.real("--weight-decay", recipe.weight_decay);
  recipe.batch = args.integer("--batch", recipe.batch);
  const examples::CifarFlags flags = examples::cifar_flags(args, 164);
  args.finish();
  if (variant == "bn")
    run<BatchNormNet>("nin_cifar (BatchNorm)", flags, recipe);
  else
    run<PlainNet>("nin_cifar (plain)", flags, recipe);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "nin_cifar: %s\n", e.what());
  return 1;
}
