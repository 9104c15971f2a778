// Quorum arithmetic: the commit index and vote outcome of a majority
// configuration, and of a joint one (both majorities must agree).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "kvcore/raft/types.hpp"

namespace kvcore::raft {

enum class VoteResult : std::uint8_t { kPending, kLost, kWon };

class MajorityConfig {
 public:
  MajorityConfig() = default;
  explicit MajorityConfig(std::set<NodeId> ids) : ids_(std::move(ids)) {}

  // The largest index acknowledged by a majority. An empty config returns
  // the maximum index so that it never holds back a joint config. `acked`
  // maps a voter to std::optional<Index> (nullopt: unknown, counts as 0);
  // a template so the hot commit path makes no indirect calls.
  template <class AckedFn>
  [[nodiscard]] Index committed_index(const AckedFn& acked) const {
    if (ids_.empty()) return std::numeric_limits<Index>::max();
    // Small configs are the norm: no heap allocation for up to 7 voters.
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
    // Ascending: the entry at n - (n/2 + 1) is acknowledged by n/2 + 1
    // voters (itself and every one above it).
    return idx[n - (n / 2 + 1)];
  }
  // votes: true granted, false rejected, absent pending. An empty config wins.
  [[nodiscard]] VoteResult vote_result(const std::map<NodeId, bool>& votes) const;

  [[nodiscard]] const std::set<NodeId>& ids() const { return ids_; }
  std::set<NodeId>& mutable_ids() { return ids_; }
  [[nodiscard]] bool contains(NodeId id) const { return ids_.count(id) != 0; }
  [[nodiscard]] bool empty() const { return ids_.empty(); }
  [[nodiscard]] std::size_t size() const { return ids_.size(); }
  friend bool operator==(const MajorityConfig&, const MajorityConfig&) = default;

 private:
  std::set<NodeId> ids_;
};

// configs_[0] is the incoming config, configs_[1] the outgoing one (empty
// outside a joint configuration).
class JointConfig {
 public:
  template <class AckedFn>
  [[nodiscard]] Index committed_index(const AckedFn& acked) const {
    return std::min(incoming.committed_index(acked), outgoing.committed_index(acked));
  }
  [[nodiscard]] VoteResult vote_result(const std::map<NodeId, bool>& votes) const;
  // Union of both configs.
  [[nodiscard]] std::set<NodeId> ids() const;
  [[nodiscard]] bool contains(NodeId id) const {
    return incoming.contains(id) || outgoing.contains(id);
  }
  [[nodiscard]] bool joint() const { return !outgoing.empty(); }
  friend bool operator==(const JointConfig&, const JointConfig&) = default;

  MajorityConfig incoming;
  MajorityConfig outgoing;
};

}  // namespace kvcore::raft
