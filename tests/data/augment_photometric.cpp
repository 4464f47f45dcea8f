// Photometric transforms: each follows its reference formula exactly for the
// factor it drew (the tests replay the transform's Draw calls to learn it), is
// the identity at its neutral setting, and draws its randomness in the
// configured ranges and proportions.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <laminar/data/augment/photometric.hpp>
#include <numeric>
#include <vector>

using namespace laminar;
using augment::Draw;
using augment::Image;

namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint64_t seed = 11;

// The transform applied once, as sample `index` of epoch 0.
template <class T>
Bytes run(const T& transform, Bytes in, int channels, int height, int width, std::uint64_t index = 0) {
  Bytes out(in.size());
  Draw draw(seed, 0, index, 0);
  transform(Image{in.data(), channels, height, width}, Image{out.data(), channels, height, width}, draw);
  return out;
}

// The Draw the transform above received, to replay its calls.
Draw replay(std::uint64_t index = 0) { return Draw(seed, 0, index, 0); }

// Rounded to nearest and saturated: the reference for every expected value.
std::uint8_t byte(double x) { return std::uint8_t(std::lround(std::clamp(x, 0.0, 255.0))); }

Bytes random_image(long size, std::uint64_t key = 5) {
  Bytes image(static_cast<std::size_t>(size));
  for (long i = 0; i < size; ++i) image[std::size_t(i)] = std::uint8_t(philox::bits(key, 1, 0, std::uint64_t(i)));
  return image;
}

double grey(double r, double g, double b) { return 0.299 * r + 0.587 * g + 0.114 * b; }

// torchvision's adjust_hue in double: _rgb2hsv, shift, _hsv2rgb, as written there.
std::array<double, 3> torchvision_hue(double r, double g, double b, double turn) {
  const double high = std::max({r, g, b}), low = std::min({r, g, b}), chroma = high - low;
  double h = 0;
  if (chroma > 0) {
    const double rc = (high - r) / chroma, gc = (high - g) / chroma, bc = (high - b) / chroma;
    h = high == r ? bc - gc : high == g ? 2 + rc - bc : 4 + gc - rc;
    h = std::fmod(h / 6 + 1, 1.0);
  }
  const double s = high > 0 ? chroma / high : 0, v = high;
  h = std::fmod(h + turn + 1, 1.0);
  const double sextant = std::floor(h * 6), f = h * 6 - sextant;
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (int(sextant) % 6) {
    case 0:
      return {v, t, p};
    case 1:
      return {q, v, p};
    case 2:
      return {p, v, t};
    case 3:
      return {p, q, v};
    case 4:
      return {t, p, v};
    default:
      return {v, p, q};
  }
}

// Whether some pixel of a (3, H, W) image has channels that differ.
bool channels_differ(const Bytes& image) {
  const std::size_t pixels = image.size() / 3;
  for (std::size_t p = 0; p < pixels; ++p)
    if (image[p] != image[pixels + p] || image[p] != image[2 * pixels + p]) return true;
  return false;
}

}  // namespace

TEST_CASE("brightness multiplies every value by one factor from 1 - x to 1 + x") {
  const Bytes image = {0, 1, 64, 127, 128, 200, 230, 255, 17, 99, 180, 3};  // (3, 2, 2)
  for (std::uint64_t index = 0; index < 8; ++index) {
    Draw draw = replay(index);
    const float factor = draw.uniform(1.f - 0.4f, 1.f + 0.4f);
    REQUIRE(factor >= 0.6f);
    REQUIRE(factor < 1.4f);
    const Bytes out = run(augment::brightness(0.4f), image, 3, 2, 2, index);
    for (std::size_t i = 0; i < image.size(); ++i) CHECK(out[i] == byte(double(factor) * image[i]));
  }
}

