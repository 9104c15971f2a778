// The raft log engine's in-memory index: for each region, where each live
// entry sits in the segment files (with its term, so term() needs no I/O),
// the hard state and the state records (kept in memory: they are small).
//
// Both recovery and the write path update it the same way, by applying the
// decoded operations of each record in log order, so a reopen rebuilds
// exactly the index the writes built.
//
// Invariant: along a region's log, entries' segment ids never decrease
// (appends go to the newest segment, a rewrite moves the whole log), so the
// oldest segment a log touches is that of its first entry.
//
// Thread-safety: not synchronized; RaftLogEngine guards it with its
// shared_mutex (writers exclusive, readers shared).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kvcore/raft/types.hpp"
#include "raftlog/format.hpp"

namespace kvcore::raftlog {

// Where one entry's encoding lives.
struct EntryLocation {
  raft::Term term = 0;
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;  // in the segment file
  std::uint32_t length = 0;
};

struct StateRecord {
  std::string value;
  std::uint64_t segment = 0;  // the segment holding the live copy
};

struct RegionMemTable {
  raft::Index first_index = 0;  // index of entries.front(); meaningless when empty
  std::deque<EntryLocation> entries;
  std::uint64_t entry_bytes = 0;  // sum of entries[i].length
  std::optional<raft::HardState> hard_state;
  std::uint64_t hard_state_segment = 0;
  std::map<std::string, StateRecord, std::less<>> states;

  [[nodiscard]] bool empty() const noexcept {
    return entries.empty() && !hard_state && states.empty();
  }
  [[nodiscard]] raft::Index last_index() const noexcept { return first_index + entries.size() - 1; }
  // The oldest segment holding live data of this region (UINT64_MAX: none).
  [[nodiscard]] std::uint64_t oldest_segment() const noexcept;
};

class MemTable {
 public:
  // Applies one operation decoded from a record of `segment` whose payload
  // starts at file offset `payload_offset`.
  void apply(const Op& op, std::uint64_t segment, std::uint64_t payload_offset);

  // nullptr when the region holds nothing.
  [[nodiscard]] const RegionMemTable* find(std::uint64_t region) const;
  [[nodiscard]] const std::unordered_map<std::uint64_t, RegionMemTable>& regions() const {
    return regions_;
  }
  [[nodiscard]] std::uint64_t live_entries() const noexcept { return live_entries_; }

 private:
  void drop_entries_from(RegionMemTable& r, std::size_t pos);
  void drop_entries_before(RegionMemTable& r, std::size_t pos);
  void erase_if_empty(std::uint64_t region);

  std::unordered_map<std::uint64_t, RegionMemTable> regions_;
  std::uint64_t live_entries_ = 0;
};

}  // namespace kvcore::raftlog
