// Peer: loading, inputs, and the Ready round. Applying committed entries and
// snapshots is in apply.cpp.
#include "raftstore/peer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "raftstore/codec.hpp"
#include "raftstore/keys.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

namespace {

// Brings the raft log in line with the kv engine's apply state, which is
// the truth after a crash: the kv engine is synced whenever the raft log is
// about to lose entries (compaction) or gets a snapshot, so the raft log
// can only lag behind it.
//
// With sync_log off, the raft log can also lose a tail the kv engine has
// already applied (a synced apply batch, e.g. a compaction's, made it to disk
// and the raft log's unsynced entries below it did not). The applied state
// is then taken as a snapshot: the kv apply state is truncated there first,
// then the raft log moved to it. The peer's acknowledgements of the lost
// entries are void; that is the durability sync_log = false gives up.
Status reconcile(raftlog::RaftLogEngine& engine, Engine& kv, std::uint64_t region,
                 ApplyState& apply, RegionLocalState& rs) {
  raftlog::RaftLogStorage log(engine, region);
  raftlog::LogBatch b;
  KVCORE_ASSIGN_OR_RETURN(raft::Index last, log.last_index());
  if (last < apply.applied_index) {
    apply.truncated_index = apply.applied_index;
    apply.truncated_term = apply.applied_term;
    auto kb = kv.new_write_batch();
    kb->put(CF::kRaft, apply_state_key(region), encode_apply_state(apply));
    WriteOptions wo;
    wo.sync = true;
    KVCORE_RETURN_IF_ERROR(kv.write(*kb, wo));
    KVCORE_LOG_WARN("region {}: the raft log ends at {}, before the applied index {} (sync_log "
                    "off and a crash): restarting the log from the applied state",
                    region, last, apply.applied_index);
  }
  auto term_at = log.term(apply.truncated_index);
  const bool matches = term_at.is_ok() && *term_at == apply.truncated_term;
  KVCORE_ASSIGN_OR_RETURN(raft::Index first, log.first_index());
  if (!matches) {
    // A snapshot reached the kv engine but not the raft log.
    raft::SnapshotMetadata meta{apply.conf_state, apply.truncated_index, apply.truncated_term};
    KVCORE_RETURN_IF_ERROR(log.apply_snapshot(b, meta));
    KVCORE_LOG_INFO("region {}: raft log moved to the applied snapshot at {} after a crash", region,
                    apply.truncated_index);
  } else if (apply.truncated_index >= first) {
    KVCORE_RETURN_IF_ERROR(log.compact(b, apply.truncated_index));
  }
  if (!(rs.region == apply.region) || rs.merge_state != apply.merge_state) {
    rs.region = apply.region;
    rs.merge_state = apply.merge_state;
    rs.state = apply.merge_state ? PeerState::kMerging : PeerState::kNormal;
    b.put_state(region, kRegionStateKey, encode_region_state(rs));
  }
  KVCORE_RETURN_IF_ERROR(engine.write(b, true));

  KVCORE_ASSIGN_OR_RETURN(raft::RaftState st, log.initial_state());
  raft::HardState hs = st.hard_state;
  if (hs.term < apply.applied_term) {
    hs.term = apply.applied_term;
    hs.vote = raft::kNoNode;
  }
  hs.commit = std::max(hs.commit, apply.applied_index);
  if (!(hs == st.hard_state)) log.set_hard_state(b, hs);
  if (!st.conf_state.equivalent(apply.conf_state)) log.set_conf_state(b, apply.conf_state);
  return engine.write(b, true);
}

// Every peer's raft configuration: check-quorum and pre-vote (the lease
// depends on both), ReadIndex confirmed by heartbeats, no forwarding (a
// follower answers NotLeader instead).
raft::Config raft_config(const StoreOptions& o, std::uint64_t peer_id, raft::Index applied,
                         std::uint64_t seed) {
  raft::Config cfg;
  cfg.id = peer_id;
  cfg.election_tick = o.election_ticks;
  cfg.heartbeat_tick = o.heartbeat_ticks;
  cfg.applied = applied;
  cfg.max_size_per_msg = o.max_entry_bytes_per_msg;
  cfg.max_inflight_msgs = o.max_inflight_msgs;
  cfg.check_quorum = true;
  cfg.pre_vote = true;
  cfg.read_only_option = raft::ReadOnlyOption::kSafe;
  cfg.disable_proposal_forwarding = true;
  cfg.seed = seed;
  return cfg;
}

}  // namespace

