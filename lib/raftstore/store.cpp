// StoreImpl: opening, the raft thread's rounds, frames in and out.
// Requests (the public API) are in store_requests.cpp; bootstrap in
// bootstrap.cpp.
#include "raftstore/store_impl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <utility>

#include "kvcore/engine/registry.hpp"
#include "raftstore/codec.hpp"
#include "raftstore/keys.hpp"
#include "raftstore/lanes.hpp"
#include "raftstore/region_init.hpp"
#include "runtime/real_runtime.hpp"
#include "util/coding.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

Result<StoreOptions> resolve_options(const StoreOptions& in) {
  StoreOptions o = in;
  if (o.cluster_id == 0) return Status::invalid_argument("StoreOptions: cluster_id must be set");
  if (o.store_id == 0) return Status::invalid_argument("StoreOptions: store_id must be set");
  if (o.kv_path.empty() || o.raft_path.empty()) {
    if (o.path.empty()) {
      return Status::invalid_argument("StoreOptions: path (or kv_path and raft_path) must be set");
    }
    if (o.kv_path.empty()) o.kv_path = o.path + "/kv";
    if (o.raft_path.empty()) o.raft_path = o.path + "/raft";
  }
  if (o.tick_interval.count() <= 0) {
    return Status::invalid_argument("StoreOptions: tick_interval must be positive");
  }
  if (o.heartbeat_ticks <= 0 || o.election_ticks <= o.heartbeat_ticks) {
    return Status::invalid_argument("StoreOptions: need 0 < heartbeat_ticks < election_ticks");
  }
  if (o.max_lease.count() < 0 || o.max_lease >= o.tick_interval * o.election_ticks) {
    return Status::invalid_argument(
        "StoreOptions: max_lease must be below election_ticks * tick_interval");
  }
  if (o.raft_log_gc_ticks <= 0 || o.raft_log_gc_count_limit == 0) {
    return Status::invalid_argument("StoreOptions: raft log gc settings must be positive");
  }
  if (o.raft_pollers == 0 || o.apply_pollers == 0 || o.max_messages_per_region_round == 0 ||
      o.max_regions_per_round == 0) {
    return Status::invalid_argument(
        "StoreOptions: pollers and per-round limits must be positive");
  }
  if (o.apply_round_budget.count() < 0 || o.hibernate_idle_ticks <= 0) {
    return Status::invalid_argument(
        "StoreOptions: apply_round_budget and hibernate_idle_ticks must not be negative");
  }
  if (o.snapshot_chunk_bytes == 0 || o.snapshot_chunk_bytes + 4096 > o.max_frame_bytes) {
    return Status::invalid_argument(
        "StoreOptions: snapshot_chunk_bytes must be positive and well below max_frame_bytes");
  }
  KVCORE_RETURN_IF_ERROR(check_split_options(o));
  return o;
}

Status make_store_dir(const StoreOptions& o) {
  if (o.path.empty() || o.path.rfind("mem:", 0) == 0) return Status::ok();
  std::error_code ec;
  std::filesystem::create_directories(o.path, ec);
  if (ec) return Status::io_error(fmt::format("create {}: {}", o.path, ec.message()));
  return Status::ok();
}

StoreImpl::StoreImpl(const StoreOptions& options, Transport& transport)
    : options_(options), transport_(transport) {}

Result<std::unique_ptr<StoreImpl>> StoreImpl::open(const StoreOptions& options,
                                                   Transport& transport) {
  KVCORE_ASSIGN_OR_RETURN(StoreOptions o, resolve_options(options));
  std::unique_ptr<StoreImpl> s(new StoreImpl(o, transport));
  KVCORE_RETURN_IF_ERROR(s->start());
  return s;
}

