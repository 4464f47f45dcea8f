// CIFAR ResNets (He et al. 2016, "Deep Residual Learning for Image Recognition",
// section 4.2) with the refinements of He et al. 2019 ("Bag of Tricks for Image
// Classification with Convolutional Neural Networks") as flags. The defaults are
// the 2016 recipe: ResNet-20 with option A shortcuts, SGD with momentum 0.9,
// learning rate 0.1, weight decay 1e-4 on every parameter, batch 128, 4-pixel
// zero padding + random 32x32 crop + horizontal flip, the learning rate divided
// by 10 at 50% and 75% of the run. The paper reports 8.75% test error (91.25%
// accuracy) for ResNet-20, 7.51% for ResNet-32 and 6.97% for ResNet-56, after 64k
// iterations on 45k images; the default 200 epochs of the 40k images of batches
// 1-4 are 62.5k iterations at batch 128, the drops at epochs 100 and 150 (31k and
// 47k iterations, the paper's 32k and 48k).
// The log: the layer table, the recipe in one line, a line per epoch (loss,
// training and validation accuracy, learning rate, images/s), then the summary.
//
//   resnet_cifar [--depth 20|32|56] [--shortcut A|projection|D] [--schedule step|cosine]
//                [--warmup EPOCHS] [--label-smoothing X] [--no-bias-decay 0|1] [--zero-gamma 0|1]
//                [--mixup ALPHA] [--cutout SIZE] [--lr X] [--batch N] [--wd X]
//                [--data DIR] [--epochs N] [--seed N] [--test FILE] [--limit N] [--precision float|bf16]
#include <cstdio>
#include <stdexcept>
#include <string>

#include <laminar/laminar.hpp>

#include "cifar.hpp"
#include "options.hpp"
#include "resnet_recipe.hpp"

using namespace laminar;
using namespace resnet_cifar;

namespace {

std::string shown(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", x);
  return text;
}

Recipe read_recipe(examples::Options& args, int epochs) {
  Recipe r;
  r.depth = args.integer("--depth", 20);
  r.shortcut = args.text("--shortcut", "A");
  r.schedule = args.text("--schedule", "step");
  r.warmup = args.real("--warmup", 0);
  r.label_smoothing = args.real("--label-smoothing", 0);
  const int no_bias_decay = args.integer("--no-bias-decay", 0);
  const int zero_gamma = args.integer("--zero-gamma", 0);
  r.mixup = args.real("--mixup", 0);
  r.cutout = args.integer("--cutout", 0);
  r.lr = args.real("--lr", 0.1);
  r.batch = args.integer("--batch", 128);
  r.weight_decay = args.real("--wd", 1e-4);
  const auto bad = [](const std::string& what) { return std::runtime_error(what); };
  if (r.depth != 20 && r.depth != 32 && r.depth != 56)
    throw bad("--depth must be 20, 32 or 56, got " + std::to_string(r.depth));
  if (r.shortcut != "A" && r.shortcut != "projection" && r.shortcut != "D")
    throw bad("--shortcut must be A, projection or D, got \"" + r.shortcut + "\"");
  if (r.schedule != "step" && r.schedule != "cosine")
    throw bad("--schedule must be step or cosine, got \"" + r.schedule + "\"");
  if (!(r.warmup >= 0 && r.warmup < epochs))
    throw bad("--warmup must be at least 0 and shorter than the " + std::to_string(epochs) + " epochs, got " +
              shown(r.warmup));
  if (!(r.label_smoothing >= 0 && r.label_smoothing < 1))
    throw bad("--label-smoothing must be in [0, 1), got " + shown(r.label_smoothing));
  if (no_bias_decay != 0 && no_bias_decay != 1)
    throw bad("--no-bias-decay must be 0 or 1, got " + std::to_string(no_bias_decay));
  if (zero_gamma != 0 && zero_gamma != 1) throw bad("--zero-gamma must be 0 or 1, got " + std::to_string(zero_gamma));
  if (!(r.mixup >= 0)) throw bad("--mixup must be 0 (off) or a positive alpha, got " + shown(r.mixup));
  if (r.cutout < 0 || r.cutout > 32) throw bad("--cutout must be 0 (off) to 32 pixels, got " + std::to_string(r.cutout));
  if (!(r.lr > 0)) throw bad("--lr must be positive, got " + shown(r.lr));
  if (r.batch < 1) throw bad("--batch must be at least 1, got " + std::to_string(r.batch));
  if (!(r.weight_decay >= 0)) throw bad("--wd must not be negative, got " + shown(r.weight_decay));
  r.no_bias_decay = no_bias_decay == 1;
  r.zero_gamma = zero_gamma == 1;
  return r;
}

}  // namespace