Peer::Peer(const PeerContext& ctx, RegionMeta region, ApplyState apply, std::uint64_t self_peer)
    : ctx_(ctx),
      region_(std::move(region)),
      apply_state_(std::move(apply)),
      self_peer_(self_peer) {}

Peer::~Peer() = default;

Result<std::unique_ptr<Peer>> Peer::load(const PeerContext& ctx, std::uint64_t region_id,
                                         std::uint64_t seed) {
  raftlog::RaftLogEngine& engine = *ctx.raft_engine;
  KVCORE_ASSIGN_OR_RETURN(auto raw_state, engine.get_state(region_id, kRegionStateKey));
  auto apply = read_apply_state(*ctx.kv, region_id);
  RegionLocalState rs;
  if (raw_state) {
    KVCORE_ASSIGN_OR_RETURN(rs, decode_region_state(*raw_state));
  } else if (apply.is_ok()) {
    // A split wrote the new region's apply state, and the crash came before
    // its raft state: reconcile() writes that from the apply state.
    rs.region = apply->region;
  } else {
    return Status::not_found(fmt::format("region {} has no state", region_id));
  }
  if (rs.state == PeerState::kTombstone) {
    return Status::not_found(fmt::format("region {} is a tombstone", region_id));
  }
  if (!apply.is_ok()) {
    return apply.status().with_context(fmt::format("region {}: kv apply state", region_id));
  }
  KVCORE_RETURN_IF_ERROR(reconcile(engine, *ctx.kv, region_id, *apply, rs));

  const PeerMeta* self = apply->region.peer_on_store(ctx.store_id);
  if (self == nullptr) {
    return Status::not_found(
        fmt::format("region {} has no peer on store {}", region_id, ctx.store_id));
  }
  std::unique_ptr<Peer> p(new Peer(ctx, apply->region, *apply, self->id));
  p->storage_ = std::make_unique<PeerStorage>(engine, *ctx.kv, region_id);

  const raft::Config cfg = raft_config(*ctx.options, self->id, apply->applied_index, seed);
  KVCORE_ASSIGN_OR_RETURN(raft::RaftState initial, p->storage_->initial_state());
  p->persisted_hs_ = initial.hard_state;
  KVCORE_ASSIGN_OR_RETURN(p->raw_, raft::RawNode::create(cfg, *p->storage_));
  p->publish_lease();
  return p;
}

Result<std::unique_ptr<Peer>> Peer::create_uninitialized(const PeerContext& ctx,
                                                         std::uint64_t region_id,
                                                         const PeerMeta& self,
                                                         const PeerMeta& leader,
                                                         std::uint64_t seed) {
  RegionMeta region;
  region.id = region_id;
  region.epoch = {0, 0};
  region.peers = {self, leader};
  ApplyState apply;
  apply.region = region;
  std::unique_ptr<Peer> p(new Peer(ctx, region, apply, self.id));
  p->initialized_ = false;
  p->storage_ = std::make_unique<PeerStorage>(*ctx.raft_engine, *ctx.kv, region_id);
  const raft::Config cfg = raft_config(*ctx.options, self.id, 0, seed);
  KVCORE_ASSIGN_OR_RETURN(raft::RaftState initial, p->storage_->initial_state());
  p->persisted_hs_ = initial.hard_state;
  KVCORE_ASSIGN_OR_RETURN(p->raw_, raft::RawNode::create(cfg, *p->storage_));
  p->publish_lease();
  return p;
}

// --- inputs -------------------------------------------------------------------