Status StoreImpl::start() {
  if (options_.runtime == nullptr) {
    own_runtime_ = std::make_unique<runtime::RealRuntime>();
    rt_ = own_runtime_.get();
  } else {
    rt_ = options_.runtime;
  }
  KVCORE_RETURN_IF_ERROR(make_store_dir(options_));
  raftlog::RaftLogOptions ro;
  KVCORE_ASSIGN_OR_RETURN(raft_engine_, raftlog::RaftLogEngine::open(options_.raft_path, ro));
  KVCORE_ASSIGN_OR_RETURN(kv_,
                          open_engine(options_.engine, options_.kv_path, options_.engine_options));

  const StoreIdent want{options_.cluster_id, options_.store_id};
  KVCORE_ASSIGN_OR_RETURN(auto ident_raw, raft_engine_->get_state(kStoreRegion, kStoreIdentKey));
  if (ident_raw) {
    KVCORE_ASSIGN_OR_RETURN(StoreIdent have, decode_store_ident(*ident_raw));
    if (!(have == want)) {
      return Status::invalid_argument(fmt::format(
          "{} belongs to store {} of cluster {}, not store {} of cluster {}", options_.raft_path,
          have.store_id, have.cluster_id, want.store_id, want.cluster_id));
    }
  } else {
    raftlog::LogBatch b;
    b.put_state(kStoreRegion, kStoreIdentKey, encode_store_ident(want));
    KVCORE_RETURN_IF_ERROR(raft_engine_->write(b, true));
  }

  PeerContext& ctx = peer_ctx_;
  ctx.store_id = options_.store_id;
  ctx.raft_engine = raft_engine_.get();
  ctx.kv = kv_.get();
  ctx.clock = &rt_->clock();
  ctx.metrics = &metrics_;
  ctx.options = &options_;
  ctx.range_free = [this](const RegionMeta& r) { return snapshot_range_ok(r); };
  ctx.catch_up_merge_source = [this](const CommitMergeCmd& m, ApplyBatch& ab) {
    return catch_up_merge_source(m, ab);
  };
  ctx.schedule = [this](Peer& p) { schedule_peer(p); };
  peer_seeds_ = rt_->random().fork();

  KVCORE_ASSIGN_OR_RETURN(auto limit, raft_engine_->get_state(kStoreRegion, kIdLimitKey));
  if (limit && limit->size() == 8) {
    id_limit_ = util::decode_fixed64(limit->data());
    next_id_ = id_limit_;  // ids below the limit may have been handed out
  }

  // The regions: those the raft log engine knows, and those whose apply
  // state reached the kv engine before a crash kept their raft state out.
  std::set<std::uint64_t> regions;
  for (std::uint64_t r : raft_engine_->regions()) {
    if (r != kStoreRegion) regions.insert(r);
  }
  {
    IterOptions io;
    io.lower_bound = std::string(kApplyStatePrefix);
    io.upper_bound = std::string(kApplyStatePrefix.substr(0, kApplyStatePrefix.size() - 1)) + "0";
    auto it = kv_->new_iterator(CF::kRaft, io);
    for (it->seek_to_first(); it->valid(); it->next()) {
      if (auto id = region_of_apply_state_key(it->key())) regions.insert(*id);
    }
    KVCORE_RETURN_IF_ERROR(it->status());
  }
  for (std::uint64_t region : regions) {
    KVCORE_ASSIGN_OR_RETURN(auto raw_state, raft_engine_->get_state(region, kRegionStateKey));
    if (raw_state) {
      KVCORE_ASSIGN_OR_RETURN(RegionLocalState rs, decode_region_state(*raw_state));
      if (rs.state == PeerState::kTombstone) {
        tombstones_[region] = std::move(rs.region);
        continue;
      }
    }
    auto peer = Peer::load(ctx, region, peer_seeds_.next_u64());
    if (!peer.is_ok()) {
      if (peer.status().code() == Code::kNotFound) {
        KVCORE_LOG_INFO("store {}: region {} skipped: {}", options_.store_id, region,
                        peer.status().to_string());
        KVCORE_RETURN_IF_ERROR(clean_removed_region(region));
        continue;
      }
      return peer.status();
    }
    add_peer(std::move(peer).value());
  }
  {
    std::lock_guard lock(round_mu_);
    KVCORE_RETURN_IF_ERROR(drop_covered_peers());
  }
  refresh_known_stores();
  refresh_status();
  opened_at_ = rt_->clock().now();
  // Pools only on real threads: a simulation steps everything on its one
  // thread, in a deterministic order.
  if (dynamic_cast<runtime::RealRuntime*>(rt_) != nullptr) {
    if (options_.raft_pollers > 1) {
      raft_pool_ = rt_->make_executor(fmt::format("raftpoll-{}", options_.store_id),
                                      options_.raft_pollers - 1);
    }
    if (options_.apply_pollers > 1) {
      apply_pool_ = rt_->make_executor(fmt::format("apply-{}", options_.store_id),
                                       options_.apply_pollers - 1);
    }
  }
  raft_exec_ = rt_->make_executor(fmt::format("raft-{}", options_.store_id), 1);
  split_exec_ = rt_->make_executor(fmt::format("split-check-{}", options_.store_id), 1);
  {
    std::lock_guard lock(anchor_->mu);
    anchor_->store = this;
  }
  schedule_tick();
  KVCORE_LOG_INFO("store {} of cluster {} open: {} regions, engine {}", options_.store_id,
                  options_.cluster_id, peers_.size(), to_string(options_.engine));
  return Status::ok();
}

StoreImpl::~StoreImpl() {
  if (split_exec_) split_exec_->shutdown();
  {
    std::lock_guard lock(anchor_->mu);
    anchor_->store = nullptr;
    if (rt_ != nullptr && tick_timer_.valid()) (void)rt_->timers().cancel(tick_timer_);
  }
  std::vector<Input> left;
  {
    std::lock_guard lock(inbox_mu_);
    stopping_ = true;
    left.swap(inbox_);
  }
  // Queued rounds still run (and find the inbox empty); then no task of the
  // store runs again.
  if (raft_exec_) raft_exec_->shutdown();
  const Status stopping = Status::unavailable("the store is stopping");
  for (auto& in : left) fail_input(in, stopping);
  std::lock_guard lock(round_mu_);
  for (auto& [id, peer] : peers_) peer->fail_all(stopping);
  for (auto& [id, w] : merge_waiters_) w.done(stopping);
  merge_waiters_.clear();
  raft_exec_.reset();
  peers_.clear();
}

