// A model keeps its image activations planar or in the cpu backend's blocked
// layout (core/layout.hpp). Which one is the backend's business: the outputs
// and every gradient agree between the two up to the order of float sums, the
// gradients hold against finite differences in both, and a network with a
// layer that cannot take the blocked layout keeps everything planar.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "support/gradient_check.hpp"

using namespace laminar;

namespace {

// |a - b| / max(|a| + |b|, 0.1): relative, absolute below 0.1 (see
// tests/net/precision.cpp). The layouts run the same float operations but
// sum in other orders, so they differ by float rounding only.
constexpr double tolerance = 1e-4;
double disagreement(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - b[i]) / std::max(std::abs(double(a[i])) + std::abs(b[i]), 0.1));
  return worst;
}

// Biases, shifts and scales away from their defaults, the same in both models,
// so that a layout mistake in a per-channel term shows.
template <class M>
void randomize(M& model, std::uint64_t seed) {
  laminar_test::Random random(seed);
  for (const auto& p : model.parameters()) {
    float* v = p.parameter->value();
    if (p.parameter->role == Role::bias || p.parameter->role == Role::shift)
      for (long k = 0; k < p.parameter->size; ++k) v[k] = float(random.uniform(-0.5, 0.5));
    if (p.parameter->role == Role::scale)
      for (long k = 0; k < p.parameter->size; ++k) v[k] = float(random.uniform(0.5, 1.5));
  }
}

// Runs the same steps on a planar and a blocked model and compares outputs,
// the input gradient, every parameter gradient and the running statistics.
template <class Net>
void check_layouts_agree(int batch, bool training, Arithmetic arithmetic = Arithmetic::native) {
  using M = Model<Net, cpu, float>;
  CAPTURE(batch);
  CAPTURE(training);
  M planar(3), blocked(3);
  planar.set_image_layout(Layout::planar);
  blocked.set_image_layout(Layout::blocked);
  planar.set_arithmetic(arithmetic);
  blocked.set_arithmetic(arithmetic);
  randomize(planar, 17);
  randomize(blocked, 17);
  laminar_test::Random random(5);
  std::vector<float> x, r;
  for (double v : random.uniform(std::size_t(batch) * Net::input_shape::size, -1, 1)) x.push_back(float(v));
  for (double v : random.uniform(std::size_t(batch) * Net::output_shape::size, -1, 1)) r.push_back(float(v));
  for (M* m : {&planar, &blocked}) {
    m->set_seed(7);
    m->set_step(2);
    if (!training) {  // running statistics from a training forward first
      m->train();
      laminar_test::forward(*m, x.data(), batch);
    }
    m->train(training);
  }

  std::ostringstream report;
  double worst = 0;
  const auto note = [&](const std::string& name, double e) {
    report << name << ": " << e << "\n";
    worst = std::max(worst, e);
  };
  note("output", disagreement(laminar_test::forward(planar, x.data(), batch),
                              laminar_test::forward(blocked, x.data(), batch)));
  std::vector<float> dx_planar(x.size(), 7.f), dx_blocked(x.size(), 9.f);
  planar.backward(laminar_test::output_view<M>{r.data(), batch}, dx_planar.data());
  blocked.backward(laminar_test::output_view<M>{r.data(), batch}, dx_blocked.data());
  note("input gradient", disagreement(dx_planar, dx_blocked));
  for (const auto& p : planar.parameters()) {
    const auto& q = laminar_test::parameter(blocked, p.name);
    const std::vector<float> a = laminar_test::values(*p.parameter), b = laminar_test::values(q);
    note(p.name, disagreement(a, b));
    if (p.parameter->trainable())
      note(p.name + " gradient", disagreement({p.parameter->grad(), p.parameter->grad() + p.parameter->size},
                                              {q.grad(), q.grad() + q.size}));
  }
  INFO(report.str());
  CHECK(worst < tolerance);
}

