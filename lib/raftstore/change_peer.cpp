// Membership changes (ChangePeerV2): planning a change on the leader,
// proposing it as a raft conf change, applying it on every peer, leaving a
// joint state, and the Store API that starts it. See docs/store.md,
// "Membership changes".
#include "raftstore/change_peer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "raftstore/codec.hpp"
#include "raftstore/keys.hpp"
#include "raftstore/peer.hpp"
#include "raftstore/peer_storage.hpp"
#include "raftstore/ranges.hpp"
#include "raftstore/store_impl.hpp"
#include "raftstore/wait_for.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

namespace {

using Kind = PeerChangeRequest::Kind;

PeerMeta* find_peer(RegionMeta& r, std::uint64_t id) {
  for (auto& p : r.peers) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

Status conf_epoch_not_match(const RegionMeta& region, const RegionEpoch& proposed) {
  return Status(Code::kUnavailable,
                fmt::format("region {}: conf change proposed at conf_ver {}, region is at {}",
                            region.id, proposed.conf_ver, region.epoch.conf_ver),
                SubCode::kEpochNotMatch);
}

}  // namespace

// --- pure parts ----------------------------------------------------------------

Result<ChangePeerCmd> plan_change_peers(const RegionMeta& region, std::uint64_t leader_peer,
                                        const std::vector<PeerChangeRequest>& requests,
                                        const std::function<Result<std::uint64_t>()>& alloc_id) {
  if (requests.empty()) return Status::invalid_argument("change_peers: no changes");
  std::set<std::uint64_t> stores;
  for (const auto& r : requests) {
    if (r.store_id == 0) return Status::invalid_argument("change_peers: store id 0");
    if (!stores.insert(r.store_id).second) {
      return Status::invalid_argument(
          fmt::format("change_peers: two changes for store {}", r.store_id));
    }
  }
  // Validate everything before allocating any id.
  std::vector<bool> needs_id(requests.size(), false);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    const PeerMeta* p = region.peer_on_store(r.store_id);
    const std::string where = fmt::format("region {}, store {}", region.id, r.store_id);
    switch (r.kind) {
      case Kind::kAddLearner:
        if (p != nullptr) {
          return Status::invalid_argument(fmt::format("change_peers: {} already has a {}", where,
                                                      p->learner ? "learner" : "voter"));
        }
        needs_id[i] = true;
        break;
      case Kind::kAddVoter:
        if (p != nullptr && !p->learner) {
          return Status::invalid_argument(
              fmt::format("change_peers: {} already has a voter", where));
        }
        needs_id[i] = p == nullptr;
        break;
      case Kind::kDemoteVoter:
        if (p == nullptr || p->learner) {
          return Status::invalid_argument(
              fmt::format("change_peers: {} has no voter to demote", where));
        }
        if (p->id == leader_peer) {
          return Status::failed_precondition(
              fmt::format("change_peers: {} holds the leader; transfer leadership first", where));
        }
        break;
      case Kind::kRemove:
        if (p == nullptr) {
          return Status::invalid_argument(fmt::format("change_peers: {} has no peer", where));
        }
        if (!p->learner) {
          return Status::failed_precondition(fmt::format(
              "change_peers: {} holds a voter; demote it to a learner before removing it", where));
        }
        break;
    }
  }
  ChangePeerCmd cmd;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    PeerChange c;
    if (needs_id[i]) {
      KVCORE_ASSIGN_OR_RETURN(std::uint64_t id, alloc_id());
      c.peer = PeerMeta{id, r.store_id, false};
    } else {
      c.peer = *region.peer_on_store(r.store_id);
    }
    switch (r.kind) {
      case Kind::kAddLearner:
      case Kind::kDemoteVoter:
        c.type = raft::ConfChangeType::kAddLearnerNode;
        c.peer.learner = true;
        break;
      case Kind::kAddVoter:
        c.type = raft::ConfChangeType::kAddNode;
        c.peer.learner = false;
        break;
      case Kind::kRemove: c.type = raft::ConfChangeType::kRemoveNode; break;
    }
    cmd.changes.push_back(c);
  }
  return cmd;
}

