// StoreImpl: the rounds (see peer.hpp and docs/store.md, "How it works"):
// the run queue, the raft poller and apply lanes, the store tick, and frames
// out. Opening, dispatch and frames in are in store.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <set>
#include <span>
#include <utility>

#include "raftstore/codec.hpp"
#include "raftstore/lanes.hpp"
#include "raftstore/sabotage.hpp"
#include "raftstore/store_impl.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

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
  for (int pass = 0; pass < 4; ++pass) {
    std::vector<Peer*> readied;
    if (!run_pass(work, pass == 0, start, &readied, &fsyncs)) return;
    if (readied.empty()) break;
    work = std::move(readied);
  }
  metrics_.fsyncs_per_round.observe(static_cast<double>(fsyncs));
  // Peers with work left (mail beyond the per-round bound, a new Ready)
  // go back in line.
  for (Peer* p : round_peers_) {
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
  const bool want_sync =
      sync && options_.sync_log && !testing::sabotaged(testing::Sabotage::kSkipLogSync);
  Status s = raft_engine_->write(batch, want_sync);
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
  metrics_.store_failures.inc();
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
    ApplyBatch ab{kv_->new_write_batch(), false, {}};
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

}  // namespace kvcore::raftstore
