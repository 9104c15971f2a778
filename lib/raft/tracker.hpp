// The membership configuration and per-member progress of a group, as the
// leader (or a candidate counting votes) sees them.
// Invariants (checked by confchange): every voter and learner has a Progress;
// learners and voters are disjoint; learners_next ⊆ outgoing voters; outside
// a joint config learners_next is empty and auto_leave false.
#pragma once

#include <map>
#include <set>

#include "kvcore/raft/types.hpp"
#include "raft/progress.hpp"
#include "raft/quorum.hpp"

namespace kvcore::raft {

struct TrackerConfig {
  JointConfig voters;
  bool auto_leave = false;
  std::set<NodeId> learners;
  // Outgoing voters that become learners when the joint config is left.
  std::set<NodeId> learners_next;

  [[nodiscard]] ConfState conf_state() const;
  friend bool operator==(const TrackerConfig&, const TrackerConfig&) = default;
};

using ProgressMap = std::map<NodeId, Progress>;

class ProgressTracker {
 public:
  ProgressTracker(std::size_t max_inflight, std::uint64_t max_inflight_bytes)
      : max_inflight_(max_inflight), max_inflight_bytes_(max_inflight_bytes) {}

  [[nodiscard]] ConfState conf_state() const { return config.conf_state(); }
  [[nodiscard]] bool is_singleton() const {
    return config.voters.incoming.size() == 1 && config.voters.outgoing.empty();
  }
  // The largest index a quorum of voters has matched.
  [[nodiscard]] Index committed() const;
  // True when a quorum of voters was active since the last reset (the
  // caller itself counts as active).
  [[nodiscard]] bool quorum_active(NodeId self) const;
  [[nodiscard]] std::set<NodeId> voter_ids() const { return config.voters.ids(); }

  void reset_votes() { votes_.clear(); }
  // Records a vote (the first one of each voter counts).
  void record_vote(NodeId id, bool granted) { votes_.emplace(id, granted); }
  // Granted, rejected and the overall result.
  struct Tally {
    std::size_t granted = 0;
    std::size_t rejected = 0;
    VoteResult result = VoteResult::kPending;
  };
  [[nodiscard]] Tally tally_votes() const;

  [[nodiscard]] std::size_t max_inflight() const { return max_inflight_; }
  [[nodiscard]] std::uint64_t max_inflight_bytes() const { return max_inflight_bytes_; }

  TrackerConfig config;
  ProgressMap progress;

 private:
  std::map<NodeId, bool> votes_;
  std::size_t max_inflight_;
  std::uint64_t max_inflight_bytes_;
};

}  // namespace kvcore::raft
