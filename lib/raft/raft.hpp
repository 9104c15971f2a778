// The raft state machine of one node (etcd's raft.go design): roles, terms,
// elections, replication, reads, membership and leader transfer. RawNode
// wraps it with the Ready/advance protocol.
//
// Outgoing messages are split by when they may leave:
//   msgs_               at once (the leader's appends and heartbeats, ...);
//   msgs_after_persist_ after the Ready that carries the current hard state
//                       and entries is persisted: responses that promise
//                       persisted state (votes, append acknowledgements), and
//                       anything sent while this node's term or vote differs
//                       from the last one handed out for persistence;
//   self_msgs_          this node's own votes, stepped back in on advance
//                       (a vote for itself counts once it is persisted).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kvcore/raft/config.hpp"
#include "kvcore/raft/raw_node.hpp"
#include "kvcore/raft/storage.hpp"
#include "raft/confchange.hpp"
#include "raft/raft_log.hpp"
#include "raft/read_only.hpp"
#include "util/splitmix.hpp"
#include "raft/tracker.hpp"

namespace kvcore::raft {

// The context of votes caused by a leader transfer (they bypass the lease).
inline constexpr std::string_view kCampaignTransfer = "transfer";

enum class CampaignType : std::uint8_t { kPreElection, kElection, kTransfer };

class Raft {
 public:
  static Result<std::unique_ptr<Raft>> create(const Config& config, Storage& storage);

  Status step(Message m);
  void tick();

  // Membership: applies a committed change (see RawNode::apply_conf_change).
  ConfState apply_conf_change(const ConfChangeV2& cc, Status* error);
  // Checks whether a conf change proposal would be accepted now.
  [[nodiscard]] Status check_conf_change_proposal(const ConfChangeV2& cc) const;

  // Ready plumbing (RawNode).
  [[nodiscard]] HardState hard_state() const { return {term_, vote_, raft_log_.committed()}; }
  [[nodiscard]] SoftState soft_state() const { return {lead_, state_}; }
  // The term and vote the next persisted Ready will carry (set by RawNode).
  void set_persisted_vote_state(Term term, NodeId vote) {
    persisted_term_ = term;
    persisted_vote_ = vote;
  }
  // Sends the appends deferred since the last Ready (new entries, a new
  // commit index). RawNode calls it before it looks for output.
  void flush_broadcast();
  // The last Ready was persisted (RawNode::advance): a leader now counts
  // its own stable entries towards commitment.
  void on_persisted();
  // Committed entries up to `index` were applied.
  void on_applied(Index index, std::uint64_t applied_bytes);

  RaftLog& log() { return raft_log_; }
  [[nodiscard]] const RaftLog& log() const { return raft_log_; }
  std::vector<Message>& msgs() { return msgs_; }
  std::vector<Message>& msgs_after_persist() { return msgs_after_persist_; }
  std::vector<Message>& self_msgs() { return self_msgs_; }
  std::vector<ReadState>& read_states() { return read_states_; }

  [[nodiscard]] RaftStatus status() const;
  [[nodiscard]] NodeId id() const { return id_; }
  [[nodiscard]] NodeId lead() const { return lead_; }
  [[nodiscard]] StateRole state() const { return state_; }
  [[nodiscard]] Term term() const { return term_; }
  [[nodiscard]] bool has_valid_lease() const;
  [[nodiscard]] const ProgressTracker& tracker() const { return tracker_; }
  [[nodiscard]] NodeId lead_transferee() const { return lead_transferee_; }
  [[nodiscard]] std::uint64_t uncommitted_size() const { return uncommitted_size_; }
  [[nodiscard]] int randomized_election_timeout() const { return randomized_election_timeout_; }

  void become_follower(Term term, NodeId lead);
  // See RawNode::forget_leader_contact().
  void forget_leader_contact() {
    if (lead_ == kNoNode) ticks_since_leader_contact_ = election_timeout_;
  }
  void become_candidate();
  void become_pre_candidate();
  void become_leader();

 private:
  Raft(const Config& config, RaftLog log);

