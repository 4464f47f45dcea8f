// One-line Google Benchmark cases for any laminar layer, timing its own forward
// and backward, with FLOP, byte and image rates beside the machine's measured
// FMA peak:  LAMINAR_BENCHMARK_LAYER(Conv<3, 3, 64>, Shape<64, 32, 32>, 128);
// A fused op times the same way: LAMINAR_BENCHMARK_LAYER(BnAct<BatchNorm, GELU>, Shape<64, 15, 15>, 128).
#pragma once

#include <benchmark/benchmark.h>
#include <omp.h>
#include <time.h>  // clock_gettime, CLOCK_THREAD_CPUTIME_ID

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <laminar/laminar.hpp>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(__CUDA_ARCH__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#include <immintrin.h>
#endif

namespace laminar::bench {

namespace detail {

// --- the FMA peak probe -------------------------------------------------------
// One SIMD register of T and its fused multiply-add, for the widest instruction
// set the compiler targets. `chains` independent accumulators are enough to
// cover the FMA latency on both FMA ports (4 cycles x 2 ports = 8 in flight on
// current x86) while leaving the accumulators and the two constants in
// registers (32 zmm, 16 ymm).
template <class T>
struct FmaRegister;

#if !defined(__CUDA_ARCH__) && defined(__AVX512F__)
template <>
struct FmaRegister<float> {
  using type = __m512;
  static constexpr const char* instructions = "AVX-512 FMA";
  static constexpr int lanes = 16, chains = 16;
  static type broadcast(float v) { return _mm512_set1_ps(v); }
  static type fma(type a, type b, type c) { return _mm512_fmadd_ps(a, b, c); }
};
template <>
struct FmaRegister<double> {
  using type = __m512d;
  static constexpr const char* instructions = "AVX-512 FMA";
  static constexpr int lanes = 8, chains = 16;
  static type broadcast(double v) { return _mm512_set1_pd(v); }
  static type fma(type a, type b, type c) { return _mm512_fmadd_pd(a, b, c); }
};
#elif !defined(__CUDA_ARCH__) && defined(__AVX2__) && defined(__FMA__)
template <>
struct FmaRegister<float> {
  using type = __m256;
  static constexpr const char* instructions = "AVX2 FMA";
  static constexpr int lanes = 8, chains = 12;
  static type broadcast(float v) { return _mm256_set1_ps(v); }
  static type fma(type a, type b, type c) { return _mm256_fmadd_ps(a, b, c); }
};
template <>
struct FmaRegister<double> {
  using type = __m256d;
  static constexpr const char* instructions = "AVX2 FMA";
  static constexpr int lanes = 4, chains = 12;
  static type broadcast(double v) { return _mm256_set1_pd(v); }
  static type fma(type a, type b, type c) { return _mm256_fmadd_pd(a, b, c); }
};
#else
// Without a known FMA instruction set this measures what the compiler makes of
// a multiply and an add: still two FLOPs each, the rate a scalar kernel can hope
// for; their latencies add up, hence more chains.
template <class T>
  requires std::is_floating_point_v<T>
struct FmaRegister<T> {
  using type = T;
  static constexpr const char* instructions = "scalar multiply-add";
  static constexpr int lanes = 1, chains = 16;
  static type broadcast(T v) { return v; }
  static type fma(type a, type b, type c) { return a * b + c; }
};
#endif

template <class T>
concept ProbedElement = requires { FmaRegister<T>::lanes; };

// The sum of a register's lanes.
template <class T>
double lane_total(const typename FmaRegister<T>::type& v) {
  std::array<T, FmaRegister<T>::lanes> lane;
  static_assert(sizeof lane == sizeof v);
  std::memcpy(lane.data(), &v, sizeof lane);
  double sum = 0;
  for (const T x : lane) sum += double(x);
  return sum;
}

// Runs `rounds` rounds of `chains` independent FMAs on the calling thread. The
// iteration a <- a * m + c converges to c / (1 - m) = 1, so no accumulator
// overflows or turns subnormal; the sum is returned so nothing is dead code.
// The chains are spelled out by a fold over constant indices, so the compiler
// keeps them in registers at any optimisation level without an unroll pragma.
template <class T, std::size_t... Chain>
double fma_chains(long rounds, std::index_sequence<Chain...>) {
  using R = FmaRegister<T>;
  typename R::type accumulator[] = {R::broadcast(T(0.001) * T(Chain))...};
  const typename R::type multiplier = R::broadcast(T(0.999999)), addend = R::broadcast(T(0.000001));
  for (long r = 0; r < rounds; ++r) ((accumulator[Chain] = R::fma(accumulator[Chain], multiplier, addend)), ...);
  return (lane_total<T>(accumulator[Chain]) + ...);
}

// Seconds the calling thread has spent on a CPU.
inline double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return double(now.tv_sec) + 1e-9 * double(now.tv_nsec);
}

// All OpenMP threads run the chains at once, so the probe sees the all-core
// clock of the FMA units. Each thread's rate is taken over its own CPU time,
// which leaves out the time a shared machine gives to other processes; the sum
// over threads, best of several trials, is the peak. `chains` runs the loop
// and returns its sum; it does flops_per_thread FLOPs.
template <class Chains>
double best_rate_gflops(double flops_per_thread, const Chains& chains) {
  double best = 0;
  for (int trial = 0; trial < 5; ++trial) {
    double rate = 0, sink = 0;
#pragma omp parallel reduction(+ : rate, sink)
    {
      const double start = thread_cpu_seconds();
      sink += chains();
      rate += flops_per_thread / (thread_cpu_seconds() - start) * 1e-9;
    }
    benchmark::DoNotOptimize(sink);
    best = std::max(best, rate);
  }
  return best;
}

template <class T>
double measure_peak_gflops() {
  using R = FmaRegister<T>;
  constexpr long rounds = 1L << 23;
  return best_rate_gflops(2.0 * R::lanes * R::chains * double(rounds),
                          [] { return fma_chains<T>(rounds, std::make_index_sequence<R::chains>{}); });
}

// --- the bf16 dot-product peak probe ---------------------------------------------
// vdpbf16ps adds two bf16 products to each of 16 float lanes: 64 FLOPs an
// instruction. What the cpu backend's vdpbf16ps kernels (bf16 compute without
// AMX) can reach; AMX tiles multiply faster, so AMX cases may pass 100% of it.
// Each round adds 32 * 0.5 * 0.001 to every lane: no overflow, no subnormals.
#if !defined(__CUDA_ARCH__) && defined(__AVX512BF16__)
inline constexpr bool has_bf16_dot_probe = true;

template <std::size_t... Chain>
double bf16_dot_chains(long rounds, std::index_sequence<Chain...>) {
  __m512 accumulator[] = {_mm512_set1_ps(0.001f * float(Chain))...};
  const __m512bh half = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.5f));
  const __m512bh small = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.001f), _mm512_set1_ps(0.001f));
  for (long r = 0; r < rounds; ++r) ((accumulator[Chain] = _mm512_dpbf16_ps(accumulator[Chain], half, small)), ...);
  return (lane_total<float>(accumulator[Chain]) + ...);
}

