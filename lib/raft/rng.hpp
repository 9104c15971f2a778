// The seeded generator behind randomized election timeouts (splitmix64): the
// only source of randomness of the raft core, so a seed replays a run exactly.
#pragma once

#include <cstdint>

namespace kvcore::raft {

class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n). REQUIRES: n > 0.
  std::uint64_t uniform(std::uint64_t n) { return next() % n; }

 private:
  std::uint64_t state_;
};

}  // namespace kvcore::raft
