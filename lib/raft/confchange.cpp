#include "raft/confchange.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace kvcore::raft {

namespace {

Status invalid(std::string_view why) {
  return Status::invalid_argument(fmt::format("conf change: {}", why));
}

}  // namespace

std::pair<bool, bool> enters_joint(const ConfChangeV2& cc) {
  if (cc.transition != ConfChangeTransition::kAuto || cc.changes.size() > 1) {
    const bool auto_leave = cc.transition == ConfChangeTransition::kAuto ||
                            cc.transition == ConfChangeTransition::kJointImplicit;
    return {true, auto_leave};
  }
  return {false, false};
}

Status check_invariants(const TrackerConfig& cfg, const ProgressMap& prs) {
  for (NodeId id : cfg.voters.ids()) {
    if (prs.count(id) == 0) return invalid(fmt::format("no progress for voter {}", id));
  }
  for (NodeId id : cfg.learners) {
    auto it = prs.find(id);
    if (it == prs.end()) return invalid(fmt::format("no progress for learner {}", id));
    if (!it->second.is_learner) {
      return invalid(fmt::format("learner {} is not marked as learner", id));
    }
    if (cfg.voters.contains(id)) return invalid(fmt::format("{} is both voter and learner", id));
  }
  for (NodeId id : cfg.learners_next) {
    auto it = prs.find(id);
    if (it == prs.end()) return invalid(fmt::format("no progress for learner_next {}", id));
    if (it->second.is_learner) {
      return invalid(fmt::format("learner_next {} is already marked as learner", id));
    }
    if (!cfg.voters.outgoing.contains(id)) {
      return invalid(fmt::format("learner_next {} is not an outgoing voter", id));
    }
    if (cfg.learners.count(id) != 0) {
      return invalid(fmt::format("{} is in both learners and learners_next", id));
    }
  }
  if (!cfg.voters.joint()) {
    if (!cfg.learners_next.empty()) return invalid("learners_next outside a joint config");
    if (cfg.auto_leave) return invalid("auto_leave outside a joint config");
  }
  for (const auto& [id, pr] : prs) {
    if (!cfg.voters.contains(id) && cfg.learners.count(id) == 0) {
      return invalid(fmt::format("progress for {} who is not a member", id));
    }
  }
  return Status::ok();
}

ConfigAndProgress ConfChanger::copy() const {
  return ConfigAndProgress{tracker_.config, tracker_.progress};
}

void ConfChanger::init_progress(ConfigAndProgress& cp, NodeId id, bool learner) const {
  if (learner) {
    cp.config.learners.insert(id);
  } else {
    cp.config.voters.incoming.mutable_ids().insert(id);
  }
  // Probe from the last index. Marked active so that check-quorum does not
  // count a member that had no chance to talk yet against the leader.
  Progress pr(std::max<Index>(last_index_, 1), tracker_.max_inflight(),
              tracker_.max_inflight_bytes(), learner);
  pr.recent_active = true;
  cp.progress.insert_or_assign(id, std::move(pr));
}

void ConfChanger::make_voter(ConfigAndProgress& cp, NodeId id) const {
  auto it = cp.progress.find(id);
  if (it == cp.progress.end()) {
    init_progress(cp, id, false);
    return;
  }
  it->second.is_learner = false;
  cp.config.learners.erase(id);
  cp.config.learners_next.erase(id);
  cp.config.voters.incoming.mutable_ids().insert(id);
}

void ConfChanger::make_learner(ConfigAndProgress& cp, NodeId id) const {
  auto it = cp.progress.find(id);
  if (it == cp.progress.end()) {
    init_progress(cp, id, true);
    return;
  }
  if (it->second.is_learner) return;
  Progress pr = it->second;
  remove(cp, id);
  // remove() may have dropped the progress; the node stays a member.
  cp.progress.insert_or_assign(id, std::move(pr));
  if (cp.config.voters.outgoing.contains(id)) {
    // Still a voter of the outgoing config: becomes a learner on leaving.
    cp.config.learners_next.insert(id);
  } else {
    cp.progress.at(id).is_learner = true;
    cp.config.learners.insert(id);
  }
}

void ConfChanger::remove(ConfigAndProgress& cp, NodeId id) const {
  if (cp.progress.count(id) == 0) return;
  cp.config.voters.incoming.mutable_ids().erase(id);
  cp.config.learners.erase(id);
  cp.config.learners_next.erase(id);
  // An outgoing voter keeps its progress until the joint config is left.
  if (!cp.config.voters.outgoing.contains(id)) cp.progress.erase(id);
}

Status ConfChanger::apply_changes(ConfigAndProgress& cp,
                                  const std::vector<ConfChangeSingle>& changes) const {
  for (const auto& c : changes) {
    if (c.node_id == kNoNode) continue;
    switch (c.type) {
      case ConfChangeType::kAddNode: make_voter(cp, c.node_id); break;
      case ConfChangeType::kAddLearnerNode: make_learner(cp, c.node_id); break;
      case ConfChangeType::kRemoveNode: remove(cp, c.node_id); break;
    }
  }
  if (cp.config.voters.incoming.empty()) return invalid("removed all voters");
  return Status::ok();
}

