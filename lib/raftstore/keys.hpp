// Where the raftstore keeps its records.
//
// Raft log engine (per region id): raft entries and hard state, the records
// of raftlog::RaftLogStorage, and kRegionStateKey (a RegionLocalState).
// Pseudo-region kStoreRegion holds kStoreIdentKey (a StoreIdent).
//
// KV engine: user data in CF default (raw KV; lock and write are MVCC's),
// and in CF raft, apply_state_key(region) (an ApplyState) written in the same
// batch as the data it covers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kvcore/raft/types.hpp"

namespace kvcore::raftstore {

inline constexpr std::uint64_t kStoreRegion = 0;
inline constexpr std::string_view kStoreIdentKey = "store.ident";
// The end of the block of ids this store reserved (fixed64), in kStoreRegion.
inline constexpr std::string_view kIdLimitKey = "store.id_limit";
// The apply states' key prefix in CF raft of the kv engine.
inline constexpr std::string_view kApplyStatePrefix = "apply/";
inline constexpr std::string_view kRegionStateKey = "region.state";

// The first region of a cluster starts, on every initial store, from a
// snapshot at this index and term with no entries, so all initial peers
// agree on their logs without a leader sending anything.
inline constexpr raft::Index kInitIndex = 5;
inline constexpr raft::Term kInitTerm = 5;
inline constexpr std::uint64_t kFirstRegionId = 1;

[[nodiscard]] inline std::string apply_state_key(std::uint64_t region) {
  std::string k(kApplyStatePrefix);
  for (int shift = 56; shift >= 0; shift -= 8) {
    k.push_back(static_cast<char>((region >> shift) & 0xff));
  }
  return k;
}

// The region of an apply_state_key(); nullopt for any other key.
[[nodiscard]] inline std::optional<std::uint64_t> region_of_apply_state_key(std::string_view key) {
  if (key.size() != kApplyStatePrefix.size() + 8 || !key.starts_with(kApplyStatePrefix)) {
    return std::nullopt;
  }
  std::uint64_t region = 0;
  for (unsigned char c : key.substr(kApplyStatePrefix.size())) region = (region << 8) | c;
  return region;
}

}  // namespace kvcore::raftstore
