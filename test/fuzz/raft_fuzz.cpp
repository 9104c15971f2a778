// libFuzzer entry point of the raft fuzz harness (test/support/raft_fuzz_harness.hpp).
// Build: CXX=clang++ meson setup DIR -Dfuzz=true ...; run: DIR/test/fuzz/raft_fuzz.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "raft_fuzz_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto violation = kvcore::raft::fuzz::run_input(data, size);
  if (!violation.empty()) {
    std::fprintf(stderr, "raft invariant broken: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