inline double measure_bf16_dot_peak_gflops() {
  constexpr long rounds = 1L << 23;
  constexpr int chains = 16;  // as for the FMA: latency x ports, with registers to spare
  return best_rate_gflops(64.0 * chains * double(rounds),
                          [] { return bf16_dot_chains(rounds, std::make_index_sequence<chains>{}); });
}
#else
inline constexpr bool has_bf16_dot_probe = false;
inline double measure_bf16_dot_peak_gflops() { return 0; }
#endif

// --- case inputs ----------------------------------------------------------------
// Fixed so that every run times the same numbers.
inline constexpr std::uint64_t seed = 0x6c616d696e6172;  // "laminar"

template <class T>
std::vector<T> normal_values(long count, std::uint32_t stream, double scale) {
  std::vector<T> host(static_cast<std::size_t>(count));
#pragma omp parallel for schedule(static)
  for (long i = 0; i < count; ++i) host[std::size_t(i)] = T(scale * philox::normal(seed, stream, 0, std::uint64_t(i)));
  return host;
}

template <class T, class B, class S>
void fill_normal(Tensor<T, B, S>& tensor, std::uint32_t stream) {
  tensor.copy_from_host(normal_values<T>(tensor.size(), stream, 1.0).data());
}

// Weights at the He scale sqrt(2 / fan_in) and the identity for everything
// else keep activations of unit size through the layer: the values do not change
// the work, but an overflow or subnormals would change its speed.
template <class T, class B>
void initialise(Parameter<T, B>& parameter, std::uint32_t stream) {
  std::vector<T> host;
  if (parameter.role == Role::weight)
    host = normal_values<T>(parameter.size, stream, std::sqrt(2.0 / double(parameter.fan_in)));
  else  // statistics take 1: a valid variance and a harmless mean
    host.assign(std::size_t(parameter.size), T(parameter.role == Role::scale || parameter.role == Role::statistic));
  ops<B>::copy_to_device(parameter.value(), host.data(), parameter.size);
}