void StoreImpl::fail_input(Input& in, const Status& s) {
  if (auto* w = std::get_if<WriteInput>(&in)) {
    if (w->req.done) w->req.done(s);
  } else if (auto* r = std::get_if<ReadInput>(&in)) {
    r->req.fail(s);
  } else if (auto* sp = std::get_if<SplitInput>(&in)) {
    if (sp->done) sp->done(s);
  } else if (auto* m = std::get_if<MergeInput>(&in)) {
    if (m->done) m->done(s);
  } else if (auto* cp = std::get_if<ChangePeersInput>(&in)) {
    if (cp->done) cp->done(s);
  }
}

void StoreImpl::enqueue(Input in, bool run_here) {
  bool post = false;
  {
    std::lock_guard lock(inbox_mu_);
    if (stopping_) {
      fail_input(in, Status::unavailable("the store is stopping"));
      return;
    }
    inbox_.push_back(std::move(in));
    if (!round_scheduled_) {
      round_scheduled_ = true;
      post = true;
    }
  }
  if (!post) return;  // the round already due takes it
  if (run_here && round_mu_.try_lock()) {
    std::lock_guard lock(round_mu_, std::adopt_lock);
    run_round_locked();
    return;
  }
  raft_exec_->post([this] { run_round(); });
}

void StoreImpl::schedule_tick() {
  // REQUIRES: anchor_->mu held or the store not yet shared.
  std::weak_ptr<Anchor> weak = anchor_;
  tick_timer_ = rt_->timers().schedule_after(options_.tick_interval, [weak] {
    auto anchor = weak.lock();
    if (!anchor) return;
    std::lock_guard lock(anchor->mu);
    if (anchor->store == nullptr) return;
    anchor->store->enqueue(TickInput{});
    anchor->store->schedule_tick();
  });
}

void StoreImpl::handle(Input& in) {
  if (std::holds_alternative<TickInput>(in)) {
    on_tick();
    maybe_split_check();
    expire_merges(rt_->clock().now());
    check_merges();
    membership_tick_all();
    return;
  }
  if (auto* f = std::get_if<FrameInput>(&in)) {
    for (auto& env : f->frame.messages) {
      if (screen_envelope(env)) continue;
      // A tombstone guards against recreating a destroyed peer; once the
      // store is a member again (a new peer id), the live peer's checks
      // apply instead (a new member's messages carry an empty epoch).
      if (peers_.count(env.region_id) == 0 && is_tombstoned(env.region_id, env.epoch)) {
        metrics_.messages_stale_peer.inc();
        continue;
      }
      auto it = peers_.find(env.region_id);
      if (it == peers_.end() && (env.message.type == raft::MessageType::kAppend ||
                                 env.message.type == raft::MessageType::kHeartbeat)) {
        it = create_peer(env.region_id, env.to_peer, env.from_peer);
      }
      if (it == peers_.end()) {
        metrics_.messages_unknown_region.inc();
        continue;
      }
      Peer& peer = *it->second;
      const PeerMeta* self = peer.region().peer_on_store(options_.store_id);
      if (self == nullptr || self->id != env.to_peer.id) {
        metrics_.messages_stale_peer.inc();
        continue;
      }
      peer.enqueue_message(std::move(env));
    }
    for (auto& chunk : f->frame.chunks) {
      if (peers_.count(chunk.region_id) == 0 && is_tombstoned(chunk.region_id, chunk.epoch)) {
        metrics_.messages_stale_peer.inc();
        continue;
      }
      auto it = peers_.find(chunk.region_id);
      if (it == peers_.end()) it = create_peer(chunk.region_id, chunk.to_peer, chunk.from_peer);
      if (it == peers_.end()) {
        metrics_.messages_unknown_region.inc();
        continue;
      }
      it->second->add_chunk(std::move(chunk));
    }
    return;
  }
  if (auto* w = std::get_if<WriteInput>(&in)) {
    auto it = peers_.find(w->req.region_id);
    if (it == peers_.end()) {
      w->req.done(region_not_found(w->req.region_id));
      return;
    }
    if (w->req.expect_epoch && !epoch_matches(it->second->region(), *w->req.expect_epoch)) {
      w->req.done(epoch_not_match(it->second->region(), *w->req.expect_epoch));
      return;
    }
    it->second->enqueue_write(std::move(w->req));
    return;
  }
  if (auto* r = std::get_if<ReadInput>(&in)) {
    auto it = peers_.find(r->req.region_id);
    if (it == peers_.end()) {
      r->req.fail(region_not_found(r->req.region_id));
      return;
    }
    it->second->enqueue_read(std::move(r->req));
    return;
  }
  if (auto* u = std::get_if<UnreachableInput>(&in)) {
    for (auto& [id, peer] : peers_) peer->report_unreachable(u->store);
    return;
  }
  if (auto* sp = std::get_if<SplitInput>(&in)) {
    auto it = peers_.find(sp->region);
    if (it == peers_.end()) {
      sp->done(region_not_found(sp->region));
      return;
    }
    Peer& parent = *it->second;
    BatchSplitCmd cmd;
    cmd.split_keys = std::move(sp->keys);
    for (std::size_t i = 0; i < cmd.split_keys.size(); ++i) {
      SplitRegion r;
      auto id = alloc_id();
      for (std::size_t p = 0; id.is_ok() && p < parent.region().peers.size(); ++p) {
        auto pid = alloc_id();
        if (!pid.is_ok()) {
          id = pid.status();
          break;
        }
        r.peer_ids.push_back(*pid);
      }
      if (!id.is_ok()) {
        sp->done(id.status());
        return;
      }
      r.region_id = *id;
      cmd.new_regions.push_back(std::move(r));
    }
    parent.propose_split(std::move(cmd), sp->deadline, std::move(sp->done));
    return;
  }
  if (auto* sc = std::get_if<SplitCheckDone>(&in)) {
    on_split_check_done(*sc);
    return;
  }
  if (auto* m = std::get_if<MergeInput>(&in)) {
    handle_merge(*m);
    return;
  }
  if (auto* t = std::get_if<TransferInput>(&in)) {
    auto it = peers_.find(t->region);
    Status s = it == peers_.end() ? region_not_found(t->region) : Status::ok();
    if (s.is_ok() && !(it->second->region().epoch == t->epoch)) {
      s = Status(Code::kUnavailable,
                 fmt::format("region {} changed since the transfer was asked", t->region),
                 SubCode::kEpochNotMatch);
    }
    if (s.is_ok()) s = it->second->transfer_leader(t->to_store);
    if (!s.is_ok()) {
      metrics_.transfer_leader_refused.inc();
      KVCORE_LOG_INFO("store {}: transfer leader of region {} to store {}: {}", options_.store_id,
                      t->region, t->to_store, s.to_string());
    }
    return;
  }
  if (auto* cp = std::get_if<ChangePeersInput>(&in)) handle_change_peers(*cp);
}

