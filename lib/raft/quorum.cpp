#include "raft/quorum.hpp"

#include <algorithm>
#include <vector>

namespace kvcore::raft {

VoteResult MajorityConfig::vote_result(const std::map<NodeId, bool>& votes) const {
  if (ids_.empty()) return VoteResult::kWon;
  std::size_t yes = 0;
  std::size_t missing = 0;
  for (NodeId id : ids_) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++yes;
    }
  }
  const std::size_t q = ids_.size() / 2 + 1;
  if (yes >= q) return VoteResult::kWon;
  if (yes + missing >= q) return VoteResult::kPending;
  return VoteResult::kLost;
}

VoteResult JointConfig::vote_result(const std::map<NodeId, bool>& votes) const {
  const VoteResult r1 = incoming.vote_result(votes);
  const VoteResult r2 = outgoing.vote_result(votes);
  if (r1 == r2) return r1;
  if (r1 == VoteResult::kLost || r2 == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;
}

std::set<NodeId> JointConfig::ids() const {
  std::set<NodeId> out = incoming.ids();
  out.insert(outgoing.ids().begin(), outgoing.ids().end());
  return out;
}

}  // namespace kvcore::raft
