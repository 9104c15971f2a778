// MemoryStorage: the in-memory reference Storage, and the storage error helpers.
#include "kvcore/raft/storage.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace kvcore::raft {

using Kind = StorageErrorDetail::Kind;

std::string StorageErrorDetail::describe() const {
  switch (kind) {
    case Kind::kCompacted: return "requested index is compacted";
    case Kind::kUnavailable: return "requested entry is unavailable";
    case Kind::kSnapshotOutOfDate: return "snapshot is out of date";
    case Kind::kSnapshotTemporarilyUnavailable: return "snapshot is temporarily unavailable";
  }
  return "unknown storage error";
}

Status storage_error(Kind kind) {
  const StorageErrorDetail detail(kind);
  const Code code = kind == Kind::kSnapshotTemporarilyUnavailable ? Code::kUnavailable
                    : kind == Kind::kUnavailable                  ? Code::kNotFound
                                                                  : Code::kFailedPrecondition;
  return Status(code, detail.describe(), SubCode::kNone,
                std::make_shared<const StorageErrorDetail>(kind));
}

bool is_storage_error(const Status& s, Kind kind) {
  const auto* d = s.detail_as<StorageErrorDetail>();
  return d != nullptr && d->kind == kind;
}

MemoryStorage::MemoryStorage() : entries_(1) {}

MemoryStorage MemoryStorage::with_conf_state(ConfState cs) {
  MemoryStorage s;
  s.snapshot_.metadata.conf_state = std::move(cs);
  return s;
}

Result<RaftState> MemoryStorage::initial_state() const {
  return RaftState{hard_state_, snapshot_.metadata.conf_state};
}

Result<std::vector<Entry>> MemoryStorage::entries(Index lo, Index hi,
                                                  std::uint64_t max_bytes) const {
  const Index off = entries_.front().index;
  if (lo <= off) return storage_error(Kind::kCompacted);
  if (hi > entries_.back().index + 1 || lo > hi) return storage_error(Kind::kUnavailable);
  std::vector<Entry> out;
  std::uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - off];
    bytes += e.byte_size();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

Result<Term> MemoryStorage::term(Index i) const {
  const Index off = entries_.front().index;
  if (i < off) return storage_error(Kind::kCompacted);
  if (i - off >= entries_.size()) return storage_error(Kind::kUnavailable);
  return entries_[i - off].term;
}

Result<Index> MemoryStorage::first_index() const { return entries_.front().index + 1; }

Result<Index> MemoryStorage::last_index() const { return entries_.back().index; }

Result<Snapshot> MemoryStorage::snapshot() const { return snapshot_; }

Status MemoryStorage::apply_snapshot(Snapshot snap) {
  if (snap.metadata.index <= snapshot_.metadata.index && !snapshot_.empty()) {
    return storage_error(Kind::kSnapshotOutOfDate);
  }
  Entry dummy;
  dummy.index = snap.metadata.index;
  dummy.term = snap.metadata.term;
  entries_.assign(1, dummy);
  snapshot_ = std::move(snap);
  return Status::ok();
}

Result<Snapshot> MemoryStorage::create_snapshot(Index i, std::optional<ConfState> cs,
                                                std::string data) {
  if (i <= snapshot_.metadata.index) return storage_error(Kind::kSnapshotOutOfDate);
  if (i > entries_.back().index) return storage_error(Kind::kUnavailable);
  snapshot_.metadata.index = i;
  snapshot_.metadata.term = entries_[i - entries_.front().index].term;
  if (cs) snapshot_.metadata.conf_state = std::move(*cs);
  snapshot_.data = std::move(data);
  return snapshot_;
}

Status MemoryStorage::compact(Index compact_index) {
  const Index off = entries_.front().index;
  if (compact_index <= off) return storage_error(Kind::kCompacted);
  if (compact_index > entries_.back().index) return storage_error(Kind::kUnavailable);
  const std::size_t i = compact_index - off;
  // Keep entry compact_index as the new dummy (its index and term stay known).
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(i));
  entries_.front().data.clear();
  entries_.front().type = EntryType::kNormal;
  return Status::ok();
}

Status MemoryStorage::append(const std::vector<Entry>& ents) {
  if (ents.empty()) return Status::ok();
  for (std::size_t i = 1; i < ents.size(); ++i) {
    if (ents[i].index != ents[i - 1].index + 1) {
      return Status::invalid_argument("memory storage: appended entries are not contiguous");
    }
  }
  const Index first = entries_.front().index + 1;
  const Index last = ents.back().index;
  if (last < first) return Status::ok();
  std::size_t skip = 0;
  if (ents.front().index < first) skip = first - ents.front().index;
  const Index start = ents[skip].index;
  if (start > entries_.back().index + 1) {
    return Status::invalid_argument(
        fmt::format("memory storage: missing log entries [last: {}, append at: {}]",
                    entries_.back().index, start));
  }
  entries_.resize(start - entries_.front().index);
  entries_.insert(entries_.end(), ents.begin() + static_cast<std::ptrdiff_t>(skip), ents.end());
  return Status::ok();
}

}  // namespace kvcore::raft
