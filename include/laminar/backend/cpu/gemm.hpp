// Dense algebra of the cpu backend: row-major GEMM through Eigen.
#pragma once

#include <Eigen/Core>

#include "parallel.hpp"

namespace laminar::cpu_detail {

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatrixMap = Eigen::Map<Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;


// C (m, n) = alpha * op(A) op(B) + beta * C, all row-major.
template <class T>
void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, T alpha, const T* a, int lda,
          const T* b, int ldb, T beta, T* c, int ldc) {
  MatrixMap<T> C(c, m, n, Eigen::OuterStride<>(ldc));
  const ConstMatrixMap<T> A(a, transpose_a ? k : m, transpose_a ? m : k, Eigen::OuterStride<>(lda));
  const ConstMatrixMap<T> B(b, transpose_b ? n : k, transpose_b ? k : n, Eigen::OuterStride<>(ldb));
  if (beta == T(0))
    C.setZero();
  else if (beta != T(1))
    C *= beta;
  if (!transpose_a && !transpose_b) C.noalias() += alpha * A * B;
  if (!transpose_a && transpose_b) C.noalias() += alpha * A * B.transpose();
  if (transpose_a && !transpose_b) C.noalias() += alpha * A.transpose() * B;
  if (transpose_a && transpose_b) C.noalias() += alpha * A.transpose() * B.transpose();
}

}  // namespace laminar::cpu_detail
