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
  if (o.snapshot_chunk_bytes == 0 || o.snapshot_chunk_bytes + 4096 > o.max_frame_bytes) {
    return Status::invalid_argument(
        "StoreOptions: snapshot_chunk_bytes must be positive and well below max_frame_bytes");
  }
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
  ctx.range_free = [this](const RegionMeta& r) { return range_free(r); };
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
  refresh_known_stores();
  refresh_status();
  raft_exec_ = rt_->make_executor(fmt::format("raft-{}", options_.store_id), 1);
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
    for (auto& [id, peer] : peers_) peer->tick();
    const Instant now = rt_->clock().now();
    for (auto& [id, peer] : peers_) peer->expire(now);
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
      peer.step(std::move(env));
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
    it->second->propose(std::move(w->req));
    return;
  }
  if (auto* r = std::get_if<ReadInput>(&in)) {
    auto it = peers_.find(r->req.region_id);
    if (it == peers_.end()) {
      r->req.fail(region_not_found(r->req.region_id));
      return;
    }
    it->second->read(std::move(r->req));
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
  bool ticked = false;
  for (auto& in : inputs) {
    ticked = ticked || std::holds_alternative<TickInput>(in);
    handle(in);
  }

  // Persist and apply until quiet, a few times at most, so new inputs are
  // not kept waiting behind a long chain of readies.
  std::uint64_t fsyncs = 0;
  std::vector<Peer*> touched;  // whose status may have changed
  for (int pass = 0; pass < 4; ++pass) {
    raftlog::LogBatch batch;
    Outbox out;
    bool sync = false;
    std::vector<Peer*> readied;
    for (auto& [id, peer] : peers_) {
      if (!peer->has_ready()) continue;
      Status s = peer->begin_ready(start, batch, out, &sync);
      if (!s.is_ok()) {
        stop_on_error(s.with_context(fmt::format("region {}", id)));
        return;
      }
      readied.push_back(peer.get());
    }
    if (readied.empty()) break;
    touched.insert(touched.end(), readied.begin(), readied.end());
    if (batch.empty()) {
      // Nothing to persist (typically the pass that commits): apply and
      // answer the proposers first, then send the commit index along.
      if (!finish_all(readied, out)) return;
      send_outbox(out);
      continue;
    }
    // The leader's appends leave before its own fsync, so followers persist
    // in parallel with it.
    send_outbox(out);
    const std::uint64_t before = raft_engine_->fsyncs();
    Status s = raft_engine_->write(batch, sync && options_.sync_log);
    if (!s.is_ok()) {
      stop_on_error(s.with_context("raft log write"));
      return;
    }
    fsyncs += raft_engine_->fsyncs() - before;
    metrics_.raftlog_writes.inc();
    metrics_.regions_per_raftlog_write.observe(static_cast<double>(readied.size()));
    if (!finish_all(readied, out)) return;
    send_outbox(out);
  }
  metrics_.fsyncs_per_round.observe(static_cast<double>(fsyncs));
  // Only the peers that handled a ready changed, except that time moves
  // leases: a tick round (and a change in the set of regions) renews all.
  const bool regions_changed = update_regions();
  const bool members_changed = update_members();
  if (regions_changed || members_changed || ticked) {
    refresh_status();
  } else {
    refresh_status(touched);
  }
  for (auto& [id, peer] : peers_) {
    if (peer->has_ready()) {
      schedule_round();
      break;
    }
  }
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

bool StoreImpl::finish_all(const std::vector<Peer*>& readied, Outbox& out) {
  // Every region's committed entries go into one kv write; proposers and
  // reads are completed once it is written.
  ApplyBatch ab{kv_->new_write_batch(), false};
  Status ws;
  for (Peer* p : readied) {
    ws = p->finish_ready(out, ab);
    if (!ws.is_ok()) {
      ws = ws.with_context(fmt::format("region {}", p->region_id()));
      break;
    }
  }
  if (ws.is_ok() && !ab.batch->empty()) {
    WriteOptions wo;
    wo.sync = ab.sync;
    ws = kv_->write(*ab.batch, wo).with_context("apply write");
  }
  Status first_error = ws;
  for (Peer* p : readied) {
    Status s = p->post_apply(ws);
    if (first_error.is_ok() && !s.is_ok()) {
      first_error = s.with_context(fmt::format("region {}", p->region_id()));
    }
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
Status StoreImpl::merge_region(std::uint64_t, std::uint64_t, const RequestOptions&) {
  return Status::not_supported("merge_region: not built yet");
}
void StoreImpl::async_merge_region(std::uint64_t, std::uint64_t, const RequestOptions&,
                                   WriteCallback done) {
  done(Status::not_supported("merge_region: not built yet"));
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
  std::vector<std::pair<RegionMeta, bool>> created;
  for (auto& [id, peer] : peers_) {
    for (auto& meta : peer->take_split_results())
      created.emplace_back(std::move(meta), peer->is_leader());
  }
  for (auto& [id, peer] : peers_) {
    if (peer->take_range_changed()) reroute(*peer);
  }
  for (auto& [meta, parent_leads] : created) {
    if (auto it = peers_.find(meta.id); it != peers_.end()) {
      if (it->second->initialized()) continue;  // a snapshot got there first
      // Made by a leader's message before the split was applied here: the
      // split's peer takes its place (keeping its term and vote).
      it->second->fail_all(Status::unavailable("peer replaced by the split's"));
      peers_.erase(it);
    }
    auto peer = Peer::load(peer_ctx_, meta.id, peer_seeds_.next_u64());
    if (!peer.is_ok()) {
      KVCORE_LOG_ERROR("store {}: region {} from a split does not open: {}", options_.store_id,
                       meta.id, peer.status().to_string());
      continue;
    }
    Peer* p = peer->get();
    add_peer(std::move(peer).value());
    // The parent's leader is the best placed to lead the new region at once
    // instead of waiting out an election timeout.
    if (parent_leads) p->campaign();
  }
  if (!created.empty()) schedule_round();
  return !created.empty();
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
  std::lock_guard lock(status_mu_);
  std::vector<RegionStatus> out;
  out.reserve(status_.size());
  for (const auto& [id, st] : status_) out.push_back(st);
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
