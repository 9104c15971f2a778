// splitmix64: the small seeded generator behind every deterministic choice in
// kvcore (raft election timeouts, seeding the runtime's xoshiro, test
// workloads). Same sequence on every platform, so a seed replays a run.
#pragma once

#include <cstdint>

namespace kvcore::util {

// Advances `state` and returns the next output.
[[nodiscard]] inline std::uint64_t splitmix64_next(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept { return splitmix64_next(state_); }
  // Uniform in [0, n) (modulo bias is negligible for the small n used).
  // REQUIRES: n > 0.
  std::uint64_t uniform(std::uint64_t n) noexcept { return next() % n; }

 private:
  std::uint64_t state_;
};

}  // namespace kvcore::util
