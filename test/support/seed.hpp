// Seeds for randomized tests. Every randomized test takes its seeds from
// here and reports the seed of a failure, so `KVCORE_SEED=<n>` replays it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/splitmix.hpp"

namespace kvcore::test {

// KVCORE_SEED when set, else `fallback`.
[[nodiscard]] std::uint64_t test_seed(std::uint64_t fallback);

// The seeds a randomized test should run: just KVCORE_SEED when set (replay);
// else `count` seeds starting at `first`, where KVCORE_SEEDS=<n> overrides the
// count (longer runs).
[[nodiscard]] std::vector<std::uint64_t> test_seeds(std::uint64_t first, std::uint64_t count);

// "replay with KVCORE_SEED=<seed>": put it in the test's INFO/failure text.
[[nodiscard]] std::string replay_hint(std::uint64_t seed);

// A small, fast, seeded generator (splitmix64), the same on every platform.
class Rng : public util::SplitMix64 {
 public:
  using SplitMix64::SplitMix64;
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }
  std::string bytes(std::size_t n);
};

}  // namespace kvcore::test
