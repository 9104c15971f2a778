// Stale peers: a peer removed from its region while it could not hear of it
// (partitioned, or down) learns of its removal and is destroyed.
//
// Two ways, after TiKV's raftstore:
//   - a peer that gets a message from a peer missing from its region, sent
//     with an older conf_ver, answers kGcPeer (the sender was removed since);
//   - a peer that has not heard from a leader for stale_check_ticks() asks
//     the other peers of its region (kCheckStalePeer). A removed learner
//     sends nothing else, and a removed voter's votes are refused by a store
//     that never knew its store (a region that moved away while it slept).
// Peer ids are never reused, so "a newer epoch of the region has no peer of
// this id" means the peer was removed for good. Store-level checks of frames
// from stores that host no peer of a region here are here too.
#include <fmt/format.h>

#include <utility>

#include "raftstore/peer.hpp"
#include "raftstore/store_impl.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

namespace {

// A leader's message to a member it has not met yet, or a stale check: what
// a store that hosts no peer of any region here may send.
bool allowed_from_unknown_store(const RaftEnvelope& env) {
  if (env.extra == ExtraMessage::kCheckStalePeer) return true;
  if (env.extra != ExtraMessage::kNone) return false;
  return env.message.type == raft::MessageType::kAppend ||
         env.message.type == raft::MessageType::kHeartbeat;
}

}  // namespace

bool StoreImpl::unknown_store_frame_ok(const Frame& frame) const {
  // Snapshot chunks come from a leader to a new member.
  for (const auto& env : frame.messages) {
    if (!allowed_from_unknown_store(env)) return false;
  }
  return true;
}

void StoreImpl::send_gc_peer(const RegionMeta& region, const PeerMeta& self,
                             const PeerMeta& stale) {
  RaftEnvelope env{region.id, self, stale, region.epoch, {}, false, ExtraMessage::kGcPeer};
  env.message.type = raft::MessageType::kHeartbeat;
  env.message.from = self.id;
  env.message.to = stale.id;
  Outbox out;
  out.messages[stale.store_id].push_back(std::move(env));
  metrics_.gc_peer_sent.inc();
  send_outbox(out);
}

bool StoreImpl::screen_envelope(const RaftEnvelope& env) {
  auto it = peers_.find(env.region_id);
  Peer* peer = it == peers_.end() ? nullptr : it->second.get();
  switch (env.extra) {
    case ExtraMessage::kGcPeer: {
      if (peer != nullptr && peer->peer_id() == env.to_peer.id && !peer->removed() &&
          env.epoch.conf_ver > peer->region().epoch.conf_ver) {
        KVCORE_LOG_INFO(
            "store {}: region {}: peer {} was removed (told by peer {} at conf_ver "
            "{}); destroying it",
            options_.store_id, env.region_id, env.to_peer.id, env.from_peer.id, env.epoch.conf_ver);
        metrics_.stale_peers_found.inc();
        peer->mark_removed();
      }
      return true;
    }
    case ExtraMessage::kCheckStalePeer: {
      // Answered from a live peer, or from the tombstone of one that was
      // removed itself (the region may have left this store too).
      const RegionMeta* region = nullptr;
      const PeerMeta* self = nullptr;
      if (peer != nullptr && peer->initialized() && !peer->removed()) {
        region = &peer->region();
        self = region->peer_by_id(peer->peer_id());
      } else if (auto t = tombstones_.find(env.region_id);
                 t != tombstones_.end() && t->second.peer_on_store(options_.store_id) == nullptr) {
        // The tombstone of a peer that applied its own removal: the region
        // exactly as it was then (other tombstones keep a peer list older
        // than their epoch, and must not answer). Answer as the peer the
        // asker addressed.
        region = &t->second;
        self = &env.to_peer;
      }
      if (region != nullptr && self != nullptr && region->peer_by_id(env.from_peer.id) == nullptr &&
          env.epoch.conf_ver < region->epoch.conf_ver) {
        send_gc_peer(*region, *self, env.from_peer);
      }
      return true;
    }
    case ExtraMessage::kNone: break;
  }
  if (peer == nullptr) {
    // A late message to a peer this store destroyed (the tombstone's epoch
    // alone does not catch one sent between what a stale peer knew and its
    // removal).
    if (is_destroyed_peer(env.region_id, env.to_peer.id)) {
      metrics_.messages_stale_peer.inc();
      return true;
    }
    return false;
  }
  if (peer->removed()) return false;
  if (env.to_peer.id != peer->peer_id() && (is_destroyed_peer(env.region_id, env.to_peer.id) ||
                                            is_tombstoned(env.region_id, env.epoch))) {
    // A late message to an earlier peer of this store, which is a member
    // again under a new id.
    metrics_.messages_stale_peer.inc();
    return true;
  }
  if (env.to_peer.id != peer->peer_id() && env.epoch.conf_ver > peer->region().epoch.conf_ver) {
    // A newer epoch has another peer on this store: this one was removed
    // (a region has one peer per store, and ids are never reused). It goes
    // now, so that the next message makes the new member.
    KVCORE_LOG_INFO(
        "store {}: region {}: peer {} was replaced by peer {} at conf_ver {}; "
        "destroying it",
        options_.store_id, env.region_id, peer->peer_id(), env.to_peer.id, env.epoch.conf_ver);
    metrics_.stale_peers_found.inc();
    peer->mark_removed();
    return true;
  }
  if (!peer->initialized()) return false;
  const RegionMeta& region = peer->region();
  if (region.peer_by_id(env.from_peer.id) != nullptr) return false;
  // A peer this region does not list. With a newer conf_ver it joined in a
  // change not applied here yet: raft handles it. Otherwise it is not a
  // member: never step it (a stray heartbeat would unseat the leader), and
  // tell it when it was removed since its epoch.
  if (env.epoch.conf_ver > region.epoch.conf_ver) return false;
  metrics_.messages_stale_peer.inc();
  if (env.epoch.conf_ver < region.epoch.conf_ver) {
    if (const PeerMeta* self = region.peer_by_id(peer->peer_id())) {
      send_gc_peer(region, *self, env.from_peer);
    }
  }
  return true;
}

void Peer::remember_sender(const PeerMeta& from) {
  if (from.id == 0 || region_.peer_by_id(from.id) != nullptr) return;
  peer_cache_.insert_or_assign(from.id, from);
  if (!initialized_) {
    // Its peer list is only a book of who talked to it (stale checks ask
    // them); a snapshot replaces it.
    region_.peers.push_back(from);
    members_changed_ = true;
  }
}

bool StoreImpl::is_destroyed_peer(std::uint64_t region_id, std::uint64_t peer_id) const {
  auto it = tombstones_.find(region_id);
  if (it == tombstones_.end()) return false;
  const PeerMeta* p = it->second.peer_by_id(peer_id);
  return p != nullptr && p->store_id == options_.store_id;
}

void StoreImpl::membership_tick_all() {
  Outbox out;
  const Instant now = rt_->clock().now();
  for (auto& [id, peer] : peers_) {
    // A sleeping peer has nothing pending (no change, no joint state) and
    // hears from no leader by design: it must not ask whether it is stale.
    if (peer->hibernating()) continue;
    peer->membership_tick(now, out);
    if (peer->has_ready()) peer->schedule();
  }
  send_outbox(out);
}

}  // namespace kvcore::raftstore
