// The append messages in flight to one follower in the replicate state,
// bounded by count and by bytes: the flow-control window of a pipeline.
// Invariant: indexes are increasing; bytes_ is the sum of their sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "kvcore/raft/types.hpp"

namespace kvcore::raft {

class Inflights {
 public:
  Inflights(std::size_t max_count, std::uint64_t max_bytes)
      : max_count_(max_count), max_bytes_(max_bytes) {}

  // Records a message whose last entry is `index` carrying `bytes`.
  // REQUIRES !full() and index greater than every index recorded.
  void add(Index index, std::uint64_t bytes);
  // Frees every message whose last index is <= to (acknowledged).
  void free_le(Index to);
  void free_first();
  [[nodiscard]] bool full() const;
  [[nodiscard]] std::size_t count() const { return items_.size(); }
  [[nodiscard]] std::uint64_t bytes() const { return bytes_; }
  void reset();

 private:
  struct Item {
    Index index;
    std::uint64_t bytes;
  };
  std::deque<Item> items_;
  std::uint64_t bytes_ = 0;
  std::size_t max_count_;
  std::uint64_t max_bytes_;  // 0: no limit
};

}  // namespace kvcore::raft
