// RawNode: one member of one raft group, as a deterministic state machine.
//
// The node does no I/O, reads no clock, starts no thread and takes no lock.
// Time arrives by tick(); messages by step(); randomness comes from a
// generator seeded by Config::seed. Everything the node wants done comes out
// of ready(), and the application reports it done by advance():
//
//   while (node.has_ready()) {
//     Ready rd = node.ready();
//     send(rd.messages);                     // may leave at once
//     if (!rd.snapshot.empty()) storage.apply_snapshot(rd.snapshot);
//     storage.append(rd.entries);            // persist ...
//     if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
//     send(rd.persisted_messages);           // ... only then these
//     apply(rd.committed_entries);           // conf changes: apply_conf_change()
//     node.advance(rd);
//   }
//
// Thread-safety: none. Drive a RawNode from one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kvcore/raft/config.hpp"
#include "kvcore/raft/storage.hpp"
#include "kvcore/raft/types.hpp"
#include "kvcore/status.hpp"

namespace kvcore::raft {

struct Ready {
  // Set when the leader or role changed since the last Ready.
  std::optional<SoftState> soft_state;
  // Set when term, vote or commit changed; persist it with `entries`.
  std::optional<HardState> hard_state;
  // Answers to read_index() calls whose index is now known.
  std::vector<ReadState> read_states;
  // Entries to append to stable storage.
  std::vector<Entry> entries;
  // A snapshot to install before appending `entries` (empty() when none).
  Snapshot snapshot;
  // Entries committed and ready to apply, in order.
  std::vector<Entry> committed_entries;
  // Messages that may be sent at once (before persistence): the leader's
  // appends and heartbeats, and messages that carry no state of this node.
  std::vector<Message> messages;
  // Messages that may leave only after `hard_state`, `entries` and `snapshot`
  // are on stable storage (vote responses, append responses, ...).
  std::vector<Message> persisted_messages;
  // True when the hard state or entries must be synced before
  // `persisted_messages` leave (false when only commit moved).
  bool must_sync = false;
};

enum class ProgressState : std::uint8_t { kProbe, kReplicate, kSnapshot };
std::string_view to_string(ProgressState state) noexcept;

// What the leader knows of one follower.
struct ProgressStatus {
  Index match = 0;
  Index next = 0;
  ProgressState state = ProgressState::kProbe;
  Index pending_snapshot = 0;
  bool recent_active = false;
  bool probe_sent = false;
  std::size_t inflight_count = 0;
  bool is_learner = false;
};

struct RaftStatus {
  NodeId id = kNoNode;
  HardState hard_state;
  SoftState soft_state;
  Index applied = 0;
  NodeId lead_transferee = kNoNode;
  ConfState conf_state;
  // Filled on the leader only.
  std::map<NodeId, ProgressStatus> progress;
};

class RawNode {
 public:
  // Builds a node over `storage`, which it borrows: REQUIRES storage outlives
  // the node. Restores hard state and membership from storage.
  // InvalidArgument when the config is invalid (Config::validate()).
  [[nodiscard]] static Result<std::unique_ptr<RawNode>> create(const Config& config,
                                                               Storage& storage);
  ~RawNode();
  RawNode(const RawNode&) = delete;
  RawNode& operator=(const RawNode&) = delete;

  // Advances the logical clock by one tick (elections, heartbeats, checks).
  void tick();
  // Starts an election now (a pre-vote round first when pre_vote is on).
  [[nodiscard]] Status campaign();
  // Proposes data to be appended. Unavailable/ProposalDropped when there is
  // no leader or forwarding is disabled, a leader transfer is in flight, or
  // this node is a learner; ResourceExhausted when the uncommitted tail is
  // full. An accepted proposal may still be lost: watch the applied entries.
  [[nodiscard]] Status propose(std::string data);
  // Proposes a membership change. The same errors as propose(); also
  // Unavailable/ProposalDropped while another change is pending, or when
  // leaving a joint config that is not joint, or entering one while joint.
  [[nodiscard]] Status propose_conf_change(const ConfChangeV2& cc);
  // Applies a committed membership change and returns the new ConfState,
  // which the application persists with the applied index. Illegal changes
  // (as computed against the current config) are ignored and the unchanged
  // ConfState is returned, with Status in `error` when given.
  ConfState apply_conf_change(const ConfChangeV2& cc, Status* error = nullptr);
  // Steps a message received from another node. Local message types are
  // rejected (InvalidArgument); messages from unknown nodes are tolerated.
  [[nodiscard]] Status step(Message m);
  // Requests a linearizable read point; the answer comes as a ReadState in a
  // later Ready carrying the same context.
  void read_index(std::string request_ctx);
  // Asks the leader to hand leadership to `transferee`.
  void transfer_leader(NodeId transferee);
  // Reports that the last message to `id` could not be delivered.
  void report_unreachable(NodeId id);
  // Reports whether the snapshot sent to `id` was installed.
  void report_snapshot(NodeId id, bool failed);
  // Treats the node as not having heard from any leader, like a node that
  // never had a term: it answers (pre-)votes at once instead of after an
  // election timeout. For a replica of a group just created (a region made
  // by a split), whose leader cannot have been heard from yet.
  void forget_leader_contact();

  [[nodiscard]] bool has_ready() const;
  // Everything the application must do now. REQUIRES: has_ready().
  [[nodiscard]] Ready ready();
  // Tells the node `rd` has been handled: entries persisted, snapshot
  // installed, committed entries applied. REQUIRES: rd is the last ready().
  void advance(const Ready& rd);

  [[nodiscard]] RaftStatus status() const;
  [[nodiscard]] NodeId id() const;
  [[nodiscard]] NodeId leader_id() const;
  [[nodiscard]] StateRole role() const;
  [[nodiscard]] Term term() const;
  // True on a leader whose lease is known valid (check_quorum on and a quorum
  // heard within the election timeout, no transfer in flight).
  [[nodiscard]] bool has_valid_lease() const;
  // The index of the last entry in the log (stable or not): right after a
  // successful propose() on a leader, the index the proposal was given.
  [[nodiscard]] Index last_index() const;
  [[nodiscard]] Index committed() const;
  // The peer a leader transfer is handing over to; kNoNode when none.
  [[nodiscard]] NodeId lead_transferee() const;

 private:
  class Impl;
  explicit RawNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Stable multi-line rendering of a Ready, for scenario tests.
[[nodiscard]] std::string describe(const Ready& rd);
[[nodiscard]] std::string describe(const RaftStatus& st);

}  // namespace kvcore::raft
