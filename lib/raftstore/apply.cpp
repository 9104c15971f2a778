// Peer: applying committed entries and snapshots to the kv engine.
//
// All entries of a round are applied in one kv write batch together with the
// new apply state (one batch shared by every region an apply worker takes in
// the round), so after a crash the store resumes exactly after the last
// entry whose effects survived (applied exactly once). The batch is synced
// only when the raft log is about to lose entries (CompactLog) or a region's
// metadata changed; otherwise the raft log is the durable record.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "raftstore/codec.hpp"
#include "raftstore/keys.hpp"
#include "raftstore/peer.hpp"
#include "raftstore/ranges.hpp"
#include "raftstore/region_init.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

namespace {

Status add_ops(const Engine& kv, WriteBatch& batch, const std::vector<WriteOp>& ops) {
  for (const auto& op : ops) {
    switch (op.kind) {
      case WriteOpKind::kPut: batch.put(op.cf, op.key, op.value); break;
      case WriteOpKind::kDelete: batch.delete_key(op.cf, op.key); break;
      case WriteOpKind::kDeleteRange:
        KVCORE_RETURN_IF_ERROR(delete_range_in(kv, batch, op.cf, op.key, op.value));
        break;
    }
  }
  return Status::ok();
}

// The value `key` (CF default) has at this point of the apply: the last
// write of it staged in `ab` (earlier entries of this apply batch, possibly
// of other regions, none of them written yet), else the kv engine's. Every
// earlier entry of the key's region is one or the other: entries applied in
// an earlier batch were written before their post_apply.
Result<std::optional<std::string>> value_at_apply(const Engine& kv, const ApplyBatch& ab,
                                                  std::string_view key) {
  for (auto cmd = ab.staged_writes.rbegin(); cmd != ab.staged_writes.rend(); ++cmd) {
    for (auto op = cmd->rbegin(); op != cmd->rend(); ++op) {
      if (op->cf != CF::kDefault) continue;
      switch (op->kind) {
        case WriteOpKind::kPut:
          if (op->key == key) return std::optional<std::string>(op->value);
          break;
        case WriteOpKind::kDelete:
          if (op->key == key) return std::optional<std::string>();
          break;
        case WriteOpKind::kDeleteRange:
          if (key >= op->key && (op->value.empty() || key < op->value)) {
            return std::optional<std::string>();
          }
          break;
      }
    }
  }
  return kv.get(CF::kDefault, key);
}

// OK when every condition holds at this point of the apply; otherwise
// FailedPrecondition/ConditionFailed with the actual value of every
// condition's key. An engine read error is returned in *engine_error (the
// store cannot go on applying), not as the command's result.
Status check_conditions(const Engine& kv, const ApplyBatch& ab,
                        const std::vector<WriteCondition>& conditions, Status* engine_error) {
  auto detail = std::make_shared<ConditionFailedDetail>();
  detail->actual.reserve(conditions.size());
  std::size_t failed = 0;
  for (const auto& c : conditions) {
    auto actual = value_at_apply(kv, ab, c.key);
    if (!actual.is_ok()) {
      *engine_error = actual.status();
      return Status::ok();
    }
    if (*actual != c.expected) ++failed;
    detail->actual.emplace_back(c.key, std::move(actual).value());
  }
  if (failed == 0) return Status::ok();
  return Status(
      Code::kFailedPrecondition,
      fmt::format("{} of {} conditions of the batch do not hold", failed, conditions.size()),
      SubCode::kConditionFailed, std::move(detail));
}

}  // namespace