Result<RegionMeta> apply_peer_changes(const RegionMeta& region, const ChangePeerCmd& cmd) {
  RegionMeta next = region;
  for (const auto& c : cmd.changes) {
    if (c.peer.id == 0 || c.peer.store_id == 0) {
      return Status::invalid_argument("change peer: peer or store id 0");
    }
    PeerMeta* p = find_peer(next, c.peer.id);
    if (p != nullptr && p->store_id != c.peer.store_id) {
      return Status::invalid_argument(fmt::format("change peer: peer {} is on store {}, not {}",
                                                  c.peer.id, p->store_id, c.peer.store_id));
    }
    if (c.type == raft::ConfChangeType::kRemoveNode) {
      if (p == nullptr) {
        return Status::invalid_argument(
            fmt::format("change peer: region {} has no peer {}", region.id, c.peer.id));
      }
      next.peers.erase(next.peers.begin() + (p - next.peers.data()));
      continue;
    }
    const bool learner = c.type == raft::ConfChangeType::kAddLearnerNode;
    if (p != nullptr) {
      p->learner = learner;
      continue;
    }
    if (next.peer_on_store(c.peer.store_id) != nullptr) {
      return Status::invalid_argument(
          fmt::format("change peer: region {} has a peer on store {}", region.id, c.peer.store_id));
    }
    next.peers.push_back(PeerMeta{c.peer.id, c.peer.store_id, learner});
  }
  if (std::none_of(next.peers.begin(), next.peers.end(),
                   [](const PeerMeta& p) { return !p.learner; })) {
    return Status::invalid_argument(
        fmt::format("change peer: region {} would have no voter", region.id));
  }
  return next;
}

raft::ConfChangeV2 to_conf_change(const ChangePeerCmd& cmd, std::string context) {
  raft::ConfChangeV2 cc;
  // kJointExplicit: the store, not raft, proposes the leave (and retries
  // it), so a leave is never lost with a leader change.
  cc.transition = cmd.changes.size() > 1 ? raft::ConfChangeTransition::kJointExplicit
                                         : raft::ConfChangeTransition::kAuto;
  for (const auto& c : cmd.changes) cc.changes.push_back({c.type, c.peer.id});
  cc.context = std::move(context);
  return cc;
}

bool same_changes(const raft::ConfChangeV2& cc, const ChangePeerCmd& cmd) {
  if (cc.changes.size() != cmd.changes.size()) return false;
  for (std::size_t i = 0; i < cc.changes.size(); ++i) {
    if (cc.changes[i].type != cmd.changes[i].type ||
        cc.changes[i].node_id != cmd.changes[i].peer.id)
      return false;
  }
  return true;
}

// --- Peer: proposing ------------------------------------------------------------

void Peer::propose_change_peers(const std::vector<PeerChangeRequest>& changes,
                                const std::function<Result<std::uint64_t>()>& alloc_id,
                                Instant deadline, WriteCallback done) {
  wake();
  schedule();
  const auto refuse = [&](const Status& s) {
    ctx_.metrics->conf_changes_refused.inc();
    done(s);
  };
  if (!is_leader()) {
    ctx_.metrics->not_leader.inc();
    done(not_leader());
    return;
  }
  if (conf_wait_) {
    refuse(Status::failed_precondition(
        fmt::format("region {}: a membership change proposed at index {} is still in flight",
                    region_.id, conf_wait_->index)));
    return;
  }
  if (merging()) {
    refuse(Status::failed_precondition(fmt::format("region {} is merging", region_.id)));
    return;
  }
  if (apply_state_.conf_state.joint()) {
    refuse(Status::failed_precondition(
        fmt::format("region {} is in a joint configuration; wait until it is left", region_.id)));
    return;
  }
  // A learner promoted before it has caught up would count in the quorum
  // while unable to acknowledge anything (TiKV refuses such a change too).
  const raft::RaftStatus rs = raw_->status();
  for (const auto& r : changes) {
    if (r.kind != PeerChangeRequest::Kind::kAddVoter) continue;
    const PeerMeta* p = region_.peer_on_store(r.store_id);
    if (p == nullptr || !p->learner) continue;
    auto it = rs.progress.find(p->id);
    const raft::Index match = it == rs.progress.end() ? 0 : it->second.match;
    if (match == 0 || match < apply_state_.truncated_index ||
        it->second.state == raft::ProgressState::kSnapshot) {
      refuse(Status::failed_precondition(fmt::format(
          "region {}: the learner on store {} has not caught up (matched {}, log starts after {})",
          region_.id, r.store_id, match, apply_state_.truncated_index)));
      return;
    }
  }
  auto cmd = plan_change_peers(region_, self_peer_, changes, alloc_id);
  if (!cmd.is_ok()) {
    refuse(cmd.status());
    return;
  }
  RaftCmd rc;
  rc.header = {region_.id, self_peer_, region_.epoch};
  rc.change_peer = std::move(cmd).value();
  const raft::ConfChangeV2 cc = to_conf_change(*rc.change_peer, encode_cmd(rc));
  Status s = raw_->propose_conf_change(cc);
  if (!s.is_ok()) {
    // With no transfer in flight, raft drops a leader's conf change only
    // while another one is unapplied: a precondition, not a transient.
    if (s.code() == Code::kUnavailable && raw_->lead_transferee() == raft::kNoNode && is_leader()) {
      s = Status::failed_precondition(fmt::format("region {}: {}", region_.id, s.message()));
    }
    refuse(s);
    return;
  }
  ctx_.metrics->conf_changes_proposed.inc();
  ctx_.metrics->proposals.inc();
  conf_wait_ = ConfChangeWait{raw_->last_index(), raw_->term(), false, deadline, std::move(done)};
  KVCORE_LOG_INFO("region {}: proposed a membership change of {} peers at index {}", region_.id,
                  rc.change_peer->changes.size(), conf_wait_->index);
}