namespace resnet_cifar {

// The learning-rate multiplier: step drops at 50% and 75% of the run, or cosine
// to 0 (Bag of Tricks 5.1), after a linear warmup when one is asked for (3.1).
schedule::Schedule schedule_of(const Recipe& r, int epochs) {
  schedule::Schedule decay = r.schedule == "cosine" ? schedule::cosine() : schedule::step({0.5 * epochs, 0.75 * epochs});
  return r.warmup > 0 ? schedule::warmup(r.warmup) + decay : decay;
}

void print_recipe(const Recipe& r, int epochs) {
  const char* shortcut = r.shortcut == "A"            ? "A (subsample + zero channels)"
                         : r.shortcut == "projection" ? "projection (1x1 conv)"
                                                      : "D (avg pool + 1x1 conv + BN)";
  char decay[64];
  if (r.schedule == "step")
    std::snprintf(decay, sizeof decay, "step /10 at epochs %g and %g", 0.5 * epochs, 0.75 * epochs);
  else
    std::snprintf(decay, sizeof decay, "cosine");
  char mixup[32] = "off", cutout[32] = "off";
  if (r.mixup > 0) std::snprintf(mixup, sizeof mixup, "alpha %g", r.mixup);
  if (r.cutout > 0) std::snprintf(cutout, sizeof cutout, "%dx%d", r.cutout, r.cutout);
  std::printf("recipe: ResNet-%d, shortcut %s, %d epochs, batch %d, SGD lr %g momentum 0.9, weight decay %g on %s, "
              "%s, warmup %g epochs, pad-4 crop + flip, cutout %s, mixup %s, label smoothing %g, zero-gamma %s\n",
              r.depth, shortcut, epochs, r.batch, r.lr, r.weight_decay,
              r.no_bias_decay ? "weights only" : "all parameters", decay, r.warmup, cutout, mixup, r.label_smoothing,
              r.zero_gamma ? "on" : "off");
}

}  // namespace resnet_cifar

int main(int argc, char** argv) try {
  const examples::Stopwatch clock;
  examples::Options args(argc, argv, "resnet_cifar");
  const examples::CifarFlags flags = examples::cifar_flags(args, 200);
  const Recipe recipe = read_recipe(args, flags.epochs);
  args.finish();
  const auto data = examples::load_cifar10(flags);
  const DownShortcut kind = recipe.shortcut == "A"   ? DownShortcut::zero_pad
                        : recipe.shortcut == "D" ? DownShortcut::avg_pool
                                                 : DownShortcut::projection;
  const auto train = [&]<int Depth>() {
    switch (kind) {
      case DownShortcut::zero_pad: return train_network<Depth, DownShortcut::zero_pad>(recipe, flags, data, clock);
      case DownShortcut::projection: return train_network<Depth, DownShortcut::projection>(recipe, flags, data, clock);
      case DownShortcut::avg_pool: return train_network<Depth, DownShortcut::avg_pool>(recipe, flags, data, clock);
    }
  };
  switch (recipe.depth) {
    case 20: train.template operator()<20>(); break;
    case 32: train.template operator()<32>(); break;
    default: train.template operator()<56>(); break;
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "resnet_cifar: %s\n", e.what());
  return 1;
}
