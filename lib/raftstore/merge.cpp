// Region merge, as TiKV does it: PrepareMerge on the source, CommitMerge on
// the target (carrying the source's log tail so a lagging source peer can
// catch up first), RollbackMerge when the target changed. The design and
// its safety argument are in docs/store.md ("Region merge").
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <utility>

#include "raftstore/codec.hpp"
#include "raftstore/peer.hpp"
#include "raftstore/store_impl.hpp"
#include "raftstore/wait_for.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

namespace {

// Ticks between two CommitMerge (or RollbackMerge) proposals for one source.
constexpr int kMergeRetryTicks = 5;

Status epoch_not_match(std::uint64_t region) {
  return {Code::kUnavailable, fmt::format("region {} epoch changed", region),
          SubCode::kEpochNotMatch};
}

// `outer` holds every key of `inner`.
bool covers(const RegionMeta& outer, const RegionMeta& inner) {
  return outer.start_key <= inner.start_key &&
         (outer.end_key.empty() || (!inner.end_key.empty() && inner.end_key <= outer.end_key));
}

bool overlaps(const RegionMeta& a, const RegionMeta& b) {
  const bool before = !a.end_key.empty() && a.end_key <= b.start_key;
  const bool after = !b.end_key.empty() && b.end_key <= a.start_key;
  return !before && !after;
}

// `a` has moved past `b` in some part.
bool epoch_moved_on(const RegionEpoch& a, const RegionEpoch& b) {
  return a.version > b.version || a.conf_ver > b.conf_ver;
}

std::set<std::pair<std::uint64_t, bool>> store_set(const RegionMeta& r) {
  std::set<std::pair<std::uint64_t, bool>> out;
  for (const auto& p : r.peers) out.emplace(p.store_id, p.learner);
  return out;
}

}  // namespace

// --- Peer: proposing ----------------------------------------------------------

bool Peer::merging() const noexcept {
  return apply_state_.merge_state.has_value() ||
         prepare_merge_proposed_ > apply_state_.applied_index;
}

bool Peer::commit_merge_pending() const {
  if (!pending_ready_) return false;
  return std::any_of(pending_ready_->committed_entries.begin(),
                     pending_ready_->committed_entries.end(), [](const raft::Entry& e) {
                       return e.type == raft::EntryType::kNormal && is_commit_merge_cmd(e.data);
                     });
}

Status Peer::check_prepare_merge(raft::Index* min_index) const {
  if (!is_leader()) return not_leader();
  if (merging()) return region_merging(region_.id);
  if (apply_state_.conf_state.joint()) {
    return Status::failed_precondition(
        fmt::format("region {} is in a joint configuration", region_.id));
  }
  const raft::Index last = raw_->last_index();
  KVCORE_ASSIGN_OR_RETURN(raft::Index stable_last, storage_->last_index());
  const raft::RaftStatus st = raw_->status();
  raft::Index min_match = last;
  for (const auto& p : region_.peers) {
    if (p.id == self_peer_) continue;
    auto it = st.progress.find(p.id);
    if (it == st.progress.end()) {
      return Status::failed_precondition(
          fmt::format("region {}: peer {} is not tracked by the leader", region_.id, p.id));
    }
    min_match = std::min(min_match, it->second.match);
  }
  const std::uint64_t gap = ctx_.options->merge_max_log_gap;
  if (min_match == 0 || last - min_match > gap) {
    return Status::failed_precondition(
        fmt::format("region {}: a peer's log is {} entries behind (at most {} for a merge)",
                    region_.id, last - min_match, gap));
  }
  KVCORE_ASSIGN_OR_RETURN(raft::Index first, storage_->first_index());
  if (first > min_match + 1 || compact_proposed_ > min_match) {
    return Status::failed_precondition(
        fmt::format("region {}: the log is (being) compacted past a peer's match", region_.id));
  }
  // Nothing in the gap may change the membership or the range: a lagging
  // peer catches up through these entries without raft's help, and a
  // pending conf change would change the peer set under the merge. Entries
  // past the persisted ones are this leader's proposals of this round: a
  // split or conf change among them fails the PrepareMerge's epoch check at
  // apply, and a compaction is caught by compact_proposed_ above.
  const raft::Index lo = std::max(first, std::min(min_match, apply_state_.applied_index) + 1);
  const raft::Index hi = std::min(last, stable_last);
  if (lo <= hi) {
    KVCORE_ASSIGN_OR_RETURN(
        auto entries, storage_->entries(lo, hi + 1, std::numeric_limits<std::uint64_t>::max()));
    for (const auto& e : entries) {
      if (e.type == raft::EntryType::kConfChange) {
        return Status::failed_precondition(
            fmt::format("region {}: a conf change at {} is pending or not yet on every peer",
                        region_.id, e.index));
      }
      if (e.data.empty()) continue;
      auto cmd = decode_cmd(e.data);
      if (!cmd.is_ok()) continue;
      const bool compact_past = cmd->compact_log && cmd->compact_log->compact_index > min_match;
      if (cmd->batch_split || cmd->change_peer || cmd->prepare_merge || cmd->commit_merge ||
          cmd->rollback_merge || compact_past) {
        return Status::failed_precondition(fmt::format(
            "region {}: an admin command at {} is not yet on every peer", region_.id, e.index));
      }
    }
  }
  *min_index = min_match;
  return Status::ok();
}