void Peer::propose_leave_joint() {
  if (!is_leader() || !apply_state_.conf_state.joint()) return;
  // Called from apply lanes too: no schedule() here (the round picks up the
  // Ready; membership_tick_all schedules on ticks).
  wake();
  RaftCmd rc;
  rc.header = {region_.id, self_peer_, region_.epoch};
  rc.change_peer = ChangePeerCmd{};
  // Raft refuses it while any conf change (this leave included) is
  // unapplied, so calling this on every tick proposes it once at a time.
  if (raw_->propose_conf_change(to_conf_change(*rc.change_peer, encode_cmd(rc))).is_ok()) {
    ctx_.metrics->conf_changes_proposed.inc();
    KVCORE_LOG_INFO("region {}: proposed leaving the joint configuration at index {}", region_.id,
                    raw_->last_index());
  }
}

// --- Peer: applying -------------------------------------------------------------

Status Peer::apply_change_peer(const raft::Entry& e) {
  // Raft keeps no state for a conf change this function refuses: its guard
  // against a second pending change compares with the applied index, so a
  // refused entry needs no call into raft. (An empty ConfChangeV2, etcd's
  // "tell raft it was refused", would mean "leave the joint state" here.)
  const auto reject = [&](Status s) {
    ctx_.metrics->conf_changes_rejected.inc();
    KVCORE_LOG_INFO("region {}: conf change at index {} rejected: {}", region_.id, e.index,
                    s.to_string());
    staged_conf_.push_back({e.index, e.term, s, false});
    return s;
  };
  auto cc = raft::decode_conf_change(e.data);
  if (!cc.is_ok()) {
    ctx_.metrics->applied_bad_cmds.inc();
    return reject(cc.status());
  }
  auto cmd = decode_cmd(cc->context);
  if (!cmd.is_ok() || !cmd->change_peer || !same_changes(*cc, *cmd->change_peer)) {
    ctx_.metrics->applied_bad_cmds.inc();
    return reject(Status::invalid_argument(fmt::format(
        "region {}: conf change at {} carries no matching ChangePeerCmd", region_.id, e.index)));
  }
  if (cmd->header.region_id != region_.id) {
    return reject(Status::invalid_argument(
        fmt::format("conf change for region {} in region {}", cmd->header.region_id, region_.id)));
  }
  if (cmd->header.epoch.conf_ver != region_.epoch.conf_ver) {
    return reject(conf_epoch_not_match(region_, cmd->header.epoch));
  }
  auto next = apply_peer_changes(region_, *cmd->change_peer);
  if (!next.is_ok()) return reject(next.status());
  Status err;
  raft::ConfState cs = raw_->apply_conf_change(*cc, &err);
  if (!err.is_ok()) return reject(err);

  const bool was_joint = apply_state_.conf_state.joint();
  apply_state_.conf_state = std::move(cs);
  region_ = std::move(next).value();
  ++region_.epoch.conf_ver;
  members_changed_ = true;
  if (region_.peer_by_id(self_peer_) == nullptr) {
    // Removed: stop serving at once; the store destroys the peer after
    // this round (its data with it).
    removed_ = true;
    lease_until_ = Instant::min();
  }
  ctx_.metrics->conf_changes_applied.inc();
  const bool joint = apply_state_.conf_state.joint();
  KVCORE_LOG_INFO("region {}: applied {} at index {}: conf_ver {}, {}", region_.id,
                  cc->leave_joint() ? std::string("the leave of the joint configuration")
                                    : fmt::format("a change of {} peers", cc->changes.size()),
                  e.index, region_.epoch.conf_ver, raft::describe(apply_state_.conf_state));
  staged_conf_.push_back({e.index, e.term, Status::ok(), joint && !was_joint});
  return Status::ok();
}

