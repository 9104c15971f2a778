#include "raftlog/storage.hpp"

#include <fmt/format.h>

#include <limits>

#include "util/coding.hpp"

namespace kvcore::raftlog {

using Kind = raft::StorageErrorDetail::Kind;

namespace {

void put_ids(std::string& out, const std::vector<raft::NodeId>& ids) {
  util::put_varint64(out, ids.size());
  for (raft::NodeId id : ids) util::put_varint64(out, id);
}

bool get_ids(std::string_view& in, std::vector<raft::NodeId>* ids) {
  std::uint64_t n = 0;
  if (!util::get_varint64(in, n) || n > in.size()) return false;
  ids->resize(n);
  for (auto& id : *ids) {
    if (!util::get_varint64(in, id)) return false;
  }
  return true;
}

bool get_conf_state(std::string_view& in, raft::ConfState* cs) {
  if (!get_ids(in, &cs->voters) || !get_ids(in, &cs->learners) ||
      !get_ids(in, &cs->voters_outgoing) || !get_ids(in, &cs->learners_next) || in.empty()) {
    return false;
  }
  const char flag = in.front();
  if (flag != 0 && flag != 1) return false;
  cs->auto_leave = flag == 1;
  in.remove_prefix(1);
  return true;
}

}  // namespace

std::string encode_conf_state(const raft::ConfState& cs) {
  std::string out;
  put_ids(out, cs.voters);
  put_ids(out, cs.learners);
  put_ids(out, cs.voters_outgoing);
  put_ids(out, cs.learners_next);
  out.push_back(cs.auto_leave ? 1 : 0);
  return out;
}

Result<raft::ConfState> decode_conf_state(std::string_view in) {
  raft::ConfState cs;
  if (!get_conf_state(in, &cs) || !in.empty()) {
    return Status::corruption("raft log: malformed conf state record");
  }
  return cs;
}

std::string encode_snapshot_metadata(const raft::SnapshotMetadata& m) {
  std::string out;
  util::put_varint64(out, m.index);
  util::put_varint64(out, m.term);
  out += encode_conf_state(m.conf_state);
  return out;
}

Result<raft::SnapshotMetadata> decode_snapshot_metadata(std::string_view in) {
  raft::SnapshotMetadata m;
  if (!util::get_varint64(in, m.index) || !util::get_varint64(in, m.term) ||
      !get_conf_state(in, &m.conf_state) || !in.empty()) {
    return Status::corruption("raft log: malformed snapshot metadata record");
  }
  return m;
}

Result<RaftLogStorage::Truncated> RaftLogStorage::truncated() const {
  KVCORE_ASSIGN_OR_RETURN(auto rec, engine_.get_state(region_, kTruncatedKey));
  Truncated t;
  if (!rec) return t;
  std::string_view in(*rec);
  if (!util::get_varint64(in, t.index) || !util::get_varint64(in, t.term) || !in.empty()) {
    return Status::corruption(
        fmt::format("raft log: malformed truncated state of region {}", region_));
  }
  return t;
}

Result<raft::SnapshotMetadata> RaftLogStorage::snapshot_metadata() const {
  KVCORE_ASSIGN_OR_RETURN(auto rec, engine_.get_state(region_, kSnapshotKey));
  if (!rec) return raft::SnapshotMetadata{};
  return decode_snapshot_metadata(*rec);
}

Result<raft::RaftState> RaftLogStorage::initial_state() const {
  raft::RaftState st;
  st.hard_state = engine_.hard_state(region_).value_or(raft::HardState{});
  KVCORE_ASSIGN_OR_RETURN(auto cs, engine_.get_state(region_, kConfStateKey));
  if (cs) {
    KVCORE_ASSIGN_OR_RETURN(st.conf_state, decode_conf_state(*cs));
  }
  return st;
}

Result<raft::Index> RaftLogStorage::first_index() const {
  KVCORE_ASSIGN_OR_RETURN(Truncated t, truncated());
  return t.index + 1;
}

Result<raft::Index> RaftLogStorage::last_index() const {
  KVCORE_ASSIGN_OR_RETURN(Truncated t, truncated());
  const auto last = engine_.last_index(region_);
  return last && *last > t.index ? *last : t.index;
}

Result<std::vector<raft::Entry>> RaftLogStorage::entries(raft::Index lo, raft::Index hi,
                                                         std::uint64_t max_bytes) const {
  KVCORE_ASSIGN_OR_RETURN(Truncated t, truncated());
  if (lo <= t.index) return raft::storage_error(Kind::kCompacted);
  KVCORE_ASSIGN_OR_RETURN(raft::Index last, last_index());
  if (hi > last + 1 || lo > hi) return raft::storage_error(Kind::kUnavailable);
  if (lo == hi) return std::vector<raft::Entry>{};
  return engine_.entries(region_, lo, hi, max_bytes);
}

Result<raft::Term> RaftLogStorage::term(raft::Index i) const {
  KVCORE_ASSIGN_OR_RETURN(Truncated t, truncated());
  if (i < t.index) return raft::storage_error(Kind::kCompacted);
  if (i == t.index) return t.term;
  return engine_.term(region_, i);
}

Result<raft::Snapshot> RaftLogStorage::snapshot() const {
  raft::Snapshot snap;
  KVCORE_ASSIGN_OR_RETURN(snap.metadata, snapshot_metadata());
  // As in MemoryStorage, the membership is one: a later set_conf_state()
  // shows in the snapshot's metadata too.
  KVCORE_ASSIGN_OR_RETURN(raft::RaftState st, initial_state());
  snap.metadata.conf_state = std::move(st.conf_state);
  return snap;
}

void RaftLogStorage::set_hard_state(LogBatch& batch, const raft::HardState& hs) const {
  batch.set_hard_state(region_, hs);
}

void RaftLogStorage::set_conf_state(LogBatch& batch, const raft::ConfState& cs) const {
  batch.put_state(region_, kConfStateKey, encode_conf_state(cs));
}

Status RaftLogStorage::append(LogBatch& batch, std::span<const raft::Entry> ents) const {
  if (ents.empty()) return Status::ok();
  for (std::size_t i = 1; i < ents.size(); ++i) {
    if (ents[i].index != ents[i - 1].index + 1) {
      return Status::invalid_argument("raft log storage: appended entries are not contiguous");
    }
  }
  KVCORE_ASSIGN_OR_RETURN(Truncated t, truncated());
  if (ents.back().index <= t.index) return Status::ok();
  if (ents.front().index <= t.index) ents = ents.subspan(t.index + 1 - ents.front().index);
  KVCORE_ASSIGN_OR_RETURN(raft::Index last, last_index());
  if (ents.front().index > last + 1) {
    return Status::invalid_argument(
        fmt::format("raft log storage: missing log entries [last: {}, append at: {}]", last,
                    ents.front().index));
  }
  return batch.append(region_, ents);
}

Status RaftLogStorage::compact(LogBatch& batch, raft::Index compact_index) const {
  KVCORE_ASSIGN_OR_RETURN(Truncated t, truncated());
  if (compact_index <= t.index) return raft::storage_error(Kind::kCompacted);
  KVCORE_ASSIGN_OR_RETURN(raft::Index last, last_index());
  if (compact_index > last) return raft::storage_error(Kind::kUnavailable);
  KVCORE_ASSIGN_OR_RETURN(raft::Term term, engine_.term(region_, compact_index));
  std::string rec;
  util::put_varint64(rec, compact_index);
  util::put_varint64(rec, term);
  batch.put_state(region_, kTruncatedKey, rec);
  batch.compact_to(region_, compact_index + 1);
  return Status::ok();
}

Result<raft::SnapshotMetadata> RaftLogStorage::create_snapshot(
    LogBatch& batch, raft::Index index, std::optional<raft::ConfState> cs) const {
  KVCORE_ASSIGN_OR_RETURN(raft::SnapshotMetadata meta, snapshot_metadata());
  if (index <= meta.index) return raft::storage_error(Kind::kSnapshotOutOfDate);
  KVCORE_ASSIGN_OR_RETURN(raft::Index last, last_index());
  if (index > last) return raft::storage_error(Kind::kUnavailable);
  KVCORE_ASSIGN_OR_RETURN(meta.term, term(index));
  meta.index = index;
  if (cs) {
    meta.conf_state = std::move(*cs);
    batch.put_state(region_, kConfStateKey, encode_conf_state(meta.conf_state));
  } else {
    KVCORE_ASSIGN_OR_RETURN(raft::RaftState st, initial_state());
    meta.conf_state = std::move(st.conf_state);
  }
  batch.put_state(region_, kSnapshotKey, encode_snapshot_metadata(meta));
  return meta;
}

Status RaftLogStorage::apply_snapshot(LogBatch& batch, const raft::SnapshotMetadata& meta) const {
  KVCORE_ASSIGN_OR_RETURN(raft::SnapshotMetadata cur, snapshot_metadata());
  if (meta.index <= cur.index && cur.index != 0) {
    return raft::storage_error(Kind::kSnapshotOutOfDate);
  }
  std::string rec;
  util::put_varint64(rec, meta.index);
  util::put_varint64(rec, meta.term);
  batch.compact_to(region_, std::numeric_limits<raft::Index>::max());
  batch.put_state(region_, kTruncatedKey, rec);
  batch.put_state(region_, kSnapshotKey, encode_snapshot_metadata(meta));
  batch.put_state(region_, kConfStateKey, encode_conf_state(meta.conf_state));
  return Status::ok();
}

}  // namespace kvcore::raftlog
