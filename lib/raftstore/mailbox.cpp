// Peer: the mailbox a round drains, and hibernation.
//
// Hibernation (TiKV's "hibernate regions", simplified): a leader whose
// region had no proposal, read or log traffic for hibernate_idle_ticks, with
// every follower's log matched up to its last index and everything applied,
// marks its next heartbeats `hibernate` and stops ticking. A follower that
// gets such a heartbeat from its leader while fully up to date stops ticking
// too. Anything else wakes a peer: a request, or any message other than a
// heartbeat response on a leader. A sleeping follower cannot notice its
// leader dying, so the store wakes followers whose leader's store has sent
// nothing for an election timeout (stores send each other a frame every
// tick at least); they then elect as usual.
#include <type_traits>
#include <utility>

#include "raftstore/peer.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

void Peer::schedule() {
  if (ctx_.schedule) ctx_.schedule(*this);
}

void Peer::enqueue_message(RaftEnvelope env) {
  mail_.emplace_back(std::move(env));
  schedule();
}

void Peer::enqueue_write(WriteRequest req) {
  wake();
  mail_.emplace_back(std::move(req));
  schedule();
}

void Peer::enqueue_read(ReadRequest req) {
  wake();
  mail_.emplace_back(std::move(req));
  schedule();
}

void Peer::enqueue_tick() {
  ++ticks_due_;
  schedule();
}

bool Peer::drain_mailbox(std::size_t max) {
  for (; ticks_due_ > 0; --ticks_due_) tick();
  std::size_t n = 0;
  while (!mail_.empty() && n < max) {
    Mail m = std::move(mail_.front());
    mail_.pop_front();
    ++n;
    std::visit(
        [this](auto& in) {
          using T = std::decay_t<decltype(in)>;
          if constexpr (std::is_same_v<T, RaftEnvelope>) {
            step(std::move(in));
          } else if constexpr (std::is_same_v<T, WriteRequest>) {
            propose(std::move(in));
          } else {
            read(std::move(in));
          }
        },
        m);
  }
  return !mail_.empty();
}

void Peer::wake() {
  active_since_tick_ = true;
  idle_ticks_ = 0;
  going_to_sleep_ = false;
  sleep_heartbeat_sent_ = false;
  if (!hibernating_) return;
  hibernating_ = false;
  ctx_.metrics->region_wakeups.inc();
}

std::uint64_t Peer::leader_store() const {
  const PeerMeta* p = peer_meta(raw_->leader_id());
  return p ? p->store_id : 0;
}

bool Peer::idle_leader() const {
  if (!proposals_.empty() || !read_batches_.empty() || !unbatched_reads_.empty() ||
      !waiting_reads_.empty() || !mail_.empty() || pending_ready_) {
    return false;
  }
  if (raw_->lead_transferee() != raft::kNoNode || apply_state_.merge_state ||
      apply_state_.conf_state.joint() || conf_wait_ || !staged_conf_.empty() || merging()) {
    return false;
  }
  const raft::Index last = raw_->last_index();
  if (raw_->committed() != last || apply_state_.applied_index != last) return false;
  const raft::RaftStatus st = raw_->status();
  for (const auto& [id, pr] : st.progress) {
    if (id != self_peer_ && pr.match != last) return false;
  }
  return true;
}

void Peer::check_hibernation() {
  if (!ctx_.options->hibernate_regions || hibernating_) return;
  const bool active = std::exchange(active_since_tick_, false);
  if (!is_leader() || active || !idle_leader()) {
    idle_ticks_ = 0;
    going_to_sleep_ = false;
    return;
  }
  if (++idle_ticks_ < ctx_.options->hibernate_idle_ticks) return;
  if (region_.peers.size() <= 1) {
    hibernating_ = true;  // nobody to tell
    ctx_.metrics->region_hibernations.inc();
    return;
  }
  going_to_sleep_ = true;  // send() marks the next heartbeats
}

}  // namespace kvcore::raftstore
