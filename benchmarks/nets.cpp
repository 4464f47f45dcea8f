// Whole networks on the cpu backend, 3x32x32 inputs, 10 classes: a training step
// (forward, softmax cross-entropy, backward, SGD momentum 0.9) and inference, in
// float and under the bf16 compute policy (the _bf16 cases), for three nets that
// benchmarks/peers/nets_torch.py writes identically.
//
//   bench_nets [--batch=128] [--steps=3] [--describe] [Google Benchmark flags]
//
// Each repetition times `steps` steps after one untimed warm-up step (the first
// forward sizes the activation arena); by default 5 repetitions, median reported.
// GFLOP/s counts the forward FLOPs of laminar::describe, and a training step as
// 3x the forward (backward = data + weight gradients, each the forward's work).
// peak_MiB is the growth of the resident set from before the model is built to
// the peak during the timed steps (Linux VmHWM, the number ru_maxrss reports,
// reset through /proc/self/clear_refs so earlier cases do not mask it).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <laminar/laminar.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace laminar;

namespace {

// (A) The VGG-style net of the Keras CIFAR-10 questions: three pairs of same
// 3x3 convolutions (32, 64, 128) each closed by a 2x2 max pool and dropout,
// then two dropout-regularised dense layers. 82.5 MFLOP of conv and dense.
using NetA = Sequential<Input<3, 32, 32>,
                        Conv<3, 3, 32>, ReLU, Conv<3, 3, 32>, ReLU, MaxPool<2>, Dropout<0.2>,    // 32 x 16 x 16
                        Conv<3, 3, 64>, ReLU, Conv<3, 3, 64>, ReLU, MaxPool<2>, Dropout<0.2>,    // 64 x 8 x 8
                        Conv<3, 3, 128>, ReLU, Conv<3, 3, 128>, ReLU, MaxPool<2>, Dropout<0.2>,  // 128 x 4 x 4
                        Flatten, Dense<1024>, ReLU, Dropout<0.5>, Dense<512>, ReLU, Dropout<0.5>, Dense<10>>;

// (B) ResNet-20 (He et al. 2016, section 4.2): 3 stages of 3 basic blocks at
// widths 16, 32, 64. Where a block halves the size and doubles the width,
// laminar's Residual takes the shortcut through a strided 1x1 convolution with
// bias (a projection, the paper's option B without BN), not option A's
// zero-padded identity, so this net does slightly more work than the paper's.
template <int Width>
using BasicBlock = Residual<Conv<3, 3, Width>, BatchNorm, ReLU, Conv<3, 3, Width>, BatchNorm>;
template <int Width>
using DownBlock = Residual<Conv<3, 3, Width, 2>, BatchNorm, ReLU, Conv<3, 3, Width>, BatchNorm>;
using NetB = Sequential<Input<3, 32, 32>,
                        Conv<3, 3, 16>, BatchNorm, ReLU,
                        BasicBlock<16>, ReLU, BasicBlock<16>, ReLU, BasicBlock<16>, ReLU,  // 16 x 32 x 32
                        DownBlock<32>, ReLU, BasicBlock<32>, ReLU, BasicBlock<32>, ReLU,   // 32 x 16 x 16
                        DownBlock<64>, ReLU, BasicBlock<64>, ReLU, BasicBlock<64>, ReLU,   // 64 x 8 x 8
                        GlobalAvgPool, Dense<10>>;

// (C) The airbench94 net (Jordan 2024): a 2x2 valid "whitening" convolution,
// then three groups conv - max pool - BN - GELU - conv - BN - GELU, global max
// pool, linear head. Spatial size 31 -> 15 -> 7 -> 3.
using NetC = Sequential<Input<3, 32, 32>,
                        Conv<2, 2, 24, 1, valid>, GELU,                                                    // 24 x 31 x 31
                        Conv<3, 3, 64>, MaxPool<2>, BatchNorm, GELU, Conv<3, 3, 64>, BatchNorm, GELU,      // 64 x 15 x 15
                        Conv<3, 3, 256>, MaxPool<2>, BatchNorm, GELU, Conv<3, 3, 256>, BatchNorm, GELU,    // 256 x 7 x 7
                        Conv<3, 3, 256>, MaxPool<2>, BatchNorm, GELU, Conv<3, 3, 256>, BatchNorm, GELU,    // 256 x 3 x 3
                        GlobalMaxPool, Dense<10>>;

constexpr int classes = 10;

// Kilobytes after `key` in /proc/self/status, or nothing off Linux.
std::optional<long> status_kilobytes(std::string_view key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with(key)) return std::strtol(line.c_str() + key.size(), nullptr, 10);
  return std::nullopt;
}

// Peak resident growth over a stretch of the benchmark. The high-water mark is
// reset at the start, so each case reports its own peak even when a larger
// case ran before it in the same process.
class ResidentPeak {
 public:
  ResidentPeak() {
    std::ofstream("/proc/self/clear_refs") << "5";
    start_ = status_kilobytes("VmRSS:");
  }
  void report(benchmark::State& state) const {
    const auto peak = status_kilobytes("VmHWM:");
    if (start_ && peak) state.counters["peak_MiB"] = double(*peak - *start_) / 1024.0;
  }

 private:
  std::optional<long> start_;
};