void Peer::propose_prepare_merge(const RegionMeta& target, Instant deadline, WriteCallback done) {
  wake();
  schedule();
  raft::Index min_index = 0;
  Status s = check_prepare_merge(&min_index);
  if (!s.is_ok()) {
    if (s.sub_code() == SubCode::kNotLeader) ctx_.metrics->not_leader.inc();
    done(s);
    return;
  }
  RaftCmd cmd;
  cmd.header = {region_.id, self_peer_, region_.epoch};
  cmd.prepare_merge = PrepareMergeCmd{min_index, target};
  s = raw_->propose(encode_cmd(cmd));
  if (!s.is_ok()) {
    ctx_.metrics->proposals_dropped.inc();
    done(s);
    return;
  }
  ctx_.metrics->proposals.inc();
  prepare_merge_proposed_ = raw_->last_index();
  // The lease ends now, not at apply: once PrepareMerge commits, a store
  // applying it may have the target take writes for this range.
  lease_until_ = Instant::min();
  publish_lease();
  track_proposal(ctx_.clock->now(), deadline, std::move(done));
  KVCORE_LOG_INFO("region {}: PrepareMerge into region {} proposed at {} (min index {})",
                  region_.id, target.id, prepare_merge_proposed_, min_index);
}

Result<CommitMergeCmd> Peer::build_commit_merge() const {
  if (!apply_state_.merge_state) {
    return Status::failed_precondition(fmt::format("region {} is not merging", region_.id));
  }
  const MergeState& ms = *apply_state_.merge_state;
  KVCORE_ASSIGN_OR_RETURN(raft::Index first, storage_->first_index());
  CommitMergeCmd cmd;
  cmd.source = region_;
  cmd.commit = ms.commit;
  const raft::Index lo = std::max(first, ms.min_index + 1);
  if (lo <= ms.commit) {
    KVCORE_ASSIGN_OR_RETURN(
        cmd.entries,
        storage_->entries(lo, ms.commit + 1, std::numeric_limits<std::uint64_t>::max()));
  }
  return cmd;
}

