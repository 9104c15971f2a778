// Destroying a peer: a removed member, or a region merged away.
#include <fmt/format.h>

#include <array>

#include "raftstore/codec.hpp"
#include "raftstore/keys.hpp"
#include "raftstore/peer.hpp"
#include "raftstore/ranges.hpp"
#include "raftstore/store_impl.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

Status Peer::destroy(bool clear_data) {
  // Reads and requests not yet proposed had no effect: RegionNotFound sends
  // them elsewhere. A proposal may still commit through the peers that
  // remain, so its outcome is unknown (RegionNotFound would say "no effect").
  const Status in_flight = Status::unavailable(
      fmt::format("region {}: peer destroyed with the command in flight; outcome unknown",
                  region_.id));
  fail_all(region_not_found(region_.id), &in_flight);
  {
    std::lock_guard lock(lease_->mu);
    lease_->leader = false;
    lease_->leader_store = 0;
    lease_->leader_peer = 0;
    lease_->lease_until = Instant::min();
  }
  // 1. The raft log engine, synced: the tombstone replaces the raft log,
  // hard state and region record in one write. From here on the peer is
  // gone after any crash.
  raftlog::LogBatch lb;
  lb.clean_region(region_.id);
  lb.put_state(region_.id, kRegionStateKey,
               encode_region_state(RegionLocalState{PeerState::kTombstone, region_, std::nullopt}));
  KVCORE_RETURN_IF_ERROR(ctx_.raft_engine->write(lb, true));

  // 2. The kv engine. Not synced: if the deletion is lost, load() still sees
  // the tombstone first, and a later snapshot into the range clears it.
  auto batch = ctx_.kv->new_write_batch();
  batch->delete_key(CF::kRaft, apply_state_key(region_.id));
  if (clear_data && initialized_) {
    for (CF cf : std::array{CF::kDefault, CF::kLock, CF::kWrite}) {
      KVCORE_RETURN_IF_ERROR(
          delete_range_in(*ctx_.kv, *batch, cf, region_.start_key, region_.end_key));
    }
  }
  KVCORE_RETURN_IF_ERROR(ctx_.kv->write(*batch, WriteOptions{}));
  ctx_.metrics->peers_destroyed.inc();
  KVCORE_LOG_INFO("region {}: peer {} on store {} destroyed{}", region_.id, self_peer_,
                  ctx_.store_id, clear_data ? " with its data" : "");
  return Status::ok();
}

Status StoreImpl::destroy_peer(std::uint64_t region_id, bool clear_data) {
  auto it = peers_.find(region_id);
  if (it == peers_.end()) return region_not_found(region_id);
  Peer& peer = *it->second;
  KVCORE_RETURN_IF_ERROR(peer.destroy(clear_data));
  {
    std::unique_lock lock(routes_mu_);
    for (auto r = by_start_key_.begin(); r != by_start_key_.end();) {
      r = r->second == peer.lease() ? by_start_key_.erase(r) : std::next(r);
    }
    by_region_.erase(region_id);
  }
  {
    std::lock_guard lock(status_mu_);
    status_.erase(region_id);
  }
  tombstones_[region_id] = peer.region();
  erase_peer(it);
  return Status::ok();
}

bool StoreImpl::is_tombstoned(std::uint64_t region, const RegionEpoch& epoch) const {
  auto it = tombstones_.find(region);
  if (it == tombstones_.end()) return false;
  // A peer added to the region again later comes with a newer conf_ver
  // (its addition bumped it); anything not newer is from before the end.
  const RegionEpoch& dead = it->second.epoch;
  return epoch.conf_ver <= dead.conf_ver && epoch.version <= dead.version;
}

}  // namespace kvcore::raftstore
