// resnet_cifar's ResNet-20s, one translation unit (resnet_recipe.hpp).
#include "resnet_train.hpp"

template void resnet_cifar::train_depth<20>(const Recipe&, const examples::CifarFlags&, const laminar::data::Splits&,
                                            const examples::Stopwatch&);
