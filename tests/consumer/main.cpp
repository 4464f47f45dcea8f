// A user's program against the installed laminar: one training step of a tiny
// network must lower the loss on a fixed batch. Built twice: header-only
// (laminar::laminar) and against the compiled kernels (laminar::kernels).
#include <laminar/laminar.hpp>

#include <cstdio>
#include <vector>

#if defined(CONSUMER_LINKS_KERNELS) && !LAMINAR_COMPILED_KERNELS
#error "linking laminar::kernels must define LAMINAR_COMPILED_KERNELS=1"
#endif
#if !defined(CONSUMER_LINKS_KERNELS) && LAMINAR_COMPILED_KERNELS
#error "laminar::laminar alone must stay header-only"
#endif

using namespace laminar;
using Net = Sequential<Input<1, 8, 8>, Conv<3, 3, 4>, BatchNorm, ReLU, GlobalAvgPool, Dense<3>>;

int main() {
  Model<Net, cpu> model(7);
  optim::SGD opt(model, {.lr = 0.1, .momentum = 0.0});
  std::vector<float> x(4 * 64);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float((i * 37) % 11) / 11.f;
  std::vector<int> labels{0, 1, 2, 1};
  std::vector<float> dlogits(4 * 3);
  double losses[2];
  for (double& loss : losses) {
    auto y = model.forward(View<const float, cpu, Shape<1, 8, 8>>{x.data(), 4});
    loss = loss::CrossEntropy{}.compute<cpu>(y.data, labels.data(), 4, 3, dlogits.data()).loss;
    model.backward(View<const float, cpu, Shape<3>>{dlogits.data(), 4});
    opt.step();
  }
  std::printf("loss %.9g -> %.9g\n", losses[0], losses[1]);  // run.cmake compares both builds' lines
  if (!(losses[1] < losses[0])) return 1;
  std::printf("consumer (%s): ok\n", LAMINAR_COMPILED_KERNELS ? "compiled kernels" : "header-only");
  return 0;
}
