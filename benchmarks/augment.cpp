// Augmentation throughput on one core: CIFAR-10 images (3x32x32 uint8) through
// the light training preset and the report's imgaug preset, in images/s. The
// targets are 20,000 images/s (light) and 3,000 (imgaug) per core, so that two
// cores can feed training without becoming its bottleneck.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <laminar/data/augment/presets.hpp>
#include <numeric>
#include <vector>

using namespace laminar;

template <class Pipeline>
void run(benchmark::State& state, const Pipeline& pipeline) {
  omp_set_num_threads(1);
  const int batch = 256, c = 3, h = 32, w = 32;
  std::vector<std::uint8_t> source(std::size_t(batch) * c * h * w), images(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) source[i] = std::uint8_t(philox::bits(1, 0, 0, i));
  std::vector<long> indices(batch);
  std::iota(indices.begin(), indices.end(), 0L);
  std::uint32_t epoch = 0;
  for (auto _ : state) {
    images = source;  // a fresh batch each time, as a loader would hand over
    pipeline.apply(images.data(), batch, c, h, w, indices.data(), 7, epoch++);
    benchmark::DoNotOptimize(images.data());
  }
  state.counters["img/s"] = benchmark::Counter(batch, benchmark::Counter::kIsIterationInvariantRate);
}

void light_preset(benchmark::State& state) { run(state, augment::cifar_light()); }
void imgaug_preset(benchmark::State& state) { run(state, augment::imgaug_table()); }
void copy_only(benchmark::State& state) { run(state, augment::pipeline(augment::translate(0, 0))); }

BENCHMARK(copy_only)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(light_preset)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(imgaug_preset)->UseRealTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
