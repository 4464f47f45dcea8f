// The airbench94 recipe (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a
// single GPU") on the CPU: a 2x2 patch-whitening convolution initialised from
// the data, three conv-pool-BN-GELU groups with identity-initialised
// convolutions, BatchNorm with frozen scale, Nesterov SGD at momentum 0.85 with
// 64x the rate on BatchNorm biases, a warmup then linear decay over 9.9 epochs,
// alternating flips, 2-pixel translations, label smoothing 0.2, a lookahead
// every 5 steps, and 6-view test-time augmentation. airbench reports 94.0% on
// the original CIFAR-10 test set; a PyTorch port reached 90.5% on this
// project's JPEG-re-encoded copy, so compare against
// benchmarks/peers/speedrun_torch.py on the same data, not the paper.
//
//   speedrun_cifar [--precision float|bf16] [--final 0|1] [--test FILE] [--epochs 9.9] [--batch 1024]
//                  [--data DIR] [--seed N] [--limit N]
//
// Tuning (the default) trains on data_batch_1..4 and reports data_batch_5;
// --final 1 trains on all five batches and reports --test FILE if given.
// docs/results.md spells the recipe out step by step; the PyTorch peer follows
// the same text, so the two compare like for like.
#include <cmath>
#include <cstdio>
#include <string>

#include "cifar.hpp"

using namespace laminar;

namespace {

// airbench's BatchNorm: running statistics move 0.4 of the way to the batch's
// each step (its "momentum 0.6"), and an epsilon that is effectively zero.
using Norm = BatchNormWith<0.4, 1e-12>;

using Net = Sequential<Input<3, 32, 32>,
                       Conv<2, 2, 24, 1, valid>, GELU,                                        // 1-2:   24 x 31 x 31
                       Conv<3, 3, 64>, MaxPool<2>, Norm, GELU, Conv<3, 3, 64>, Norm, GELU,     // 3-9:   64 x 15 x 15
                       Conv<3, 3, 256>, MaxPool<2>, Norm, GELU, Conv<3, 3, 256>, Norm, GELU,   // 10-16: 256 x 7 x 7
                       Conv<3, 3, 256>, MaxPool<2>, Norm, GELU, Conv<3, 3, 256>, Norm, GELU,   // 17-23: 256 x 3 x 3
                       GlobalMaxPool, Dense<10>, Scale<1.0 / 9>>;                             // 24-26

constexpr const char* whiten = "1";
constexpr const char* group_convs[] = {"3", "7", "10", "14", "17", "21"};
constexpr const char* head = "25";

// airbench's constants are for a loss summed over the batch; for laminar's mean
// loss the same update has lr x batch and weight decay / batch (see the spec).
struct Recipe {
  double epochs = 9.9;
  int batch = 1024;
  double lr_sum = 11.5 / (1024 * (1 + 1 / (1 - 0.85)));
  double wd_sum = 0.0153 * 1024 / (1024 * (1 + 1 / (1 - 0.85)));
  double momentum = 0.85, bias_scale = 64, label_smoothing = 0.2;
  int whiten_bias_epochs = 3, lookahead_every = 5, translate = 2;
  long whitening_images = 5000;
  double whitening_epsilon = 5e-4;
};

template <class M>
void initialise(M& model, const Recipe& r, const data::Dataset& train, const data::Normalization& norm) {
  // PyTorch's default for convolutions and linear layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  init::kaiming_uniform(model, {.nonlinearity = init::Nonlinearity::leaky_relu, .negative_slope = std::sqrt(5.0)});
  init::zeros(model, Role::bias);
  for (const char* conv : group_convs) init::dirac(model, std::string(conv) + ".weight");
  init::patch_whitening(model, whiten, train, norm, {.images = r.whitening_images, .epsilon = r.whitening_epsilon});
}

// What trains: not the whitening filters, not BatchNorm's scale, and not the
// biases airbench's layers do not have (the convolutions before BatchNorm, the head).
template <class M>
void freeze_fixed_parts(M& model) {
  train::freeze(model, std::string(whiten) + ".weight");
  train::freeze(model, std::string(head) + ".bias");
  for (const char* conv : group_convs) train::freeze(model, std::string(conv) + ".bias");
  for (const auto& named : model.parameters())
    if (named.name.ends_with(".gamma")) named.parameter->frozen = true;
}

}  // namespace