// A fused op (ConvBnAct, BnAct, ...) names its parts by their original
// positions, so its visit takes the first one.
template <class L>
void initialise_parameters(L& layer) {
  std::uint32_t stream = 3;
  const auto each = [&stream](const std::string&, auto& parameter) { initialise(parameter, stream++); };
  if constexpr (requires { layer.visit("", 1, each); })
    layer.visit("", 1, each);
  else
    layer.visit("", each);
}

// Waits until the backend has finished the work queued so far. A backend
// without an explicit synchronisation is waited on by a blocking one-element
// copy of the pass's result, which also keeps the result observable.
template <class B, class T>
void wait_for(const T* result) {
  if constexpr (requires { ops<B>::synchronize(); }) {
    ops<B>::synchronize();
  } else {
    T host;
    ops<B>::copy_to_host(&host, result, 1);
    benchmark::DoNotOptimize(host);
  }
}

// --- naming -----------------------------------------------------------------------
template <class S>
std::string shape_text() {
  std::string text;
  for (int d : S::dims) {
    if (!text.empty()) text += 'x';
    text += std::to_string(d);
  }
  return text;
}

template <class T>
std::string element_name() {
  if constexpr (std::is_same_v<T, float>)
    return "float";
  else if constexpr (std::is_same_v<T, double>)
    return "double";
  else if constexpr (std::is_same_v<T, bf16>)
    return "bf16";
  else if constexpr (requires { T::name; })
    return std::string(T::name);
  else
    static_assert(always_false<T>, "LAYER_BENCHMARK_ELEMENT_TYPE_NEEDS_A_STATIC_NAME");
}

inline std::string gflops_text(double gflops) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", gflops);
  return text;
}

}  // namespace detail

// The machine's FMA throughput in GFLOP/s for element type T on all OpenMP
// threads, measured once per process by a register-only loop.
template <class T>
  requires detail::ProbedElement<T>
double peak_gflops() {
  static const double value = detail::measure_peak_gflops<T>();
  return value;
}

inline double fp32_peak_gflops() { return peak_gflops<float>(); }
inline double fp64_peak_gflops() { return peak_gflops<double>(); }

// The vdpbf16ps throughput in GFLOP/s on all OpenMP threads, measured once per
// process; 0 where the compiler does not target AVX-512 BF16.
inline double bf16_dot_peak_gflops() {
  static const double value = detail::measure_bf16_dot_peak_gflops();
  return value;
}

// --- one timed pass -------------------------------------------------------------------
// What one call of a pass costs, per call (the whole batch).
struct PassCost {
  double flops = 0;
  double bytes = 0;
  int images = 0;
};

// The peak a pass on backend B in element type T is compared with: on the cpu
// backend the host's FMA peak in T (fp32 for float, fp64 for double, half the
// lanes); none, and so no "% peak" counter, where this header cannot probe it.
template <class B, class T>
double reference_peak_gflops() {
  if constexpr (std::is_same_v<B, cpu> && detail::ProbedElement<T>)
    return peak_gflops<T>();
  else
    return 0;
}

// Times `pass` (plus the wait for its result, so a device backend is timed to
// completion) per iteration and sets the counters from that total. The cases
// keep Google Benchmark's default clock rather than UseManualTime or
// UseRealTime, which would append "/manual_time" or "/real_time" to the names.
template <class B, class T, class Pass>
void time_pass(benchmark::State& state, const PassCost& cost, const T* result, Pass&& pass) {
  pass();  // untimed: the first call grows the workspace
  detail::wait_for<B>(result);
  double seconds = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    pass();
    detail::wait_for<B>(result);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    seconds += elapsed.count();
  }
  if (seconds <= 0) return;
  const double calls_per_second = double(state.iterations()) / seconds;
  const double gflops = cost.flops * calls_per_second * 1e-9;
  state.counters["GFLOP/s"] = gflops;
  state.counters["GB/s"] = cost.bytes * calls_per_second * 1e-9;
  if (cost.images > 0) state.counters["img/s"] = cost.images * calls_per_second;
  if (const double peak = reference_peak_gflops<B, T>(); peak > 0) state.counters["% peak"] = 100 * gflops / peak;
}