void Peer::finish_conf_changes() {
  std::vector<StagedConfChange> staged = std::move(staged_conf_);
  staged_conf_.clear();
  bool entered_joint = false;
  for (auto& c : staged) {
    entered_joint = entered_joint || c.entered_joint;
    if (!conf_wait_ || conf_wait_->in_joint || c.index < conf_wait_->index) continue;
    ConfChangeWait& w = *conf_wait_;
    if (c.index == w.index && c.term == w.term) {
      if (c.result.is_ok() && c.entered_joint) {
        w.in_joint = true;  // done when the joint state is left
        continue;
      }
      auto done = std::move(w.done);
      conf_wait_.reset();
      if (done) done(c.result);
    }
  }
  if (conf_wait_ && !conf_wait_->in_joint && apply_state_.applied_index >= conf_wait_->index) {
    // Another entry took the index (a new leader's), or a snapshot jumped
    // over it: the change may or may not have happened.
    auto done = std::move(conf_wait_->done);
    conf_wait_.reset();
    if (done) {
      done(Status(
          Code::kUnavailable,
          fmt::format("region {}: membership change superseded; check regions()", region_.id),
          SubCode::kStaleCommand));
    }
  }
  if (conf_wait_ && conf_wait_->in_joint && !apply_state_.conf_state.joint()) {
    auto done = std::move(conf_wait_->done);
    conf_wait_.reset();
    if (done) done(Status::ok());
  }
  // The leader leaves a joint state it just entered at once; ticks retry.
  if (entered_joint) propose_leave_joint();
}

void Peer::fail_conf_change(const Status& s) {
  if (!conf_wait_) return;
  auto done = std::move(conf_wait_->done);
  conf_wait_.reset();
  if (done) done(s);
}

// --- Peer: ticks and stale peers ------------------------------------------------

int Peer::stale_check_ticks() const noexcept { return 3 * ctx_.options->election_ticks; }

void Peer::membership_tick(Instant now, Outbox& out) {
  if (conf_wait_ && conf_wait_->deadline <= now) {
    ctx_.metrics->timeouts.inc();
    auto done = std::move(conf_wait_->done);
    conf_wait_.reset();
    if (done) done(Status::deadline_exceeded("membership change timed out"));
  }
  if (removed_) return;
  if (is_leader()) {
    ticks_without_leader_ = 0;
    if (apply_state_.conf_state.joint()) propose_leave_joint();
    return;
  }
  if (++ticks_without_leader_ < stale_check_ticks()) return;
  ticks_without_leader_ = 0;
  const PeerMeta* self = region_.peer_by_id(self_peer_);
  if (self == nullptr) return;
  for (const auto& p : region_.peers) {
    if (p.id == self_peer_) continue;
    RaftEnvelope env{region_.id, *self, p, region_.epoch, {}, false, ExtraMessage::kCheckStalePeer};
    env.message.type = raft::MessageType::kHeartbeat;
    env.message.from = self_peer_;
    env.message.to = p.id;
    out.messages[p.store_id].push_back(std::move(env));
    ctx_.metrics->stale_checks_sent.inc();
  }
}

void Peer::mark_removed() {
  // The tombstone keeps region_ as this peer knew it (the epoch must not
  // outrun what it saw: a later member on this store, with a new peer id,
  // comes with any epoch after the removal). Late messages to this peer id
  // are dropped by id (StoreImpl::is_destroyed_peer).
  removed_ = true;
  lease_until_ = Instant::min();
}