TEST_CASE("contrast blends every value with the image's mean grey level") {
  const Bytes image = {10, 200, 50, 100, 250, 0};  // (3, 1, 2): red, green, blue planes
  const double mean = (grey(10, 50, 250) + grey(200, 100, 0)) / 2;
  for (std::uint64_t index = 0; index < 8; ++index) {
    Draw draw = replay(index);
    const double factor = draw.uniform(1.f - 0.5f, 1.f + 0.5f);
    const Bytes out = run(augment::contrast(0.5f), image, 3, 1, 2, index);
    for (std::size_t i = 0; i < image.size(); ++i) CHECK(out[i] == byte(factor * image[i] + (1 - factor) * mean));
  }
}

TEST_CASE("contrast of a one-channel image blends with its mean value") {
  const Bytes image = {0, 40, 80, 240};
  Draw draw = replay();
  const double factor = draw.uniform(0.2f, 0.2f), mean = 90;
  const Bytes out = run(augment::contrast(0.2f, 0.2f), image, 1, 2, 2);
  for (std::size_t i = 0; i < image.size(); ++i) CHECK(out[i] == byte(factor * image[i] + (1 - factor) * mean));
}

TEST_CASE("saturation blends each pixel with its own grey level") {
  const Bytes image = {255, 30, 90, 0, 128, 250, 10, 128, 60};  // (3, 1, 3)
  for (std::uint64_t index = 0; index < 8; ++index) {
    Draw draw = replay(index);
    const double factor = draw.uniform(1.f - 0.9f, 1.f + 0.9f);
    const Bytes out = run(augment::saturation(0.9f), image, 3, 1, 3, index);
    for (std::size_t p = 0; p < 3; ++p) {
      const double g = grey(image[p], image[3 + p], image[6 + p]);
      for (std::size_t c = 0; c < 3; ++c) CHECK(out[3 * c + p] == byte(factor * image[3 * c + p] + (1 - factor) * g));
    }
  }
}

TEST_CASE("saturation factor 0 turns every pixel into its grey level") {
  const Bytes image = random_image(3 * 4 * 4);
  const Bytes out = run(augment::saturation(0.f, 0.f), image, 3, 4, 4);
  for (std::size_t p = 0; p < 16; ++p) {
    const std::uint8_t g = byte(grey(image[p], image[16 + p], image[32 + p]));
    CHECK(out[p] == g);
    CHECK(out[16 + p] == g);
    CHECK(out[32 + p] == g);
  }
}

TEST_CASE("colour transforms leave a one-channel image unchanged") {
  const Bytes image = random_image(36);
  const augment::Lighting lighting{{0.2f, 0.1f, 0.05f},
                                   {{{0.6f, 0.6f, 0.5f}, {0.7f, 0.f, -0.7f}, {0.4f, -0.8f, 0.4f}}}};
  CHECK(run(augment::saturation(0.f, 0.f), image, 1, 6, 6) == image);
  CHECK(run(augment::hue(0.3f, 0.3f), image, 1, 6, 6) == image);
  CHECK(run(augment::pca_lighting(lighting, 1.f), image, 1, 6, 6) == image);
}

TEST_CASE("hue rotation by a third of a turn maps red to green, green to blue and blue to red") {
  // (3, 1, 4): red, green, blue, orange (255, 128, 0)
  const Bytes image = {255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0};
  const Bytes out = run(augment::hue(1.f / 3, 1.f / 3), image, 3, 1, 4);
  const Bytes expected = {0, 0, 255, 0, 255, 0, 0, 255, 0, 255, 0, 128};  // orange -> spring green (0, 255, 128)
  CHECK(out == expected);
}

TEST_CASE("hue rotation by two half turns, a full turn, returns every pixel within one level") {
  const Bytes image = random_image(3 * 16 * 16);
  const Bytes turned = run(augment::hue(0.5f, 0.5f), run(augment::hue(0.5f, 0.5f), image, 3, 16, 16), 3, 16, 16);
  for (std::size_t i = 0; i < image.size(); ++i) CHECK(std::abs(int(turned[i]) - int(image[i])) <= 1);
}

