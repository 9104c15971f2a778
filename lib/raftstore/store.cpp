// StoreImpl: opening, dispatching inputs to peers, frames in, regions.
// Rounds are in rounds.cpp; requests (the public API) in store_requests.cpp; bootstrap in
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
  ro.disk = &rt_->disk();
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
  ctx.range_free = [this](const RegionMeta& r, bool commit_stale) {
    return snapshot_range_ok(r, commit_stale);
  };
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
      // A leader's appends and heartbeats make a peer here, and so do a
      // candidate's (pre-)vote requests: a region whose split or creation
      // this store missed (it caught up on the parent by snapshot) may need
      // this store's vote before any leader exists to reach it.
      const auto type = env.message.type;
      if (it == peers_.end() &&
          (type == raft::MessageType::kAppend || type == raft::MessageType::kHeartbeat ||
           type == raft::MessageType::kVote || type == raft::MessageType::kPreVote)) {
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