void Peer::step(RaftEnvelope env) {
  ctx_.metrics->messages_received.inc();
  const raft::MessageType type = env.message.type;
  const raft::NodeId from = env.message.from;
  const raft::Index commit = env.message.commit;
  const bool heartbeat =
      type == raft::MessageType::kHeartbeat || type == raft::MessageType::kHeartbeatResponse;
  if (!env.hibernate && !(type == raft::MessageType::kHeartbeatResponse && is_leader())) {
    if (hibernating_) wake();
  }
  if (!heartbeat) active_since_tick_ = true;
  if (type == raft::MessageType::kAppend || type == raft::MessageType::kHeartbeat) {
    ticks_without_leader_ = 0;
  }
  remember_sender(env.from_peer);
  Status s = raw_->step(std::move(env.message));
  if (!s.is_ok()) KVCORE_LOG_DEBUG("region {}: step: {}", region_.id, s.to_string());
  // The leader's word that the region sleeps: follow it when up to date.
  if (env.hibernate && ctx_.options->hibernate_regions && !hibernating_ && !is_leader() &&
      raw_->leader_id() == from && raw_->committed() >= commit &&
      apply_state_.applied_index == raw_->committed() && mail_.empty()) {
    hibernating_ = true;
    idle_ticks_ = 0;
    ctx_.metrics->region_hibernations.inc();
  }
}

void Peer::add_chunk(SnapshotChunk chunk) {
  ctx_.metrics->snapshot_chunks_received.inc();
  wake();
  schedule();
  ticks_without_leader_ = 0;
  remember_sender(chunk.from_peer);
  const auto& meta = chunk.message.snapshot->metadata;
  Assembly& a = assemblies_[chunk.from_peer.id];
  const bool same = a.msg_term == chunk.message.term && a.snap_index == meta.index &&
                    a.snap_term == meta.term && a.total == chunk.total_bytes;
  if (chunk.offset == 0) {
    a = Assembly{chunk.from_peer.id, chunk.message.term, meta.index,
                 meta.term,          chunk.total_bytes,  {}};
    a.data.reserve(std::min<std::uint64_t>(chunk.total_bytes, ctx_.options->max_frame_bytes));
  } else if (!same || chunk.offset != a.data.size()) {
    ctx_.metrics->snapshot_chunks_dropped.inc();
    return;
  }
  a.data.append(chunk.data);
  if (a.data.size() < a.total) return;
  std::string data = std::move(a.data);
  assemblies_.erase(chunk.from_peer.id);
  chunk.data.clear();  // what is left is the header: the kSnapshot message
  step_snapshot(std::move(chunk), std::move(data));
}

void Peer::step_snapshot(SnapshotChunk header, std::string data) {
  const auto& meta = header.message.snapshot->metadata;
  auto reader = SnapshotDataReader::open(data);
  // Raft restores a snapshot only past its commit index and when its log
  // does not already hold the snapshot's last entry (it then fast-forwards
  // its commit and applies by log). Peers the snapshot finds stale are
  // destroyed only when it will be restored.
  const auto log_term = storage_->term(meta.index);
  const bool restores = meta.index > raw_->committed() &&
                        !(log_term.is_ok() && *log_term == meta.term);
  if (!reader.is_ok() || reader->state().applied_index != meta.index ||
      reader->state().region.id != region_.id ||
      (ctx_.range_free && !ctx_.range_free(reader->state().region, restores))) {
    ctx_.metrics->snapshot_chunks_dropped.inc();
    // A range conflict is expected while this store has not yet applied the
    // split that makes room for the region; the leader sends it again.
    KVCORE_LOG_INFO("region {}: dropped a snapshot at {}: {}", region_.id, meta.index,
                    reader.is_ok()
                        ? "its index or region differs, or its range overlaps a region here"
                        : reader.status().to_string());
    return;
  }
  raft::Message m = std::move(header.message);
  m.snapshot = std::make_shared<const raft::Snapshot>(raft::Snapshot{std::move(data), meta});
  ctx_.metrics->messages_received.inc();
  Status s = raw_->step(std::move(m));
  if (!s.is_ok()) KVCORE_LOG_DEBUG("region {}: step snapshot: {}", region_.id, s.to_string());
}

void Peer::tick() {
  if (std::exchange(campaign_at_tick_, false) && raw_->leader_id() == raft::kNoNode) {
    Status s = raw_->campaign();
    if (!s.is_ok()) KVCORE_LOG_DEBUG("region {}: campaign: {}", region_.id, s.to_string());
  }
  raw_->tick();
  check_hibernation();
  if (++ticks_since_gc_ >= ctx_.options->raft_log_gc_ticks) {
    ticks_since_gc_ = 0;
    maybe_compact_log();
  }
}

bool Peer::is_leader() const { return raw_->role() == raft::StateRole::kLeader; }

