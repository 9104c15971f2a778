// PeerStorage: the raft::Storage of one peer. Log entries, hard state and
// membership come from the raft log engine (raftlog::RaftLogStorage); a
// snapshot is generated on demand from a kv engine snapshot of the region,
// at the applied index recorded in that same engine snapshot, so data and
// index always agree whichever thread applies.
//
// Thread-safety: driven by the peer's raft thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "kvcore/engine/engine.hpp"
#include "kvcore/raft/storage.hpp"
#include "raftlog/storage.hpp"
#include "raftstore/types.hpp"

namespace kvcore::raftstore {

// Reads the apply state of `region` through `reader`; NotFound when absent.
[[nodiscard]] Result<ApplyState> read_apply_state(const Reader& reader, std::uint64_t region);

class PeerStorage final : public raft::Storage {
 public:
  // REQUIRES: both engines outlive the storage.
  PeerStorage(raftlog::RaftLogEngine& raft_engine, Engine& kv, std::uint64_t region)
      : log_(raft_engine, region), kv_(kv), region_(region) {}

  [[nodiscard]] Result<raft::RaftState> initial_state() const override {
    return log_.initial_state();
  }
  [[nodiscard]] Result<std::vector<raft::Entry>> entries(raft::Index lo, raft::Index hi,
                                                         std::uint64_t max_bytes) const override {
    return log_.entries(lo, hi, max_bytes);
  }
  [[nodiscard]] Result<raft::Term> term(raft::Index i) const override { return log_.term(i); }
  // Cached: the raft core asks for it on every has_ready(), and it is a
  // state-record lookup in the raft log engine. REQUIRES: invalidate() after
  // every raft log write that can move it (compaction, snapshot, appends).
  [[nodiscard]] Result<raft::Index> first_index() const override {
    if (!first_index_) {
      KVCORE_ASSIGN_OR_RETURN(raft::Index i, log_.first_index());
      first_index_ = i;
    }
    return *first_index_;
  }
  void invalidate() noexcept { first_index_.reset(); }
  [[nodiscard]] Result<raft::Index> last_index() const override { return log_.last_index(); }
  // A snapshot of the region's data at the applied index (generated once per
  // applied index and kept until a newer one is needed).
  [[nodiscard]] Result<raft::Snapshot> snapshot() const override;

  [[nodiscard]] const raftlog::RaftLogStorage& log() const noexcept { return log_; }
  // Snapshots generated so far (metrics).
  [[nodiscard]] std::uint64_t snapshots_generated() const noexcept { return generated_; }

 private:
  raftlog::RaftLogStorage log_;
  Engine& kv_;
  const std::uint64_t region_;
  mutable std::optional<raft::Snapshot> cached_;
  mutable std::optional<raft::Index> first_index_;
  mutable std::uint64_t generated_ = 0;
};

}  // namespace kvcore::raftstore