TEST_CASE("hue rotation keeps each pixel's largest and smallest channel (HSV value and saturation)") {
  const Bytes image = random_image(3 * 16 * 16);
  for (std::uint64_t index = 0; index < 4; ++index) {
    const Bytes out = run(augment::hue(0.5f), image, 3, 16, 16, index);
    for (std::size_t p = 0; p < 256; ++p) {
      CHECK(std::max({out[p], out[256 + p], out[512 + p]}) == std::max({image[p], image[256 + p], image[512 + p]}));
      CHECK(std::min({out[p], out[256 + p], out[512 + p]}) == std::min({image[p], image[256 + p], image[512 + p]}));
    }
  }
}

TEST_CASE("hue matches torchvision's RGB to HSV to RGB round trip within one level") {
  const Bytes image = random_image(3 * 16 * 16, 8);
  for (std::uint64_t index = 0; index < 6; ++index) {
    Draw draw = replay(index);
    const double turn = draw.uniform(-0.5f, 0.5f);
    const Bytes out = run(augment::hue(0.5f), image, 3, 16, 16, index);
    for (std::size_t p = 0; p < 256; ++p) {
      const auto rgb = torchvision_hue(image[p], image[256 + p], image[512 + p], turn);
      for (std::size_t c = 0; c < 3; ++c) CHECK(std::abs(int(out[256 * c + p]) - int(byte(rgb[c]))) <= 1);
    }
  }
}

TEST_CASE("linear_contrast maps v to 128 + alpha (v - 128)") {
  Bytes image(256);
  std::iota(image.begin(), image.end(), std::uint8_t(0));
  for (std::uint64_t index = 0; index < 6; ++index) {
    Draw draw = replay(index);
    const double alpha = draw.uniform(0.75f, 1.5f);
    const Bytes out = run(augment::linear_contrast(0.75f, 1.5f), image, 1, 16, 16, index);
    for (int v = 0; v < 256; ++v) CHECK(out[std::size_t(v)] == byte(128 + alpha * (v - 128)));
  }
}

TEST_CASE("multiply scales every channel by one factor when per_channel is 0") {
  const Bytes image = {0, 50, 100, 150, 200, 250};  // (3, 1, 2)
  for (std::uint64_t index = 0; index < 6; ++index) {
    Draw draw = replay(index);
    REQUIRE_FALSE(draw.bernoulli(0.f));
    const double factor = draw.uniform(0.8f, 1.2f);
    const Bytes out = run(augment::multiply(0.8f, 1.2f), image, 3, 1, 2, index);
    for (std::size_t i = 0; i < image.size(); ++i) CHECK(out[i] == byte(factor * image[i]));
  }
}

TEST_CASE("multiply with per_channel 1 scales each channel by its own factor") {
  const Bytes image = {0, 50, 100, 150, 200, 250};  // (3, 1, 2)
  Draw draw = replay();
  REQUIRE(draw.bernoulli(1.f));
  double factor[3];
  for (double& f : factor) f = draw.uniform(0.5f, 1.5f);
  const Bytes out = run(augment::multiply(0.5f, 1.5f, 1.f), image, 3, 1, 2);
  for (std::size_t i = 0; i < image.size(); ++i) CHECK(out[i] == byte(factor[i / 2] * image[i]));
}

TEST_CASE("multiply factors stay within low to high and spread across it") {
  int lowest = 255, highest = 0;
  for (std::uint64_t index = 0; index < 400; ++index) {
    const int v = run(augment::multiply(0.8f, 1.2f), Bytes{200}, 1, 1, 1, index)[0];
    lowest = std::min(lowest, v);
    highest = std::max(highest, v);
  }
  CHECK(lowest >= 160);
  CHECK(highest <= 240);
  CHECK(lowest <= 162);
  CHECK(highest >= 238);
}