Status Peer::not_leader() const {
  const raft::NodeId lead = raw_->leader_id();
  const PeerMeta* p = peer_meta(lead);
  return not_leader_status(region_.id, p ? p->store_id : 0, lead);
}

const PeerMeta* Peer::peer_meta(std::uint64_t peer_id) const {
  if (peer_id == 0) return nullptr;
  if (const PeerMeta* p = region_.peer_by_id(peer_id)) return p;
  // A peer of a membership this peer has not applied yet (a new leader).
  auto it = peer_cache_.find(peer_id);
  return it == peer_cache_.end() ? nullptr : &it->second;
}

void Peer::propose(WriteRequest req) {
  active_since_tick_ = true;
  if (!is_leader()) {
    ctx_.metrics->not_leader.inc();
    req.done(not_leader());
    return;
  }
  if (merging()) {
    req.done(region_merging(region_.id));
    return;
  }
  for (const auto& op : req.ops) {
    if (!op_in_region(op, region_)) {
      req.done(key_not_in_region(op.key, region_));
      return;
    }
  }
  for (const auto& c : req.conditions) {
    if (!region_.contains(c.key)) {
      req.done(key_not_in_region(c.key, region_));
      return;
    }
  }
  RaftCmd cmd;
  cmd.header = {region_.id, self_peer_, region_.epoch};
  cmd.writes = std::move(req.ops);
  cmd.conditions = std::move(req.conditions);
  Status s = raw_->propose(encode_cmd(cmd));
  if (!s.is_ok()) {
    ctx_.metrics->proposals_dropped.inc();
    req.done(s);
    return;
  }
  ctx_.metrics->proposals.inc();
  track_proposal(req.start, req.deadline, std::move(req.done));
}

void Peer::track_proposal(Instant start, Instant deadline, WriteCallback done) {
  const raft::Index index = raw_->last_index();
  while (!proposals_.empty() && proposals_.back().index >= index) {
    Proposal stale = std::move(proposals_.back());
    proposals_.pop_back();
    if (stale.done) stale.done(stale_command(region_.id, stale.index));
  }
  proposals_.push_back({index, raw_->term(), start, deadline, std::move(done)});
}

void Peer::propose_split(BatchSplitCmd split, Instant deadline, WriteCallback done) {
  wake();
  schedule();
  if (!is_leader()) {
    ctx_.metrics->not_leader.inc();
    done(not_leader());
    return;
  }
  if (merging()) {
    done(region_merging(region_.id));
    return;
  }
  RaftCmd cmd;
  cmd.header = {region_.id, self_peer_, region_.epoch};
  cmd.batch_split = std::move(split);
  Status s = raw_->propose(encode_cmd(cmd));
  if (!s.is_ok()) {
    ctx_.metrics->proposals_dropped.inc();
    done(s);
    return;
  }
  ctx_.metrics->proposals.inc();
  track_proposal(ctx_.clock->now(), deadline, std::move(done));
}

void Peer::campaign() {
  wake();
  schedule();
  Status s = raw_->campaign();
  if (!s.is_ok()) KVCORE_LOG_DEBUG("region {}: campaign: {}", region_.id, s.to_string());
}

void Peer::read(ReadRequest req) {
  active_since_tick_ = true;
  if (!is_leader()) {
    ctx_.metrics->not_leader.inc();
    req.fail(not_leader());
    return;
  }
  if (merging()) {
    req.fail(region_merging(region_.id));
    return;
  }
  unbatched_reads_.push_back(std::move(req));
}

Status Peer::transfer_leader(std::uint64_t to_store) {
  wake();
  schedule();
  if (!is_leader()) return not_leader();
  const PeerMeta* target = region_.peer_on_store(to_store);
  if (target == nullptr || target->learner) {
    return Status::invalid_argument(
        fmt::format("region {} has no voter on store {}", region_.id, to_store));
  }
  // The lease ends now: the target may lead as soon as it gets TimeoutNow,
  // before this peer hears of it.
  lease_until_ = Instant::min();
  publish_lease();
  raw_->transfer_leader(target->id);
  return Status::ok();
}

void Peer::report_unreachable(std::uint64_t store_id) {
  for (const auto& p : region_.peers) {
    if (p.store_id == store_id && p.id != self_peer_) {
      raw_->report_unreachable(p.id);
      schedule();
    }
  }
}