// Stage after stage of a CIFAR ResNet at 16, 32 and 48 channels with each
// kind of shortcut: identity, projection, option A (Subsample) and ResNet-D
// (AvgPool, 1x1 conv, BatchNorm), closed by global pooling and a dense head.
using Identity = Residual<Conv<3, 3, 16>, BatchNorm, ReLU, Conv<3, 3, 16>, BatchNorm>;
using Projection = Residual<Conv<3, 3, 32, 2>, BatchNorm, ReLU, Conv<3, 3, 32>, BatchNorm>;
using OptionA = Residual<ZeroPadShortcut<48>, Conv<3, 3, 48, 2>, BatchNorm, ReLU, Conv<3, 3, 48>, BatchNorm>;
using ResNetD = Residual<AvgPoolShortcut<64>, Conv<3, 3, 64, 2>, BatchNorm, ReLU, Conv<3, 3, 64>, BatchNorm>;
using ResidualNet = Sequential<Input<3, 16, 16>, Conv<3, 3, 16>, BatchNorm, ReLU, Identity, ReLU, Projection, ReLU,
                               OptionA, ReLU, ResNetD, ReLU, GlobalAvgPool, Dense<5>>;

// airbench's pattern (conv, pool, BatchNorm, GELU), max and average pools at
// odd sizes, dropout on blocked images, Flatten from a blocked image, a
// 24-channel tensor that stays planar between blocked ones, global max pooling.
using PoolNet =
    Sequential<Input<3, 13, 11>, Conv<2, 2, 24, 1, valid>, GELU,                 // 24 x 12 x 10, planar
               Conv<3, 3, 32>, MaxPool<2>, BatchNorm, GELU, Dropout<0.25>,         // 32 x 6 x 5
               Conv<3, 3, 32>, BatchNorm, Sigmoid, AvgPool<2, 1>,                  // 32 x 5 x 4
               Residual<Conv<3, 3, 32>, BatchNorm, ReLU>, ReLU, MaxPool<3, 2>,     // 32 x 2 x 1
               Flatten, Dense<6>, ReLU, Dropout<0.5>, Dense<3>>;

// An image with whole blocks at both edges: the model converts its planar
// input and output.
using ImageNet = Sequential<Input<16, 5, 7>, Conv<3, 3, 32>, BatchNorm, ReLU, Conv<1, 1, 16>, Scale<0.5>>;
using GlobalMaxNet = Sequential<Input<16, 6, 6>, Conv<3, 3, 32>, ReLU, GlobalMaxPool, Dense<4>>;

}  // namespace

TEST_CASE("a float model's default layout is blocked on AVX-512 builds and planar in double") {
#if defined(__AVX512F__)
  CHECK(Model<ResidualNet, cpu, float>().image_layout() == Layout::blocked);
#else
  CHECK(Model<ResidualNet, cpu, float>().image_layout() == Layout::planar);
#endif
  CHECK(Model<ResidualNet, cpu, double>().image_layout() == Layout::planar);
  CHECK(ResidualNet::chain<float, cpu>::layout_aware);
}

TEST_CASE("planar and blocked activations give the same outputs and gradients on a residual network") {
  check_layouts_agree<ResidualNet>(3, true);
  check_layouts_agree<ResidualNet>(2, false);
}

TEST_CASE("planar and blocked activations agree through pools, dropout, flatten and a planar tensor between") {
  check_layouts_agree<PoolNet>(4, true);
  check_layouts_agree<PoolNet>(1, false);
}

TEST_CASE("planar and blocked activations agree when the model's input and output are blocked images") {
  check_layouts_agree<ImageNet>(2, true);
  check_layouts_agree<ImageNet>(3, false);
  check_layouts_agree<GlobalMaxNet>(5, true);
}

TEST_CASE("planar and blocked activations agree under bf16 arithmetic") {
  check_layouts_agree<ResidualNet>(2, true, Arithmetic::bf16);
  check_layouts_agree<PoolNet>(2, false, Arithmetic::bf16);
}