Status Peer::propose_commit_merge(CommitMergeCmd merge, const RegionEpoch& expected) {
  wake();
  schedule();
  if (!is_leader()) return not_leader();
  if (merging()) return region_merging(region_.id);
  RaftCmd cmd;
  cmd.header = {region_.id, self_peer_, expected};
  const std::uint64_t source = merge.source.id;
  cmd.commit_merge = std::move(merge);
  Status s = raw_->propose(encode_cmd(cmd));
  if (!s.is_ok()) return s;
  ctx_.metrics->proposals.inc();
  KVCORE_LOG_INFO("region {}: CommitMerge of region {} proposed at {}", region_.id, source,
                  raw_->last_index());
  return Status::ok();
}

Status Peer::propose_rollback_merge() {
  wake();
  schedule();
  if (!is_leader()) return not_leader();
  if (!apply_state_.merge_state) {
    return Status::failed_precondition(fmt::format("region {} is not merging", region_.id));
  }
  RaftCmd cmd;
  cmd.header = {region_.id, self_peer_, region_.epoch};
  cmd.rollback_merge = RollbackMergeCmd{apply_state_.merge_state->commit};
  Status s = raw_->propose(encode_cmd(cmd));
  if (!s.is_ok()) return s;
  ctx_.metrics->proposals.inc();
  KVCORE_LOG_INFO("region {}: RollbackMerge proposed at {}", region_.id, raw_->last_index());
  return Status::ok();
}

// --- Peer: applying -------------------------------------------------------------

Status Peer::catch_up_merge(const CommitMergeCmd& merge, ApplyBatch& ab) {
  const auto holds_prepare = [&] {
    return apply_state_.merge_state && apply_state_.merge_state->commit == merge.commit;
  };
  if (holds_prepare()) return Status::ok();
  if (apply_state_.merge_state || apply_state_.applied_index >= merge.commit) {
    return Status::internal(fmt::format(
        "region {}: applied to {} without the PrepareMerge at {} that its target commits",
        region_.id, apply_state_.applied_index, merge.commit));
  }
  // Entries up to the first carried one come from this peer's own log: they
  // are at or below the lowest match of the PrepareMerge, so committed.
  const raft::Index next = apply_state_.applied_index + 1;
  const raft::Index carried_first =
      merge.entries.empty() ? merge.commit + 1 : merge.entries.front().index;
  std::vector<raft::Entry> entries;
  if (next < carried_first) {
    auto own = storage_->entries(next, carried_first, std::numeric_limits<std::uint64_t>::max());
    if (!own.is_ok()) {
      return own.status().with_context(
          fmt::format("region {}: catching up for a merge from its own log", region_.id));
    }
    entries = std::move(own).value();
  }
  for (const auto& e : merge.entries) {
    if (e.index >= next) entries.push_back(e);
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].index != next + i) {
      return Status::internal(
          fmt::format("region {}: no entry {} to catch up to the PrepareMerge at {}", region_.id,
                      next + i, merge.commit));
    }
  }
  if (entries.empty() || entries.back().index != merge.commit) {
    return Status::internal(
        fmt::format("region {}: cannot reach the PrepareMerge at {}", region_.id, merge.commit));
  }
  KVCORE_RETURN_IF_ERROR(apply_entries(entries, ab));
  if (!holds_prepare()) {
    return Status::internal(
        fmt::format("region {}: the entry at {} is not the PrepareMerge its target commits",
                    region_.id, merge.commit));
  }
  ctx_.metrics->merge_catch_ups.inc();
  KVCORE_LOG_INFO("region {}: caught up {} entries to its PrepareMerge at {} for the merge",
                  region_.id, entries.size(), merge.commit);
  return Status::ok();
}