TEST_CASE("multiply draws per-channel factors for about the configured fraction of images") {
  const int images = 3000;
  int separate = 0;
  for (int index = 0; index < images; ++index)
    separate += channels_differ(run(augment::multiply(0.5f, 1.5f, 0.3f), Bytes(3, 200), 3, 1, 1, std::uint64_t(index)));
  CHECK(double(separate) / images == doctest::Approx(0.3).epsilon(0.1));
}

TEST_CASE("gaussian_noise adds zero-mean Gaussian noise of the configured scale") {
  const int images = 20, size = 3 * 32 * 32;
  double sum = 0, sum_squares = 0;
  long within_one_sigma = 0;
  for (int index = 0; index < images; ++index) {
    const Bytes out = run(augment::gaussian_noise(10.f, 10.f, 1.f), Bytes(size, 128), 3, 32, 32, std::uint64_t(index));
    for (auto v : out) {
      const double d = double(v) - 128;
      sum += d;
      sum_squares += d * d;
      within_one_sigma += std::abs(d) <= 10;
    }
  }
  const double n = double(images) * size;
  CHECK(std::abs(sum / n) < 0.15);
  // Rounding to whole levels adds 1/12 to the variance.
  CHECK(std::sqrt(sum_squares / n) == doctest::Approx(std::sqrt(100 + 1.0 / 12)).epsilon(0.02));
  // |round(10 z)| <= 10 exactly when |z| < 1.05: probability 0.7063 for a normal z.
  CHECK(double(within_one_sigma) / n == doctest::Approx(0.7063).epsilon(0.02));
}

TEST_CASE("gaussian_noise draws its scale per image from low to high") {
  double smallest = 1e9, largest = 0;
  for (std::uint64_t index = 0; index < 60; ++index) {
    const Bytes out = run(augment::gaussian_noise(2.f, 20.f, 1.f), Bytes(3 * 32 * 32, 128), 3, 32, 32, index);
    double sum_squares = 0;
    for (auto v : out) sum_squares += (double(v) - 128) * (double(v) - 128);
    const double deviation = std::sqrt(sum_squares / double(out.size()));
    smallest = std::min(smallest, deviation);
    largest = std::max(largest, deviation);
  }
  CHECK(smallest > 2 * 0.9);
  CHECK(largest < 20 * 1.1);
  CHECK(smallest < 5);
  CHECK(largest > 16);
}

TEST_CASE("gaussian_noise shares one value across a pixel's channels unless per channel") {
  const Bytes grey_image(3 * 8 * 8, 128);
  const Bytes shared = run(augment::gaussian_noise(20.f, 20.f, 0.f), grey_image, 3, 8, 8);
  CHECK(shared != grey_image);
  CHECK_FALSE(channels_differ(shared));
  CHECK(channels_differ(run(augment::gaussian_noise(20.f, 20.f, 1.f), grey_image, 3, 8, 8)));
}

TEST_CASE("gaussian_noise is per channel on about the configured fraction of images") {
  const int images = 2000;
  int separate = 0;
  for (int index = 0; index < images; ++index)
    separate += channels_differ(
        run(augment::gaussian_noise(20.f, 20.f, 0.4f), Bytes(3 * 2 * 2, 128), 3, 2, 2, std::uint64_t(index)));
  CHECK(double(separate) / images == doctest::Approx(0.4).epsilon(0.1));
}

TEST_CASE("gaussian_blur keeps a constant image constant") {
  for (std::uint64_t index = 0; index < 40; ++index)
    CHECK(run(augment::gaussian_blur(0.f, 3.f), Bytes(3 * 8 * 8, 77), 3, 8, 8, index) == Bytes(3 * 8 * 8, 77));
}

