// kvcore::raftlog::LogBatch: the changes of one raft log engine write, for
// any number of regions. Operations apply in the order they were added, and
// the whole batch is written as one checksummed record, so after a crash it
// is either entirely present or entirely absent.
//
// The batch is encoded as operations are added (the encoding is what gets
// written), so adding costs one copy of the entry data and a write costs no
// further encoding.
//
// Thread-safety: not synchronized; one thread builds a batch, then hands it
// to RaftLogEngine::write().
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/raft/types.hpp"
#include "kvcore/status.hpp"

namespace kvcore::raftlog {

class LogBatch {
 public:
  LogBatch() = default;

  // Appends `entries` to `region`'s log. Entries at and after the first
  // index already in the log are replaced (raft's conflict rule); if the
  // first index leaves a gap after the log, or lies before its start, the
  // old entries are dropped and the log restarts at it.
  // InvalidArgument (and nothing added) when the indexes are not consecutive
  // or start at 0. An empty span adds nothing.
  [[nodiscard]] Status append(std::uint64_t region, std::span<const raft::Entry> entries);
  void set_hard_state(std::uint64_t region, const raft::HardState& hs);
  // Sets a small named record of `region` (region metadata, apply state...).
  void put_state(std::uint64_t region, std::string_view key, std::string_view value);
  void delete_state(std::uint64_t region, std::string_view key);
  // Drops `region`'s entries with index < `index` (log compaction).
  void compact_to(std::uint64_t region, raft::Index index);
  // Drops everything `region` holds: entries, hard state, state records.
  void clean_region(std::uint64_t region);

  // Appends every operation of `other` after this batch's own (the batch
  // encoding is a plain sequence of operations); `other` is left empty.
  void append_batch(LogBatch&& other) {
    if (payload_.empty()) {
      payload_.swap(other.payload_);
    } else {
      payload_ += other.payload_;
    }
    ops_ += other.ops_;
    other.clear();
  }

  [[nodiscard]] bool empty() const noexcept { return ops_ == 0; }
  // Bytes of the encoded batch (what the write adds to the log).
  [[nodiscard]] std::size_t byte_size() const noexcept { return payload_.size(); }
  [[nodiscard]] std::size_t op_count() const noexcept { return ops_; }
  void clear() noexcept {
    payload_.clear();
    ops_ = 0;
  }

  // The encoded operations (a kBatch record payload).
  [[nodiscard]] const std::string& payload() const noexcept { return payload_; }

 private:
  friend class RaftLogEngine;
  // Replaces `region`'s whole entry log with `entries` (purge's rewrite).
  void rewrite_entries(std::uint64_t region, std::span<const raft::Entry> entries);
  void put_op(std::uint8_t op, std::uint64_t region);

  std::string payload_;
  std::size_t ops_ = 0;
};

}  // namespace kvcore::raftlog