// --- StoreImpl ------------------------------------------------------------------------

void StoreImpl::async_change_peers(std::uint64_t region_id, std::vector<PeerChangeRequest> changes,
                                   const RequestOptions& opts, WriteCallback done) {
  if (changes.empty()) {
    done(Status::invalid_argument("change_peers: no changes"));
    return;
  }
  const Instant deadline =
      rt_->clock().now() + std::chrono::duration_cast<runtime::Duration>(opts.timeout);
  enqueue(ChangePeersInput{region_id, std::move(changes), deadline, std::move(done)});
}

Status StoreImpl::change_peers(std::uint64_t region_id, std::vector<PeerChangeRequest> changes,
                               const RequestOptions& opts) {
  return wait_for<Status>([&](auto cb) { async_change_peers(region_id, std::move(changes), opts, std::move(cb)); });
}

void StoreImpl::handle_change_peers(ChangePeersInput& in) {
  auto it = peers_.find(in.region);
  if (it == peers_.end() || !it->second->initialized()) {
    in.done(region_not_found(in.region));
    return;
  }
  it->second->propose_change_peers(
      in.changes, [this] { return alloc_id(); }, in.deadline, std::move(in.done));
}

bool StoreImpl::update_members(const std::vector<std::uint64_t>& worked) {
  // Only the peers a round worked on can have applied a change.
  bool changed = false;
  std::vector<std::uint64_t> gone;
  for (std::uint64_t id : worked) {
    auto it = peers_.find(id);
    if (it == peers_.end()) continue;
    Peer& peer = *it->second;
    if (peer.take_members_changed()) changed = true;
    if (peer.removed() && std::find(gone.begin(), gone.end(), id) == gone.end()) {
      gone.push_back(id);
    }
  }
  for (std::uint64_t id : gone) {
    Status s = destroy_peer(id, /*clear_data=*/true);
    if (!s.is_ok()) {
      stop_on_error(s.with_context(fmt::format("destroying the removed peer of region {}", id)));
      return true;
    }
    changed = true;
  }
  if (changed) refresh_known_stores();
  return changed;
}

Status StoreImpl::clean_removed_region(std::uint64_t region_id) {
  auto apply = read_apply_state(*kv_, region_id);
  if (!apply.is_ok() || apply->region.peer_on_store(options_.store_id) != nullptr) {
    return Status::ok();  // not a peer that applied its own removal
  }
  // What destroy_peer() would have done, had the store not stopped between
  // applying the removal and destroying the peer.
  raftlog::LogBatch lb;
  lb.clean_region(region_id);
  lb.put_state(
      region_id, kRegionStateKey,
      encode_region_state(RegionLocalState{PeerState::kTombstone, apply->region, std::nullopt}));
  KVCORE_RETURN_IF_ERROR(raft_engine_->write(lb, true));
  auto batch = kv_->new_write_batch();
  batch->delete_key(CF::kRaft, apply_state_key(region_id));
  for (CF cf : std::array{CF::kDefault, CF::kLock, CF::kWrite}) {
    KVCORE_RETURN_IF_ERROR(
        delete_range_in(*kv_, *batch, cf, apply->region.start_key, apply->region.end_key));
  }
  KVCORE_RETURN_IF_ERROR(kv_->write(*batch, WriteOptions{}));
  tombstones_[region_id] = apply->region;
  metrics_.peers_destroyed.inc();
  KVCORE_LOG_INFO("store {}: region {}: removed here before a restart; destroyed now",
                  options_.store_id, region_id);
  return Status::ok();
}

void StoreImpl::refresh_known_stores() {
  // Stores only join the set while the store runs: a store whose peers were
  // all removed stays known, so the late messages of a stale peer there
  // reach screen_envelope() (which answers them) instead of counting as bad
  // frames. Tombstones bring them back after a restart.
  std::set<std::uint64_t> known;
  const auto add = [&](const RegionMeta& r) {
    for (const auto& p : r.peers) {
      if (p.store_id != options_.store_id) known.insert(p.store_id);
    }
  };
  for (const auto& [id, peer] : peers_) add(peer->region());
  for (const auto& [id, region] : tombstones_) add(region);
  std::unique_lock lock(routes_mu_);
  known_stores_.insert(known.begin(), known.end());
}

}  // namespace kvcore::raftstore
