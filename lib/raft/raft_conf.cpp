// Raft, membership: applying conf changes, switching configs, status.
#include <fmt/format.h>

#include "raft/raft.hpp"

namespace kvcore::raft {

ConfState Raft::apply_conf_change(const ConfChangeV2& cc, Status* error) {
  ConfChanger changer(tracker_, raft_log_.last_index());
  auto cp = changer.apply(cc);
  if (!cp.is_ok()) {
    if (error != nullptr) *error = cp.status();
    return tracker_.conf_state();
  }
  if (error != nullptr) *error = Status::ok();
  return switch_to_config(std::move(cp).value());
}

ConfState Raft::switch_to_config(ConfigAndProgress cp) {
  tracker_.config = std::move(cp.config);
  tracker_.progress = std::move(cp.progress);
  ConfState cs = tracker_.conf_state();
  auto it = tracker_.progress.find(id_);
  is_learner_ = it != tracker_.progress.end() && it->second.is_learner;
  const bool voter = tracker_.config.voters.contains(id_);
  if (state_ == StateRole::kLeader && !voter) {
    // Removed or demoted: a leader must be a voter of the config it leads.
    become_follower(term_, kNoNode);
    return cs;
  }
  if (state_ != StateRole::kLeader || cs.voters.empty()) return cs;
  // The quorum changed: the commit index may move, and new members need
  // their first append.
  if (maybe_commit()) {
    release_pending_read_index_messages();
    bcast_append();
  } else {
    for (auto& [id, pr] : tracker_.progress) {
      if (id != id_) maybe_send_append(id, false);
    }
  }
  // The transferee was removed or is being demoted: abort the transfer.
  if (lead_transferee_ != kNoNode && (!tracker_.config.voters.contains(lead_transferee_) ||
                                      tracker_.config.learners_next.count(lead_transferee_) != 0)) {
    abort_leader_transfer();
  }
  return cs;
}

void Raft::on_applied(Index index, std::uint64_t applied_bytes) {
  raft_log_.applied_to(index);
  reduce_uncommitted_size(applied_bytes);
  maybe_auto_leave();
}

void Raft::maybe_auto_leave() {
  // Auto-leave: once the joint config is applied (and no other change is
  // pending), the leader proposes the empty change that leaves it. Retried
  // on ticks when the proposal was dropped (for example during a transfer).
  if (state_ == StateRole::kLeader && tracker_.config.auto_leave &&
      tracker_.config.voters.joint() && raft_log_.applied() >= pending_conf_index_) {
    Entry e;
    e.type = EntryType::kConfChange;
    e.data = encode_conf_change(ConfChangeV2{});
    Message m;
    m.type = MessageType::kPropose;
    m.from = id_;
    m.entries.push_back(std::move(e));
    (void)step(std::move(m));
  }
}

RaftStatus Raft::status() const {
  RaftStatus st;
  st.id = id_;
  st.hard_state = hard_state();
  st.soft_state = soft_state();
  st.applied = raft_log_.applied();
  st.lead_transferee = lead_transferee_;
  st.conf_state = tracker_.conf_state();
  if (state_ == StateRole::kLeader) {
    for (const auto& [id, pr] : tracker_.progress) st.progress.emplace(id, pr.status());
  }
  return st;
}

}  // namespace kvcore::raft