TEST_CASE("gaussian_blur spreads an impulse into the normalised Gaussian kernel of radius ceil(3 sigma)") {
  Bytes image(9 * 9, 0);
  image[4 * 9 + 4] = 255;
  double weight[4], total = 0;
  for (int k = -3; k <= 3; ++k) total += std::exp(-k * k / 2.0);
  for (int k = 0; k < 4; ++k) weight[k] = std::exp(-k * k / 2.0) / total;
  const Bytes out = run(augment::gaussian_blur(1.f, 1.f), image, 1, 9, 9);
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 9; ++x) {
      const int dy = std::abs(y - 4), dx = std::abs(x - 4);
      const double expected = dy <= 3 && dx <= 3 ? 255 * weight[dy] * weight[dx] : 0;
      CHECK(out[std::size_t(y * 9 + x)] == byte(expected));
    }
}

TEST_CASE("gaussian_blur mirrors the border without repeating the edge pixel") {
  // Reflect-101: beyond the last pixel come pixels 3, 2, 1, never pixel 4 again.
  const Bytes row = {0, 0, 0, 0, 255};
  double weight[4], total = 0;
  for (int k = -3; k <= 3; ++k) total += std::exp(-k * k / 2.0);
  for (int k = 0; k < 4; ++k) weight[k] = std::exp(-k * k / 2.0) / total;
  const Bytes out = run(augment::gaussian_blur(1.f, 1.f), row, 1, 1, 5);
  CHECK(out[4] == byte(255 * weight[0]));
  CHECK(out[3] == byte(255 * weight[1]));
  CHECK(out[2] == byte(255 * weight[2]));
  CHECK(out[1] == byte(255 * weight[3]));
  CHECK(out[0] == 0);
}

TEST_CASE("gaussian_blur is the identity below its cut-off sigma of 0.2558 and not above it") {
  Bytes checkerboard(8 * 8);
  for (int i = 0; i < 64; ++i) checkerboard[std::size_t(i)] = (i / 8 + i % 8) % 2 ? 255 : 0;
  CHECK(run(augment::gaussian_blur(0.25f, 0.25f), checkerboard, 1, 8, 8) == checkerboard);
  CHECK(run(augment::gaussian_blur(0.26f, 0.26f), checkerboard, 1, 8, 8) != checkerboard);
  const Bytes image = random_image(3 * 16 * 16);
  for (std::uint64_t index = 0; index < 20; ++index)
    CHECK(run(augment::gaussian_blur(0.f, 0.25f), image, 3, 16, 16, index) == image);
}

TEST_CASE("pca_lighting adds one RGB shift, a sum of eigenvectors, to every pixel") {
  const augment::Lighting lighting{{0.2f, 0.05f, 0.01f},
                                   {{{0.577f, 0.577f, 0.577f}, {0.707f, 0.f, -0.707f}, {0.408f, -0.816f, 0.408f}}}};
  const Bytes image = {100, 100, 0, 250, 100, 100, 30, 5, 100, 100, 200, 255};  // (3, 2, 2)
  for (std::uint64_t index = 0; index < 6; ++index) {
    Draw draw = replay(index);
    double shift[3] = {};
    for (int i = 0; i < 3; ++i) {
      const double weight = 0.5f * float(draw.normal()) * lighting.eigenvalues[std::size_t(i)];
      for (int c = 0; c < 3; ++c) shift[c] += weight * lighting.eigenvectors[std::size_t(i)][std::size_t(c)];
    }
    const Bytes out = run(augment::pca_lighting(lighting, 0.5f), image, 3, 2, 2, index);
    for (std::size_t i = 0; i < image.size(); ++i) CHECK(out[i] == byte(image[i] + 255 * shift[i / 4]));
  }
}