Status Peer::apply_merge(const RaftCmd& cmd, raft::Index index, ApplyBatch& ab, Status* result) {
  // Merges check both parts of the epoch: a membership change on either
  // side voids them.
  if (!(cmd.header.epoch == region_.epoch)) {
    *result = epoch_not_match(region_.id);
    return Status::ok();
  }
  if (cmd.prepare_merge) {
    if (apply_state_.merge_state) {
      *result = region_merging(region_.id);
      return Status::ok();
    }
    ++region_.epoch.version;
    ++region_.epoch.conf_ver;
    apply_state_.merge_state =
        MergeState{cmd.prepare_merge->min_index, cmd.prepare_merge->target, index};
    lease_until_ = Instant::min();
    merge_retry_ticks_ = 0;
    ctx_.metrics->merges_prepared.inc();
    KVCORE_LOG_INFO("region {}: PrepareMerge into region {} applied at {} on store {}", region_.id,
                    cmd.prepare_merge->target.id, index, ctx_.store_id);
    return Status::ok();
  }
  if (cmd.rollback_merge) {
    if (!apply_state_.merge_state ||
        apply_state_.merge_state->commit != cmd.rollback_merge->commit) {
      *result = Status::failed_precondition(fmt::format(
          "region {}: no PrepareMerge at {} to roll back", region_.id, cmd.rollback_merge->commit));
      return Status::ok();
    }
    ++region_.epoch.version;
    apply_state_.merge_state.reset();
    rolled_back_ = true;
    ctx_.metrics->merges_rolled_back.inc();
    KVCORE_LOG_INFO("region {}: merge rolled back at {} on store {}", region_.id, index,
                    ctx_.store_id);
    return Status::ok();
  }
  const CommitMergeCmd& m = *cmd.commit_merge;
  const RegionMeta& src = m.source;
  const bool from_left = !src.end_key.empty() && src.end_key == region_.start_key;
  const bool from_right = !region_.end_key.empty() && region_.end_key == src.start_key;
  if (src.id == region_.id || (!from_left && !from_right) || apply_state_.merge_state) {
    *result = Status::invalid_argument(
        fmt::format("region {}: region {} cannot be merged into it", region_.id, src.id));
    return Status::ok();
  }
  // The one ordering between regions: the source peer here must hold its
  // PrepareMerge before this peer takes its range.
  if (!ctx_.catch_up_merge_source) return Status::internal("no merge catch-up on this store");
  KVCORE_RETURN_IF_ERROR(ctx_.catch_up_merge_source(m, ab));
  if (from_left) {
    region_.start_key = src.start_key;
  } else {
    region_.end_key = src.end_key;
  }
  region_.epoch.version = std::max(src.epoch.version, region_.epoch.version) + 1;
  lease_until_ = Instant::min();
  range_changed_ = true;
  merged_sources_.push_back(src.id);
  ctx_.metrics->merges_committed.inc();
  KVCORE_LOG_INFO("region {}: took in region {} at {} on store {}", region_.id, src.id, index,
                  ctx_.store_id);
  return Status::ok();
}

// --- StoreImpl ------------------------------------------------------------------

void StoreImpl::async_merge_region(std::uint64_t source_region, std::uint64_t target_region,
                                   const RequestOptions& opts, WriteCallback done) {
  if (source_region == target_region) {
    done(Status::invalid_argument("merge: a region cannot be merged into itself"));
    return;
  }
  const Instant deadline =
      rt_->clock().now() + std::chrono::duration_cast<runtime::Duration>(opts.timeout);
  enqueue(MergeInput{source_region, target_region, deadline, std::move(done)});
}

Status StoreImpl::merge_region(std::uint64_t source_region, std::uint64_t target_region,
                               const RequestOptions& opts) {
  return wait_for<Status>([&](auto cb) { async_merge_region(source_region, target_region, opts, std::move(cb)); });
}

