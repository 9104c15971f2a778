// The log of one node: stable entries in Storage followed by the Unstable
// tail, with the commit and applied indexes.
// Invariant: first_index()-1 <= applied_ <= committed_ <= last_index().
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "kvcore/raft/storage.hpp"
#include "raft/unstable.hpp"

namespace kvcore::raft {

class RaftLog {
 public:
  // Starts from the storage's state: committed and applied at the snapshot.
  static Result<RaftLog> create(const Storage& storage, std::uint64_t max_applying_bytes);

  [[nodiscard]] Index first_index() const;
  [[nodiscard]] Index last_index() const;
  // Last index of the entries already on stable storage.
  [[nodiscard]] Index last_stable_index() const;
  [[nodiscard]] Term last_term() const;
  // Term of entry i; an error when i is compacted or beyond the log.
  [[nodiscard]] Result<Term> term(Index i) const;
  // The term of i, or 0 when unknown.
  [[nodiscard]] Term term_or_zero(Index i) const;
  [[nodiscard]] bool match_term(Index i, Term t) const;
  // True when a log ending at (lasti, t) is at least as up to date as ours.
  [[nodiscard]] bool is_up_to_date(Index lasti, Term t) const;

  // Appends the entries following (index, log_term) when they match, truncating
  // a conflicting suffix; advances commit to min(committed, last new index).
  // Returns the last new index, or nullopt on mismatch.
  std::optional<Index> maybe_append(Index index, Term log_term, Index committed,
                                    const std::vector<Entry>& ents);
  // Appends entries after the last one. Returns the new last index.
  Index append(const std::vector<Entry>& ents);
  // The first index of ents that conflicts with the log or is new; 0 if none.
  [[nodiscard]] Index find_conflict(const std::vector<Entry>& ents) const;
  // The largest index <= index whose term <= term, with that term (the
  // fast back-off hint of a rejected append).
  [[nodiscard]] std::pair<Index, Term> find_conflict_by_term(Index index, Term term) const;

  // Entries [lo, last] bounded by max_bytes (at least one).
  [[nodiscard]] Result<std::vector<Entry>> entries(Index lo, std::uint64_t max_bytes) const;
  // Entries [lo, hi) bounded by max_bytes (at least one).
  [[nodiscard]] Result<std::vector<Entry>> slice(Index lo, Index hi, std::uint64_t max_bytes) const;
  [[nodiscard]] Result<Snapshot> snapshot() const;

  bool maybe_commit(Index max_index, Term term);
  void commit_to(Index to);
  void applied_to(Index i);
  void stable_to(Index i, Term t) { unstable_.stable_to(i, t); }
  void stable_snap_to(Index i) { unstable_.stable_snap_to(i); }
  void restore(const Snapshot& s);

  [[nodiscard]] bool has_pending_snapshot() const { return unstable_.snapshot().has_value(); }
  [[nodiscard]] bool has_next_committed_entries() const;
  [[nodiscard]] std::vector<Entry> next_committed_entries() const;
  [[nodiscard]] const std::vector<Entry>& unstable_entries() const { return unstable_.entries(); }
  [[nodiscard]] const std::optional<Snapshot>& unstable_snapshot() const {
    return unstable_.snapshot();
  }

  [[nodiscard]] Index committed() const { return committed_; }
  [[nodiscard]] Index applied() const { return applied_; }
  [[nodiscard]] const Storage& storage() const { return *storage_; }

 private:
  RaftLog(const Storage& storage, std::uint64_t max_applying_bytes);
  // REQUIRES first_index() <= lo <= hi <= last_index()+1, else an error.
  [[nodiscard]] Status check_bounds(Index lo, Index hi) const;

  const Storage* storage_;
  Unstable unstable_;
  Index committed_ = 0;
  Index applied_ = 0;
  std::uint64_t max_applying_bytes_;
};

}  // namespace kvcore::raft
