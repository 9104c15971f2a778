#include "raft/raft_log.hpp"

#include <algorithm>

namespace kvcore::raft {

using Kind = StorageErrorDetail::Kind;

RaftLog::RaftLog(const Storage& storage, std::uint64_t max_applying_bytes)
    : storage_(&storage), max_applying_bytes_(max_applying_bytes) {}

Result<RaftLog> RaftLog::create(const Storage& storage, std::uint64_t max_applying_bytes) {
  RaftLog log(storage, max_applying_bytes);
  KVCORE_ASSIGN_OR_RETURN(Index first, storage.first_index());
  KVCORE_ASSIGN_OR_RETURN(Index last, storage.last_index());
  log.unstable_ = Unstable(last + 1);
  log.committed_ = first - 1;
  log.applied_ = first - 1;
  return log;
}

Index RaftLog::first_index() const {
  if (auto i = unstable_.maybe_first_index()) return *i;
  auto r = storage_->first_index();
  return r.is_ok() ? *r : 1;
}

Index RaftLog::last_index() const {
  if (auto i = unstable_.maybe_last_index()) return *i;
  auto r = storage_->last_index();
  return r.is_ok() ? *r : 0;
}

Index RaftLog::last_stable_index() const {
  if (unstable_.snapshot()) return unstable_.snapshot()->metadata.index - 1;
  return unstable_.offset() - 1;
}

Term RaftLog::last_term() const { return term_or_zero(last_index()); }

Result<Term> RaftLog::term(Index i) const {
  if (auto t = unstable_.maybe_term(i)) return *t;
  const Index dummy = first_index() - 1;
  if (i < dummy) return storage_error(Kind::kCompacted);
  if (i > last_index()) return storage_error(Kind::kUnavailable);
  return storage_->term(i);
}

Term RaftLog::term_or_zero(Index i) const {
  auto t = term(i);
  return t.is_ok() ? *t : 0;
}

bool RaftLog::match_term(Index i, Term t) const {
  auto r = term(i);
  return r.is_ok() && *r == t;
}

bool RaftLog::is_up_to_date(Index lasti, Term t) const {
  const Term lt = last_term();
  return t > lt || (t == lt && lasti >= last_index());
}

std::optional<Index> RaftLog::maybe_append(Index index, Term log_term, Index committed,
                                           const std::vector<Entry>& ents) {
  if (!match_term(index, log_term)) return std::nullopt;
  const Index last_new = index + ents.size();
  const Index ci = find_conflict(ents);
  if (ci != 0) {
    // A conflict at or below the commit index would mean a committed entry
    // differs from the leader's log: impossible from a correct leader, so
    // the append is refused rather than trusted.
    if (ci <= committed_) return std::nullopt;
    append({ents.begin() + static_cast<std::ptrdiff_t>(ci - (index + 1)), ents.end()});
  }
  commit_to(std::min(committed, last_new));
  return last_new;
}

Index RaftLog::append(const std::vector<Entry>& ents) {
  if (ents.empty() || ents.front().index <= committed_) return last_index();
  unstable_.truncate_and_append(ents);
  return last_index();
}

Index RaftLog::find_conflict(const std::vector<Entry>& ents) const {
  for (const auto& e : ents) {
    if (!match_term(e.index, e.term)) return e.index;
  }
  return 0;
}

std::pair<Index, Term> RaftLog::find_conflict_by_term(Index index, Term term) const {
  if (index > last_index()) return {index, 0};
  while (true) {
    auto t = this->term(index);
    if (!t.is_ok()) return {index, 0};
    if (*t <= term) return {index, *t};
    --index;
  }
}

Status RaftLog::check_bounds(Index lo, Index hi) const {
  if (lo > hi) return Status::invalid_argument("raft log: invalid slice");
  if (lo < first_index()) return storage_error(Kind::kCompacted);
  if (hi > last_index() + 1) return storage_error(Kind::kUnavailable);
  return Status::ok();
}

Result<std::vector<Entry>> RaftLog::entries(Index lo, std::uint64_t max_bytes) const {
  if (lo > last_index()) return std::vector<Entry>{};
  return slice(lo, last_index() + 1, max_bytes);
}

Result<std::vector<Entry>> RaftLog::slice(Index lo, Index hi, std::uint64_t max_bytes) const {
  KVCORE_RETURN_IF_ERROR(check_bounds(lo, hi));
  std::vector<Entry> out;
  if (lo == hi) return out;
  const Index off = unstable_.offset();
  if (lo < off) {
    KVCORE_ASSIGN_OR_RETURN(out, storage_->entries(lo, std::min(hi, off), max_bytes));
    if (out.empty()) return storage_error(Kind::kUnavailable);
    // Storage stopped early because of the size limit: done.
    if (out.back().index + 1 < std::min(hi, off)) return out;
  }
  if (hi > off) {
    const Index from = std::max(lo, off);
    std::uint64_t bytes = 0;
    for (const auto& e : out) bytes += e.byte_size();
    for (Index i = from; i < hi; ++i) {
      const Entry& e = unstable_.entries()[i - off];
      bytes += e.byte_size();
      if (!out.empty() && bytes > max_bytes) break;
      out.push_back(e);
    }
  }
  return out;
}

Result<Snapshot> RaftLog::snapshot() const {
  if (unstable_.snapshot()) return *unstable_.snapshot();
  return storage_->snapshot();
}

bool RaftLog::maybe_commit(Index max_index, Term t) {
  if (max_index > committed_ && term_or_zero(max_index) == t) {
    commit_to(max_index);
    return true;
  }
  return false;
}

void RaftLog::commit_to(Index to) {
  // Never beyond the log: a commit index is only meaningful for entries held.
  if (committed_ < to) committed_ = std::max(committed_, std::min(to, last_index()));
}

void RaftLog::applied_to(Index i) {
  if (i == 0 || i < applied_) return;
  applied_ = std::min(i, committed_);
}

void RaftLog::restore(const Snapshot& s) {
  committed_ = s.metadata.index;
  unstable_.restore(s);
}

bool RaftLog::has_next_committed_entries() const {
  if (has_pending_snapshot()) return false;
  const Index lo = std::max(applied_ + 1, first_index());
  return committed_ + 1 > lo;
}

std::vector<Entry> RaftLog::next_committed_entries() const {
  if (!has_next_committed_entries()) return {};
  const Index lo = std::max(applied_ + 1, first_index());
  auto r = slice(lo, committed_ + 1, max_applying_bytes_);
  return r.is_ok() ? std::move(r).value() : std::vector<Entry>{};
}

}  // namespace kvcore::raft