void StoreImpl::handle_merge(MergeInput& in) {
  auto sit = peers_.find(in.source);
  if (sit == peers_.end() || !sit->second->initialized()) {
    in.done(region_not_found(in.source));
    return;
  }
  auto tit = peers_.find(in.target);
  if (tit == peers_.end() || !tit->second->initialized()) {
    in.done(region_not_found(in.target));
    return;
  }
  Peer& source = *sit->second;
  const Peer& target = *tit->second;
  const RegionMeta& s = source.region();
  const RegionMeta& t = target.region();
  const bool adjacent = (!s.end_key.empty() && s.end_key == t.start_key) ||
                        (!t.end_key.empty() && t.end_key == s.start_key);
  if (!adjacent) {
    in.done(Status::invalid_argument(
        fmt::format("merge: regions {} and {} are not adjacent", s.id, t.id)));
    return;
  }
  if (store_set(s) != store_set(t)) {
    in.done(Status::failed_precondition(
        fmt::format("merge: regions {} and {} have peers on different stores", s.id, t.id)));
    return;
  }
  if (target.merging() || target.apply_state().conf_state.joint()) {
    in.done(Status::failed_precondition(
        fmt::format("merge: target region {} is merging or in a joint configuration", t.id)));
    return;
  }
  if (merge_waiters_.count(in.source) != 0) {
    in.done(region_merging(in.source));
    return;
  }
  merge_waiters_[in.source] = MergeWaiter{in.deadline, std::move(in.done)};
  const std::uint64_t id = in.source;
  // The proposal's callback only reports failure: success is the CommitMerge
  // (or RollbackMerge) applied here later.
  source.propose_prepare_merge(t, in.deadline, [this, id](Status st) {
    if (!st.is_ok()) complete_merge(id, st);
  });
}

void StoreImpl::complete_merge(std::uint64_t source, const Status& s) {
  auto it = merge_waiters_.find(source);
  if (it == merge_waiters_.end()) return;
  WriteCallback done = std::move(it->second.done);
  merge_waiters_.erase(it);
  done(s);
}

void StoreImpl::expire_merges(Instant now) {
  std::vector<std::uint64_t> due;
  for (const auto& [id, w] : merge_waiters_) {
    if (w.deadline <= now) due.push_back(id);
  }
  for (auto id : due) {
    metrics_.timeouts.inc();
    complete_merge(id, Status::deadline_exceeded("merge timed out; it may still complete"));
  }
}

void StoreImpl::check_merges() {
  for (auto& [id, peer] : peers_) {
    if (!peer->initialized() || !peer->merge_state()) continue;
    const MergeState& ms = *peer->merge_state();
    const RegionMeta& src = peer->region();
    int& ticks = peer->merge_retry_ticks();
    auto tit = peers_.find(ms.target.id);
    Peer* target = tit != peers_.end() && tit->second->initialized() ? tit->second.get() : nullptr;
    // The target as this store last knew it: its peer, or its tombstone.
    const RegionMeta* known = target != nullptr ? &target->region() : nullptr;
    if (auto tb = tombstones_.find(ms.target.id); known == nullptr && tb != tombstones_.end()) {
      known = &tb->second;
    }
    if (known == nullptr) continue;  // not here yet
    if (covers(*known, src) && known->epoch.version > src.epoch.version) {
      // Merged, and this peer was left behind (a crash between the target's
      // CommitMerge and this peer's end): its data is the target's now.
      stale_overlaps_.push_back(id);
      continue;
    }
    if (ticks > 0) {
      --ticks;
      continue;
    }
    const RegionEpoch& have = known->epoch;
    if (target != nullptr && have == ms.target.epoch) {
      // Whichever store leads the target proposes it there: every store of
      // the source has a peer of the target (same store set).
      if (!target->is_leader()) continue;
      auto cmd = peer->build_commit_merge();
      Status s = cmd.is_ok() ? target->propose_commit_merge(std::move(cmd).value(), ms.target.epoch)
                             : cmd.status();
      if (!s.is_ok()) {
        KVCORE_LOG_INFO("region {}: CommitMerge not proposed: {}", id, s.to_string());
      }
      ticks = kMergeRetryTicks;
    } else if (epoch_moved_on(have, ms.target.epoch)) {
      // The target moved on without taking this region in: had it taken it
      // on this store, this peer would be gone (or covered, above). So the
      // first epoch change after the recorded one in the target's log was
      // not this merge, and a CommitMerge anywhere in it fails its check.
      // A target gone from this store counts by the epoch it ended with.
      if (!peer->is_leader()) continue;
      Status s = peer->propose_rollback_merge();
      if (!s.is_ok()) {
        KVCORE_LOG_INFO("region {}: RollbackMerge not proposed: {}", id, s.to_string());
      }
      ticks = kMergeRetryTicks;
    }
    // Otherwise the target here lags behind what the source saw: wait.
  }
}