  // raft.cpp: roles, ticks, elections, the generic step.
  void reset(Term term);
  void reset_randomized_election_timeout();
  void tick_election();
  void tick_heartbeat();
  [[nodiscard]] bool promotable() const;
  [[nodiscard]] bool past_election_timeout() const {
    return election_elapsed_ >= randomized_election_timeout_;
  }
  void hup(CampaignType t);
  void campaign(CampaignType t);
  VoteResult poll(NodeId id, bool granted);
  void send(Message m);
  void load_state(const HardState& hs);
  void handle_vote_request(const Message& m);

  // raft_leader.cpp
  Status step_leader(Message& m);
  Status handle_propose(Message& m);
  // Appends, snapshots and heartbeats carry the leader's lease clock; the
  // answer echoes it (see has_valid_lease).
  void record_lease_ack(const Message& m, Progress& pr) const;
  void handle_append_response(const Message& m, Progress& pr);
  void handle_heartbeat_response(const Message& m, Progress& pr);
  void handle_read_index(Message& m);
  void handle_transfer_leader(const Message& m, Progress& pr);
  bool maybe_send_append(NodeId to, bool send_if_empty);
  void send_append(NodeId to) { maybe_send_append(to, true); }
  void bcast_append();
  void bcast_heartbeat(const std::string& ctx);
  void send_heartbeat(NodeId to, const std::string& ctx);
  bool maybe_commit();
  bool append_entry(std::vector<Entry> ents);
  bool increase_uncommitted_size(const std::vector<Entry>& ents);
  void reduce_uncommitted_size(std::uint64_t bytes);
  void send_timeout_now(NodeId to);
  void abort_leader_transfer() { lead_transferee_ = kNoNode; }
  [[nodiscard]] bool committed_entry_in_current_term() const;
  void respond_read_index(const ReadIndexRequest& req, Index index);
  void release_pending_read_index_messages();

  // raft_follower.cpp
  Status step_follower(Message& m);
  Status step_candidate(Message& m);
  void handle_append_entries(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot(const Message& m);
  bool restore(const Snapshot& s);

  // raft_conf.cpp
  ConfState switch_to_config(ConfigAndProgress cp);
  void maybe_auto_leave();

  NodeId id_;
  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  StateRole state_ = StateRole::kFollower;
  bool is_learner_ = false;
  RaftLog raft_log_;
  ProgressTracker tracker_;
  ReadOnly read_only_;
  ReadOnlyOption read_only_option_;
  // Reads received before the leader committed an entry of its term.
  std::vector<Message> pending_read_index_msgs_;
  NodeId lead_transferee_ = kNoNode;
  // Only one conf change may be pending (proposed but not applied).
  Index pending_conf_index_ = 0;
  std::uint64_t uncommitted_size_ = 0;
  // Ticks since this node last heard from a leader (appends, heartbeats,
  // snapshots), saturating at the election timeout. Unlike lead_ and
  // election_elapsed_ it survives role changes: while it is below the
  // election timeout the node refuses votes (with check_quorum), so a leader
  // that counted on it for its lease cannot be replaced behind its back. A
  // node restarted with a persisted term starts at 0: it may have heard from
  // a leader just before going down and forgot it.
  int ticks_since_leader_contact_ = 0;
  // This node's logical clock for leases: ticks since start, offset by
  // more than an election timeout so that "no acknowledgement" (stamp 0)
  // never looks recent.
  std::uint64_t lease_clock_ = 0;
  // A TimeoutNow went out in this term: the lease is void until a new term.
  bool timeout_now_sent_ = false;
  // A broadcast of appends is owed (see flush_broadcast).
  bool bcast_pending_ = false;
  std::uint64_t max_uncommitted_size_;
  std::uint64_t max_msg_size_;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int election_timeout_;
  int heartbeat_timeout_;
  int randomized_election_timeout_ = 0;
  bool check_quorum_;
  bool pre_vote_;
  bool disable_proposal_forwarding_;
  util::SplitMix64 rng_;
  Term persisted_term_ = 0;
  NodeId persisted_vote_ = kNoNode;

  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<Message> self_msgs_;
  std::vector<ReadState> read_states_;
};

}  // namespace kvcore::raft
