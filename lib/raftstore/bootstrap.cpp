// Store::bootstrap: the first region of a new cluster.
#include <fmt/format.h>

#include <algorithm>

#include "kvcore/engine/registry.hpp"
#include "raftlog/engine.hpp"
#include "raftlog/storage.hpp"
#include "raftstore/codec.hpp"
#include "raftstore/keys.hpp"
#include "raftstore/peer_storage.hpp"
#include "raftstore/region_init.hpp"
#include "raftstore/store_impl.hpp"
#include "runtime/runtime.hpp"

namespace kvcore {

using namespace raftstore;

Status Store::bootstrap(const StoreOptions& options,
                        std::span<const std::uint64_t> initial_stores) {
  KVCORE_ASSIGN_OR_RETURN(StoreOptions o, resolve_options(options));
  std::vector<std::uint64_t> stores(initial_stores.begin(), initial_stores.end());
  std::sort(stores.begin(), stores.end());
  if (stores.empty() || std::adjacent_find(stores.begin(), stores.end()) != stores.end() ||
      stores.front() == 0) {
    return Status::invalid_argument("bootstrap: initial stores must be distinct non-zero ids");
  }
  if (!std::binary_search(stores.begin(), stores.end(), o.store_id)) {
    return Status::invalid_argument(
        fmt::format("bootstrap: store {} is not among the initial stores", o.store_id));
  }
  RegionMeta region;
  region.id = kFirstRegionId;
  for (std::uint64_t s : stores) {
    // The first region's peers take their stores' ids; later peers get ids
    // allocated by the cluster.
    region.peers.push_back(PeerMeta{s, s, false});
  }
  const StoreIdent ident{o.cluster_id, o.store_id};

  KVCORE_RETURN_IF_ERROR(make_store_dir(o));
  raftlog::RaftLogOptions ro;
  // The store's disk from the first byte on: a simulated disk must know every
  // segment to tell what a crash keeps of it.
  if (o.runtime != nullptr) ro.disk = &o.runtime->disk();
  KVCORE_ASSIGN_OR_RETURN(auto raft_engine, raftlog::RaftLogEngine::open(o.raft_path, ro));
  KVCORE_ASSIGN_OR_RETURN(auto kv, open_engine(o.engine, o.kv_path, o.engine_options));

  KVCORE_ASSIGN_OR_RETURN(auto have_ident, raft_engine->get_state(kStoreRegion, kStoreIdentKey));
  if (have_ident) {
    KVCORE_ASSIGN_OR_RETURN(StoreIdent have, decode_store_ident(*have_ident));
    KVCORE_ASSIGN_OR_RETURN(auto have_region, raft_engine->get_state(region.id, kRegionStateKey));
    if (!(have == ident) || !have_region) {
      return Status::already_exists(
          fmt::format("bootstrap: {} already holds store {} of cluster {}", o.raft_path,
                      have.store_id, have.cluster_id));
    }
    KVCORE_ASSIGN_OR_RETURN(RegionLocalState rs, decode_region_state(*have_region));
    if (!(rs.region.peers == region.peers)) {
      return Status::already_exists("bootstrap: the store was bootstrapped with other stores");
    }
    return Status::ok();
  }

  // The kv engine first: its apply state is what a restart trusts.
  auto batch = kv->new_write_batch();
  batch->put(CF::kRaft, apply_state_key(region.id),
             encode_apply_state(initial_apply_state(region)));
  WriteOptions wo;
  wo.sync = true;
  KVCORE_RETURN_IF_ERROR(kv->write(*batch, wo));
  KVCORE_RETURN_IF_ERROR(write_initial_raft_state(*raft_engine, region));
  // The ident last: a store with an ident is a bootstrapped store.
  raftlog::LogBatch lb;
  lb.put_state(kStoreRegion, kStoreIdentKey, encode_store_ident(ident));
  return raft_engine->write(lb, true);
}

}  // namespace kvcore
