// Raft, leader side: proposals, replication and flow control, commitment,
// heartbeats, ReadIndex and leader transfer.
#include <fmt/format.h>

#include <algorithm>

#include "raft/raft.hpp"

namespace kvcore::raft {

namespace {

Status dropped(std::string_view why) {
  return Status(Code::kUnavailable, fmt::format("raft: proposal dropped: {}", why),
                SubCode::kProposalDropped);
}

std::uint64_t payload_size(const std::vector<Entry>& ents) {
  std::uint64_t s = 0;
  for (const auto& e : ents) s += e.data.size();
  return s;
}

std::uint64_t entries_size(const std::vector<Entry>& ents) {
  std::uint64_t s = 0;
  for (const auto& e : ents) s += e.byte_size();
  return s;
}

}  // namespace

bool Raft::append_entry(std::vector<Entry> ents) {
  Index li = raft_log_.last_index();
  for (auto& e : ents) {
    e.term = term_;
    e.index = ++li;
  }
  if (!increase_uncommitted_size(ents)) return false;
  raft_log_.append(ents);
  // The leader's own match moves when the entries are persisted (on_persisted).
  return true;
}

bool Raft::increase_uncommitted_size(const std::vector<Entry>& ents) {
  const std::uint64_t s = payload_size(ents);
  // An empty uncommitted tail always accepts one proposal, however large, so
  // that a big entry cannot be stuck forever.
  if (max_uncommitted_size_ != 0 && uncommitted_size_ > 0 && s > 0 &&
      uncommitted_size_ + s > max_uncommitted_size_) {
    return false;
  }
  uncommitted_size_ += s;
  return true;
}

void Raft::reduce_uncommitted_size(std::uint64_t bytes) {
  if (state_ != StateRole::kLeader) return;
  uncommitted_size_ = bytes > uncommitted_size_ ? 0 : uncommitted_size_ - bytes;
}

bool Raft::maybe_commit() { return raft_log_.maybe_commit(tracker_.committed(), term_); }

bool Raft::committed_entry_in_current_term() const {
  return raft_log_.term_or_zero(raft_log_.committed()) == term_;
}

void Raft::on_persisted() {
  if (state_ != StateRole::kLeader) return;
  auto it = tracker_.progress.find(id_);
  if (it == tracker_.progress.end()) return;
  if (it->second.maybe_update(raft_log_.last_stable_index()) && maybe_commit()) {
    release_pending_read_index_messages();
    bcast_pending_ = true;
  }
}

bool Raft::maybe_send_append(NodeId to, bool send_if_empty) {
  auto it = tracker_.progress.find(to);
  if (it == tracker_.progress.end()) return false;
  Progress& pr = it->second;
  if (pr.is_paused()) return false;
  const Index prev_index = pr.next - 1;
  auto prev_term = raft_log_.term(prev_index);
  Result<std::vector<Entry>> ents = std::vector<Entry>{};
  if (pr.state != ProgressState::kReplicate || !pr.inflights.full()) {
    ents = raft_log_.entries(pr.next, max_msg_size_);
  }
  if (ents.is_ok() && ents->empty() && !send_if_empty) return false;

  if (!prev_term.is_ok() || !ents.is_ok()) {
    // The entries the follower needs are compacted: send a snapshot.
    if (!pr.recent_active) return false;
    auto snap = raft_log_.snapshot();
    if (!snap.is_ok() || snap->empty()) return false;
    Message m;
    m.type = MessageType::kSnapshot;
    m.to = to;
    m.lease_stamp = lease_clock_;
    pr.become_snapshot(snap->metadata.index);
    m.snapshot = std::make_shared<const Snapshot>(std::move(snap).value());
    send(std::move(m));
    return true;
  }
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.index = prev_index;
  m.log_term = *prev_term;
  m.commit = raft_log_.committed();
  m.lease_stamp = lease_clock_;
  pr.sent_commit = m.commit;
  const std::size_t n = ents->size();
  const std::uint64_t bytes = entries_size(*ents);
  m.entries = std::move(ents).value();
  send(std::move(m));
  pr.sent_entries(n, bytes);
  return true;
}

void Raft::flush_broadcast() {
  if (!bcast_pending_) return;
  bcast_pending_ = false;
  if (state_ != StateRole::kLeader) return;
  const Index committed = raft_log_.committed();
  for (auto& [id, pr] : tracker_.progress) {
    // An empty append only to carry a commit index the follower was not sent.
    if (id == id_ || !maybe_send_append(id, pr.sent_commit < committed)) continue;
    while (pr.state == ProgressState::kReplicate && maybe_send_append(id, false)) {
    }
  }
}

void Raft::bcast_append() {
  for (auto& [id, pr] : tracker_.progress) {
    if (id == id_ || !maybe_send_append(id, true)) continue;
    // In replicate, fill the window: max_size_per_msg may split the tail.
    while (pr.state == ProgressState::kReplicate && maybe_send_append(id, false)) {
    }
  }
}

void Raft::send_heartbeat(NodeId to, const std::string& ctx) {
  auto it = tracker_.progress.find(to);
  if (it == tracker_.progress.end()) return;
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = to;
  // Never tell a follower to commit beyond what it is known to have: it
  // may not have those entries (or have different ones).
  m.commit = std::min(it->second.match, raft_log_.committed());
  m.context = ctx;
  m.lease_stamp = lease_clock_;
  send(std::move(m));
}

void Raft::bcast_heartbeat(const std::string& ctx) {
  for (auto& [id, pr] : tracker_.progress) {
    if (id != id_) send_heartbeat(id, ctx);
  }
}

void Raft::send_timeout_now(NodeId to) {
  // The transferee may campaign whenever this message arrives, even after
  // the transfer was aborted here: no lease in this term can be trusted.
  timeout_now_sent_ = true;
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  send(std::move(m));
}

Status Raft::check_conf_change_proposal(const ConfChangeV2& cc) const {
  const bool already_pending = pending_conf_index_ > raft_log_.applied();
  const bool already_joint = tracker_.config.voters.joint();
  const bool wants_leave = cc.leave_joint();
  if (already_pending) {
    return dropped(fmt::format("possible unapplied conf change at index {} (applied to {})",
                               pending_conf_index_, raft_log_.applied()));
  }
  if (already_joint && !wants_leave) return dropped("must leave the joint config first");
  if (!already_joint && wants_leave) return dropped("not in a joint config");
  return Status::ok();
}

Status Raft::handle_propose(Message& m) {
  if (m.entries.empty()) return Status::invalid_argument("raft: empty proposal");
  if (tracker_.progress.count(id_) == 0) {
    return dropped("this leader was removed from the configuration");
  }
  if (lead_transferee_ != kNoNode) {
    return dropped(fmt::format("leadership is being transferred to {}", lead_transferee_));
  }
  Index conf_index = 0;
  for (std::size_t i = 0; i < m.entries.size(); ++i) {
    Entry& e = m.entries[i];
    if (e.type != EntryType::kConfChange) continue;
    auto cc = decode_conf_change(e.data);
    Status refused = cc.is_ok() ? check_conf_change_proposal(*cc) : cc.status();
    if (refused.is_ok() && conf_index != 0) refused = dropped("one conf change at a time");
    if (!refused.is_ok()) {
      if (m.from == id_ && m.entries.size() == 1) return refused;
      // Forwarded or batched: keep the slot but neutralize the change.
      e.type = EntryType::kNormal;
      e.data.clear();
      continue;
    }
    conf_index = raft_log_.last_index() + i + 1;
  }
  if (!append_entry(std::move(m.entries))) {
    return Status(Code::kResourceExhausted,
                  "raft: proposal dropped: too many uncommitted entry bytes",
                  SubCode::kProposalDropped);
  }
  if (conf_index != 0) pending_conf_index_ = conf_index;
  // Sent when the next Ready is produced: proposals made between two
  // Readies travel in one append per follower.
  bcast_pending_ = true;
  return Status::ok();
}

Status Raft::step_leader(Message& m) {
  switch (m.type) {
    case MessageType::kBeat:
      bcast_heartbeat(read_only_.last_pending_context());
      return Status::ok();
    case MessageType::kCheckQuorum:
      if (!tracker_.quorum_active(id_)) {
        become_follower(term_, kNoNode);
        return Status::ok();
      }
      for (auto& [id, pr] : tracker_.progress) {
        if (id != id_) pr.recent_active = false;
      }
      return Status::ok();
    case MessageType::kPropose: return handle_propose(m);
    case MessageType::kReadIndex: handle_read_index(m); return Status::ok();
    default: break;
  }
  auto it = tracker_.progress.find(m.from);
  if (it == tracker_.progress.end()) return Status::ok();
  Progress& pr = it->second;
  switch (m.type) {
    case MessageType::kAppendResponse: handle_append_response(m, pr); break;
    case MessageType::kHeartbeatResponse: handle_heartbeat_response(m, pr); break;
    case MessageType::kSnapshotStatus:
      if (pr.state != ProgressState::kSnapshot) break;
      if (m.reject) pr.pending_snapshot = 0;
      pr.become_probe();
      // Wait for a heartbeat response (or append response) before probing:
      // the snapshot may still be in transit or being applied.
      pr.msg_app_flow_paused = true;
      break;
    case MessageType::kUnreachable:
      if (pr.state == ProgressState::kReplicate) pr.become_probe();
      break;
    case MessageType::kTransferLeader: handle_transfer_leader(m, pr); break;
    default: break;
  }
  return Status::ok();
}

void Raft::record_lease_ack(const Message& m, Progress& pr) const {
  // A stamp from the future is bogus: ignore it rather than extend the lease.
  if (m.lease_stamp <= lease_clock_) pr.lease_ack = std::max(pr.lease_ack, m.lease_stamp);
}

void Raft::handle_append_response(const Message& m, Progress& pr) {
  pr.recent_active = true;
  record_lease_ack(m, pr);
  if (m.reject) {
    Index next_probe = m.reject_hint;
    if (m.log_term > 0) {
      // Skip every entry of ours whose term is above the follower's term at
      // the hint: they cannot match (fast back-off).
      next_probe = raft_log_.find_conflict_by_term(m.reject_hint, m.log_term).first;
    }
    if (pr.maybe_decr_to(m.index, next_probe)) {
      if (pr.state == ProgressState::kReplicate) pr.become_probe();
      send_append(m.from);
    }
    return;
  }
  const bool old_paused = pr.is_paused();
  if (!pr.maybe_update(m.index) && !(pr.match == m.index && pr.state == ProgressState::kProbe)) {
    return;
  }
  switch (pr.state) {
    case ProgressState::kProbe: pr.become_replicate(); break;
    case ProgressState::kSnapshot:
      if (pr.match + 1 >= raft_log_.first_index()) {
        pr.become_probe();
        pr.become_replicate();
      }
      break;
    case ProgressState::kReplicate: pr.inflights.free_le(m.index); break;
  }
  if (maybe_commit()) {
    release_pending_read_index_messages();
    // The new commit index reaches followers with the next Ready, once for
    // every acknowledgement received until then.
    bcast_pending_ = true;
  } else if (old_paused && !bcast_pending_) {
    // Unpaused: resume at once (a pending broadcast will do it otherwise).
    send_append(m.from);
  }
  // Fill the window: the follower may have room for more than one message.
  while (maybe_send_append(m.from, false)) {
  }
  if (m.from == lead_transferee_ && pr.match == raft_log_.last_index()) {
    send_timeout_now(m.from);
  }
}

void Raft::handle_heartbeat_response(const Message& m, Progress& pr) {
  pr.recent_active = true;
  record_lease_ack(m, pr);
  pr.msg_app_flow_paused = false;
  if (pr.state == ProgressState::kReplicate && pr.inflights.full()) pr.free_first_inflight();
  if (pr.match < raft_log_.last_index()) send_append(m.from);
  // Lease mode falls back to heartbeat-confirmed reads when the lease is
  // not known valid, so acknowledgements count in both modes.
  if (m.context.empty() || read_only_.pending() == 0) return;
  const std::set<NodeId>* acks = read_only_.recv_ack(m.from, m.context);
  if (acks == nullptr) return;
  std::map<NodeId, bool> votes;
  for (NodeId id : *acks) votes.emplace(id, true);
  votes.emplace(id_, true);
  if (tracker_.config.voters.vote_result(votes) != VoteResult::kWon) return;
  for (const auto& req : read_only_.advance(m.context)) respond_read_index(req, req.index);
}

void Raft::respond_read_index(const ReadIndexRequest& req, Index index) {
  if (req.from == kNoNode || req.from == id_) {
    read_states_.push_back(ReadState{index, req.context});
    return;
  }
  Message r;
  r.type = MessageType::kReadIndexResponse;
  r.to = req.from;
  r.index = index;
  r.context = req.context;
  send(std::move(r));
}

void Raft::handle_read_index(Message& m) {
  ReadIndexRequest req{0, m.from, m.context, {}};
  if (tracker_.is_singleton()) {
    respond_read_index(req, raft_log_.committed());
    return;
  }
  // Until an entry of this term is committed the leader does not know the
  // true commit index: postpone.
  if (!committed_entry_in_current_term()) {
    pending_read_index_msgs_.push_back(std::move(m));
    return;
  }
  if (read_only_option_ == ReadOnlyOption::kLeaseBased) {
    // A lease is void while leadership is being handed over: the
    // transferee may already be serving writes in a newer term.
    if (lead_transferee_ != kNoNode) return;
    if (has_valid_lease()) {
      respond_read_index(req, raft_log_.committed());
      return;
    }
  }
  read_only_.add_request(raft_log_.committed(), m.from, m.context);
  bcast_heartbeat(m.context);
}

void Raft::release_pending_read_index_messages() {
  if (pending_read_index_msgs_.empty() || !committed_entry_in_current_term()) return;
  auto msgs = std::move(pending_read_index_msgs_);
  pending_read_index_msgs_.clear();
  for (auto& m : msgs) handle_read_index(m);
}

void Raft::handle_transfer_leader(const Message& m, Progress& pr) {
  if (pr.is_learner) return;
  const NodeId transferee = m.from;
  if (lead_transferee_ != kNoNode) {
    if (lead_transferee_ == transferee) return;
    abort_leader_transfer();
  }
  if (transferee == id_) return;
  // Only a voter that stays a voter can take over.
  if (!tracker_.config.voters.contains(transferee) ||
      tracker_.config.learners_next.count(transferee) != 0) {
    return;
  }
  // The transfer must finish within one election timeout.
  election_elapsed_ = 0;
  lead_transferee_ = transferee;
  if (pr.match == raft_log_.last_index()) {
    send_timeout_now(transferee);
  } else {
    send_append(transferee);
  }
}

}  // namespace kvcore::raft
