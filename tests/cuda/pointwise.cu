// The cuda backend against the cpu backend on the layers whose math is pure
// pointwise expressions and per-channel reductions (BatchNorm, activations,
// Dropout, Flatten): same seed, same inputs -> same outputs, gradients and
// dropout masks. Without a GPU it prints SKIPPED and exits 77 (CTest: skipped).
#include <laminar/laminar.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

using namespace laminar;

using Net = Sequential<Input<4, 6, 6>, BatchNorm, ReLU, Dropout<0.5>, GELU, Flatten, BatchNorm, SELU,
                       Sigmoid, Tanh, ELU, LeakyReLU>;
using In = Net::input_shape;
using Out = Net::output_shape;

template <class B>
struct Run {
  std::vector<float> y, dx, grads;
};

template <class B>
Run<B> run(const std::vector<float>& x_host, const std::vector<float>& dy_host, int batch) {
  Model<Net, B, float> model(42);
  model.set_seed(7);
  model.set_step(3);
  Tensor<float, B, In> x(batch), dx(batch);
  Tensor<float, B, Out> dy(batch);
  x.copy_from_host(x_host.data());
  dy.copy_from_host(dy_host.data());
  Run<B> r;
  auto y = model.forward(x);
  r.y.resize(std::size_t(y.size()));
  ops<B>::copy_to_host(r.y.data(), y.data, y.size());
  model.backward(dy, dx.data());
  r.dx = dx.to_host();
  for (const auto& p : model.parameters()) {
    std::vector<float> g(static_cast<std::size_t>(p.parameter->size));
    const float* src = p.parameter->trainable() ? p.parameter->grad() : p.parameter->value();
    ops<B>::copy_to_host(g.data(), src, p.parameter->size);
    r.grads.insert(r.grads.end(), g.begin(), g.end());
  }
  return r;
}

double max_relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::fmax(worst, std::fabs(double(a[i]) - b[i]) / (std::fabs(double(b[i])) + 1e-3));
  return a.size() == b.size() ? worst : 1e9;
}

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    try {
      Model<Net, cuda, float> model;
      std::printf("FAILED: Model<Net, cuda> constructed without a device\n");
      return 1;
    } catch (const Error& e) {
      std::printf("SKIPPED: %s\n", e.what());
      return 77;
    }
  }
  const int batch = 5;
  std::vector<float> x(static_cast<std::size_t>(batch * In::size)), dy(static_cast<std::size_t>(batch * Out::size));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(philox::normal(1, 0, 0, i));
  for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = float(philox::normal(2, 0, 0, i));
  const auto gpu = run<cuda>(x, dy, batch);
  const auto ref = run<cpu>(x, dy, batch);
  const double e_y = max_relative_error(gpu.y, ref.y), e_dx = max_relative_error(gpu.dx, ref.dx),
               e_g = max_relative_error(gpu.grads, ref.grads);
  std::printf("cuda vs cpu: output %.2e, input gradient %.2e, parameters %.2e\n", e_y, e_dx, e_g);
  const bool ok = e_y < 1e-4 && e_dx < 1e-4 && e_g < 1e-4;
  std::printf("%s\n", ok ? "1 passed, 0 failed" : "0 passed, 1 failed");
  return ok ? 0 : 1;
}