// --- layer cases ----------------------------------------------------------------------
// Layers whose data gradient can be timed apart from the weight gradient: they
// expose their convolution geometry and weight, and the backend has the
// data-gradient primitive.
template <class L, class T, class B>
concept SplitsConvolutionBackward = requires(L& layer, Context<B>& context, const T* dy, T* dx) {
  { L::geometry } -> std::convertible_to<ConvGeometry>;
  ops<B>::conv2d_backward_data(L::geometry, 1, dy, layer.weight.value(), dx, context.workspace, context.arithmetic,
                               L::layouts(context));
};

// A layer Spec on input In in element type T on backend B, at one batch size,
// with inputs and output gradients of fixed-seed standard normals, its
// activations in the layout a model would keep them in (blocked for float on
// an AVX-512 cpu where the channels fill whole blocks, see core/layout.hpp). T = bf16 is
// the compute policy: float tensors, convolution operands multiplied in bf16.
// Its "% peak" is of the float FMA peak, so AMX cases may pass 100; its
// "% bf16 peak" is of the vdpbf16ps peak, the ceiling of bf16 without AMX.
//
// FLOPs per call: forward = Spec::flops<In> x batch. backward = twice that for a
// layer with parameters (the data and the weight gradient each cost about a
// forward), once for a stateless layer (only the data gradient).
// backward_weights and backward_data (Conv) = one forward each.
//
// Bytes per call, a lower bound: every tensor the pass must touch, once, with
// |x| = batch x In::size, |y| = batch x Out::size, P = trainable parameters,
// all times sizeof(T):
//   forward            |x| + |y| + P           read x and the parameters, write y
//   backward           |dy| + |dx|             stateless: read dy, write dx
//                      + |x| + 2P              with parameters: read x and the values, write the gradients
//   backward_weights   |x| + |dy| + P          read x and dy, write the parameter gradients
//   backward_data      |dy| + |dx| + |weight|  read dy and the weight, write dx
template <class B, class Compute, class Spec, class In>
class LayerCase {
  using T = typename Precision<Compute>::storage;

 public:
  using Layer = typename Spec::template Layer<In, T, B>;
  using Out = decltype(Spec::template output_shape<In>());
  static constexpr bool splits_backward = SplitsConvolutionBackward<Layer, T, B>;

  explicit LayerCase(int batch) : batch_((require_device(), batch)), x_(batch), dx_(batch), y_(batch), dy_(batch) {
    detail::fill_normal(x_, 1);
    detail::fill_normal(dy_, 2);
    detail::initialise_parameters(layer_);
    context_.training = true;
    context_.arithmetic = Precision<Compute>::arithmetic;
    // The layout a model keeps this layer's activations in (core/layout.hpp):
    // the normal values read the same either way.
    if constexpr (laminar::detail::is_layout_aware<Layer>() && requires { ops<B>::channel_block; })
      context_.images = ops<B>::template image_layout<T>;
    // backward uses what forward keeps (BatchNorm's batch statistics)
    layer_.forward(context_, x_.data(), y_.data(), batch_);
  }

  void forward(benchmark::State& state) {
    timed(state, cost(1, activations(In::size + Out::size) + parameters), y_.data(),
          [this] { layer_.forward(context_, x_.data(), y_.data(), batch_); });
  }

  void backward(benchmark::State& state) {
    const double bytes =
        parameters > 0 ? activations(2 * In::size + Out::size) + 2 * parameters : activations(In::size + Out::size);
    timed(state, cost(parameters > 0 ? 2 : 1, bytes), dx_.data(),
          [this] { layer_.backward(context_, x_.data(), y_.data(), dy_.data(), dx_.data(), batch_); });
  }

  void backward_weights(benchmark::State& state)
    requires splits_backward
  {
    // the layer skips its data gradient when dx is null
    timed(state, cost(1, activations(In::size + Out::size) + parameters), layer_.weight.grad(),
          [this] { layer_.backward(context_, x_.data(), y_.data(), dy_.data(), nullptr, batch_); });
  }

