#include "raft/unstable.hpp"

#include <cassert>

namespace kvcore::raft {

void Unstable::stable_to(Index i, Term t) {
  auto gt = maybe_term(i);
  if (!gt) return;
  // Only when the entry at i was not overwritten since it was handed out, and
  // it is an entry (not the snapshot's index).
  if (*gt == t && i >= offset_) {
    entries_.erase(entries_.begin(),
                   entries_.begin() + static_cast<std::ptrdiff_t>(i + 1 - offset_));
    offset_ = i + 1;
  }
}

void Unstable::stable_snap_to(Index i) {
  if (snapshot_ && snapshot_->metadata.index == i) snapshot_.reset();
}

void Unstable::restore(const Snapshot& s) {
  offset_ = s.metadata.index + 1;
  entries_.clear();
  snapshot_ = s;
}

void Unstable::truncate_and_append(const std::vector<Entry>& ents) {
  if (ents.empty()) return;
  const Index after = ents.front().index;
  if (after == offset_ + entries_.size()) {
    entries_.insert(entries_.end(), ents.begin(), ents.end());
  } else if (after <= offset_) {
    // Replaces everything unstable; the stable part from `after` on is
    // superseded too (the log overrides storage above offset_).
    offset_ = after;
    entries_ = ents;
  } else {
    entries_.resize(after - offset_);
    entries_.insert(entries_.end(), ents.begin(), ents.end());
  }
}

std::vector<Entry> Unstable::slice(Index lo, Index hi) const {
  assert(offset_ <= lo && lo <= hi && hi <= offset_ + entries_.size());
  return {entries_.begin() + static_cast<std::ptrdiff_t>(lo - offset_),
          entries_.begin() + static_cast<std::ptrdiff_t>(hi - offset_)};
}

}  // namespace kvcore::raft