TEST_CASE("each transform at its neutral setting returns the image unchanged") {
  const Bytes image = random_image(3 * 8 * 8);
  const augment::Lighting lighting{{0.2f, 0.05f, 0.01f},
                                   {{{0.577f, 0.577f, 0.577f}, {0.707f, 0.f, -0.707f}, {0.408f, -0.816f, 0.408f}}}};
  for (std::uint64_t index = 0; index < 3; ++index) {
    CHECK(run(augment::brightness(0.f), image, 3, 8, 8, index) == image);
    CHECK(run(augment::contrast(0.f), image, 3, 8, 8, index) == image);
    CHECK(run(augment::saturation(0.f), image, 3, 8, 8, index) == image);
    CHECK(run(augment::hue(0.f), image, 3, 8, 8, index) == image);
    CHECK(run(augment::linear_contrast(1.f, 1.f), image, 3, 8, 8, index) == image);
    CHECK(run(augment::multiply(1.f, 1.f, 0.5f), image, 3, 8, 8, index) == image);
    CHECK(run(augment::gaussian_noise(0.f, 0.f, 0.5f), image, 3, 8, 8, index) == image);
    CHECK(run(augment::gaussian_blur(0.f, 0.f), image, 3, 8, 8, index) == image);
    CHECK(run(augment::pca_lighting(lighting, 0.f), image, 3, 8, 8, index) == image);
  }
}

TEST_CASE("lighting_from recovers the eigenvalues and eigenvectors of a known pixel covariance") {
  // Every image holds 128 +- 20 (1, 1, 1), 128 +- 30 (1, -1, 0) and 128 +- 10 (1, 1, -2):
  // covariance (400 d1 d1' + 900 d2 d2' + 100 d3 d3') / 3, eigenvalues 600, 400, 200.
  const int points[6][3] = {{148, 148, 148}, {108, 108, 108}, {158, 98, 128},
                            {98, 158, 128},  {138, 138, 108}, {118, 118, 148}};
  data::Dataset d{3, 2, 3, 1, {}, {}, "synthetic"};
  for (int i = 0; i < 10; ++i) {
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 6; ++p) d.images.push_back(std::uint8_t(points[(p + i) % 6][c]));
    d.labels.push_back(0);
  }
  const augment::Lighting lighting = augment::lighting_from(d);
  const double unit = 255.0 * 255.0;
  CHECK(lighting.eigenvalues[0] == doctest::Approx(600 / unit).epsilon(1e-5));
  CHECK(lighting.eigenvalues[1] == doctest::Approx(400 / unit).epsilon(1e-5));
  CHECK(lighting.eigenvalues[2] == doctest::Approx(200 / unit).epsilon(1e-5));
  const double directions[3][3] = {{1 / std::sqrt(2.0), -1 / std::sqrt(2.0), 0},
                                   {1 / std::sqrt(3.0), 1 / std::sqrt(3.0), 1 / std::sqrt(3.0)},
                                   {1 / std::sqrt(6.0), 1 / std::sqrt(6.0), -2 / std::sqrt(6.0)}};
  for (std::size_t i = 0; i < 3; ++i) {
    double dot = 0;
    for (std::size_t c = 0; c < 3; ++c) dot += lighting.eigenvectors[i][c] * directions[i][c];
    CHECK(std::abs(dot) == doctest::Approx(1.0).epsilon(1e-5));  // up to sign
  }
}

TEST_CASE("lighting_from on a seeded subset is reproducible and close to the whole set") {
  data::Dataset d{3, 4, 4, 1, {}, {}, "synthetic"};
  for (long i = 0; i < 400; ++i) {
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 16; ++p) {
        const auto u = std::uint32_t(philox::bits(3, 0, 0, std::uint64_t(i * 16 + p)));
        const int shared = int(u % 101), own = int((u >> (8 * c + 7)) % 41);
        d.images.push_back(std::uint8_t(60 + shared + own));  // correlated channels
      }
    d.labels.push_back(0);
  }
  const auto whole = augment::lighting_from(d), part = augment::lighting_from(d, 200),
             again = augment::lighting_from(d, 200);
  CHECK(part.eigenvalues == again.eigenvalues);
  CHECK(part.eigenvectors == again.eigenvectors);
  CHECK(part.eigenvalues != whole.eigenvalues);  // a subset, not the whole set
  for (std::size_t i = 0; i < 3; ++i) CHECK(part.eigenvalues[i] == doctest::Approx(whole.eigenvalues[i]).epsilon(0.1));
}

