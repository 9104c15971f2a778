// Raft, follower side: forwarding, appends, heartbeats and snapshots.
#include <fmt/format.h>

#include <algorithm>

#include "raft/raft.hpp"

namespace kvcore::raft {

namespace {

Status dropped(std::string_view why) {
  return Status(Code::kUnavailable, fmt::format("raft: proposal dropped: {}", why),
                SubCode::kProposalDropped);
}

}  // namespace

Status Raft::step_follower(Message& m) {
  switch (m.type) {
    case MessageType::kPropose:
      if (is_learner_) return dropped("learners cannot propose");
      if (lead_ == kNoNode) return dropped("no leader");
      if (disable_proposal_forwarding_) return dropped("forwarding to the leader is disabled");
      m.to = lead_;
      send(std::move(m));
      return Status::ok();
    case MessageType::kAppend:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_append_entries(m);
      return Status::ok();
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_heartbeat(m);
      return Status::ok();
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_snapshot(m);
      return Status::ok();
    case MessageType::kTransferLeader:
      if (lead_ == kNoNode) return Status::ok();
      m.to = lead_;
      send(std::move(m));
      return Status::ok();
    case MessageType::kTimeoutNow:
      // Campaign at once, bypassing pre-vote and the lease of other nodes:
      // the leader asked for it.
      hup(CampaignType::kTransfer);
      return Status::ok();
    case MessageType::kReadIndex:
      if (lead_ == kNoNode) return Status::ok();
      m.to = lead_;
      send(std::move(m));
      return Status::ok();
    case MessageType::kReadIndexResponse:
      read_states_.push_back(ReadState{m.index, m.context});
      return Status::ok();
    default: return Status::ok();
  }
}

void Raft::handle_append_entries(const Message& m) {
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  r.lease_stamp = m.lease_stamp;
  if (m.index < raft_log_.committed()) {
    r.index = raft_log_.committed();
    send(std::move(r));
    return;
  }
  if (auto last_new = raft_log_.maybe_append(m.index, m.log_term, m.commit, m.entries)) {
    r.index = *last_new;
    send(std::move(r));
    return;
  }
  // Rejected: hint the leader at the largest index whose term is <= the
  // term the leader expected, so it can skip a whole conflicting term.
  const Index hint_index = std::min(m.index, raft_log_.last_index());
  auto [idx, t] = raft_log_.find_conflict_by_term(hint_index, m.log_term);
  r.index = m.index;
  r.reject = true;
  r.reject_hint = idx;
  r.log_term = t;
  send(std::move(r));
}

void Raft::handle_heartbeat(const Message& m) {
  raft_log_.commit_to(std::min(m.commit, raft_log_.last_index()));
  Message r;
  r.type = MessageType::kHeartbeatResponse;
  r.to = m.from;
  r.context = m.context;
  r.lease_stamp = m.lease_stamp;
  send(std::move(r));
}

void Raft::handle_snapshot(const Message& m) {
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  r.lease_stamp = m.lease_stamp;
  if (m.snapshot && restore(*m.snapshot)) {
    r.index = raft_log_.last_index();
  } else {
    r.index = raft_log_.committed();
  }
  send(std::move(r));
}

bool Raft::restore(const Snapshot& s) {
  if (s.metadata.index <= raft_log_.committed()) return false;
  if (state_ != StateRole::kFollower) {
    // Only a leader of this term sends snapshots; be defensive anyway.
    become_follower(term_ + 1, kNoNode);
    return false;
  }
  const ConfState& cs = s.metadata.conf_state;
  const bool member = std::find(cs.voters.begin(), cs.voters.end(), id_) != cs.voters.end() ||
                      std::find(cs.learners.begin(), cs.learners.end(), id_) != cs.learners.end() ||
                      std::find(cs.voters_outgoing.begin(), cs.voters_outgoing.end(), id_) !=
                          cs.voters_outgoing.end();
  // A snapshot of a config without us can only come from a confused leader.
  if (!member) return false;
  if (raft_log_.match_term(s.metadata.index, s.metadata.term)) {
    // We have the snapshot's last entry: just fast-forward the commit.
    raft_log_.commit_to(s.metadata.index);
    return false;
  }
  auto cp = restore_conf_state(cs, tracker_, s.metadata.index);
  if (!cp.is_ok()) return false;
  raft_log_.restore(s);
  switch_to_config(std::move(cp).value());
  return true;
}

}  // namespace kvcore::raft
