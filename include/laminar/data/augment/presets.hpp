// Ready-made pipelines.
//   cifar_light():  the standard CIFAR-10 training augmentation — reflect-pad 4
//                   and crop, flip half the images, Cutout 16 (DeVries & Taylor).
//   imgaug_table(): the report's imgaug table for CIFAR-10, in its order: flip
//                   50%, crop 0-10% per side, Gaussian blur sigma 0-0.5 on 50%,
//                   linear contrast 0.75-1.5, Gaussian noise (scale 0-0.05*255,
//                   per channel on 50% of images), multiply 0.8-1.2 (per channel
//                   on 20%), affine scale 0.8-1.2, translate +-20%, rotate +-25
//                   degrees, shear +-8 degrees. imgaug ran these in random order;
//                   here the order is fixed, so an epoch is reproducible.
#pragma once

#include "geometric.hpp"
#include "occlusion.hpp"
#include "photometric.hpp"
#include "transform.hpp"

namespace laminar::augment {

inline auto cifar_light() { return pad_crop(4, Border::reflect) | hflip().with(0.5f) | cutout(16); }

inline auto imgaug_table() {
  return hflip().with(0.5f) | crop_percent(0.f, 0.1f) | gaussian_blur(0.f, 0.5f).with(0.5f) |
         linear_contrast(0.75f, 1.5f) | gaussian_noise(0.f, 0.05f * 255, 0.5f) | multiply(0.8f, 1.2f, 0.2f) |
         affine({.scale_low = 0.8f, .scale_high = 1.2f, .translate = 0.2f, .rotate = 25.f, .shear = 8.f});
}

}  // namespace laminar::augment
