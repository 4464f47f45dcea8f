// The body of resnet_cifar's training: one network of the recipe, built,
// trained and reported. Included only by the translation units written from
// resnet_cifar_network.cpp.in, one network each.
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

template <DownShortcut Kind>
struct DownBlockOf;
template <>
struct DownBlockOf<DownShortcut::zero_pad> {
  template <int Width>
  using type = examples::ZeroPadDownBlock<Width>;
};
template <>
struct DownBlockOf<DownShortcut::projection> {
  template <int Width>
  using type = examples::ProjectionDownBlock<Width>;
};
template <>
struct DownBlockOf<DownShortcut::avg_pool> {
  template <int Width>
  using type = examples::AvgPoolDownBlock<Width>;
};

template <int Depth, DownShortcut Kind>
void train_network(const Recipe& r, const examples::CifarFlags& flags, const data::Splits& data,
                   const examples::Stopwatch& clock) {
  train_net<examples::ResNet<Depth, DownBlockOf<Kind>::template type>>(r, flags, data, clock);
}

}  // namespace resnet_cifar