void StoreImpl::run_round() {
  std::lock_guard lock(round_mu_);
  run_round_locked();
}

void StoreImpl::run_round_locked() {
  RoundScope scope(*this);
  std::vector<Input> inputs;
  {
    std::lock_guard lock(inbox_mu_);
    round_scheduled_ = false;
    if (stopping_) return;
    inputs.swap(inbox_);
  }
  metrics_.rounds.inc();
  if (failed_) {
    const Status s = Status::io_error("the store stopped after a failed write");
    for (auto& in : inputs) fail_input(in, s);
    return;
  }
  const Instant start = rt_->clock().now();
  for (auto& in : inputs) handle(in);

  // The regions of this round: the first in line, at most
  // max_regions_per_round; the rest keep their place for the next round.
  std::vector<Peer*> work;
  {
    const std::size_t take = std::min(run_queue_.size(), options_.max_regions_per_round);
    work.assign(run_queue_.begin(), run_queue_.begin() + static_cast<std::ptrdiff_t>(take));
    run_queue_.erase(run_queue_.begin(), run_queue_.begin() + static_cast<std::ptrdiff_t>(take));
    for (Peer* p : work) p->set_scheduled(false);
  }

  // Persist and apply until quiet, a few times at most, so new inputs are
  // not kept waiting behind a long chain of readies.
  std::uint64_t fsyncs = 0;
  std::vector<Peer*> touched;  // whose status may have changed
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<Peer*> readied;
    if (!run_pass(work, pass == 0, start, &readied, &fsyncs)) return;
    if (pass == 0) touched = work;
    if (readied.empty()) break;
    work = std::move(readied);
  }
  metrics_.fsyncs_per_round.observe(static_cast<double>(fsyncs));
  // Peers with work left (mail beyond the per-round bound, a new Ready)
  // go back in line.
  for (Peer* p : work) {
    if (p->has_mail() || p->has_ready()) schedule_peer(*p);
  }
  for (Peer* p : touched) {
    if (p->has_mail() || p->has_ready()) schedule_peer(*p);
  }
  // Only a Ready changes what regions() shows (leases are read when asked).
  std::vector<Peer*> changed;
  changed.swap(status_dirty_);
  std::sort(changed.begin(), changed.end());
  changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
  std::vector<std::uint64_t> worked_ids;
  worked_ids.reserve(round_peers_.size());
  for (const Peer* p : round_peers_) worked_ids.push_back(p->region_id());
  const bool regions_changed = update_regions();
  const bool members_changed = update_members(worked_ids);
  if (regions_changed || members_changed) {
    refresh_status();
  } else {
    refresh_status(changed);
  }
  if (!run_queue_.empty() || !unfinished_.empty()) schedule_round();
}

