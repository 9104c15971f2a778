#include "raft/quorum.hpp"

#include <algorithm>
#include <vector>

namespace kvcore::raft {

Index MajorityConfig::committed_index(const AckedIndexFn& acked) const {
  if (ids_.empty()) return std::numeric_limits<Index>::max();
  // Small configs are the norm: avoid a heap allocation for up to 7 voters.
  constexpr std::size_t kStack = 7;
  Index stack_buf[kStack];
  std::vector<Index> heap_buf;
  Index* idx = stack_buf;
  if (ids_.size() > kStack) {
    heap_buf.resize(ids_.size());
    idx = heap_buf.data();
  }
  std::size_t n = 0;
  for (NodeId id : ids_) idx[n++] = acked(id).value_or(0);
  std::sort(idx, idx + n);
  // With the indexes ascending, the entry at n - (n/2 + 1) is acknowledged by
  // n/2 + 1 voters (itself and every one above it).
  return idx[n - (n / 2 + 1)];
}

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

Index JointConfig::committed_index(const AckedIndexFn& acked) const {
  return std::min(incoming.committed_index(acked), outgoing.committed_index(acked));
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
