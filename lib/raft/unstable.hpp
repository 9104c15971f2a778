// The part of the log not yet on stable storage: an optional incoming
// snapshot followed by entries. Invariant: entries_[i].index == offset_ + i,
// and when a snapshot is present offset_ == snapshot index + 1.
#pragma once

#include <optional>
#include <vector>

#include "kvcore/raft/types.hpp"

namespace kvcore::raft {

class Unstable {
 public:
  explicit Unstable(Index offset = 1) : offset_(offset) {}

  // The first index, when only the snapshot knows it.
  [[nodiscard]] std::optional<Index> maybe_first_index() const;
  // The last index when there are unstable entries or a snapshot.
  [[nodiscard]] std::optional<Index> maybe_last_index() const;
  [[nodiscard]] std::optional<Term> maybe_term(Index i) const;

  // Entries up to (i, t) reached stable storage.
  void stable_to(Index i, Term t);
  void stable_snap_to(Index i);
  void restore(const Snapshot& s);
  // Appends, truncating any suffix that conflicts with ents.front().
  void truncate_and_append(const std::vector<Entry>& ents);
  // Entries [lo, hi). REQUIRES offset_ <= lo <= hi <= offset_ + entries_.size().
  [[nodiscard]] std::vector<Entry> slice(Index lo, Index hi) const;

  [[nodiscard]] const std::vector<Entry>& entries() const { return entries_; }
  [[nodiscard]] const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  [[nodiscard]] Index offset() const { return offset_; }

 private:
  std::optional<Snapshot> snapshot_;
  std::vector<Entry> entries_;
  Index offset_;
};

}  // namespace kvcore::raft