Status Peer::apply_entries(const std::vector<raft::Entry>& entries, ApplyBatch& ab) {
  WriteBatch& batch = *ab.batch;
  bool sync = false;
  const bool leader = is_leader();
  const raft::Term term = raw_->term();

  for (const auto& e : entries) {
    if (e.index <= apply_state_.applied_index) continue;
    Status result;
    if (e.type == raft::EntryType::kConfChange) {
      result = apply_change_peer(e);
      sync = true;
    } else if (!e.data.empty()) {
      auto cmd = decode_cmd(e.data);
      if (!cmd.is_ok()) {
        ctx_.metrics->applied_bad_cmds.inc();
        KVCORE_LOG_ERROR("region {}: entry {} holds no valid command: {}", region_.id, e.index,
                         cmd.status().to_string());
        result = cmd.status();
      } else if (cmd->header.region_id != region_.id) {
        result = Status::invalid_argument(
            fmt::format("command for region {} in region {}", cmd->header.region_id, region_.id));
      } else if (cmd->compact_log) {
        const CompactLogCmd& c = *cmd->compact_log;
        if (c.compact_index > apply_state_.truncated_index &&
            c.compact_index <= apply_state_.applied_index) {
          apply_state_.truncated_index = c.compact_index;
          apply_state_.truncated_term = c.compact_term;
          staged_.compact = c;
          sync = true;
        }
      } else if (cmd->prepare_merge || cmd->commit_merge || cmd->rollback_merge) {
        KVCORE_RETURN_IF_ERROR(apply_merge(*cmd, e.index, ab, &result));
        if (result.is_ok()) sync = true;
      } else if (cmd->header.epoch.version != region_.epoch.version) {
        result = Status(Code::kUnavailable, fmt::format("region {} epoch changed", region_.id),
                        SubCode::kEpochNotMatch);
      } else if (cmd->batch_split) {
        result = apply_split(*cmd->batch_split, batch);
        if (result.is_ok()) sync = true;
      } else if (!std::all_of(cmd->writes.begin(), cmd->writes.end(),
                              [&](const WriteOp& op) { return op_in_region(op, region_); }) ||
                 !std::all_of(cmd->conditions.begin(), cmd->conditions.end(),
                              [&](const WriteCondition& c) { return region_.contains(c.key); })) {
        result = key_not_in_region({}, region_);
      } else {
        if (!cmd->conditions.empty()) {
          Status read_error;
          result = check_conditions(*ctx_.kv, ab, cmd->conditions, &read_error);
          KVCORE_RETURN_IF_ERROR(read_error.with_context(
              fmt::format("region {}: reading the conditions of entry {}", region_.id, e.index)));
        }
        if (result.is_ok()) {
          KVCORE_RETURN_IF_ERROR(add_ops(*ctx_.kv, batch, cmd->writes));
          ab.staged_writes.push_back(std::move(cmd->writes));
        }
      }
    }
    apply_state_.applied_index = e.index;
    apply_state_.applied_term = e.term;
    staged_.results.push_back({e.index, e.term, std::move(result)});
    if (leader && e.term == term) {
      while (!append_times_.empty() && append_times_.front().first <= e.index) {
        staged_.lease_base = append_times_.front().second;
        append_times_.pop_front();
      }
    }
  }
  apply_state_.region = region_;
  batch.put(CF::kRaft, apply_state_key(region_.id), encode_apply_state(apply_state_));
  staged_.meta_changed = staged_.meta_changed || sync;
  ab.sync = ab.sync || sync;
  return Status::ok();
}

Status Peer::post_apply(const Status& write_status) {
  Staged st = std::move(staged_);
  staged_ = Staged{};
  if (!write_status.is_ok()) {
    // The kv engine refused the write: nothing of it is applied, and this
    // store cannot go on applying. Fail the proposers; the caller stops.
    for (auto& r : st.results) complete_proposals(r.index, r.term, write_status, ctx_.clock->now());
    return write_status.with_context(fmt::format("region {}: apply", region_.id));
  }
  if (!st.results.empty()) ctx_.metrics->applied_entries.inc(st.results.size());
  if (st.lease_base != Instant::min()) renew_lease(st.lease_base);

  if (st.compact) {
    raftlog::LogBatch lb;
    Status cs = storage_->log().compact(lb, st.compact->compact_index);
    if (cs.is_ok()) cs = ctx_.raft_engine->write(lb, false);
    storage_->invalidate();
    if (cs.is_ok()) {
      ctx_.metrics->log_compactions.inc();
      log_bytes_ = 0;
    } else {
      KVCORE_LOG_WARN("region {}: raft log compaction to {} failed: {}", region_.id,
                      st.compact->compact_index, cs.to_string());
    }
  }
  if (st.meta_changed) {
    RegionLocalState rs{apply_state_.merge_state ? PeerState::kMerging : PeerState::kNormal,
                        region_, apply_state_.merge_state};
    raftlog::LogBatch lb;
    storage_->log().set_conf_state(lb, apply_state_.conf_state);
    lb.put_state(region_.id, kRegionStateKey, encode_region_state(rs));
    KVCORE_RETURN_IF_ERROR(ctx_.raft_engine->write(lb, false));
    // New regions of a split: their raft state after the kv engine has
    // their apply states (a crash in between is repaired by load()).
    for (const auto& meta : pending_splits_) {
      KVCORE_RETURN_IF_ERROR(write_initial_raft_state(*ctx_.raft_engine, meta));
    }
    for (auto& meta : pending_splits_) split_results_.push_back(std::move(meta));
    pending_splits_.clear();
  }
  const Instant now = ctx_.clock->now();
  for (auto& r : st.results) complete_proposals(r.index, r.term, r.status, now);
  finish_conf_changes();
  serve_waiting_reads();
  publish_lease();
  return Status::ok();
}

