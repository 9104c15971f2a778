#include "raft/inflights.hpp"

namespace kvcore::raft {

void Inflights::add(Index index, std::uint64_t bytes) {
  items_.push_back({index, bytes});
  bytes_ += bytes;
}

void Inflights::free_le(Index to) {
  while (!items_.empty() && items_.front().index <= to) {
    bytes_ -= items_.front().bytes;
    items_.pop_front();
  }
}

void Inflights::free_first() {
  if (!items_.empty()) free_le(items_.front().index);
}

bool Inflights::full() const {
  return items_.size() >= max_count_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

void Inflights::reset() {
  items_.clear();
  bytes_ = 0;
}

}  // namespace kvcore::raft
