// resnet_cifar's ResNet-32s, one translation unit (resnet_recipe.hpp).
#include "resnet_train.hpp"

template void resnet_cifar::train_depth<32>(const Recipe&, const examples::CifarFlags&, const laminar::data::Splits&,
                                            const examples::Stopwatch&);