template <class Net, class Compute>
struct Workload {
  explicit Workload(int batch) : batch(batch), x(batch), dlogits(batch), labels(std::size_t(batch)) {
    std::vector<float> host(std::size_t(x.size()));
    for (std::size_t i = 0; i < host.size(); ++i) host[i] = float(philox::normal(7, 0, 0, i));
    x.copy_from_host(host.data());
    for (int i = 0; i < batch; ++i) labels[std::size_t(i)] = int(philox::uniform(7, 1, 0, std::uint64_t(i)) * classes) % classes;
  }
  int batch;
  Model<Net, cpu, Compute> model{1};
  optim::SGD<Model<Net, cpu, Compute>> optimizer{model, {.lr = 0.01, .momentum = 0.9}};
  Tensor<float, cpu, typename Net::input_shape> x;
  Tensor<float, cpu, typename Net::output_shape> dlogits;
  std::vector<int> labels;
  std::uint32_t step = 0;

  void train_step() {
    model.set_step(step++);
    const auto logits = model.forward(x.view());
    long correct = 0;
    const double loss = ops<cpu>::softmax_cross_entropy(batch, classes, logits.data, labels.data(), 0.0,
                                                        1.f / float(batch), dlogits.data(), &correct);
    benchmark::DoNotOptimize(loss);
    model.backward(dlogits.view());
    optimizer.step();
  }
  void infer() {
    const auto logits = model.forward(x.view());
    benchmark::DoNotOptimize(logits.data);
    benchmark::ClobberMemory();
  }
};

template <class Net>
void report_rates(benchmark::State& state, int batch, double flops_per_image) {
  state.counters["img/s"] = benchmark::Counter(batch, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_image * batch / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["fwd_MFLOP"] = NetworkCost<Net>::flops / 1e6;
  state.counters["parameters"] = double(NetworkCost<Net>::parameters);
}

template <class Net, class Compute>
void train(benchmark::State& state) {
  const int batch = int(state.range(0));
  ResidentPeak peak;
  Workload<Net, Compute> work(batch);
  work.model.train();
  work.train_step();
  for (auto _ : state) work.train_step();
  peak.report(state);
  report_rates<Net>(state, batch, 3 * NetworkCost<Net>::flops);
}

template <class Net, class Compute>
void infer(benchmark::State& state) {
  const int batch = int(state.range(0));
  Workload<Net, Compute> work(batch);
  work.model.eval();
  work.infer();
  for (auto _ : state) work.infer();
  report_rates<Net>(state, batch, NetworkCost<Net>::flops);
}

// Strips `--name=value` from argv, returning the value.
std::optional<std::string> take_flag(std::vector<char*>& arguments, std::string_view name) {
  std::optional<std::string> value;
  for (auto it = arguments.begin(); it != arguments.end();) {
    const std::string_view argument(*it);
    if (argument == name) {
      value = "";
      it = arguments.erase(it);
    } else if (argument.starts_with(name) && argument.size() > name.size() && argument[name.size()] == '=') {
      value = std::string(argument.substr(name.size() + 1));
      it = arguments.erase(it);
    } else {
      ++it;
    }
  }
  return value;
}

int positive_flag(std::vector<char*>& arguments, std::string_view name, int fallback) {
  const auto value = take_flag(arguments, name);
  if (!value) return fallback;
  char* end = nullptr;
  const long n = std::strtol(value->c_str(), &end, 10);
  if (value->empty() || *end != '\0' || n <= 0 || n > 1 << 20)
    throw Error("bench_nets: " + std::string(name) + " must be a positive integer, got \"" + *value + "\"");
  return int(n);
}

// net_A/train, net_A/infer (float) and net_A/train_bf16, net_A/infer_bf16.
template <class Net>
void register_net(const std::string& label, int batch, int steps) {
  const auto add = [&](const std::string& pass, void (*run)(benchmark::State&)) {
    benchmark::RegisterBenchmark(("net_" + label + "/" + pass).c_str(), run)
        ->Arg(batch)->Iterations(steps)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  add("train", train<Net, float>);
  add("infer", infer<Net, float>);
  add("train_bf16", train<Net, bf16>);
  add("infer_bf16", infer<Net, bf16>);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    // Defaults first, so the caller's own --benchmark_repetitions (parsed later) wins.
    static char repetitions[] = "--benchmark_repetitions=5";
    static char aggregates[] = "--benchmark_report_aggregates_only=true";
    std::vector<char*> arguments{argv[0], repetitions, aggregates};
    arguments.insert(arguments.end(), argv + 1, argv + argc);
    const int batch = positive_flag(arguments, "--batch", 128);
    const int steps = positive_flag(arguments, "--steps", 3);
    if (take_flag(arguments, "--describe")) {
      std::printf("net A (VGG-style)\n%s\nnet B (ResNet-20, projection shortcuts)\n%s\nnet C (airbench94)\n%s",
                  describe<NetA>().c_str(), describe<NetB>().c_str(), describe<NetC>().c_str());
      return 0;
    }
    register_net<NetA>("A", batch, steps);
    register_net<NetB>("B", batch, steps);
    register_net<NetC>("C", batch, steps);
    int count = int(arguments.size());
    benchmark::Initialize(&count, arguments.data());
    if (benchmark::ReportUnrecognizedArguments(count, arguments.data())) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
