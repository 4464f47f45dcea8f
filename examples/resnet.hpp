// CIFAR ResNets (He et al. 2016, section 4.2): depth 6n + 2, three stages of n
// basic blocks at widths 16, 32 and 64, global average pooling, a linear head.
// ResNet<20>, ResNet<32> and ResNet<56> are the paper's nets. The block that
// halves the size and doubles the width is `Down<Width>`:
//   ProjectionDownBlock  (the default) laminar's Residual, whose shortcut is then a
//                        strided 1x1 projection with bias (the paper's option B);
//   ZeroPadDownBlock     option A, the paper's CIFAR choice: every second pixel,
//                        zero channels appended, no parameters;
//   AvgPoolDownBlock     ResNet-D (He et al. 2019, Bag of Tricks): 2x2 average
//                        pool, stride-1 1x1 convolution, BatchNorm.
#pragma once

#include <laminar/laminar.hpp>

namespace examples {

namespace resnet_detail {

template <class... Layers>
struct list {};

template <class... Lists>
struct concat;
template <class... A>
struct concat<list<A...>> {
  using type = list<A...>;
};
template <class... A, class... B, class... Rest>
struct concat<list<A...>, list<B...>, Rest...> : concat<list<A..., B...>, Rest...> {};

template <int N, class... Layers>
struct repeat : concat<list<Layers...>, typename repeat<N - 1, Layers...>::type> {};
template <class... Layers>
struct repeat<0, Layers...> {
  using type = list<>;
};

template <class List>
struct to_sequential;
template <class... Layers>
struct to_sequential<list<Layers...>> {
  using type = laminar::Sequential<Layers...>;
};

}  // namespace resnet_detail

template <int Width>
using BasicBlock = laminar::Residual<laminar::Conv<3, 3, Width>, laminar::BatchNorm, laminar::ReLU,
                                     laminar::Conv<3, 3, Width>, laminar::BatchNorm>;
template <int Width>
using ProjectionDownBlock = laminar::Residual<laminar::Conv<3, 3, Width, 2>, laminar::BatchNorm, laminar::ReLU,
                                              laminar::Conv<3, 3, Width>, laminar::BatchNorm>;

template <int Width>
using ZeroPadDownBlock = laminar::Residual<laminar::ZeroPadShortcut<Width>, laminar::Conv<3, 3, Width, 2>,
                                           laminar::BatchNorm, laminar::ReLU, laminar::Conv<3, 3, Width>,
                                           laminar::BatchNorm>;
template <int Width>
using AvgPoolDownBlock = laminar::Residual<laminar::AvgPoolShortcut<Width>, laminar::Conv<3, 3, Width, 2>,
                                           laminar::BatchNorm, laminar::ReLU, laminar::Conv<3, 3, Width>,
                                           laminar::BatchNorm>;

template <int Depth, template <int> class Down = ProjectionDownBlock>
struct ResNetOf {
  static_assert(Depth >= 8 && (Depth - 2) % 6 == 0, "a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110)");
  static constexpr int n = (Depth - 2) / 6;
  using R = laminar::ReLU;
  using type = typename resnet_detail::to_sequential<typename resnet_detail::concat<
      resnet_detail::list<laminar::Input<3, 32, 32>, laminar::Conv<3, 3, 16>, laminar::BatchNorm, R>,
      typename resnet_detail::repeat<n, BasicBlock<16>, R>::type,                              // 16 x 32 x 32
      resnet_detail::list<Down<32>, R>, typename resnet_detail::repeat<n - 1, BasicBlock<32>, R>::type,  // 32 x 16 x 16
      resnet_detail::list<Down<64>, R>, typename resnet_detail::repeat<n - 1, BasicBlock<64>, R>::type,  // 64 x 8 x 8
      resnet_detail::list<laminar::GlobalAvgPool, laminar::Dense<10>>>::type>::type;
};

template <int Depth, template <int> class Down = ProjectionDownBlock>
using ResNet = typename ResNetOf<Depth, Down>::type;

}  // namespace examples
