#include "seed.hpp"

#include <cstdlib>
#include <string>

namespace kvcore::test {
namespace {

bool env_u64(const char* name, std::uint64_t& out) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return false;
  out = std::strtoull(v, nullptr, 0);
  return true;
}

}  // namespace

std::uint64_t test_seed(std::uint64_t fallback) {
  std::uint64_t s = 0;
  return env_u64("KVCORE_SEED", s) ? s : fallback;
}

std::vector<std::uint64_t> test_seeds(std::uint64_t first, std::uint64_t count) {
  std::uint64_t s = 0;
  if (env_u64("KVCORE_SEED", s)) return {s};
  env_u64("KVCORE_SEEDS", count);
  std::vector<std::uint64_t> out;
  out.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) out.push_back(first + i);
  return out;
}

std::string replay_hint(std::uint64_t seed) {
  return "replay with KVCORE_SEED=" + std::to_string(seed);
}

std::string Rng::bytes(std::size_t n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(next() & 0xFFu);
  return out;
}

}  // namespace kvcore::test
