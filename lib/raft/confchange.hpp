// Membership transitions, validated like etcd's confchange.Changer: each
// function computes a new (config, progress) pair from the current one and
// rejects illegal transitions with InvalidArgument, leaving the input intact.
#pragma once

#include <utility>
#include <vector>

#include "kvcore/raft/types.hpp"
#include "kvcore/status.hpp"
#include "raft/tracker.hpp"

namespace kvcore::raft {

struct ConfigAndProgress {
  TrackerConfig config;
  ProgressMap progress;
};

class ConfChanger {
 public:
  // `last_index` seeds the Progress of added members.
  ConfChanger(const ProgressTracker& tracker, Index last_index)
      : tracker_(tracker), last_index_(last_index) {}

  // Enters a joint config: the outgoing config is the current voters, the
  // incoming one the result of applying `changes`.
  [[nodiscard]] Result<ConfigAndProgress> enter_joint(
      bool auto_leave, const std::vector<ConfChangeSingle>& changes) const;
  // Leaves the joint config: the outgoing config is dropped, learners_next
  // become learners.
  [[nodiscard]] Result<ConfigAndProgress> leave_joint() const;
  // Applies changes that alter at most one voter, without a joint config.
  [[nodiscard]] Result<ConfigAndProgress> simple(
      const std::vector<ConfChangeSingle>& changes) const;
  // Dispatches a ConfChangeV2 to one of the three above.
  [[nodiscard]] Result<ConfigAndProgress> apply(const ConfChangeV2& cc) const;

 private:
  [[nodiscard]] Status apply_changes(ConfigAndProgress& cp,
                                     const std::vector<ConfChangeSingle>& changes) const;
  void make_voter(ConfigAndProgress& cp, NodeId id) const;
  void make_learner(ConfigAndProgress& cp, NodeId id) const;
  void remove(ConfigAndProgress& cp, NodeId id) const;
  void init_progress(ConfigAndProgress& cp, NodeId id, bool learner) const;
  [[nodiscard]] ConfigAndProgress copy() const;

  const ProgressTracker& tracker_;
  Index last_index_;
};

// Checks the tracker invariants listed in tracker.hpp.
[[nodiscard]] Status check_invariants(const TrackerConfig& cfg, const ProgressMap& prs);

// Builds the config and progress described by a persisted ConfState (also a
// joint one). InvalidArgument when it breaks the invariants.
[[nodiscard]] Result<ConfigAndProgress> restore_conf_state(const ConfState& cs,
                                                           const ProgressTracker& tracker,
                                                           Index last_index);

// True when cc enters a joint config, and whether it leaves it automatically.
[[nodiscard]] std::pair<bool, bool> enters_joint(const ConfChangeV2& cc);

}  // namespace kvcore::raft