  void backward_data(benchmark::State& state)
    requires splits_backward
  {
    timed(state, cost(1, activations(In::size + Out::size) + double(layer_.weight.size)), dx_.data(), [this] {
      ops<B>::conv2d_backward_data(Layer::geometry, batch_, dy_.data(), layer_.weight.value(), dx_.data(),
                                   context_.workspace, context_.arithmetic, Layer::layouts(context_));
    });
  }

 private:
  // time_pass, and under the bf16 policy on the cpu the rate as a share of the
  // vdpbf16ps peak too.
  template <class Pass>
  static void timed(benchmark::State& state, const PassCost& pass_cost, const T* result, Pass&& pass) {
    time_pass<B>(state, pass_cost, result, std::forward<Pass>(pass));
    if constexpr (std::is_same_v<B, cpu> && std::is_same_v<Compute, bf16>)
      if (const double peak = bf16_dot_peak_gflops(); peak > 0 && state.counters.count("GFLOP/s"))
        state.counters["% bf16 peak"] = 100 * double(state.counters["GFLOP/s"]) / peak;
  }

  // A missing device is one clear sentence, before any device allocation fails.
  static void require_device() {
    if constexpr (requires { ops<B>::require_device(); }) ops<B>::require_device();
  }

  static constexpr double parameters = double(Spec::template parameter_count<In>);
  static constexpr double flops_per_sample = Spec::template flops<In>;

  double activations(long elements_per_sample) const { return double(batch_) * double(elements_per_sample); }
  PassCost cost(int forwards, double elements) const {
    return {forwards * flops_per_sample * batch_, elements * double(sizeof(T)), batch_};
  }

  int batch_;
  Context<B> context_;
  Layer layer_;
  Tensor<T, B, In> x_, dx_;
  Tensor<T, B, Out> y_, dy_;
};

namespace detail {

// The most recently used case stays alive, so that the passes of one layer and
// every trial and repetition Google Benchmark makes reuse its tensors instead
// of refilling them; only one case's memory is held at a time.
struct CaseSlot {
  std::shared_ptr<void> owner;
  const void* key = nullptr;
  int batch = 0;
};
inline CaseSlot current_case;
template <class Case>
inline constexpr char case_key = 0;

template <class Case>
Case& shared_case(int batch) {
  if (current_case.key != &case_key<Case> || current_case.batch != batch) {
    current_case = {};  // free the previous case before allocating this one
    current_case.owner = std::make_shared<Case>(batch);
    current_case.key = &case_key<Case>;
    current_case.batch = batch;
  }
  return *static_cast<Case*>(current_case.owner.get());
}

// A case that cannot run (no device, out of memory) is reported as skipped
// with laminar's message, and the other cases still run.
template <class Case, int Batch, void (Case::*Pass)(benchmark::State&)>
void run_pass(benchmark::State& state) {
  try {
    (shared_case<Case>(Batch).*Pass)(state);
  } catch (const Error& error) {
    state.SkipWithError(error.what());
  }
}

template <class Run>
void add_case(const std::string& name, Run run) {
  benchmark::RegisterBenchmark(name.c_str(), run)->Unit(benchmark::kMillisecond);
}

}  // namespace detail

// Registers "<LayerName>/<C>x<H>x<W>/batch:<N>/forward" and ".../backward", and
// ".../backward_data" and ".../backward_weights" for layers that split their
// backward. Cases other than cpu float carry "<backend>:<type>" before the pass.
template <class B, class T, class Spec, class In, int Batch>
bool register_layer() {
  static_assert(Batch > 0, "LAYER_BENCHMARK_BATCH_MUST_BE_POSITIVE");
  using Case = LayerCase<B, T, Spec, In>;
  std::string base = Spec::name() + "/" + detail::shape_text<In>() + "/batch:" + std::to_string(Batch);
  if (!std::is_same_v<B, cpu> || !std::is_same_v<T, float>)
    base += std::string("/") + B::name + ":" + detail::element_name<T>();
  detail::add_case(base + "/forward", detail::run_pass<Case, Batch, &Case::forward>);
  detail::add_case(base + "/backward", detail::run_pass<Case, Batch, &Case::backward>);
  if constexpr (Case::splits_backward) {
    detail::add_case(base + "/backward_data", detail::run_pass<Case, Batch, &Case::backward_data>);
    detail::add_case(base + "/backward_weights", detail::run_pass<Case, Batch, &Case::backward_weights>);
  }
  return true;
}

