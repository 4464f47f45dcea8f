// laminar: typed convolutional networks. Include this one header.
#pragma once

#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/philox.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "expr/expr.hpp"
#include "layers/activation.hpp"
#include "layers/batchnorm.hpp"
#include "layers/conv.hpp"
#include "layers/dense.hpp"
#include "layers/dropout.hpp"
#include "layers/flatten.hpp"
#include "layers/input.hpp"
#include "layers/pool.hpp"
#include "net/describe.hpp"
#include "net/model.hpp"
#include "net/residual.hpp"
#include "net/sequential.hpp"

#include "backend/cpu/ops.hpp"
#if defined(__CUDACC__)
#include "backend/cuda/ops.cuh"
#endif

#include "data/batch.hpp"
#include "data/cifar10.hpp"
#include "data/cifar100.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/loader.hpp"
#include "data/split.hpp"
#include "train/fit.hpp"
#include "train/loss.hpp"
#include "train/optim.hpp"