bool StoreImpl::finish_merges(const std::vector<Peer*>& worked) {
  std::vector<std::uint64_t> merged;
  for (Peer* peer : worked) {
    for (auto src : peer->take_merged_sources()) merged.push_back(src);
    if (peer->take_rolled_back()) {
      const std::uint64_t id = peer->region_id();
      complete_merge(id, Status::aborted(fmt::format(
                             "merge of region {} rolled back: its target changed", id)));
    }
  }
  for (auto id : stale_overlaps_) merged.push_back(id);
  stale_overlaps_.clear();
  std::sort(merged.begin(), merged.end());
  merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
  bool gone = false;
  for (auto id : merged) {
    if (peers_.count(id) == 0) continue;
    Status s = destroy_peer(id, /*clear_data=*/false);
    if (!s.is_ok()) {
      stop_on_error(s.with_context(fmt::format("destroying merged region {}", id)));
      return true;
    }
    gone = true;
    complete_merge(id, Status::ok());
  }
  return gone;
}

bool StoreImpl::snapshot_range_ok(const RegionMeta& r, bool commit_stale) {
  bool ok = true;
  std::vector<std::uint64_t> stale;
  for (const auto& [id, peer] : peers_) {
    if (id == r.id || !peer->initialized()) continue;
    const RegionMeta& o = peer->region();
    if (!overlaps(o, r)) continue;
    if (covers(r, o) && o.epoch.version < r.epoch.version) {
      // Versions only grow along a range's history: a newer region holding
      // all of `o` means `o` was merged away and this peer missed it.
      stale.push_back(id);
    } else {
      ok = false;
    }
  }
  // Stale peers go only with a snapshot that lands: destroyed while the
  // target here goes on by its log instead, a CommitMerge would find no
  // source to take in.
  if (ok && commit_stale) {
    for (auto id : stale) {
      KVCORE_LOG_INFO("store {}: region {} is covered by a newer snapshot of region {}; stale",
                      options_.store_id, id, r.id);
      stale_overlaps_.push_back(id);
    }
  }
  return ok;
}

Status StoreImpl::catch_up_merge_source(const CommitMergeCmd& merge, ApplyBatch& ab) {
  auto it = peers_.find(merge.source.id);
  if (it == peers_.end() || !it->second->initialized()) {
    return Status::internal(fmt::format(
        "store {}: a CommitMerge takes in region {}, which has no initialized peer here",
        options_.store_id, merge.source.id));
  }
  return it->second->catch_up_merge(merge, ab);
}

Status StoreImpl::drop_covered_peers() {
  std::vector<std::uint64_t> stale;
  for (const auto& [id, peer] : peers_) {
    // Only a merging source can be left behind this way.
    if (!peer->initialized() || !peer->merge_state()) continue;
    for (const auto& [oid, other] : peers_) {
      if (oid == id || !other->initialized()) continue;
      if (covers(other->region(), peer->region()) &&
          other->region().epoch.version > peer->region().epoch.version) {
        stale.push_back(id);
        break;
      }
    }
  }
  for (auto id : stale) {
    KVCORE_LOG_INFO("store {}: region {} was merged away before a crash; destroying it",
                    options_.store_id, id);
    KVCORE_RETURN_IF_ERROR(destroy_peer(id, /*clear_data=*/false));
  }
  return Status::ok();
}

}  // namespace kvcore::raftstore
