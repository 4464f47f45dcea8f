// A lecture's VGG16-like CIFAR-10 net with BatchNorm: VGG's configuration D
// (Simonyan & Zisserman 2015) scaled to 32x32 inputs — thirteen 3x3
// convolutions, each with BatchNorm and ReLU, in blocks 64-64, 128-128,
// 256x3, 512x3, 512x3, each block closed by 2x2 max-pooling down to 512 x 1 x 1
// — then dropout, dense 512 and dense 10: 15.0 M parameters, 628 MFLOP per
// image forward (about three times that per training image). Trained with
// SGD, Nesterov momentum 0.9, weight decay 5e-4 (weights only), batch 128,
// lr 0.1 after a 2-epoch linear warmup, then cosine decay to 0, on flipped and
// pad-4-cropped images. The figure this net is known for is about 92-93% after
// 100 or more epochs on the full 50,000 images; with batches 1-4 for training,
// expect about 92% on batch 5 after the default 100 epochs. The log shows
// describe's FLOPs per layer, a progress line per epoch with images per
// second, and the closing summary.
//
//   vgg_cifar [--data DIR] [--epochs 100] [--batch 128] [--lr 0.1] [--seed N] [--test FILE] [--limit N]
//             [--precision float|bf16]
#include <algorithm>
#include <cstdio>
#include <exception>

#include <laminar/laminar.hpp>

#include "cifar.hpp"
#include "options.hpp"

using namespace laminar;

using B = BatchNorm;
using R = ReLU;
using Net = Sequential<Input<3, 32, 32>,
                       Conv<3, 3, 64>, B, R, Conv<3, 3, 64>, B, R, MaxPool<2>,                              // 64 x 16 x 16
                       Conv<3, 3, 128>, B, R, Conv<3, 3, 128>, B, R, MaxPool<2>,                            // 128 x 8 x 8
                       Conv<3, 3, 256>, B, R, Conv<3, 3, 256>, B, R, Conv<3, 3, 256>, B, R, MaxPool<2>,     // 256 x 4 x 4
                       Conv<3, 3, 512>, B, R, Conv<3, 3, 512>, B, R, Conv<3, 3, 512>, B, R, MaxPool<2>,     // 512 x 2 x 2
                       Conv<3, 3, 512>, B, R, Conv<3, 3, 512>, B, R, Conv<3, 3, 512>, B, R, MaxPool<2>,     // 512 x 1 x 1
                       // VGG's classifier shrunk to one hidden layer, dropout on both its sides.
                       Flatten, Dropout<0.5>, Dense<512>, R, Dropout<0.5>, Dense<10>>;

int main(int argc, char** argv) try {
  const examples::Stopwatch clock;
  examples::Options args(argc, argv, "vgg_cifar");
  const auto flags = examples::cifar_flags(args, 100);
  const int batch = args.integer("--batch", 128);
  const double lr = args.real("--lr", 0.1);
  args.finish();

  const auto data = examples::load_cifar10(flags);
  std::printf("%s", describe<Net>().c_str());
  Model<Net, cpu> model(flags.seed);
  examples::apply_precision(model, flags);
  optim::SGD opt(model, {.lr = lr, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4});
  // Two epochs of warmup, fewer in a short run so that cosine keeps most of it.
  const double warmup = std::min(2.0, 0.2 * flags.epochs);
  const auto history = train::fit(model, opt, data.train,
                                  {.epochs = flags.epochs, .batch = batch, .seed = flags.seed,
                                   .schedule = schedule::warmup(warmup) + schedule::cosine(),
                                   .augment = augment::pad_crop(4) | augment::hflip().with(0.5f),
                                   .validation = &data.valid});
  examples::evaluate_test_file(model, flags, history);
  examples::print_summary("vgg_cifar", history, clock);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "vgg_cifar: %s\n", e.what());
  return 1;
}