int main(int argc, char** argv) try {
  const examples::Stopwatch clock;
  examples::Options args(argc, argv, "speedrun_cifar");
  examples::CifarFlags flags = examples::common_cifar_flags(args);
  Recipe recipe;
  recipe.epochs = args.real("--epochs", recipe.epochs);
  recipe.batch = args.integer("--batch", recipe.batch);
  const bool final_run = args.integer("--final", 0) != 0;
  args.finish();
  if (!(recipe.epochs > 0)) throw Error("--epochs must be positive, got " + std::to_string(recipe.epochs));
  if (recipe.batch < 1) throw Error("--batch must be at least 1, got " + std::to_string(recipe.batch));

  data::Splits data;
  if (final_run) {
    data = data::cifar10(flags.dir, /*validation_from_batch5=*/false);
    data.valid = {};
    if (flags.limit > 0) data.train = data.train.slice(0, std::min(flags.limit, data.train.size()));
    std::printf("CIFAR-10 from %s: %ld training images (all five batches), no validation\n", flags.dir.c_str(),
                data.train.size());
  } else {
    data = examples::load_cifar10(flags);
  }
  const long steps_per_epoch = data.train.size() / recipe.batch;
  if (steps_per_epoch < 1)
    throw Error("--batch " + std::to_string(recipe.batch) + " is larger than the " +
                std::to_string(data.train.size()) + " training images");
  const long total_steps = long(std::ceil(recipe.epochs * double(steps_per_epoch)));
  const double spe = double(steps_per_epoch);

  std::printf("%s", describe<Net>().c_str());
  Model<Net, cpu> model(flags.seed);
  examples::apply_precision(model, flags);
  const auto norm = data::Normalization::standardize(data.train);
  initialise(model, recipe, data.train, norm);
  freeze_fixed_parts(model);

  const double lr = recipe.lr_sum * recipe.batch, wd = recipe.wd_sum / recipe.batch;
  optim::SGD opt(model, {.lr = lr, .momentum = recipe.momentum, .nesterov = true, .weight_decay = wd,
                         .decay_bias_and_bn = true});
  for (const auto& named : model.parameters())
    if (named.name.ends_with(".beta")) {
      opt.set_lr_scale(named.name, recipe.bias_scale);
      opt.set_weight_decay_scale(named.name, 1 / recipe.bias_scale);
    }

  // airbench's lookahead: every 5 steps the weights move to an average whose
  // weight on the past ramps up as 0.95^5 (t / T)^3; the run ends on the average.
  train::Lookahead lookahead(model);
  const long whiten_bias_steps = long(recipe.whiten_bias_epochs) * steps_per_epoch;
  const auto after_step = [&](long steps) {
    if (steps == whiten_bias_steps) train::freeze(model, std::string(whiten) + ".bias");
    if (steps % recipe.lookahead_every == 0)
      lookahead.update(std::pow(0.95, 5) * std::pow(double(steps) / double(total_steps), 3));
    if (steps == total_steps) lookahead.update(1.0);
  };

  const auto warmup_end = double(long(0.2 * double(total_steps)));
  train::FitOptions o{.epochs = int(std::ceil(double(total_steps) / spe)), .batch = recipe.batch, .seed = flags.seed};
  // Under 5 steps the warmup has no step of its own: decay from the peak at once.
  o.schedule = warmup_end >= 1
                   ? schedule::piecewise_linear({{0, 0.2}, {warmup_end / spe, 1}, {double(total_steps) / spe, 0}})
                   : schedule::piecewise_linear({{0, 1}, {double(total_steps) / spe, 0}});
  o.augment = augment::alternating_flip() | augment::pad_crop(recipe.translate, augment::Border::reflect);
  o.loss = loss::CrossEntropy{.label_smoothing = recipe.label_smoothing};
  o.normalization = norm;
  o.max_steps = total_steps;
  o.after_step = after_step;
  o.drop_last = true;
  o.overfit_gap = 0;
  std::printf("airbench94: %ld steps of %d (%.2f epochs of %ld steps), lr %.4g (x%.0f on BatchNorm biases), "
              "wd %.4g, Nesterov momentum %.2f, label smoothing %.1f, lookahead every %d steps\n",
              total_steps, recipe.batch, double(total_steps) / spe, steps_per_epoch, lr, recipe.bias_scale, wd,
              recipe.momentum, recipe.label_smoothing, recipe.lookahead_every);

  const examples::Stopwatch training;
  const auto history = train::fit(model, opt, data.train, o);
  const double train_seconds = training.seconds();

  const data::Dataset* target = final_run ? nullptr : &data.valid;
  data::Dataset test;
  if (!flags.test_file.empty()) {
    test = data::read_cifar10(flags.test_file);
    target = &test;
  }
  std::printf("training: %.1f s, %.3f s/step, %.0f images/s\n", train_seconds, train_seconds / double(total_steps),
              double(total_steps) * recipe.batch / train_seconds);
  if (target) {
    const auto plain = train::evaluate(model, *target, norm);
    const auto tta = train::evaluate(model, *target, norm, {.tta = augment::TestTime::flip_translate});
    std::printf("%s (%ld images): accuracy %.2f%% with 6-view TTA, %.2f%% without\n",
                target == &test ? flags.test_file.c_str() : "validation, data_batch_5", tta.count, 100 * tta.accuracy,
                100 * plain.accuracy);
  }
  const double seconds = clock.seconds();
  std::printf("wall time %s (%.1f s)\n", train::format_duration(seconds).c_str(), seconds);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "speedrun_cifar: %s\n", e.what());
  return 1;
}