bool StoreImpl::run_pass(std::vector<Peer*>& work, bool first, Instant start,
                         std::vector<Peer*>* readied, std::uint64_t* fsyncs) {
  struct Lane {
    raftlog::LogBatch batch;
    Outbox out;
    bool sync = false;
    std::vector<Peer*> readied;
    Status error;
  };
  const std::size_t n = lanes_for(raft_pool_.get(), work.size(), 16);
  if (n > 1) metrics_.parallel_passes.inc();
  std::vector<Lane> lanes(n);
  const std::size_t max_mail = options_.max_messages_per_region_round;
  auto step = [&](std::size_t lane_index, Peer* p) {
    const LaneMark mark(*this);
    Lane& lane = lanes[lane_index];
    if (!lane.error.is_ok()) return;
    if (first) (void)p->drain_mailbox(max_mail);
    if (!p->has_ready()) return;
    Status s = p->begin_ready(start, lane.batch, lane.out, &lane.sync);
    if (!s.is_ok()) {
      lane.error = s.with_context(fmt::format("region {}", p->region_id()));
      return;
    }
    lane.readied.push_back(p);
  };
  run_lanes(raft_pool_.get(), n, work, step);
  round_peers_.insert(round_peers_.end(), work.begin(), work.end());

  raftlog::LogBatch batch;
  Outbox out;
  bool sync = false;
  for (Lane& lane : lanes) {
    if (!lane.error.is_ok()) {
      stop_on_error(lane.error);
      return false;
    }
    batch.append_batch(std::move(lane.batch));
    for (auto& [to, msgs] : lane.out.messages) {
      auto& dst = out.messages[to];
      dst.insert(dst.end(), std::make_move_iterator(msgs.begin()),
                 std::make_move_iterator(msgs.end()));
    }
    for (auto& c : lane.out.chunks) out.chunks.push_back(std::move(c));
    sync = sync || lane.sync;
    readied->insert(readied->end(), lane.readied.begin(), lane.readied.end());
  }
  // Those the apply budget left over last time are finished first.
  std::vector<Peer*> finish;
  finish.swap(unfinished_);
  round_peers_.insert(round_peers_.end(), finish.begin(), finish.end());
  finish.insert(finish.end(), readied->begin(), readied->end());
  status_dirty_.insert(status_dirty_.end(), finish.begin(), finish.end());
  if (finish.empty()) return true;
  if (batch.empty()) {
    // Nothing to persist (typically the pass that commits): apply and
    // answer the proposers first, then send the commit index along.
    if (!finish_all(finish, out)) return false;
    send_outbox(out);
    return true;
  }
  // The leader's appends leave before its own fsync, so followers persist
  // in parallel with it.
  send_outbox(out);
  const std::uint64_t before = raft_engine_->fsyncs();
  Status s = raft_engine_->write(batch, sync && options_.sync_log);
  if (!s.is_ok()) {
    stop_on_error(s.with_context("raft log write"));
    return false;
  }
  *fsyncs += raft_engine_->fsyncs() - before;
  metrics_.raftlog_writes.inc();
  metrics_.regions_per_raftlog_write.observe(static_cast<double>(readied->size()));
  if (!finish_all(finish, out)) return false;
  send_outbox(out);
  return true;
}

void StoreImpl::schedule_peer(Peer& peer) {
  if (peer.scheduled()) return;
  peer.set_scheduled(true);
  run_queue_.push_back(&peer);
}

void StoreImpl::erase_peer(std::map<std::uint64_t, std::unique_ptr<Peer>>::iterator it) {
  Peer* p = it->second.get();
  std::erase(run_queue_, p);
  std::erase(unfinished_, p);
  std::erase(round_peers_, p);
  std::erase(status_dirty_, p);
  peers_.erase(it);
}

void StoreImpl::on_tick() {
  const Instant now = rt_->clock().now();
  for (auto& [id, peer] : peers_) {
    if (peer->hibernating()) continue;
    peer->enqueue_tick();
    peer->expire(now);
  }
  std::vector<std::uint64_t> stores;
  {
    std::shared_lock lock(routes_mu_);
    stores.assign(known_stores_.begin(), known_stores_.end());
  }
  // Followers asleep cannot notice their leader is gone: wake those whose
  // leader's store has been silent for an election timeout.
  const auto silence = options_.tick_interval * options_.election_ticks;
  std::set<std::uint64_t> silent;
  {
    std::lock_guard lock(heard_mu_);
    for (std::uint64_t s : stores) {
      auto it = last_heard_.find(s);
      const Instant heard = it == last_heard_.end() ? opened_at_ : std::max(opened_at_, it->second);
      if (now - heard > silence) silent.insert(s);
    }
  }
  if (!silent.empty()) {
    for (auto& [id, peer] : peers_) {
      if (peer->hibernating() && !peer->is_leader() && silent.count(peer->leader_store()) > 0) {
        peer->wake();
        peer->enqueue_tick();
      }
    }
  }
  // A frame to every store each tick, so sleeping followers there can tell
  // this store is alive.
  for (std::uint64_t s : stores) {
    if (sent_since_tick_.count(s) > 0) continue;
    Frame f;
    send_frame(s, f);
    metrics_.store_heartbeats.inc();
  }
  sent_since_tick_.clear();
}