TEST_CASE("photometric output depends on (seed, epoch, index) alone, not on the batch") {
  const augment::Lighting lighting{{0.2f, 0.05f, 0.01f},
                                   {{{0.577f, 0.577f, 0.577f}, {0.707f, 0.f, -0.707f}, {0.408f, -0.816f, 0.408f}}}};
  const auto all = augment::brightness(0.3f) | augment::contrast(0.3f) | augment::saturation(0.3f) |
                   augment::hue(0.1f) | augment::linear_contrast(0.8f, 1.2f) | augment::multiply(0.8f, 1.2f, 0.5f) |
                   augment::gaussian_noise(0.f, 12.f, 0.5f) | augment::gaussian_blur(0.f, 1.f) |
                   augment::pca_lighting(lighting, 0.1f);
  const long size = 3 * 8 * 8;
  const Bytes two = random_image(2 * size);
  Bytes batch = two, alone(two.begin() + size, two.end()), repeat = alone, other_epoch = alone;
  const long indices[2] = {4, 9}, nine[1] = {9};
  all.apply(batch.data(), 2, 3, 8, 8, indices, 21, 3);
  all.apply(alone.data(), 1, 3, 8, 8, nine, 21, 3);
  all.apply(repeat.data(), 1, 3, 8, 8, nine, 21, 3);
  all.apply(other_epoch.data(), 1, 3, 8, 8, nine, 21, 4);
  CHECK(Bytes(batch.begin() + size, batch.end()) == alone);
  CHECK(repeat == alone);
  CHECK(other_epoch != alone);
}

TEST_CASE("invalid settings are refused with the transform's name and the bad value") {
  CHECK_THROWS_WITH_AS(augment::brightness(-0.5f), doctest::Contains("brightness: strength -0.5"), Error);
  CHECK_THROWS_WITH_AS(augment::contrast(1.5f, 0.5f), doctest::Contains("contrast: factor range [1.5, 0.5]"), Error);
  CHECK_THROWS_WITH_AS(augment::saturation(-1.f, 1.f), doctest::Contains("saturation: factor range [-1, 1]"), Error);
  CHECK_THROWS_WITH_AS(augment::hue(0.7f), doctest::Contains("hue: strength 0.7"), Error);
  CHECK_THROWS_WITH_AS(augment::linear_contrast(2.f, 1.f), doctest::Contains("linear_contrast: alpha range [2, 1]"),
                       Error);
  CHECK_THROWS_WITH_AS(augment::multiply(0.8f, 1.2f, 1.5f), doctest::Contains("multiply: per_channel probability 1.5"),
                       Error);
  CHECK_THROWS_WITH_AS(augment::gaussian_noise(-1.f, 5.f), doctest::Contains("gaussian_noise: scale range [-1, 5]"),
                       Error);
  CHECK_THROWS_WITH_AS(augment::gaussian_blur(0.f, std::nanf("")),
                       doctest::Contains("gaussian_blur: sigma range [0, nan]"), Error);
  const augment::Lighting lighting{{0.2f, 0.05f, 0.01f}, {{{1.f, 0.f, 0.f}, {0.f, 1.f, 0.f}, {0.f, 0.f, 1.f}}}};
  CHECK_THROWS_WITH_AS(augment::pca_lighting(lighting, -0.1f), doctest::Contains("pca_lighting: alphastd -0.1"), Error);
  data::Dataset grey{1, 2, 2, 1, Bytes(4), Bytes(1), "grey set"};
  CHECK_THROWS_WITH_AS(augment::lighting_from(grey), doctest::Contains("grey set has 1 channels"), Error);
}
