#include "raft/tracker.hpp"

namespace kvcore::raft {

ConfState TrackerConfig::conf_state() const {
  ConfState cs;
  cs.voters.assign(voters.incoming.ids().begin(), voters.incoming.ids().end());
  cs.voters_outgoing.assign(voters.outgoing.ids().begin(), voters.outgoing.ids().end());
  cs.learners.assign(learners.begin(), learners.end());
  cs.learners_next.assign(learners_next.begin(), learners_next.end());
  cs.auto_leave = auto_leave;
  return cs;
}

Index ProgressTracker::committed() const {
  return config.voters.committed_index([this](NodeId id) -> std::optional<Index> {
    auto it = progress.find(id);
    if (it == progress.end()) return std::nullopt;
    return it->second.match;
  });
}

bool ProgressTracker::quorum_active(NodeId self) const {
  std::map<NodeId, bool> active;
  for (const auto& [id, pr] : progress) {
    if (pr.is_learner) continue;
    active.emplace(id, id == self || pr.recent_active);
  }
  return config.voters.vote_result(active) == VoteResult::kWon;
}

ProgressTracker::Tally ProgressTracker::tally_votes() const {
  Tally t;
  for (NodeId id : config.voters.ids()) {
    auto it = votes_.find(id);
    if (it == votes_.end()) continue;
    if (it->second) {
      ++t.granted;
    } else {
      ++t.rejected;
    }
  }
  t.result = config.voters.vote_result(votes_);
  return t;
}

}  // namespace kvcore::raft
