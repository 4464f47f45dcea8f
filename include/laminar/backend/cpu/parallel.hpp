// The work size below which the cpu kernels stay on one thread.
#pragma once

namespace laminar::cpu_detail {

// Below this many multiply-adds (or element visits) a parallel region costs
// more than it saves, and on a busy machine far more.
inline constexpr double parallel_threshold = 1 << 16;

}  // namespace laminar::cpu_detail
