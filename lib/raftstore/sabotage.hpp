// Deliberate bugs, switched on only by tests that prove the simulator's
// checkers catch a broken store (test/sim). Nothing else may set them: each
// one breaks a guarantee of include/kvcore/store.hpp on purpose.
//
// The switch is process-wide (every store of the process is broken the same
// way), so a test sets it around one run and clears it after.
//
// Thread-safety: set_sabotage and sabotaged may be called from any thread.
#pragma once

#include <cstdint>

namespace kvcore::raftstore::testing {

enum class Sabotage : std::uint8_t {
  kNone = 0,
  // Gets are answered from the local kv engine by any peer of the region,
  // leader or not, with no lease and no ReadIndex round (a stale read).
  kFollowerReads,
  // The raft log is never synced, even with StoreOptions::sync_log: writes
  // are acknowledged before they are durable.
  kSkipLogSync,
};

void set_sabotage(Sabotage s);
[[nodiscard]] bool sabotaged(Sabotage s);

}  // namespace kvcore::raftstore::testing
