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

enum class PeerState : std::uint8_t { kNormal, kTombstone };

// The region record of a peer, kept in the raft log engine (state key
// kRegionStateKey). Authoritative at startup for which regions the store has.
struct RegionLocalState {
  PeerState state = PeerState::kNormal;
  RegionMeta region;
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

// Exactly one of: a non-empty `writes`, `compact_log` or `batch_split`. (An entry with
// empty data is raft's own no-op of a new leader, not a RaftCmd.)
struct RaftCmd {
  CmdHeader header;
  std::vector<WriteOp> writes;
  std::optional<CompactLogCmd> compact_log;
  std::optional<BatchSplitCmd> batch_split;
  friend bool operator==(const RaftCmd&, const RaftCmd&) = default;
};

// --- Frames: what stores send each other -----------------------------------

// One raft message for one peer of one region. A kSnapshot message never
// travels here (see SnapshotChunk).
struct RaftEnvelope {
  std::uint64_t region_id = 0;
  PeerMeta from_peer;
  PeerMeta to_peer;
  RegionEpoch epoch;  // the sender's
  raft::Message message;
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
