// Value types of the raft consensus core: entries, messages, states,
// configuration changes. Plain structs; the wire and disk encodings live in
// the layers that send and persist them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/status.hpp"

namespace kvcore::raft {

using NodeId = std::uint64_t;  // 0 means "none"
using Term = std::uint64_t;
using Index = std::uint64_t;
inline constexpr NodeId kNoNode = 0;

enum class EntryType : std::uint8_t {
  kNormal,
  // data: an encoded ConfChangeV2 (encode_conf_change / decode_conf_change).
  kConfChange,
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  // Bytes counted against size limits: data plus a fixed overhead.
  [[nodiscard]] std::size_t byte_size() const noexcept { return data.size() + 16; }
  friend bool operator==(const Entry&, const Entry&) = default;
};

// The membership of a group. Outside a joint configuration only `voters` and
// `learners` are set. Inside one, `voters` is the incoming and
// `voters_outgoing` the outgoing majority config; `learners_next` holds voters
// being demoted to learners, who become learners when the joint state is left.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;
  std::vector<NodeId> voters_outgoing;
  std::vector<NodeId> learners_next;
  // Leave the joint state automatically once it is committed.
  bool auto_leave = false;

  [[nodiscard]] bool joint() const noexcept { return !voters_outgoing.empty(); }
  // Order-insensitive comparison.
  [[nodiscard]] bool equivalent(const ConfState& other) const;
  friend bool operator==(const ConfState&, const ConfState&) = default;
};

struct SnapshotMetadata {
  ConfState conf_state;
  Index index = 0;
  Term term = 0;
  friend bool operator==(const SnapshotMetadata&, const SnapshotMetadata&) = default;
};

struct Snapshot {
  std::string data;  // opaque to raft: the application's state at metadata.index
  SnapshotMetadata metadata;
  [[nodiscard]] bool empty() const noexcept { return metadata.index == 0; }
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

enum class MessageType : std::uint8_t {
  kHup,            // local: start an election
  kBeat,           // local: leader sends heartbeats
  kPropose,        // local or forwarded proposal
  kAppend,
  kAppendResponse,
  kVote,
  kVoteResponse,
  kPreVote,
  kPreVoteResponse,
  kSnapshot,
  kHeartbeat,
  kHeartbeatResponse,
  kUnreachable,     // local: report_unreachable
  kSnapshotStatus,  // local: report_snapshot
  kCheckQuorum,     // local
  kTransferLeader,
  kTimeoutNow,
  kReadIndex,
  kReadIndexResponse,
};
std::string_view to_string(MessageType type) noexcept;
// True for messages that only ever travel inside one node (kHup, kBeat, ...).
[[nodiscard]] bool is_local_message(MessageType type) noexcept;
// True for responses (kAppendResponse, kVoteResponse, ...).
[[nodiscard]] bool is_response_message(MessageType type) noexcept;

struct Message {
  MessageType type = MessageType::kHup;
  NodeId to = kNoNode;
  NodeId from = kNoNode;
  Term term = 0;
  Term log_term = 0;  // term of the entry at `index` (append, vote: last log term)
  Index index = 0;
  std::vector<Entry> entries;
  Index commit = 0;
  std::shared_ptr<const Snapshot> snapshot;  // kSnapshot only; shared, it may be large
  bool reject = false;
  Index reject_hint = 0;
  // Opaque bytes: the read request context (kReadIndex, kHeartbeat), or the
  // campaign kind for votes ("transfer" when caused by a leader transfer).
  std::string context;
  // kAppend, kSnapshot, kHeartbeat: the leader's logical clock (ticks) when
  // it was sent; kAppendResponse, kHeartbeatResponse: echoed back. The
  // leader's lease runs from the send time of the messages a quorum
  // acknowledged. A transport that drops this field only makes lease reads
  // fall back to heartbeat-confirmed reads.
  std::uint64_t lease_stamp = 0;

  friend bool operator==(const Message& a, const Message& b);
};

struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;
  [[nodiscard]] bool empty() const noexcept { return term == 0 && vote == 0 && commit == 0; }
  friend bool operator==(const HardState&, const HardState&) = default;
};

enum class StateRole : std::uint8_t { kFollower, kCandidate, kLeader, kPreCandidate };
std::string_view to_string(StateRole role) noexcept;

struct SoftState {
  NodeId leader_id = kNoNode;
  StateRole role = StateRole::kFollower;
  friend bool operator==(const SoftState&, const SoftState&) = default;
};

// The answer to a read_index() call: the request context and the commit index
// the read must wait for (apply up to `index`, then read).
struct ReadState {
  Index index = 0;
  std::string request_ctx;
  friend bool operator==(const ReadState&, const ReadState&) = default;
};

enum class ConfChangeType : std::uint8_t { kAddNode, kRemoveNode, kAddLearnerNode };

struct ConfChangeSingle {
  ConfChangeType type = ConfChangeType::kAddNode;
  NodeId node_id = kNoNode;
  friend bool operator==(const ConfChangeSingle&, const ConfChangeSingle&) = default;
};

enum class ConfChangeTransition : std::uint8_t {
  // One simple change (at most one voter added or removed): applied directly.
  // Several changes: enter a joint config and leave it automatically.
  kAuto,
  // Enter a joint config and leave it automatically once committed.
  kJointImplicit,
  // Enter a joint config and stay until an empty ConfChangeV2 leaves it.
  kJointExplicit,
};

// A membership change: any number of single changes applied as one step. An
// empty list of changes leaves a joint configuration.
struct ConfChangeV2 {
  ConfChangeTransition transition = ConfChangeTransition::kAuto;
  std::vector<ConfChangeSingle> changes;
  std::string context;

  [[nodiscard]] bool leave_joint() const noexcept { return changes.empty(); }
  friend bool operator==(const ConfChangeV2&, const ConfChangeV2&) = default;
};

// The encoding of a ConfChangeV2 inside an Entry of type kConfChange.
[[nodiscard]] std::string encode_conf_change(const ConfChangeV2& cc);
// Corruption when `data` is not a valid encoding.
[[nodiscard]] Result<ConfChangeV2> decode_conf_change(std::string_view data);

// Stable one-line renderings for logs and scenario tests.
[[nodiscard]] std::string describe(const Entry& e);
[[nodiscard]] std::string describe(const Message& m);
[[nodiscard]] std::string describe(const HardState& hs);
[[nodiscard]] std::string describe(const SoftState& ss);
[[nodiscard]] std::string describe(const ConfState& cs);
[[nodiscard]] std::string describe(const ConfChangeV2& cc);
[[nodiscard]] std::string describe(const Snapshot& s);

}  // namespace kvcore::raft