Result<ConfigAndProgress> ConfChanger::enter_joint(
    bool auto_leave, const std::vector<ConfChangeSingle>& changes) const {
  KVCORE_RETURN_IF_ERROR(check_invariants(tracker_.config, tracker_.progress));
  ConfigAndProgress cp = copy();
  if (cp.config.voters.joint()) return invalid("config is already joint");
  if (cp.config.voters.incoming.empty()) return invalid("can't make a zero-voter config joint");
  cp.config.voters.outgoing = cp.config.voters.incoming;
  KVCORE_RETURN_IF_ERROR(apply_changes(cp, changes));
  cp.config.auto_leave = auto_leave;
  KVCORE_RETURN_IF_ERROR(check_invariants(cp.config, cp.progress));
  return cp;
}

Result<ConfigAndProgress> ConfChanger::leave_joint() const {
  KVCORE_RETURN_IF_ERROR(check_invariants(tracker_.config, tracker_.progress));
  ConfigAndProgress cp = copy();
  if (!cp.config.voters.joint()) return invalid("can't leave a non-joint config");
  for (NodeId id : cp.config.learners_next) {
    cp.config.learners.insert(id);
    cp.progress.at(id).is_learner = true;
  }
  cp.config.learners_next.clear();
  for (NodeId id : cp.config.voters.outgoing.ids()) {
    if (!cp.config.voters.incoming.contains(id) && cp.config.learners.count(id) == 0) {
      cp.progress.erase(id);
    }
  }
  cp.config.voters.outgoing = MajorityConfig();
  cp.config.auto_leave = false;
  KVCORE_RETURN_IF_ERROR(check_invariants(cp.config, cp.progress));
  return cp;
}

Result<ConfigAndProgress> ConfChanger::simple(const std::vector<ConfChangeSingle>& changes) const {
  KVCORE_RETURN_IF_ERROR(check_invariants(tracker_.config, tracker_.progress));
  ConfigAndProgress cp = copy();
  if (cp.config.voters.joint()) {
    return invalid("can't apply a simple config change in a joint config");
  }
  KVCORE_RETURN_IF_ERROR(apply_changes(cp, changes));
  const auto& before = tracker_.config.voters.incoming.ids();
  const auto& after = cp.config.voters.incoming.ids();
  std::vector<NodeId> diff;
  std::set_symmetric_difference(before.begin(), before.end(), after.begin(), after.end(),
                                std::back_inserter(diff));
  if (diff.size() > 1) return invalid("more than one voter changed without entering joint config");
  KVCORE_RETURN_IF_ERROR(check_invariants(cp.config, cp.progress));
  return cp;
}

Result<ConfigAndProgress> ConfChanger::apply(const ConfChangeV2& cc) const {
  if (cc.leave_joint()) return leave_joint();
  auto [joint, auto_leave] = enters_joint(cc);
  if (joint) return enter_joint(auto_leave, cc.changes);
  return simple(cc.changes);
}

Result<ConfigAndProgress> restore_conf_state(const ConfState& cs, const ProgressTracker& tracker,
                                             Index last_index) {
  ConfigAndProgress cp;
  auto add = [&](NodeId id, bool learner) {
    if (cp.progress.count(id) != 0) return;
    Progress pr(std::max<Index>(last_index, 1), tracker.max_inflight(),
                tracker.max_inflight_bytes(), learner);
    pr.recent_active = true;
    cp.progress.insert_or_assign(id, std::move(pr));
  };
  for (NodeId id : cs.voters) {
    if (id == kNoNode) return invalid("voter id 0");
    cp.config.voters.incoming.mutable_ids().insert(id);
    add(id, false);
  }
  for (NodeId id : cs.voters_outgoing) {
    if (id == kNoNode) return invalid("voter id 0");
    cp.config.voters.outgoing.mutable_ids().insert(id);
    add(id, false);
  }
  for (NodeId id : cs.learners) {
    if (id == kNoNode) return invalid("learner id 0");
    if (cp.config.voters.contains(id))
      return invalid(fmt::format("{} is both voter and learner", id));
    cp.config.learners.insert(id);
    add(id, true);
  }
  for (NodeId id : cs.learners_next) {
    if (id == kNoNode) return invalid("learner id 0");
    cp.config.learners_next.insert(id);
    add(id, false);
  }
  cp.config.auto_leave = cs.auto_leave;
  if (cp.config.voters.incoming.empty() && !cp.config.voters.outgoing.empty()) {
    return invalid("joint config with no incoming voters");
  }
  KVCORE_RETURN_IF_ERROR(check_invariants(cp.config, cp.progress));
  return cp;
}

}  // namespace kvcore::raft
