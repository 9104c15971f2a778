// CRC-32C (Castagnoli), the checksum of kvcore's own file formats and frames.
// Uses the SSE4.2 instruction when the CPU has it, a table otherwise; both
// give the same value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kvcore::util {

// Extends `crc` (the CRC of earlier bytes, 0 for none) with `data`.
[[nodiscard]] std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n);
[[nodiscard]] inline std::uint32_t crc32c(std::string_view data) {
  return crc32c_extend(0, data.data(), data.size());
}

}  // namespace kvcore::util