void StoreImpl::schedule_round() {
  {
    std::lock_guard lock(inbox_mu_);
    if (round_scheduled_ || stopping_) return;
    round_scheduled_ = true;
  }
  raft_exec_->post([this] { run_round(); });
}

void StoreImpl::stop_on_error(const Status& s) {
  KVCORE_LOG_ERROR("store {}: {}; the store stops serving", options_.store_id, s.to_string());
  failed_ = true;
  for (auto& [id, peer] : peers_) peer->fail_all(s);
}

bool StoreImpl::finish_all(std::vector<Peer*>& readied, Outbox& out) {
  // Each lane stages the committed entries of its regions into one kv
  // write batch, writes it once, then completes their proposers and reads.
  struct Lane {
    Outbox out;
    std::vector<Peer*> deferred;
    Status error;
  };
  // A CommitMerge applies its source peer's entries too (merge.cpp): the
  // whole pass stays on one lane, so the two regions share one kv batch.
  const bool merge = std::any_of(readied.begin(), readied.end(),
                                 [](const Peer* p) { return p->commit_merge_pending(); });
  const std::size_t n = merge ? 1 : lanes_for(apply_pool_.get(), readied.size(), 16);
  if (n > 1) metrics_.parallel_passes.inc();
  std::vector<Lane> lanes(n);
  const auto budget = std::chrono::duration_cast<runtime::Duration>(options_.apply_round_budget);
  auto apply = [&](std::size_t lane_index, std::span<Peer*> share) {
    const LaneMark mark(*this);
    Lane& lane = lanes[lane_index];
    ApplyBatch ab{kv_->new_write_batch(), false};
    const Instant began = rt_->clock().now();
    std::size_t staged = 0;
    Status ws;
    for (; staged < share.size(); ++staged) {
      // At least one region per lane, then as many as the budget allows;
      // the rest are finished first in the next pass.
      if (staged > 0 && rt_->clock().now() - began >= budget) break;
      Peer* p = share[staged];
      ws = p->finish_ready(lane.out, ab);
      if (!ws.is_ok()) {
        ws = ws.with_context(fmt::format("region {}", p->region_id()));
        ++staged;  // its post_apply completes what it staged
        break;
      }
    }
    if (ws.is_ok()) {
      lane.deferred.assign(share.begin() + static_cast<std::ptrdiff_t>(staged), share.end());
    }
    if (ws.is_ok() && !ab.batch->empty()) {
      WriteOptions wo;
      wo.sync = ab.sync;
      ws = kv_->write(*ab.batch, wo).with_context("apply write");
    }
    lane.error = ws;
    for (std::size_t i = 0; i < staged; ++i) {
      Status s = share[i]->post_apply(ws);
      if (lane.error.is_ok() && !s.is_ok()) {
        lane.error = s.with_context(fmt::format("region {}", share[i]->region_id()));
      }
    }
  };
  run_shares(apply_pool_.get(), n, readied, apply);

  Status first_error;
  for (Lane& lane : lanes) {
    if (first_error.is_ok() && !lane.error.is_ok()) first_error = lane.error;
    for (auto& [to, msgs] : lane.out.messages) {
      auto& dst = out.messages[to];
      dst.insert(dst.end(), std::make_move_iterator(msgs.begin()),
                 std::make_move_iterator(msgs.end()));
    }
    for (auto& c : lane.out.chunks) out.chunks.push_back(std::move(c));
    if (!lane.deferred.empty()) metrics_.rounds_deferred_apply.inc(lane.deferred.size());
    unfinished_.insert(unfinished_.end(), lane.deferred.begin(), lane.deferred.end());
  }
  if (!first_error.is_ok()) {
    stop_on_error(first_error);
    return false;
  }
  return true;
}

void StoreImpl::send_frame(std::uint64_t to, Frame& frame) {
  frame.cluster_id = options_.cluster_id;
  frame.from_store = options_.store_id;
  frame.to_store = to;
  std::string bytes = encode_frame(frame);
  sent_since_tick_.insert(to);
  metrics_.frames_sent.inc();
  metrics_.frame_bytes_sent.observe(static_cast<double>(bytes.size()));
  transport_.send(to, std::move(bytes));
}

