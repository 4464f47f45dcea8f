// Compiler glue shared by every header: host/device annotations for code that
// one backend runs on the CPU and another on the GPU.
#pragma once

#if defined(__CUDACC__)
#define LAMINAR_HD __host__ __device__
#else
#define LAMINAR_HD
#endif

#define LAMINAR_CONCAT_IMPL(a, b) a##b
#define LAMINAR_CONCAT(a, b) LAMINAR_CONCAT_IMPL(a, b)
