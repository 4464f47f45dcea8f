// The network of a Keras question, "my CNN plateaus at 60% on CIFAR-10": three
// pairs of 3x3 same-padded ReLU convolutions (32, 64, 128), each pair closed by
// 2x2 max-pooling and dropout 0.2, then dense 1024 and 512 (ReLU, max-norm 3,
// dropout 0.5) and dense 10; Adam at 1e-3 on pixels scaled to [0, 1], with
// Keras's validation_split 0.1 for the per-epoch validation. The question's own
// figure is a validation accuracy that stalls near 60% while the training
// accuracy keeps climbing. The log shows that gap: each epoch's training and
// validation accuracy side by side, fit's overfitting warning once the
// validation loss turns up, and at the end the accuracy on data_batch_5, which
// the run never saw.
//
//   qa_baseline [--data DIR] [--epochs 25] [--batch 32] [--lr 0.001] [--seed N] [--test FILE] [--limit N]
//               [--precision float|bf16]
#include <cstdio>
#include <exception>

#include <laminar/laminar.hpp>

#include "cifar.hpp"
#include "options.hpp"
#include "qa_protocol.hpp"

using namespace laminar;

using Net = Sequential<Input<3, 32, 32>,
                       Conv<3, 3, 32>, ReLU, Conv<3, 3, 32>, ReLU, MaxPool<2>, Dropout<0.2>,      // 32 x 16 x 16
                       Conv<3, 3, 64>, ReLU, Conv<3, 3, 64>, ReLU, MaxPool<2>, Dropout<0.2>,      // 64 x 8 x 8
                       Conv<3, 3, 128>, ReLU, Conv<3, 3, 128>, ReLU, MaxPool<2>, Dropout<0.2>,    // 128 x 4 x 4
                       Flatten, Dense<1024>, ReLU, Dropout<0.5>,                                  // layer 20
                       Dense<512>, ReLU, Dropout<0.5>,                                            // layer 23
                       Dense<10>>;

int main(int argc, char** argv) try {
  const examples::Stopwatch clock;
  examples::Options args(argc, argv, "qa_baseline");
  const auto flags = examples::cifar_flags(args, 25);
  const int batch = args.integer("--batch", 32);  // Keras's default batch size
  const double lr = args.real("--lr", 1e-3);
  args.finish();

  const auto data = examples::load_cifar10(flags);
  std::printf("%s", describe<Net>().c_str());
  Model<Net, cpu> model(flags.seed);
  examples::apply_precision(model, flags);
  optim::Adam opt(model, {.lr = lr});
  // kernel_constraint=max_norm(3) sits on the two hidden dense layers only.
  opt.set_max_norm("20", 3.0);
  opt.set_max_norm("23", 3.0);

  examples::train_keras_protocol("qa_baseline", model, opt, data, flags, batch, clock);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "qa_baseline: %s\n", e.what());
  return 1;
}
