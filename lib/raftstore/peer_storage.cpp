#include "raftstore/peer_storage.hpp"

#include <fmt/format.h>

#include <array>
#include <string>
#include <utility>

#include "raftstore/codec.hpp"
#include "raftstore/keys.hpp"

namespace kvcore::raftstore {

Result<ApplyState> read_apply_state(const Reader& reader, std::uint64_t region) {
  KVCORE_ASSIGN_OR_RETURN(auto raw, reader.get(CF::kRaft, apply_state_key(region)));
  if (!raw) return Status::not_found(fmt::format("no apply state for region {}", region));
  return decode_apply_state(*raw);
}

Result<raft::Snapshot> PeerStorage::snapshot() const {
  auto snap = kv_.snapshot();
  KVCORE_ASSIGN_OR_RETURN(ApplyState state, read_apply_state(*snap, region_));
  if (cached_ && cached_->metadata.index == state.applied_index) return *cached_;

  SnapshotDataBuilder builder(state);
  IterOptions io;
  io.lower_bound = state.region.start_key;
  io.upper_bound = state.region.end_key;
  io.fill_cache = false;
  for (CF cf : std::array{CF::kDefault, CF::kLock, CF::kWrite}) {
    auto it = snap->new_iterator(cf, io);
    for (it->seek_to_first(); it->valid(); it->next()) builder.add(cf, it->key(), it->value());
    KVCORE_RETURN_IF_ERROR(it->status());
  }
  raft::Snapshot out;
  out.metadata.index = state.applied_index;
  out.metadata.term = state.applied_term;
  out.metadata.conf_state = state.conf_state;
  out.data = builder.finish();
  cached_ = out;
  ++generated_;
  return out;
}

}  // namespace kvcore::raftstore
