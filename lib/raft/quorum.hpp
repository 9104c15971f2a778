// Quorum arithmetic: the commit index and vote outcome of a majority
// configuration, and of a joint one (both majorities must agree).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "kvcore/raft/types.hpp"

namespace kvcore::raft {

enum class VoteResult : std::uint8_t { kPending, kLost, kWon };

// The acknowledged index of a voter; nullopt when unknown (counts as 0).
using AckedIndexFn = std::function<std::optional<Index>(NodeId)>;

class MajorityConfig {
 public:
  MajorityConfig() = default;
  explicit MajorityConfig(std::set<NodeId> ids) : ids_(std::move(ids)) {}

  // The largest index acknowledged by a majority. An empty config returns
  // the maximum index so that it never holds back a joint config.
  [[nodiscard]] Index committed_index(const AckedIndexFn& acked) const;
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
  [[nodiscard]] Index committed_index(const AckedIndexFn& acked) const;
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
