// RaftLogEngine: reads and figures.
#include <algorithm>

#include <fmt/format.h>

#include "kvcore/raft/storage.hpp"
#include "raftlog/engine.hpp"
#include "raftlog/format.hpp"

namespace kvcore::raftlog {

using Kind = raft::StorageErrorDetail::Kind;

void RaftLogEngine::plan_reads(const std::deque<EntryLocation>& locs, std::size_t begin,
                               std::size_t end, std::vector<Read>* reads) const {
  for (std::size_t i = begin; i < end; ++i) {
    const EntryLocation& loc = locs[i];
    if (!reads->empty()) {
      Read& r = reads->back();
      if (r.segment != nullptr && r.segment->id() == loc.segment &&
          r.offset + r.bytes == loc.offset) {
        r.lengths.push_back(loc.length);
        r.bytes += loc.length;
        continue;
      }
    }
    auto it = segs_.find(loc.segment);
    Read r;
    r.segment = it == segs_.end() ? nullptr : it->second;
    r.offset = loc.offset;
    r.lengths.push_back(loc.length);
    r.bytes = loc.length;
    if (r.segment == nullptr) {
      // Cannot happen while the index and the segment set agree; reported
      // by execute_reads rather than dereferenced.
      r.offset = loc.segment;
    }
    reads->push_back(std::move(r));
  }
}

Status RaftLogEngine::execute_reads(const std::vector<Read>& reads, raft::Index first,
                                    std::uint64_t max_bytes, std::vector<raft::Entry>* out) {
  std::uint64_t total = 0;
  raft::Index index = first;
  std::string buf;
  for (const Read& r : reads) {
    if (r.segment == nullptr) {
      return Status::internal(
          fmt::format("raft log: entry {} lives in missing segment {}", index, r.offset));
    }
    KVCORE_RETURN_IF_ERROR(r.segment->pread(r.offset, r.bytes, &buf));
    std::size_t at = 0;
    for (std::uint32_t len : r.lengths) {
      auto e = decode_entry(std::string_view(buf).substr(at, len), index);
      if (!e.is_ok()) {
        return e.status().with_context(
            fmt::format("{} at offset {}", r.segment->path(), r.offset + at));
      }
      total += e->byte_size();
      if (!out->empty() && total > max_bytes) return Status::ok();
      out->push_back(std::move(*e));
      at += len;
      ++index;
    }
  }
  return Status::ok();
}

Result<std::vector<raft::Entry>> RaftLogEngine::entries(std::uint64_t region, raft::Index lo,
                                                        raft::Index hi,
                                                        std::uint64_t max_bytes) const {
  if (lo > hi) return Status::invalid_argument(fmt::format("raft log: lo {} > hi {}", lo, hi));
  std::vector<Read> reads;
  {
    std::shared_lock lock(index_mu_);
    const RegionMemTable* r = mem_.find(region);
    if (r == nullptr || r->entries.empty()) {
      if (lo == hi) return std::vector<raft::Entry>{};
      return raft::storage_error(Kind::kUnavailable);
    }
    if (lo < r->first_index) return raft::storage_error(Kind::kCompacted);
    if (hi > r->last_index() + 1) return raft::storage_error(Kind::kUnavailable);
    // Entry::byte_size() is at least an entry's encoded length, so entries
    // past a running sum of lengths above max_bytes are never returned.
    const std::size_t begin = lo - r->first_index;
    std::size_t end = begin;
    std::uint64_t lower_bound = 0;
    while (end < hi - r->first_index) {
      lower_bound += r->entries[end].length;
      if (end > begin && lower_bound > max_bytes) break;
      ++end;
    }
    plan_reads(r->entries, begin, end, &reads);
  }
  std::vector<raft::Entry> out;
  KVCORE_RETURN_IF_ERROR(execute_reads(reads, lo, max_bytes, &out));
  return out;
}

Result<raft::Term> RaftLogEngine::term(std::uint64_t region, raft::Index index) const {
  std::shared_lock lock(index_mu_);
  const RegionMemTable* r = mem_.find(region);
  if (r == nullptr || r->entries.empty()) return raft::storage_error(Kind::kUnavailable);
  if (index < r->first_index) return raft::storage_error(Kind::kCompacted);
  if (index > r->last_index()) return raft::storage_error(Kind::kUnavailable);
  return r->entries[index - r->first_index].term;
}

std::optional<raft::Index> RaftLogEngine::first_index(std::uint64_t region) const {
  std::shared_lock lock(index_mu_);
  const RegionMemTable* r = mem_.find(region);
  if (r == nullptr || r->entries.empty()) return std::nullopt;
  return r->first_index;
}

std::optional<raft::Index> RaftLogEngine::last_index(std::uint64_t region) const {
  std::shared_lock lock(index_mu_);
  const RegionMemTable* r = mem_.find(region);
  if (r == nullptr || r->entries.empty()) return std::nullopt;
  return r->last_index();
}

std::optional<raft::HardState> RaftLogEngine::hard_state(std::uint64_t region) const {
  std::shared_lock lock(index_mu_);
  const RegionMemTable* r = mem_.find(region);
  if (r == nullptr) return std::nullopt;
  return r->hard_state;
}

Result<std::optional<std::string>> RaftLogEngine::get_state(std::uint64_t region,
                                                            std::string_view key) const {
  std::shared_lock lock(index_mu_);
  const RegionMemTable* r = mem_.find(region);
  if (r == nullptr) return std::optional<std::string>();
  auto it = r->states.find(key);
  if (it == r->states.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second.value);
}

std::vector<std::uint64_t> RaftLogEngine::regions() const {
  std::vector<std::uint64_t> out;
  {
    std::shared_lock lock(index_mu_);
    out.reserve(mem_.regions().size());
    for (const auto& [id, r] : mem_.regions()) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t RaftLogEngine::segments() const {
  std::shared_lock lock(index_mu_);
  return segs_.size();
}

std::uint64_t RaftLogEngine::bytes() const {
  std::shared_lock lock(index_mu_);
  std::uint64_t total = 0;
  for (const auto& [id, seg] : segs_) total += seg->size();
  return total;
}

std::uint64_t RaftLogEngine::live_entries() const {
  std::shared_lock lock(index_mu_);
  return mem_.live_entries();
}

std::uint64_t RaftLogEngine::entry_count(std::uint64_t region) const {
  std::shared_lock lock(index_mu_);
  const RegionMemTable* r = mem_.find(region);
  return r == nullptr ? 0 : r->entries.size();
}

}  // namespace kvcore::raftlog