Status Peer::apply_split(const BatchSplitCmd& split, WriteBatch& batch) {
  const auto& keys = split.split_keys;
  if (keys.empty() || keys.size() != split.new_regions.size()) {
    return Status::invalid_argument("split: one new region per split key is needed");
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] <= region_.start_key || !region_.contains(keys[i]) ||
        (i > 0 && keys[i] <= keys[i - 1])) {
      return Status(Code::kInvalidArgument,
                    fmt::format("split: key {} is not ascending inside region {}", i, region_.id),
                    SubCode::kKeyNotInRegion);
    }
    if (split.new_regions[i].region_id == 0 ||
        split.new_regions[i].peer_ids.size() != region_.peers.size()) {
      return Status::invalid_argument("split: a new region needs an id and one peer per store");
    }
  }
  const std::uint64_t version = region_.epoch.version + keys.size();
  std::vector<RegionMeta> created;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    RegionMeta m;
    m.id = split.new_regions[i].region_id;
    m.start_key = keys[i];
    m.end_key = i + 1 < keys.size() ? keys[i + 1] : region_.end_key;
    m.epoch = {region_.epoch.conf_ver, version};
    for (std::size_t p = 0; p < region_.peers.size(); ++p) {
      m.peers.push_back(PeerMeta{split.new_regions[i].peer_ids[p], region_.peers[p].store_id,
                                 region_.peers[p].learner});
    }
    created.push_back(std::move(m));
  }
  region_.end_key = keys.front();
  region_.epoch.version = version;
  for (auto& m : created) {
    batch.put(CF::kRaft, apply_state_key(m.id), encode_apply_state(initial_apply_state(m)));
    pending_splits_.push_back(std::move(m));
  }
  // The lease covered the old range; the new regions elect their own leaders.
  lease_until_ = Instant::min();
  ctx_.metrics->splits.inc();
  return Status::ok();
}

void Peer::complete_proposals(raft::Index index, raft::Term term, const Status& result,
                              Instant now) {
  while (!proposals_.empty() && proposals_.front().index <= index) {
    Proposal p = std::move(proposals_.front());
    proposals_.pop_front();
    if (!p.done) continue;
    if (p.index == index && p.term == term) {
      ctx_.metrics->write_seconds.observe(std::chrono::duration<double>(now - p.start).count());
      p.done(result);
    } else {
      p.done(stale_command(region_.id, p.index));
    }
  }
}

Status Peer::apply_snapshot(const raft::Snapshot& snap, raftlog::LogBatch& /*round batch*/) {
  KVCORE_ASSIGN_OR_RETURN(SnapshotDataReader reader, SnapshotDataReader::open(snap.data));
  ApplyState st = reader.state();
  st.applied_index = snap.metadata.index;
  st.applied_term = snap.metadata.term;
  st.truncated_index = snap.metadata.index;
  st.truncated_term = snap.metadata.term;
  st.conf_state = snap.metadata.conf_state;

  // 1. The kv engine, synced: the old data of both the old and the new
  // range goes, the snapshot's comes in, with the apply state.
  auto batch = ctx_.kv->new_write_batch();
  for (CF cf : std::array{CF::kDefault, CF::kLock, CF::kWrite}) {
    // An uninitialized peer has no range of its own yet: only the
    // snapshot's range is cleared.
    if (initialized_) {
      KVCORE_RETURN_IF_ERROR(
          delete_range_in(*ctx_.kv, *batch, cf, region_.start_key, region_.end_key));
    }
    if (!initialized_ ||
        !(st.region.start_key == region_.start_key && st.region.end_key == region_.end_key)) {
      KVCORE_RETURN_IF_ERROR(
          delete_range_in(*ctx_.kv, *batch, cf, st.region.start_key, st.region.end_key));
    }
  }
  CF cf;
  std::string_view key;
  std::string_view value;
  std::size_t records = 0;
  while (reader.next(&cf, &key, &value)) {
    batch->put(cf, key, value);
    ++records;
  }
  batch->put(CF::kRaft, apply_state_key(region_.id), encode_apply_state(st));
  WriteOptions wo;
  wo.sync = true;
  KVCORE_RETURN_IF_ERROR(ctx_.kv->write(*batch, wo));

  // 2. The raft log, synced: its log now starts after the snapshot. (A crash
  // between 1 and 2 is repaired by Peer::load from the apply state.)
  raftlog::LogBatch lb;
  KVCORE_RETURN_IF_ERROR(storage_->log().apply_snapshot(lb, snap.metadata));
  lb.put_state(region_.id, kRegionStateKey,
               encode_region_state(RegionLocalState{
                   st.merge_state ? PeerState::kMerging : PeerState::kNormal, st.region,
                   st.merge_state}));
  KVCORE_RETURN_IF_ERROR(ctx_.raft_engine->write(lb, true));
  storage_->invalidate();

  if (!initialized_ || region_.start_key != st.region.start_key ||
      region_.end_key != st.region.end_key) {
    range_changed_ = true;
  }
  initialized_ = true;
  members_changed_ = members_changed_ || !(region_.peers == st.region.peers);
  region_ = st.region;
  apply_state_ = std::move(st);
  log_bytes_ = 0;
  // Proposals this peer made as an earlier leader, now inside the snapshot:
  // they may or may not have committed, and no entry will tell.
  while (!proposals_.empty() && proposals_.front().index <= snap.metadata.index) {
    Proposal p = std::move(proposals_.front());
    proposals_.pop_front();
    if (p.done) {
      p.done(Status::unavailable(fmt::format(
          "region {}: outcome unknown, the log up to the proposal was replaced by a snapshot",
          region_.id)));
    }
  }
  ctx_.metrics->snapshots_applied.inc();
  KVCORE_LOG_INFO("region {}: applied a snapshot at index {} term {} ({} records)", region_.id,
                  snap.metadata.index, snap.metadata.term, records);
  return Status::ok();
}

}  // namespace kvcore::raftstore
