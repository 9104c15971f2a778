#include "runtime/random.hpp"

#include "util/splitmix.hpp"

namespace kvcore::runtime {
namespace {

__extension__ typedef unsigned __int128 U128;  // NOLINT(modernize-use-using)

constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

}  // namespace

Random::Random(std::uint64_t seed) noexcept {
  // splitmix64 expands any seed (0 included) into a state that is not all
  // zero, which xoshiro requires.
  for (auto& word : s_) word = util::splitmix64_next(seed);
}

std::uint64_t Random::next_u64() noexcept {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t Random::uniform(std::uint64_t n) noexcept {
  if (n == 0) return 0;
  // Lemire's multiply-shift with rejection of the biased low range.
  U128 m = static_cast<U128>(next_u64()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<U128>(next_u64()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

std::uint64_t Random::uniform_between(std::uint64_t lo, std::uint64_t hi) noexcept {
  if (hi <= lo) return lo;
  const std::uint64_t span = hi - lo;
  if (span == ~std::uint64_t{0}) return next_u64();
  return lo + uniform(span + 1);
}

double Random::next_double() noexcept { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

bool Random::chance(double p) noexcept {
  if (p <= 0.0) return false;
  if (p >= 1.0) return true;
  return next_double() < p;
}

Random Random::fork() noexcept { return Random(next_u64()); }

}  // namespace kvcore::runtime
