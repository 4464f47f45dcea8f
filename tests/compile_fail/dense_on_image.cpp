// Must NOT compile: Dense needs a flat input and the layer before it gives an
// image. CTest compiles this file and matches the one error, whose instantiation
// context names the layer's position (Input is 0), its type and its input shape.
// GCC 12 prints, among seven "required from" lines:
//   required from 'struct laminar::detail::LayerInput<3, laminar::Dense<10>,
//       laminar::Shape<4, 8, 8> >'
//   error: static assertion failed: Dense expects a flat input Shape<N>; add
//       Flatten or GlobalAvgPool before it
#include <laminar/laminar.hpp>

using namespace laminar;

using Net = Sequential<Input<3, 8, 8>, Conv<3, 3, 4>, ReLU, Dense<10>>;

int main() {
  Model<Net, cpu, float> model;
  return int(model.parameter_count());
}
