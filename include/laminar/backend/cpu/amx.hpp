// Intel AMX on Linux: whether this process may use the tile registers, and their
// configuration. The kernel hands out tile state only on request (arch_prctl
// ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA), once per process; a CPU without
// AMX, a kernel that refuses, or LAMINAR_AMX=0 in the environment means no AMX.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__linux__) && defined(__x86_64__)
#define LAMINAR_HAS_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define LAMINAR_HAS_AMX 0
#endif

namespace laminar::cpu_detail {

inline bool amx_available() {
#if LAMINAR_HAS_AMX
  static const bool available = [] {
    const char* setting = std::getenv("LAMINAR_AMX");
    if (setting && std::strcmp(setting, "0") == 0) return false;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amx_bf16 = (edx >> 22) & 1, amx_tile = (edx >> 24) & 1;
    if (!amx_bf16 || !amx_tile) return false;
    constexpr long request_permission = 0x1023;  // ARCH_REQ_XCOMP_PERM
    constexpr long tile_data = 18;               // XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, request_permission, tile_data) == 0;
  }();
  return available;
#else
  return false;
#endif
}

// The 64-byte operand of ldtilecfg: palette 1, then per tile its bytes per row
// and its rows. Unused tiles stay 0 x 0.
struct alignas(64) TileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};

  TileConfig& tile(int index, int tile_rows, int row_bytes) {
    rows[index] = std::uint8_t(tile_rows);
    bytes_per_row[index] = std::uint16_t(row_bytes);
    return *this;
  }
};
static_assert(sizeof(TileConfig) == 64);

#if LAMINAR_HAS_AMX
// Tile state is per thread: each thread of a parallel region loads the
// configuration before its first tile instruction and releases it after.
class TileScope {
 public:
  explicit TileScope(const TileConfig& config) { _tile_loadconfig(&config); }
  ~TileScope() { _tile_release(); }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};
#endif

}  // namespace laminar::cpu_detail