TEST_CASE("gradients match finite differences with the activations blocked") {
  using Net = Sequential<Input<16, 6, 6>, Conv<3, 3, 16>, BatchNorm, ReLU,                                  // 16 x 6 x 6
                         Residual<ZeroPadShortcut<32>, Conv<3, 3, 32, 2>, BatchNorm, ReLU, Conv<1, 1, 32>>,  // 32 x 3 x 3
                         ReLU, Residual<Conv<1, 1, 32>, BatchNorm>, ReLU, Dropout<0.25>, MaxPool<2, 1>,     // 32 x 2 x 2
                         BatchNorm, GELU, Flatten, Dense<3>>;
  gradient_check::require_gradients_match<Net>({.batch = 2, .seed = 3, .step = 4, .images = Layout::blocked});
  gradient_check::require_gradients_match<Net>(
      {.batch = 2, .seed = 3, .mode = gradient_check::Mode::eval, .images = Layout::blocked},
      gradient_check::TrainStatisticsFirst{});
}

namespace {

// A layer written to layers/layer.hpp's contract by a user, who knows nothing
// of layouts: y = 2x, element by element, but it does not say it is
// layout-aware.
struct Doubling : Stateless {
  static std::string name() { return "Doubling"; }
  template <class In>
  static consteval auto output_shape() {
    return In{};
  }
  template <class In>
  static constexpr double flops = double(In::size);
  template <class In, class T, class B>
  class Layer : public Stateless {
   public:
    void forward(Context<B>&, const T* x, T* y, int batch) {
      for (long i = 0; i < long(batch) * In::size; ++i) y[i] = 2 * x[i];
    }
    void backward(Context<B>&, const T*, const T*, const T* dy, T* dx, int batch) {
      if (dx)
        for (long i = 0; i < long(batch) * In::size; ++i) dx[i] = 2 * dy[i];
    }
  };
};

}  // namespace

TEST_CASE("a network with a layer that is not layout-aware keeps its activations planar") {
  using Net = Sequential<Input<16, 4, 4>, Conv<3, 3, 16>, Residual<Conv<3, 3, 16>, Doubling>, ReLU, Flatten, Dense<2>>;
  static_assert(!Net::chain<float, cpu>::layout_aware);
  Model<Net, cpu, float> model(1);
  CHECK(model.image_layout() == Layout::planar);
  CHECK_THROWS_WITH_AS(model.set_image_layout(Layout::blocked),
                       doctest::Contains("network has a layer that is not layout-aware"), Error);
  CHECK(model.image_layout() == Layout::planar);
  model.set_image_layout(Layout::planar);
}

TEST_CASE("changing the layout discards the last forward") {
  using M = Model<ImageNet, cpu, float>;
  M model(2);
  const std::vector<float> x(2 * ImageNet::input_shape::size, 0.5f), dy(2 * ImageNet::output_shape::size, 1.f);
  laminar_test::forward(model, x.data(), 2);
  model.set_image_layout(Layout::planar);
  CHECK_THROWS_AS(model.backward(laminar_test::output_view<M>{dy.data(), 2}), Error);
}

TEST_CASE("a float model takes the backend's layout for its arithmetic unless one was set") {
  using M = Model<ResidualNet, cpu, float>;
  const Layout native = ops<cpu>::image_layout<float>;
  // Planar where this machine's bf16 kernels read planar tensors (AMX, vdpbf16ps).
  const Layout for_bf16 = native == Layout::blocked && !cpu_detail::kernels::bf16_prefers_planar() ? Layout::blocked
                                                                                                   : Layout::planar;
  CHECK(ops<cpu>::image_layout_for<float>(Arithmetic::bf16) == for_bf16);
  M model(1);
  CHECK(model.image_layout() == native);
  model.set_arithmetic(Arithmetic::bf16);
  CHECK(model.image_layout() == for_bf16);
  model.set_arithmetic(Arithmetic::native);
  CHECK(model.image_layout() == native);
  CHECK(Model<ResidualNet, cpu, bf16>().image_layout() == for_bf16);
  model.set_image_layout(Layout::blocked);  // chosen: it stays
  model.set_arithmetic(Arithmetic::bf16);
  CHECK(model.image_layout() == Layout::blocked);
}
