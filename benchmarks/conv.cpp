// Conv forward and backward (data + weight gradients) at CIFAR-10 ResNet shapes,
// batch 128, float, on the cpu backend. Reports GFLOP/s (counting a
// multiply-add as 2 FLOPs; backward does twice the forward's work), beside a
// large square SGEMM through the same backend primitive: the rate the im2col
// path can at best approach on this machine.
#include <benchmark/benchmark.h>

#include <laminar/laminar.hpp>
#include <vector>

using namespace laminar;

template <int C, int H, int W>
struct ConvCase {
  using In = Shape<C, H, W>;
  using Spec = Conv<3, 3, C>;
  using Layer = typename Spec::template Layer<In, float, cpu>;
  using Out = typename Layer::output;
  static constexpr double flops = Spec::template flops<In>;

  explicit ConvCase(int batch) : x(batch), y(batch), dy(batch), dx(batch) {
    for (long i = 0; i < x.size(); ++i) x.data()[i] = float(philox::normal(1, 0, 0, std::uint64_t(i)));
    for (long i = 0; i < dy.size(); ++i) dy.data()[i] = float(philox::normal(2, 0, 0, std::uint64_t(i)));
    std::vector<float> w(std::size_t(layer.weight.size));
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = float(0.05 * philox::normal(3, 0, 0, i));
    std::copy(w.begin(), w.end(), layer.weight.value());
    std::fill(layer.bias.value(), layer.bias.value() + C, 0.f);
  }
  Context<cpu> ctx;
  Layer layer;
  Tensor<float, cpu, In> x;
  Tensor<float, cpu, Out> y, dy;
  Tensor<float, cpu, In> dx;
};

template <int C, int H, int W>
void conv_forward(benchmark::State& state) {
  const int batch = int(state.range(0));
  ConvCase<C, H, W> c(batch);
  for (auto _ : state) {
    c.layer.forward(c.ctx, c.x.data(), c.y.data(), batch);
    benchmark::DoNotOptimize(c.y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(c.flops * batch, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["img/s"] = benchmark::Counter(batch, benchmark::Counter::kIsIterationInvariantRate);
}

template <int C, int H, int W>
void conv_backward(benchmark::State& state) {
  const int batch = int(state.range(0));
  ConvCase<C, H, W> c(batch);
  c.layer.forward(c.ctx, c.x.data(), c.y.data(), batch);
  for (auto _ : state) {
    c.layer.backward(c.ctx, c.x.data(), c.y.data(), c.dy.data(), c.dx.data(), batch);
    benchmark::DoNotOptimize(c.dx.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2 * c.flops * batch, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["img/s"] = benchmark::Counter(batch, benchmark::Counter::kIsIterationInvariantRate);
}

void sgemm_peak(benchmark::State& state) {
  const int n = int(state.range(0));
  std::vector<float> a(std::size_t(n) * n), b(a.size()), c(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = b[i] = float(i % 13) * 0.01f;
  for (auto _ : state) {
    ops<cpu>::gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(sgemm_peak)->Name("sgemm")->Arg(2048)->UseRealTime()->Unit(benchmark::kMillisecond);

#define LAMINAR_CONV_BENCHMARKS(C, H, W)                                                        \
  BENCHMARK(conv_forward<C, H, W>)->Name("conv3x3_forward/" #C "x" #H "x" #W)->Arg(128)->UseRealTime()->Unit(benchmark::kMillisecond); \
  BENCHMARK(conv_backward<C, H, W>)->Name("conv3x3_backward/" #C "x" #H "x" #W)->Arg(128)->UseRealTime()->Unit(benchmark::kMillisecond);

LAMINAR_CONV_BENCHMARKS(64, 32, 32)
LAMINAR_CONV_BENCHMARKS(128, 16, 16)
LAMINAR_CONV_BENCHMARKS(256, 8, 8)

BENCHMARK_MAIN();
