// The raftstore's own data: region metadata, the persisted states of a peer,
// and the commands peers replicate. Plain structs; their wire and disk forms
// (protobuf, lib/proto/raftstore.proto) live in codec.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/engine/types.hpp"
#include "kvcore/raft/types.hpp"

namespace kvcore::raftstore {

// Guards commands against stale routing: conf_ver grows with each membership
// change, version with each split or merge.
struct RegionEpoch {
  std::uint64_t conf_ver = 1;
  std::uint64_t version = 1;
  friend bool operator==(const RegionEpoch&, const RegionEpoch&) = default;
};

struct PeerMeta {
  std::uint64_t id = 0;  // the raft node id; unique in the cluster
  std::uint64_t store_id = 0;
  bool learner = false;
  friend bool operator==(const PeerMeta&, const PeerMeta&) = default;
};

// A region: the keys [start_key, end_key) (empty end_key: to the last key)
// and the peers replicating them.
struct RegionMeta {
  std::uint64_t id = 0;
  std::string start_key;
  std::string end_key;
  RegionEpoch epoch;
  std::vector<PeerMeta> peers;

  [[nodiscard]] bool contains(std::string_view key) const noexcept {
    return key >= start_key && (end_key.empty() || key < end_key);
  }
  [[nodiscard]] const PeerMeta* peer_by_id(std::uint64_t peer_id) const noexcept {
    for (const auto& p : peers) {
      if (p.id == peer_id) return &p;
    }
    return nullptr;
  }
  [[nodiscard]] const PeerMeta* peer_on_store(std::uint64_t store_id) const noexcept {
    for (const auto& p : peers) {
      if (p.store_id == store_id) return &p;
    }
    return nullptr;
  }
  friend bool operator==(const RegionMeta&, const RegionMeta&) = default;
};

// kMerging: PrepareMerge applied, the region waits to be merged into its
// target (or rolled back); kTombstone: the peer was removed or merged away,
// and its region record stays only so late messages cannot recreate it.
enum class PeerState : std::uint8_t { kNormal, kTombstone, kMerging };

// A region between PrepareMerge and CommitMerge/RollbackMerge (the source of
// a merge).
struct MergeState {
  // The lowest log index any peer of the source had matched when
  // PrepareMerge was proposed: CommitMerge carries the entries after it.
  raft::Index min_index = 0;
  // The target region as the source saw it when proposing.
  RegionMeta target;
  // The index of the PrepareMerge entry itself.
  raft::Index commit = 0;
  friend bool operator==(const MergeState&, const MergeState&) = default;
};

// The region record of a peer, kept in the raft log engine (state key
// kRegionStateKey). Authoritative at startup for which regions the store has.
struct RegionLocalState {
  PeerState state = PeerState::kNormal;
  RegionMeta region;
  std::optional<MergeState> merge_state;  // set while kMerging
  friend bool operator==(const RegionLocalState&, const RegionLocalState&) = default;
};

// The apply state of a peer, kept in the kv engine (CF raft, key
// apply_state_key(region)) and written in the same batch as the data it
// covers, so that after a crash the store resumes applying exactly after the
// last entry whose effects survived. `region` and `conf_state` are the
// membership as of applied_index (what a snapshot taken now would carry).
struct ApplyState {
  raft::Index applied_index = 0;
  raft::Term applied_term = 0;
  raft::Index truncated_index = 0;
  raft::Term truncated_term = 0;
  RegionMeta region;
  raft::ConfState conf_state;
  // Set from the applied PrepareMerge until CommitMerge or RollbackMerge.
  std::optional<MergeState> merge_state;
  friend bool operator==(const ApplyState&, const ApplyState&) = default;
};

// Written once in the raft log engine (region 0, kStoreIdentKey).
struct StoreIdent {
  std::uint64_t cluster_id = 0;
  std::uint64_t store_id = 0;
  friend bool operator==(const StoreIdent&, const StoreIdent&) = default;
};

// --- Commands: the data of a normal raft entry ----------------------------

struct CmdHeader {
  std::uint64_t region_id = 0;
  std::uint64_t peer_id = 0;  // the proposing peer
  RegionEpoch epoch;          // the proposer's view; checked at apply time
  friend bool operator==(const CmdHeader&, const CmdHeader&) = default;
};

enum class WriteOpKind : std::uint8_t { kPut, kDelete, kDeleteRange };

struct WriteOp {
  WriteOpKind kind = WriteOpKind::kPut;
  CF cf = CF::kDefault;
  std::string key;    // kDeleteRange: start
  std::string value;  // kDeleteRange: end (exclusive; empty: to the last key)
  friend bool operator==(const WriteOp&, const WriteOp&) = default;
};

// Whether `op` touches only keys of `r` (a delete-range must end inside it).
[[nodiscard]] inline bool op_in_region(const WriteOp& op, const RegionMeta& r) {
  if (!r.contains(op.key)) return false;
  if (op.kind != WriteOpKind::kDeleteRange || r.end_key.empty()) return true;
  return !op.value.empty() && op.value <= r.end_key;
}

// A condition of a conditional write command (RawBatch::expect): when the
// command applies, `key` (in CF default) must hold `expected` (nullopt: be
// absent), or none of the command's writes apply.
struct WriteCondition {
  std::string key;
  std::optional<std::string> expected;
  friend bool operator==(const WriteCondition&, const WriteCondition&) = default;
};

// Discard raft log entries up to and including compact_index.
struct CompactLogCmd {
  raft::Index compact_index = 0;
  raft::Term compact_term = 0;
  friend bool operator==(const CompactLogCmd&, const CompactLogCmd&) = default;
};

// One new region of a batch split: its id and the ids of its peers, one per
// peer of the region being split, in the same order (same stores).
struct SplitRegion {
  std::uint64_t region_id = 0;
  std::vector<std::uint64_t> peer_ids;
  friend bool operator==(const SplitRegion&, const SplitRegion&) = default;
};

// Splits a region at `split_keys` (ascending, strictly inside the region)
// into split_keys.size() + 1 regions: the region keeps [start, k1) and
// new_regions[i] takes [k(i+1), k(i+2)), the last one up to the old end.
// Every resulting region's version is the old version + split_keys.size().
struct BatchSplitCmd {
  std::vector<std::string> split_keys;
  std::vector<SplitRegion> new_regions;
  friend bool operator==(const BatchSplitCmd&, const BatchSplitCmd&) = default;
};

// One change of a ChangePeerV2: `peer` (id and store) is added as a voter
// (kAddNode; a learner of that id is promoted), added as a learner
// (kAddLearnerNode; a voter of that id is demoted), or removed (kRemoveNode).
struct PeerChange {
  raft::ConfChangeType type = raft::ConfChangeType::kAddNode;
  PeerMeta peer;
  friend bool operator==(const PeerChange&, const PeerChange&) = default;
};

// A membership change. It travels in the `context` of a raft kConfChange
// entry (whose ConfChangeV2 lists the same changes by node id), so the
// region's peer list changes in the same entry as raft's configuration.
// Several changes enter a joint configuration; an empty list leaves it.
struct ChangePeerCmd {
  std::vector<PeerChange> changes;
  friend bool operator==(const ChangePeerCmd&, const ChangePeerCmd&) = default;
};

// Proposed on the source region: stops it taking writes and bumps both
// conf_ver and version. `min_index` as in MergeState.
struct PrepareMergeCmd {
  raft::Index min_index = 0;
  RegionMeta target;
  friend bool operator==(const PrepareMergeCmd&, const PrepareMergeCmd&) = default;
};

// Proposed on the target region: takes in `source` (as of its applied
// PrepareMerge, whose index is `commit`), carrying the source's log entries
// (min_index, commit] so a target peer whose source peer lags can bring it
// up to the PrepareMerge before extending its range.
struct CommitMergeCmd {
  RegionMeta source;
  raft::Index commit = 0;
  std::vector<raft::Entry> entries;
  friend bool operator==(const CommitMergeCmd&, const CommitMergeCmd&) = default;
};

// Proposed on the source when the merge cannot complete (the target changed
// or is gone): the source serves again, version bumped once more.
struct RollbackMergeCmd {
  raft::Index commit = 0;  // the PrepareMerge's index
  friend bool operator==(const RollbackMergeCmd&, const RollbackMergeCmd&) = default;
};

// Exactly one of: a non-empty `writes` (with any `conditions`, which only a
// write command has), or one admin command. (An entry with empty data is
// raft's own no-op of a new leader, not a RaftCmd.) `change_peer` is set
// only in the context of a kConfChange entry.
struct RaftCmd {
  CmdHeader header;
  std::vector<WriteOp> writes;
  std::vector<WriteCondition> conditions;
  std::optional<CompactLogCmd> compact_log;
  std::optional<BatchSplitCmd> batch_split;
  std::optional<ChangePeerCmd> change_peer;
  std::optional<PrepareMergeCmd> prepare_merge;
  std::optional<CommitMergeCmd> commit_merge;
  std::optional<RollbackMergeCmd> rollback_merge;
  friend bool operator==(const RaftCmd&, const RaftCmd&) = default;
};

// --- Frames: what stores send each other -----------------------------------

// What an envelope carries besides raft's own messages (TiKV's extra
// messages). An extra envelope is never stepped into raft: its `message`
// only names the two peers (from, to), as a heartbeat of term 0.
enum class ExtraMessage : std::uint8_t {
  kNone,  // a raft message
  // "You were removed from the region": the sender's region, at `epoch`,
  // newer than the receiver's, no longer has the receiving peer, which
  // destroys itself (TiKV's tombstone message).
  kGcPeer,
  // "Am I still a member?": sent by a peer that has not heard from a leader
  // for a while to the other peers of its region; a peer that knows a newer
  // epoch without the sender answers kGcPeer.
  kCheckStalePeer,
};

// One raft message for one peer of one region. A kSnapshot message never
// travels here (see SnapshotChunk).
struct RaftEnvelope {
  std::uint64_t region_id = 0;
  PeerMeta from_peer;
  PeerMeta to_peer;
  RegionEpoch epoch;  // the sender's
  raft::Message message;
  // On a leader's heartbeat: the region is idle and the leader stops
  // ticking; a follower that is up to date stops too (hibernation).
  bool hibernate = false;
  ExtraMessage extra = ExtraMessage::kNone;
};

// A piece of a kSnapshot message. The snapshot's data is cut into chunks,
// each carried by its own frame; `message` is the kSnapshot message with its
// Snapshot holding the metadata and empty data, repeated in every chunk so a
// receiver can check chunks belong together: (region_id, to_peer, term,
// snapshot index and term) identifies a transfer. Chunks are sent in order;
// the receiver assembles them and steps the message once the last arrives.
struct SnapshotChunk {
  std::uint64_t region_id = 0;
  PeerMeta from_peer;
  PeerMeta to_peer;
  RegionEpoch epoch;
  raft::Message message;          // kSnapshot; message.snapshot->data is empty
  std::uint64_t offset = 0;       // of `data` within the whole snapshot data
  std::uint64_t total_bytes = 0;  // of the whole snapshot data
  std::string data;
};

struct Frame {
  std::uint64_t cluster_id = 0;
  std::uint64_t from_store = 0;
  std::uint64_t to_store = 0;
  std::vector<RaftEnvelope> messages;
  std::vector<SnapshotChunk> chunks;
};

}  // namespace kvcore::raftstore
