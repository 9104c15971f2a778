// The state of a region that starts without a log: the first region of a
// cluster (bootstrap) and the regions a split creates. Such a region starts,
// on every store, as if restored from a snapshot at kInitIndex / kInitTerm
// holding its membership, so all its peers begin with identical logs.
#pragma once

#include "raftlog/engine.hpp"
#include "raftstore/types.hpp"

namespace kvcore::raftstore {

// The membership of `region` as raft sees it.
[[nodiscard]] raft::ConfState conf_state_of(const RegionMeta& region);
// The apply state of a region that starts at kInitIndex.
[[nodiscard]] ApplyState initial_apply_state(const RegionMeta& region);
// Writes (synced) the raft log engine's side: the snapshot position, the
// membership, the hard state and the region record.
[[nodiscard]] Status write_initial_raft_state(raftlog::RaftLogEngine& engine,
                                              const RegionMeta& region);

}  // namespace kvcore::raftstore
