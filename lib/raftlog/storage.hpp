// kvcore::raftlog::RaftLogStorage: the raft::Storage of ONE region over a
// RaftLogEngine, so a RawNode runs over the engine.
//
// Besides the region's entries and hard state it uses three state records
// of the region: kConfStateKey (the membership, for initial_state),
// kTruncatedKey (index and term of the last compacted entry: first_index()
// is its index + 1 and term() knows its term) and kSnapshotKey (the metadata
// of the latest snapshot; its data belongs to the application and is not
// kept here). It behaves like raft::MemoryStorage fed the same operations.
//
// Mutations are not applied directly: each helper adds operations to a
// LogBatch (so a poller can gather many regions into one write), reading the
// state the engine holds now. Write the batch before calling a helper that
// depends on the effect of an earlier one.
//
// Thread-safety: the reads are safe from any thread (the engine is); the
// raft core calls them from the thread driving its RawNode.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kvcore/raft/storage.hpp"
#include "raftlog/engine.hpp"

namespace kvcore::raftlog {

inline constexpr std::string_view kConfStateKey = "raft.conf_state";
inline constexpr std::string_view kTruncatedKey = "raft.truncated";
inline constexpr std::string_view kSnapshotKey = "raft.snapshot";

[[nodiscard]] std::string encode_conf_state(const raft::ConfState& cs);
[[nodiscard]] Result<raft::ConfState> decode_conf_state(std::string_view in);
[[nodiscard]] std::string encode_snapshot_metadata(const raft::SnapshotMetadata& m);
[[nodiscard]] Result<raft::SnapshotMetadata> decode_snapshot_metadata(std::string_view in);

class RaftLogStorage final : public raft::Storage {
 public:
  // REQUIRES: `engine` outlives this storage.
  RaftLogStorage(RaftLogEngine& engine, std::uint64_t region) : engine_(engine), region_(region) {}

  [[nodiscard]] Result<raft::RaftState> initial_state() const override;
  [[nodiscard]] Result<std::vector<raft::Entry>> entries(raft::Index lo, raft::Index hi,
                                                         std::uint64_t max_bytes) const override;
  [[nodiscard]] Result<raft::Term> term(raft::Index i) const override;
  [[nodiscard]] Result<raft::Index> first_index() const override;
  [[nodiscard]] Result<raft::Index> last_index() const override;
  // The latest snapshot's index and term, the current membership, and empty
  // data (the snapshot's data belongs to the application).
  [[nodiscard]] Result<raft::Snapshot> snapshot() const override;

  [[nodiscard]] std::uint64_t region() const noexcept { return region_; }

  // Batch helpers, mirroring raft::MemoryStorage's mutators.
  void set_hard_state(LogBatch& batch, const raft::HardState& hs) const;
  void set_conf_state(LogBatch& batch, const raft::ConfState& cs) const;
  // Entries at or below the compacted index are ignored; InvalidArgument when
  // they are not consecutive or would leave a gap after the last index.
  [[nodiscard]] Status append(LogBatch& batch, std::span<const raft::Entry> entries) const;
  // Discards entries before `compact_index` (it stays known as the
  // truncated entry). Compacted / Unavailable storage errors as MemoryStorage.
  [[nodiscard]] Status compact(LogBatch& batch, raft::Index compact_index) const;
  // Records a snapshot at `index` (<= last index), with `cs` or the current
  // membership. SnapshotOutOfDate when not newer than the current one.
  [[nodiscard]] Result<raft::SnapshotMetadata> create_snapshot(
      LogBatch& batch, raft::Index index, std::optional<raft::ConfState> cs) const;
  // Replaces the whole log with the snapshot's position (entries dropped,
  // membership from the snapshot). SnapshotOutOfDate when older.
  [[nodiscard]] Status apply_snapshot(LogBatch& batch, const raft::SnapshotMetadata& meta) const;

 private:
  struct Truncated {
    raft::Index index = 0;
    raft::Term term = 0;
  };
  [[nodiscard]] Result<Truncated> truncated() const;
  [[nodiscard]] Result<raft::SnapshotMetadata> snapshot_metadata() const;

  RaftLogEngine& engine_;
  const std::uint64_t region_;
};

}  // namespace kvcore::raftlog
