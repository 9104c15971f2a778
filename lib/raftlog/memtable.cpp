#include "raftlog/memtable.hpp"

#include <algorithm>
#include <limits>

namespace kvcore::raftlog {

std::uint64_t RegionMemTable::oldest_segment() const noexcept {
  std::uint64_t oldest = std::numeric_limits<std::uint64_t>::max();
  if (!entries.empty()) oldest = entries.front().segment;
  if (hard_state) oldest = std::min(oldest, hard_state_segment);
  for (const auto& [key, rec] : states) oldest = std::min(oldest, rec.segment);
  return oldest;
}

const RegionMemTable* MemTable::find(std::uint64_t region) const {
  auto it = regions_.find(region);
  return it == regions_.end() ? nullptr : &it->second;
}

void MemTable::drop_entries_from(RegionMemTable& r, std::size_t pos) {
  while (r.entries.size() > pos) {
    r.entry_bytes -= r.entries.back().length;
    r.entries.pop_back();
    --live_entries_;
  }
}

void MemTable::drop_entries_before(RegionMemTable& r, std::size_t pos) {
  pos = std::min(pos, r.entries.size());
  for (std::size_t i = 0; i < pos; ++i) {
    r.entry_bytes -= r.entries.front().length;
    r.entries.pop_front();
  }
  live_entries_ -= pos;
  r.first_index += pos;
}

void MemTable::erase_if_empty(std::uint64_t region) {
  auto it = regions_.find(region);
  if (it != regions_.end() && it->second.empty()) regions_.erase(it);
}

void MemTable::apply(const Op& op, std::uint64_t segment, std::uint64_t payload_offset) {
  switch (op.type) {
    case OpType::kAppend:
    case OpType::kRewriteEntries: {
      RegionMemTable& r = regions_[op.region];
      const bool contiguous = !r.entries.empty() && op.type == OpType::kAppend &&
                              op.index >= r.first_index && op.index <= r.last_index() + 1;
      if (contiguous) {
        drop_entries_from(r, op.index - r.first_index);
      } else {
        drop_entries_from(r, 0);
        r.first_index = op.index;
      }
      for (const EntryRef& ref : op.entries) {
        r.entries.push_back(
            EntryLocation{ref.term, segment, payload_offset + ref.offset, ref.length});
        r.entry_bytes += ref.length;
      }
      live_entries_ += op.entries.size();
      erase_if_empty(op.region);
      break;
    }
    case OpType::kHardState: {
      RegionMemTable& r = regions_[op.region];
      r.hard_state = op.hard_state;
      r.hard_state_segment = segment;
      break;
    }
    case OpType::kPutState: {
      RegionMemTable& r = regions_[op.region];
      auto it = r.states.find(op.key);
      if (it == r.states.end()) {
        r.states.emplace(std::string(op.key), StateRecord{std::string(op.value), segment});
      } else {
        it->second.value.assign(op.value);
        it->second.segment = segment;
      }
      break;
    }
    case OpType::kDeleteState: {
      auto rit = regions_.find(op.region);
      if (rit == regions_.end()) break;
      auto it = rit->second.states.find(op.key);
      if (it != rit->second.states.end()) rit->second.states.erase(it);
      erase_if_empty(op.region);
      break;
    }
    case OpType::kCompact: {
      auto rit = regions_.find(op.region);
      if (rit == regions_.end() || rit->second.entries.empty()) break;
      RegionMemTable& r = rit->second;
      if (op.index > r.first_index) drop_entries_before(r, op.index - r.first_index);
      erase_if_empty(op.region);
      break;
    }
    case OpType::kClean: {
      auto rit = regions_.find(op.region);
      if (rit == regions_.end()) break;
      live_entries_ -= rit->second.entries.size();
      regions_.erase(rit);
      break;
    }
  }
}

}  // namespace kvcore::raftlog