void StoreImpl::send_outbox(Outbox& out) {
  const std::size_t budget = options_.max_frame_bytes - 1024;
  for (auto& [to, msgs] : out.messages) {
    Frame frame;
    std::size_t bytes = 0;
    for (auto& m : msgs) {
      const std::size_t n = encoded_size(m) + 8;
      if (n > budget) {
        KVCORE_LOG_WARN("store {}: a raft message of {} bytes exceeds max_frame_bytes; dropped",
                        options_.store_id, n);
        continue;
      }
      if (bytes + n > budget && !frame.messages.empty()) {
        send_frame(to, frame);
        frame = Frame{};
        bytes = 0;
      }
      bytes += n;
      frame.messages.push_back(std::move(m));
    }
    if (!frame.messages.empty()) send_frame(to, frame);
  }
  out.messages.clear();
  for (auto& [to, chunk] : out.chunks) {
    Frame frame;
    frame.chunks.push_back(std::move(chunk));
    send_frame(to, frame);
  }
  out.chunks.clear();
}

Status StoreImpl::deliver(std::string_view bytes) {
  FrameCheck check{options_.cluster_id, options_.store_id, options_.max_frame_bytes};
  FrameReject reject = FrameReject::kNone;
  auto frame = decode_frame(bytes, check, &reject);
  if (!frame.is_ok()) {
    metrics_.bad_frames(reject == FrameReject::kNone ? FrameReject::kBadMessage : reject).inc();
    return frame.status();
  }
  {
    // A store that hosts no peer of a region here may only introduce a
    // region (a leader's first messages to a new member) or ask whether its
    // peer is stale.
    std::shared_lock lock(routes_mu_);
    if (known_stores_.count(frame->from_store) == 0 && !unknown_store_frame_ok(*frame)) {
      metrics_.bad_frames_unknown_store.inc();
      return Status::invalid_argument(
          fmt::format("frame from store {}, which hosts no peer of a region here, holds "
                      "messages only a member may send",
                      frame->from_store));
    }
  }
  metrics_.frames_received.inc();
  metrics_.frame_bytes_received.inc(bytes.size());
  {
    std::lock_guard lock(heard_mu_);
    last_heard_[frame->from_store] = rt_->clock().now();
  }
  // A store heartbeat says only that its sender is alive.
  if (frame->messages.empty() && frame->chunks.empty()) return Status::ok();
  enqueue(FrameInput{std::move(frame).value()});
  return Status::ok();
}

void StoreImpl::report_unreachable(std::uint64_t store_id) { enqueue(UnreachableInput{store_id}); }

Status StoreImpl::transfer_leader(std::uint64_t region_id, std::uint64_t to_store) {
  std::shared_ptr<LeaseState> lease;
  {
    std::shared_lock lock(routes_mu_);
    auto it = by_region_.find(region_id);
    if (it == by_region_.end()) return region_not_found(region_id);
    lease = it->second;
  }
  RegionEpoch epoch;
  {
    std::lock_guard lock(lease->mu);
    const PeerMeta* target = lease->region.peer_on_store(to_store);
    if (target == nullptr || target->learner) {
      metrics_.transfer_leader_refused.inc();
      return Status::invalid_argument(
          fmt::format("transfer leader: region {} has no voter on store {}{}", region_id, to_store,
                      target != nullptr ? " (its peer there is a learner)" : ""));
    }
    if (!lease->leader) return refuse_not_leader(*lease);
    if (to_store == options_.store_id) return Status::ok();
    epoch = lease->region.epoch;
  }
  enqueue(TransferInput{region_id, to_store, epoch});
  return Status::ok();
}

std::map<std::uint64_t, std::unique_ptr<Peer>>::iterator StoreImpl::create_peer(
    std::uint64_t region, const PeerMeta& self, const PeerMeta& from) {
  if (self.store_id != options_.store_id || self.id == 0 || from.id == 0) return peers_.end();
  auto peer = Peer::create_uninitialized(peer_ctx_, region, self, from, peer_seeds_.next_u64());
  if (!peer.is_ok()) {
    KVCORE_LOG_WARN("store {}: no peer for region {}: {}", options_.store_id, region,
                    peer.status().to_string());
    return peers_.end();
  }
  metrics_.peers_created.inc();
  add_peer(std::move(peer).value());
  return peers_.find(region);
}

bool StoreImpl::range_free(const RegionMeta& r) const {
  for (const auto& [id, peer] : peers_) {
    if (id == r.id || !peer->initialized()) continue;
    const RegionMeta& o = peer->region();
    const bool before = !r.end_key.empty() && r.end_key <= o.start_key;
    const bool after = !o.end_key.empty() && o.end_key <= r.start_key;
    if (!before && !after) return false;
  }
  return true;
}

void StoreImpl::reroute(Peer& peer) {
  std::unique_lock lock(routes_mu_);
  for (auto it = by_start_key_.begin(); it != by_start_key_.end();) {
    it = it->second == peer.lease() ? by_start_key_.erase(it) : std::next(it);
  }
  if (peer.initialized()) by_start_key_[peer.region().start_key] = peer.lease();
}

void StoreImpl::add_peer(std::unique_ptr<Peer> peer) {
  {
    std::unique_lock lock(routes_mu_);
    if (peer->initialized()) by_start_key_[peer->region().start_key] = peer->lease();
    by_region_[peer->region_id()] = peer->lease();
    for (const auto& p : peer->region().peers) {
      if (p.store_id != options_.store_id) known_stores_.insert(p.store_id);
    }
  }
  const std::uint64_t id = peer->region_id();
  peers_[id] = std::move(peer);
}

