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

  // Inline: these sit on every step's path.
  // The first index, when only the snapshot knows it.
  [[nodiscard]] std::optional<Index> maybe_first_index() const {
    if (snapshot_) return snapshot_->metadata.index + 1;
    return std::nullopt;
  }
  // The last index when there are unstable entries or a snapshot.
  [[nodiscard]] std::optional<Index> maybe_last_index() const {
    if (!entries_.empty()) return offset_ + entries_.size() - 1;
    if (snapshot_) return snapshot_->metadata.index;
    return std::nullopt;
  }
  [[nodiscard]] std::optional<Term> maybe_term(Index i) const {
    if (i < offset_) {
      if (snapshot_ && snapshot_->metadata.index == i) return snapshot_->metadata.term;
      return std::nullopt;
    }
    if (i - offset_ >= entries_.size()) return std::nullopt;
    return entries_[i - offset_].term;
  }

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
