// resnet_cifar's ResNet-56s, one translation unit (resnet_recipe.hpp).
#include "resnet_train.hpp"

template void resnet_cifar::train_depth<56>(const Recipe&, const examples::CifarFlags&, const laminar::data::Splits&,
                                            const examples::Stopwatch&);
