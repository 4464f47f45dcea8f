// Writes a PNG grid that shows what each augmentation does: the first row holds
// eight CIFAR-10 training images, every further row the same images through one
// transform (seeded, so the picture is reproducible). Row names are printed.
//
//   augment_grid [--data DIR] [--out augment_grid.png] [--seed N] [--scale 3]
#include <stb/stb_image_write.h>

#include <cstdio>
#include <laminar/data/augment/mix.hpp>
#include <laminar/data/augment/presets.hpp>
#include <laminar/data/cifar10.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "options.hpp"

using namespace laminar;

namespace {

constexpr int columns = 8, channels = 3, side = 32, sample = channels * side * side;

struct Grid {
  int scale, rows = 0;
  std::vector<std::uint8_t> rgb;  // (rows * side * scale, columns * side * scale, 3)

  // Appends one row of `columns` CHW images, nearest-neighbour upscaled, with
  // a 2-pixel gap under it.
  void add(const std::uint8_t* images) {
    const int width = columns * side * scale, height = side * scale + 2;
    rgb.resize(rgb.size() + std::size_t(width) * height * 3, 255);
    std::uint8_t* row = rgb.data() + std::size_t(rows) * width * height * 3;
    for (int i = 0; i < columns; ++i)
      for (int y = 0; y < side * scale; ++y)
        for (int x = 0; x < side * scale; ++x)
          for (int c = 0; c < channels; ++c)
            row[(std::size_t(y) * width + i * side * scale + x) * 3 + c] =
                images[i * sample + (c * side + y / scale) * side + x / scale];
    ++rows;
  }
};

}  // namespace

int main(int argc, char** argv) try {
  examples::Options args(argc, argv, "augment_grid");
  const std::string dir = args.text("--data", "build/data/cifar10");
  const std::string out = args.text("--out", "augment_grid.png");
  const auto seed = std::uint64_t(args.integer("--seed", 3));
  Grid grid{args.integer("--scale", 3)};
  args.finish();

  const auto data = data::read_cifar10(dir + "/data_batch_1.bin");
  std::vector<long> indices(columns);
  std::iota(indices.begin(), indices.end(), 0L);
  const std::vector<std::uint8_t> originals(data.image(0), data.image(0) + columns * sample);
  grid.add(originals.data());
  std::printf("row  1: original\n");

  auto show = [&](const char* name, const auto& pipeline) {
    auto images = originals;
    pipeline.apply(images.data(), columns, channels, side, side, indices.data(), seed, 0);
    grid.add(images.data());
    std::printf("row %2d: %s\n", grid.rows, name);
  };
  using namespace augment;
  show("pad 4 (reflect) + random crop", pipeline(pad_crop(4, Border::reflect)));
  show("horizontal flip, p = 0.5", pipeline(hflip().with(0.5f)));
  show("cutout 16", pipeline(cutout(16)));
  show("crop 0-10% per side, resized back", pipeline(crop_percent(0.f, 0.1f)));
  show("random resized crop, scale 0.35-1", pipeline(random_resized_crop(0.35f, 1.f)));
  show("affine: scale 0.8-1.2, translate 20%, rotate 25, shear 8",
       pipeline(affine({.scale_low = 0.8f, .scale_high = 1.2f, .translate = 0.2f, .rotate = 25.f, .shear = 8.f})));
  show("brightness 0.4 + contrast 0.4 + saturation 0.4 + hue 0.1",
       brightness(0.4f) | contrast(0.4f) | saturation(0.4f) | hue(0.1f));
  show("PCA lighting, alpha std 0.5 (exaggerated to be visible)", pipeline(pca_lighting(lighting_from(data), 0.5f)));
  show("multiply 0.8-1.2, per channel on 20%", pipeline(multiply(0.8f, 1.2f, 0.2f)));
  show("Gaussian noise, scale 0-0.05*255, per channel on 50%", pipeline(gaussian_noise(0.f, 12.75f, 0.5f)));
  show("Gaussian blur, sigma 0-1.5", pipeline(gaussian_blur(0.f, 1.5f)));
  show("preset cifar_light()", cifar_light());
  show("preset imgaug_table()", imgaug_table());

  // Batch-level mixing works on float batches; shown here in [0, 1].
  for (auto kind : {MixKind::mixup, MixKind::cutmix}) {
    std::vector<float> batch(originals.begin(), originals.end()), targets(columns * 10);
    std::vector<int> labels(data.labels.begin(), data.labels.begin() + columns);
    Mixer<float> mixer({.kind = kind, .alpha = 1.0});
    const double l = mixer.apply(batch.data(), labels.data(), columns, channels, side, side, 10, seed, 1,
                                 targets.data());
    std::vector<std::uint8_t> images(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) images[i] = std::uint8_t(batch[i] + 0.5f);
    grid.add(images.data());
    std::printf("row %2d: %s, lambda %.2f\n", grid.rows, kind == MixKind::mixup ? "mixup" : "CutMix", l);
  }

  const int width = columns * side * grid.scale, height = grid.rows * (side * grid.scale + 2);
  if (!stbi_write_png(out.c_str(), width, height, 3, grid.rgb.data(), width * 3))
    throw Error(out + ": could not write the PNG");
  std::printf("wrote %s (%d x %d)\n", out.c_str(), width, height);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "augment_grid: %s\n", e.what());
  return 1;
}
