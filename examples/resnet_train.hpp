// The body of resnet_cifar's training: one network of the recipe, built,
// trained and reported. Included by resnet_cifar_depth_<Depth>.cpp only.
#pragma once

#include <cstdio>

#include <laminar/laminar.hpp>

#include "cifar.hpp"
#include "resnet.hpp"
#include "resnet_recipe.hpp"

namespace resnet_cifar {

using namespace laminar;

template <class Net>
void train_net(const Recipe& r, const examples::CifarFlags& flags, const data::Splits& data,
               const examples::Stopwatch& clock) {
  std::printf("%s", describe<Net>().c_str());
  Model<Net, cpu> model(flags.seed);
  examples::apply_precision(model, flags);
  if (r.zero_gamma) init::zero_gamma(model);
  optim::SGD opt(model, {.lr = r.lr, .momentum = 0.9, .weight_decay = r.weight_decay,
                         .decay_bias_and_bn = !r.no_bias_decay});
  const auto crop_flip = augment::pad_crop(4) | augment::hflip().with(0.5f);
  train::FitOptions fit{.epochs = flags.epochs, .batch = r.batch, .seed = flags.seed,
                        .schedule = schedule_of(r, flags.epochs),
                        .augment = r.cutout > 0 ? train::Augmentation(crop_flip | augment::cutout(r.cutout))
                                                : train::Augmentation(crop_flip),
                        .loss = {.label_smoothing = r.label_smoothing},
                        .validation = &data.valid};
  if (r.mixup > 0)
    fit.mix = augment::MixOptions{.kind = augment::MixKind::mixup, .alpha = r.mixup,
                                  .label_smoothing = r.label_smoothing};
  print_recipe(r, flags.epochs);
  const auto history = train::fit(model, opt, data.train, fit);
  examples::evaluate_test_file(model, flags, history);
  examples::print_summary("resnet_cifar", history, clock);
}

// Each (depth, shortcut) pair is its own network type.
template <int Depth>
void train_depth(const Recipe& r, const examples::CifarFlags& flags, const data::Splits& data,
                 const examples::Stopwatch& clock) {
  if (r.shortcut == "A")
    train_net<examples::ResNet<Depth, examples::ZeroPadDownBlock>>(r, flags, data, clock);
  else if (r.shortcut == "D")
    train_net<examples::ResNet<Depth, examples::AvgPoolDownBlock>>(r, flags, data, clock);
  else
    train_net<examples::ResNet<Depth, examples::ProjectionDownBlock>>(r, flags, data, clock);
}

}  // namespace resnet_cifar