// --- the SGEMM ceiling ------------------------------------------------------------------
// C = A B for N x N float matrices through ops<cpu>::gemm (Eigen): the rate an
// im2col convolution can at best approach. A matrix is a batch of N rows.
template <int N>
class SquareSgemm {
 public:
  static constexpr double flops = 2.0 * N * N * N;
  static constexpr double bytes = 3.0 * N * N * sizeof(float);  // read A and B, write C

  SquareSgemm() : a_(N), b_(N), c_(N) {
    detail::fill_normal(a_, 1);
    detail::fill_normal(b_, 2);
  }
  void run() { ops<cpu>::gemm(false, false, N, N, N, 1.f, a_.data(), N, b_.data(), N, 0.f, c_.data(), N); }
  const float* result() const { return c_.data(); }

 private:
  Tensor<float, cpu, Shape<N>> a_, b_, c_;
};

// The SGEMM 2048^3 rate in GFLOP/s, measured once per process: the best of
// three calls after a warm-up call.
inline double sgemm_gflops() {
  static const double value = [] {
    SquareSgemm<2048> problem;
    problem.run();
    double best = 0;
    for (int trial = 0; trial < 3; ++trial) {
      const auto start = std::chrono::steady_clock::now();
      problem.run();
      const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
      best = std::max(best, SquareSgemm<2048>::flops / elapsed.count() * 1e-9);
    }
    benchmark::DoNotOptimize(problem.result());
    return best;
  }();
  return value;
}

// Registers "sgemm/2048", the same multiplication timed as a case.
inline bool register_sgemm() {
  detail::add_case("sgemm/2048", [](benchmark::State& state) {
    SquareSgemm<2048> problem;
    time_pass<cpu>(state, {SquareSgemm<2048>::flops, SquareSgemm<2048>::bytes, 0}, problem.result(),
                   [&problem] { problem.run(); });
  });
  return true;
}

namespace detail {
// The peaks head every report, measured before the first case runs.
inline const bool machine_context_added = [] {
  const std::string threads = std::to_string(omp_get_max_threads()) + " OpenMP threads";
  benchmark::AddCustomContext("fp32_peak_gflops", gflops_text(fp32_peak_gflops()) + " (" +
                                                      FmaRegister<float>::instructions + ", " + threads + ")");
  benchmark::AddCustomContext("fp64_peak_gflops", gflops_text(fp64_peak_gflops()) + " (" +
                                                      FmaRegister<double>::instructions + ", " + threads + ")");
  if (has_bf16_dot_probe)
    benchmark::AddCustomContext("bf16_dot_peak_gflops",
                                gflops_text(bf16_dot_peak_gflops()) + " (AVX-512 BF16 vdpbf16ps, " + threads + ")");
  benchmark::AddCustomContext("sgemm_2048_gflops", gflops_text(sgemm_gflops()) + " (ops<cpu>::gemm, " + threads + ")");
  return true;
}();
}  // namespace detail

}  // namespace laminar::bench

// LAMINAR_BENCHMARK_LAYER(Spec, Shape, batch): cpu, float.
// LAMINAR_BENCHMARK_LAYER_ON(backend, type, Spec, Shape, batch), e.g. (cpu, double, ...).
// Names are looked up where the macro stands (so `using namespace laminar;` or
// qualified names); the layer and shape may contain commas, since they reach a
// template argument list whole.
#define LAMINAR_BENCHMARK_LAYER_ON(backend, type, ...)                                       \
  [[maybe_unused]] static const bool LAMINAR_CONCAT(laminar_layer_benchmark_, __COUNTER__) = \
      ::laminar::bench::register_layer<backend, type, __VA_ARGS__>()
#define LAMINAR_BENCHMARK_LAYER(...) LAMINAR_BENCHMARK_LAYER_ON(::laminar::cpu, float, __VA_ARGS__)
#define LAMINAR_BENCHMARK_SGEMM()                                                            \
  [[maybe_unused]] static const bool LAMINAR_CONCAT(laminar_sgemm_benchmark_, __COUNTER__) = \
      ::laminar::bench::register_sgemm()
