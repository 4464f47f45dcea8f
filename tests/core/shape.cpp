// Shape: sizes, channel/pixel views of flat and image shapes, and names.
#include <doctest/doctest.h>

#include <laminar/laminar.hpp>

using namespace laminar;

TEST_CASE("an image shape has rank 3, its size and its channel and pixel extents") {
  using S = Shape<3, 4, 5>;
  CHECK(S::rank == 3);
  CHECK(S::size == 60);
  CHECK(S::channels == 3);
  CHECK(S::height == 4);
  CHECK(S::width == 5);
  CHECK(S::pixels == 20);
  CHECK(ImageShape<S>);
  CHECK_FALSE(FlatShape<S>);
}

TEST_CASE("a flat shape reads as N channels of one pixel") {
  using S = Shape<7>;
  CHECK(S::rank == 1);
  CHECK(S::size == 7);
  CHECK(S::channels == 7);
  CHECK(S::height == 1);
  CHECK(S::width == 1);
  CHECK(S::pixels == 1);
  CHECK(FlatShape<S>);
  CHECK_FALSE(ImageShape<S>);
}

TEST_CASE("shape sizes are computed in long and do not overflow int") {
  CHECK(Shape<2048, 2048, 1024>::size == 4294967296L);
}

TEST_CASE("shape names list the dimensions") {
  CHECK(Shape<3, 32, 32>::name() == "Shape<3,32,32>");
  CHECK(Shape<10>::name() == "Shape<10>");
}
