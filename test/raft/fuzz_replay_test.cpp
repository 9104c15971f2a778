// Plain build of the raft fuzz harness: feeds seeded random inputs so the
// fuzz invariants run in normal CI without libFuzzer.
//   KVCORE_RAFT_FUZZ_INPUTS=N  number of inputs (default 20000)
//   KVCORE_SEED=S              replay only input S
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "raft_fuzz_harness.hpp"
#include "raft_random_cluster.hpp"

namespace {

std::vector<std::uint8_t> input_for(std::uint64_t seed) {
  kvcore::raft::sim::Rng rng(seed);
  std::vector<std::uint8_t> in(16 + rng.below(1024));
  for (auto& b : in) b = static_cast<std::uint8_t>(rng.next());
  return in;
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return (v == nullptr || *v == '\0') ? fallback : std::strtoull(v, nullptr, 10);
}

}  // namespace

TEST_CASE("raft-fuzz-replay", "[raft][fuzz]") {
  std::uint64_t first = 1;
  std::uint64_t last = env_or("KVCORE_RAFT_FUZZ_INPUTS", 20000);
  if (const char* s = std::getenv("KVCORE_SEED"); s != nullptr && *s != '\0') {
    first = last = std::strtoull(s, nullptr, 10);
  }
  std::uint64_t failures = 0;
  for (std::uint64_t seed = first; seed <= last && failures < 5; ++seed) {
    auto in = input_for(seed);
    auto violation = kvcore::raft::fuzz::run_input(in.data(), in.size());
    if (!violation.empty()) {
      ++failures;
      std::string trace;
      if (first == last) (void)kvcore::raft::fuzz::run_input(in.data(), in.size(), &trace);
      FAIL_CHECK("fuzz input seed " << seed << " (replay: KVCORE_SEED=" << seed
                                    << "): " << violation << "\n"
                                    << trace);
    }
  }
  CHECK(failures == 0);
}
