// Random: the seeded pseudo-random generator behind every random choice in
// kvcore (election timeouts, backoff jitter, the simulator's schedule).
// xoshiro256** seeded through splitmix64: fast, 2^256-1 period, and the same
// sequence on every platform, so a seed replays a run exactly.
//
// fork() derives an independent child from the parent's sequence. Give each
// component its own child at wiring time instead of sharing one generator:
// the wiring order is deterministic, so every child's sequence is too, and no
// generator is touched by two threads.
//
// Thread-safety: none. One Random is used by one thread at a time.
#pragma once

#include <array>
#include <cstdint>

namespace kvcore::runtime {

class Random {
 public:
  explicit Random(std::uint64_t seed) noexcept;

  [[nodiscard]] std::uint64_t next_u64() noexcept;

  // Uniform in [0, n), without modulo bias. REQUIRES: n > 0 (0 is returned
  // for n == 0).
  [[nodiscard]] std::uint64_t uniform(std::uint64_t n) noexcept;

  // Uniform in [lo, hi]. REQUIRES: lo <= hi.
  [[nodiscard]] std::uint64_t uniform_between(std::uint64_t lo, std::uint64_t hi) noexcept;

  // Uniform in [0, 1).
  [[nodiscard]] double next_double() noexcept;

  // True with probability p: always false for p <= 0, always true for p >= 1.
  [[nodiscard]] bool chance(double p) noexcept;

  // A child generator seeded from this one's next output. Advances this one.
  [[nodiscard]] Random fork() noexcept;

 private:
  std::array<std::uint64_t, 4> s_;
};

}  // namespace kvcore::runtime