bool StoreImpl::update_regions() {
  // Only the peers this round worked on can have results.
  std::vector<Peer*> worked;
  worked.swap(round_peers_);
  std::sort(worked.begin(), worked.end());
  worked.erase(std::unique(worked.begin(), worked.end()), worked.end());
  std::vector<std::pair<RegionMeta, bool>> created;
  for (Peer* peer : worked) {
    for (auto& meta : peer->take_split_results())
      created.emplace_back(std::move(meta), peer->is_leader());
  }
  for (Peer* peer : worked) {
    if (peer->take_range_changed()) reroute(*peer);
  }
  // Destroys peers: `worked` is not used after it.
  const bool merged = finish_merges(worked);
  for (auto& [meta, parent_leads] : created) {
    if (auto it = peers_.find(meta.id); it != peers_.end()) {
      if (it->second->initialized()) continue;  // a snapshot got there first
      // Made by a leader's message before the split was applied here: the
      // split's peer takes its place (keeping its term and vote).
      it->second->fail_all(Status::unavailable("peer replaced by the split's"));
      erase_peer(it);
    }
    auto peer = Peer::load(peer_ctx_, meta.id, peer_seeds_.next_u64());
    if (!peer.is_ok()) {
      KVCORE_LOG_ERROR("store {}: region {} from a split does not open: {}", options_.store_id,
                       meta.id, peer.status().to_string());
      continue;
    }
    Peer* p = peer->get();
    add_peer(std::move(peer).value());
    // The parent's leader is the best placed to lead the new region: it
    // campaigns at the next tick, when the other replicas have applied the
    // split too, instead of after an election timeout; they vote for it at
    // once (they cannot have heard from a leader of the region).
    if (parent_leads) {
      p->campaign_at_next_tick();
    } else {
      p->forget_leader_contact();
    }
  }
  if (!created.empty()) schedule_round();
  return !created.empty() || merged;
}

Result<std::uint64_t> StoreImpl::alloc_id() {
  if (options_.store_id >= (std::uint64_t{1} << 16)) {
    return Status::not_supported("allocating ids needs a store id below 65536");
  }
  if (next_id_ >= id_limit_) {
    const std::uint64_t limit = std::max(next_id_, id_limit_) + 1024;
    std::string v;
    util::put_fixed64(v, limit);
    raftlog::LogBatch b;
    b.put_state(kStoreRegion, kIdLimitKey, v);
    KVCORE_RETURN_IF_ERROR(raft_engine_->write(b, true));
    id_limit_ = limit;
  }
  // Counter values start at 1, so allocated ids are >= 65536 and never meet
  // the first region's ids (the store ids).
  return ((++next_id_) << 16) | options_.store_id;
}

void StoreImpl::refresh_status() {
  std::map<std::uint64_t, RegionStatus> st;
  for (const auto& [id, peer] : peers_) {
    if (peer->initialized()) st.emplace(id, peer->status());
  }
  std::lock_guard lock(status_mu_);
  status_ = std::move(st);
}

void StoreImpl::refresh_status(const std::vector<Peer*>& peers) {
  std::lock_guard lock(status_mu_);
  for (const Peer* p : peers) {
    if (p->initialized()) status_[p->region_id()] = p->status();
  }
}

std::vector<RegionStatus> StoreImpl::regions() const {
  std::vector<RegionStatus> out;
  {
    std::lock_guard lock(status_mu_);
    out.reserve(status_.size());
    for (const auto& [id, st] : status_) out.push_back(st);
  }
  // Leadership as requests see it (the lease state, published when a
  // round finishes the peer's Ready), and leases, which run out without a
  // round, as of now.
  const Instant now = rt_->clock().now();
  std::shared_lock lock(routes_mu_);
  for (auto& st : out) {
    auto it = by_region_.find(st.region_id);
    if (it == by_region_.end()) continue;
    const LeaseState& lease = *it->second;
    std::lock_guard l(lease.mu);
    st.is_leader = st.is_leader && lease.leader && lease.term == st.term;
    if (lease.term == st.term) st.leader_store = lease.leader_store;
    st.lease_valid = lease.leader && lease.lease_until > now;
  }
  return out;
}

std::string StoreImpl::metrics_text() const { return registry_.prometheus_text(); }

std::uint64_t StoreImpl::metric(std::string_view name) const {
  const auto brace = name.find('{');
  if (brace == std::string_view::npos || name.back() != '}') return registry_.total(name);
  return registry_.value(name.substr(0, brace), name.substr(brace + 1, name.size() - brace - 2));
}

}  // namespace kvcore::raftstore

namespace kvcore {

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options, Transport& transport) {
  KVCORE_ASSIGN_OR_RETURN(auto s, raftstore::StoreImpl::open(options, transport));
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace kvcore