void Peer::report_snapshot(std::uint64_t peer_id, bool failed) {
  raw_->report_snapshot(peer_id, failed);
}

void Peer::expire(Instant now) {
  const Status timeout = Status::deadline_exceeded("request timed out");
  for (auto& p : proposals_) {
    if (p.done && p.deadline <= now) {
      ctx_.metrics->timeouts.inc();
      auto cb = std::move(p.done);
      p.done = nullptr;
      cb(timeout);
    }
  }
  const auto expire_reads = [&](std::vector<ReadRequest>& reads) {
    auto keep = std::remove_if(reads.begin(), reads.end(), [&](ReadRequest& r) {
      if (r.deadline > now) return false;
      ctx_.metrics->timeouts.inc();
      r.fail(timeout);
      return true;
    });
    reads.erase(keep, reads.end());
  };
  for (auto it = read_batches_.begin(); it != read_batches_.end();) {
    expire_reads(it->second.reads);
    it = it->second.reads.empty() ? read_batches_.erase(it) : std::next(it);
  }
  for (auto it = waiting_reads_.begin(); it != waiting_reads_.end();) {
    if (it->req.deadline <= now) {
      ctx_.metrics->timeouts.inc();
      it->req.fail(timeout);
      it = waiting_reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void Peer::fail_reads(const Status& s) {
  for (auto& r : unbatched_reads_) r.fail(s);
  unbatched_reads_.clear();
  for (auto& [ctx, batch] : read_batches_) {
    for (auto& r : batch.reads) r.fail(s);
  }
  read_batches_.clear();
}

void Peer::fail_all(const Status& s, const Status* proposals) {
  fail_reads(s);
  fail_conf_change(s);
  for (auto& w : waiting_reads_) w.req.fail(s);
  waiting_reads_.clear();
  for (auto& p : proposals_) {
    if (p.done) {
      auto cb = std::move(p.done);
      p.done = nullptr;
      cb(proposals != nullptr ? *proposals : s);
    }
  }
  proposals_.clear();
}

// --- the round ------------------------------------------------------------------

bool Peer::has_ready() const {
  return !pending_ready_ && (!unbatched_reads_.empty() || raw_->has_ready());
}

Status Peer::begin_ready(Instant round_start, raftlog::LogBatch& batch, Outbox& out, bool* sync) {
  if (!unbatched_reads_.empty()) {
    // One ReadIndex round for every read that arrived in this round.
    std::string ctx = fmt::format("r{}", next_read_ctx_++);
    read_batches_[ctx] = ReadBatch{round_start, raw_->term(), std::move(unbatched_reads_)};
    unbatched_reads_.clear();
    raw_->read_index(std::move(ctx));
  }
  if (!raw_->has_ready()) return Status::ok();
  pending_ready_ = raw_->ready();
  raft::Ready& rd = *pending_ready_;
  if (rd.soft_state) on_soft_state(*rd.soft_state);
  for (const auto& m : rd.messages) send(m, out);
  if (!rd.snapshot.empty()) {
    KVCORE_RETURN_IF_ERROR(apply_snapshot(rd.snapshot, batch));
    *sync = true;
  }
  if (!rd.entries.empty()) {
    KVCORE_RETURN_IF_ERROR(storage_->log().append(batch, rd.entries));
    if (soft_.role == raft::StateRole::kLeader) {
      const raft::Term term = raw_->term();
      for (const auto& e : rd.entries) {
        if (e.term == term) append_times_.emplace_back(e.index, round_start);
      }
    }
    for (const auto& e : rd.entries) log_bytes_ += e.byte_size();
  }
  if (rd.hard_state) {
    // A change of the commit index alone is not written: raft does not need
    // it durable, and load() raises the commit index to the applied index.
    // That saves a raft log write in the round that commits (on the path of
    // every write).
    const raft::HardState& hs = *rd.hard_state;
    if (hs.term != persisted_hs_.term || hs.vote != persisted_hs_.vote || !rd.entries.empty() ||
        !rd.snapshot.empty()) {
      storage_->log().set_hard_state(batch, hs);
      persisted_hs_ = hs;
    }
  }
  if (rd.must_sync) *sync = true;
  if (going_to_sleep_ && sleep_heartbeat_sent_) {
    going_to_sleep_ = false;
    sleep_heartbeat_sent_ = false;
    hibernating_ = true;
    ctx_.metrics->region_hibernations.inc();
  }
  return Status::ok();
}

Status Peer::finish_ready(Outbox& out, ApplyBatch& ab) {
  if (!pending_ready_) return Status::ok();
  raft::Ready rd = std::move(*pending_ready_);
  pending_ready_.reset();
  // The round's raft log write is done: appends may have moved the log's
  // first index (a follower's log restarting after a gap).
  if (!rd.entries.empty() || !rd.snapshot.empty()) storage_->invalidate();
  for (const auto& m : rd.persisted_messages) send(m, out);
  if (!rd.committed_entries.empty()) {
    ctx_.metrics->committed_entries.inc(rd.committed_entries.size());
    KVCORE_RETURN_IF_ERROR(apply_entries(rd.committed_entries, ab));
  }
  for (auto& rs : rd.read_states) {
    auto it = read_batches_.find(rs.request_ctx);
    if (it == read_batches_.end()) continue;
    // A quorum confirmed this leadership after the batch started: that
    // renews the lease as a commit would.
    if (it->second.term == raw_->term()) renew_lease(it->second.start);
    for (auto& r : it->second.reads) waiting_reads_.push_back({rs.index, std::move(r)});
    read_batches_.erase(it);
  }
  raw_->advance(rd);
  for (auto [peer, failed] : snapshot_reports_) raw_->report_snapshot(peer, failed);
  snapshot_reports_.clear();
  return Status::ok();
}

void Peer::on_soft_state(const raft::SoftState& ss) {
  const bool was_leader = soft_.role == raft::StateRole::kLeader;
  soft_ = ss;
  if (ss.role != raft::StateRole::kLeader) {
    lease_until_ = Instant::min();
    append_times_.clear();
    if (was_leader) fail_reads(not_leader());
  }
}

void Peer::send(const raft::Message& m, Outbox& out) {
  const PeerMeta* to = peer_meta(m.to);
  const PeerMeta* from = peer_meta(self_peer_);
  if (to == nullptr || from == nullptr) {
    KVCORE_LOG_DEBUG("region {}: no store for peer {}; message dropped", region_.id, m.to);
    return;
  }
  if (m.type == raft::MessageType::kSnapshot) {
    send_snapshot(m, out);
    return;
  }
  ctx_.metrics->messages_sent.inc();
  const bool sleep_word = going_to_sleep_ && m.type == raft::MessageType::kHeartbeat;
  if (sleep_word) sleep_heartbeat_sent_ = true;
  out.messages[to->store_id].push_back(
      RaftEnvelope{region_.id, *from, *to, region_.epoch, m, sleep_word});
}

void Peer::send_snapshot(const raft::Message& m, Outbox& out) {
  const PeerMeta* to = peer_meta(m.to);
  const PeerMeta* from = peer_meta(self_peer_);
  const std::string& data = m.snapshot->data;
  raft::Message header = m;
  header.snapshot =
      std::make_shared<const raft::Snapshot>(raft::Snapshot{{}, m.snapshot->metadata});
  const std::size_t chunk = std::max<std::size_t>(1, ctx_.options->snapshot_chunk_bytes);
  std::size_t off = 0;
  do {
    const std::size_t n = std::min(chunk, data.size() - off);
    SnapshotChunk c{region_.id, *from, *to,         region_.epoch,
                    header,     off,   data.size(), data.substr(off, n)};
    out.chunks.emplace_back(to->store_id, std::move(c));
    ctx_.metrics->snapshot_chunks_sent.inc();
    off += n;
  } while (off < data.size());
  ctx_.metrics->snapshots_sent.inc();
  // The chunks are on their way; if any is lost the follower never installs
  // the snapshot, answers the next probe from its old log, and gets another.
  snapshot_reports_.emplace_back(m.to, false);
}

void Peer::renew_lease(Instant base) {
  // A merging source's lease stays suspended: once PrepareMerge commits,
  // the target may take writes for this range before this peer knows.
  if (ctx_.options->max_lease.count() <= 0 || raw_->lead_transferee() != raft::kNoNode ||
      merging()) {
    return;
  }
  lease_until_ = std::max(lease_until_, base + ctx_.options->max_lease);
}

void Peer::publish_lease() {
  const raft::NodeId lead = raw_->leader_id();
  const PeerMeta* lp = peer_meta(lead);
  const bool leader = raw_->role() == raft::StateRole::kLeader;
  std::lock_guard lock(lease_->mu);
  if (!(lease_->region == region_)) lease_->region = region_;
  lease_->peer_id = self_peer_;
  lease_->leader = leader;
  lease_->leader_store = lp ? lp->store_id : 0;
  lease_->leader_peer = lead;
  lease_->term = raw_->term();
  lease_->applied_current_term = apply_state_.applied_term == raw_->term();
  lease_->merging = merging();
  lease_->lease_until = (leader && raw_->lead_transferee() == raft::kNoNode && !lease_->merging)
                            ? lease_until_
                            : Instant::min();
}

void Peer::serve_waiting_reads() {
  if (waiting_reads_.empty() || waiting_reads_.front().index > apply_state_.applied_index) return;
  if (apply_state_.merge_state) {
    // The target may already serve this range: nothing here is current.
    while (!waiting_reads_.empty() && waiting_reads_.front().index <= apply_state_.applied_index) {
      waiting_reads_.front().req.fail(region_merging(region_.id));
      waiting_reads_.pop_front();
    }
    return;
  }
  auto snap = ctx_.kv->snapshot();
  const Instant now = ctx_.clock->now();
  while (!waiting_reads_.empty() && waiting_reads_.front().index <= apply_state_.applied_index) {
    ReadRequest r = std::move(waiting_reads_.front().req);
    waiting_reads_.pop_front();
    ctx_.metrics->read_index_reads.inc();
    ctx_.metrics->read_seconds.observe(std::chrono::duration<double>(now - r.start).count());
    execute_read(*snap, region_, r);
  }
}

void Peer::maybe_compact_log() {
  // A merging source keeps its log: CommitMerge carries its tail.
  if (!is_leader() || merging()) return;
  auto first = storage_->first_index();
  if (!first.is_ok()) return;
  const raft::Index applied = apply_state_.applied_index;
  if (applied < *first) return;
  const std::uint64_t count = applied - *first + 1;
  raft::Index min_match = applied;
  for (const auto& [id, pr] : raw_->status().progress) min_match = std::min(min_match, pr.match);
  const StoreOptions& o = *ctx_.options;
  raft::Index target = min_match;
  if (count > o.raft_log_gc_count_limit || log_bytes_ > o.raft_log_gc_size_limit) {
    target = applied;  // a follower this far behind catches up by snapshot
  } else {
    const std::uint64_t threshold = std::clamp<std::uint64_t>(o.raft_log_gc_count_limit / 2, 1, 50);
    if (target < *first + threshold) return;
  }
  if (target <= compact_proposed_ || target < *first) return;
  auto term = storage_->term(target);
  if (!term.is_ok()) return;
  RaftCmd cmd;
  cmd.header = {region_.id, self_peer_, region_.epoch};
  cmd.compact_log = CompactLogCmd{target, *term};
  if (raw_->propose(encode_cmd(cmd)).is_ok()) compact_proposed_ = target;
}

RegionStatus Peer::status() const {
  RegionStatus s;
  s.region_id = region_.id;
  s.start_key = region_.start_key;
  s.end_key = region_.end_key;
  s.conf_ver = region_.epoch.conf_ver;
  s.version = region_.epoch.version;
  s.peer_id = self_peer_;
  for (const auto& p : region_.peers) {
    (p.learner ? s.learner_stores : s.voter_stores).push_back(p.store_id);
  }
  s.joint = apply_state_.conf_state.joint();
  s.merging = apply_state_.merge_state.has_value();
  s.is_leader = is_leader();
  const PeerMeta* lp = peer_meta(raw_->leader_id());
  s.leader_store = lp ? lp->store_id : 0;
  s.term = raw_->term();
  s.commit_index = raw_->committed();
  s.applied_index = apply_state_.applied_index;
  s.first_log_index = storage_->first_index().value_or(0);
  s.last_log_index = raw_->last_index();  // the raft core's view: no log engine lookup
  {
    std::lock_guard lock(lease_->mu);
    s.lease_valid = lease_->leader && lease_->lease_until > ctx_.clock->now();
  }
  return s;
}

}  // namespace kvcore::raftstore
