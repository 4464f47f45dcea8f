// train::fit end to end: the default example's network learns Fashion-MNIST in
// one epoch, and data that does not fit the network is refused by name.
#include <doctest/doctest.h>

#include <laminar/laminar.hpp>
#include <laminar/data/idx.hpp>

#include "../../examples/fashion_mnist_net.hpp"

using namespace laminar;

TEST_CASE("the default network reaches 85% Fashion-MNIST test accuracy after one epoch") {
  const auto data = data::fashion_mnist(LAMINAR_FASHION_MNIST_DIR);
  examples::FashionRecipe recipe;
  recipe.epochs = 1;
  Model<examples::FashionNet, cpu> model(1);
  optim::SGD opt(model, recipe.optimizer());
  const auto history = train::fit(model, opt, data.train,
                                  {.epochs = 1, .batch = recipe.batch, .seed = 1,
                                   .learning_rate = [&](double e) { return recipe.learning_rate(e); },
                                   .verbose = false});
  const auto test = train::evaluate(model, data.test, history.normalization);
  MESSAGE("one epoch: test accuracy " << test.accuracy << ", train loss " << history.epochs[0].train_loss);
  CHECK(test.count == 10000);
  CHECK(test.accuracy >= 0.85);
}

TEST_CASE("fit refuses data whose samples do not match the network input") {
  using Net = Sequential<Input<3, 8, 8>, Flatten, Dense<10>>;
  Model<Net, cpu> model;
  optim::SGD opt(model, {});
  data::Dataset wrong{1, 8, 8, 10, std::vector<std::uint8_t>(64 * 4), {0, 1, 2, 3}, "four-gray-images"};
  CHECK_THROWS_WITH_AS(train::fit(model, opt, wrong, {.epochs = 1, .verbose = false}),
                       doctest::Contains("four-gray-images has samples of 1x8x8 but the network expects Shape<3,8,8>"),
                       Error);
}

TEST_CASE("fit stops with a message when the loss becomes NaN") {
  using Net = Sequential<Input<1, 4, 4>, Flatten, Dense<2>>;
  Model<Net, cpu> model;
  optim::SGD opt(model, {.lr = 1e38, .momentum = 0.0});
  data::Dataset d{1, 4, 4, 2, std::vector<std::uint8_t>(16 * 8), {0, 1, 0, 1, 0, 1, 0, 1}, "pattern"};
  for (std::size_t i = 0; i < d.images.size(); ++i) d.images[i] = std::uint8_t((i * 97) % 256);
  CHECK_THROWS_WITH_AS(train::fit(model, opt, d, {.epochs = 3, .batch = 2, .verbose = false}),
                       doctest::Contains("the loss became"), Error);
}
