#include "raftlog/log_batch.hpp"

#include "raftlog/format.hpp"
#include "util/coding.hpp"

namespace kvcore::raftlog {

void LogBatch::put_op(std::uint8_t op, std::uint64_t region) {
  payload_.push_back(static_cast<char>(op));
  util::put_varint64(payload_, region);
  ++ops_;
}

Status LogBatch::append(std::uint64_t region, std::span<const raft::Entry> entries) {
  if (entries.empty()) return Status::ok();
  if (entries.front().index == 0) {
    return Status::invalid_argument("raft log batch: entry index 0");
  }
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index != entries[i - 1].index + 1) {
      return Status::invalid_argument("raft log batch: appended entries are not consecutive");
    }
  }
  put_op(static_cast<std::uint8_t>(OpType::kAppend), region);
  util::put_varint64(payload_, entries.front().index);
  util::put_varint64(payload_, entries.size());
  for (const auto& e : entries) encode_entry(payload_, e);
  return Status::ok();
}

void LogBatch::rewrite_entries(std::uint64_t region, std::span<const raft::Entry> entries) {
  put_op(static_cast<std::uint8_t>(OpType::kRewriteEntries), region);
  util::put_varint64(payload_, entries.empty() ? 1 : entries.front().index);
  util::put_varint64(payload_, entries.size());
  for (const auto& e : entries) encode_entry(payload_, e);
}

void LogBatch::set_hard_state(std::uint64_t region, const raft::HardState& hs) {
  put_op(static_cast<std::uint8_t>(OpType::kHardState), region);
  util::put_varint64(payload_, hs.term);
  util::put_varint64(payload_, hs.vote);
  util::put_varint64(payload_, hs.commit);
}

void LogBatch::put_state(std::uint64_t region, std::string_view key, std::string_view value) {
  put_op(static_cast<std::uint8_t>(OpType::kPutState), region);
  util::put_length_prefixed(payload_, key);
  util::put_length_prefixed(payload_, value);
}

void LogBatch::delete_state(std::uint64_t region, std::string_view key) {
  put_op(static_cast<std::uint8_t>(OpType::kDeleteState), region);
  util::put_length_prefixed(payload_, key);
}

void LogBatch::compact_to(std::uint64_t region, raft::Index index) {
  put_op(static_cast<std::uint8_t>(OpType::kCompact), region);
  util::put_varint64(payload_, index);
}

void LogBatch::clean_region(std::uint64_t region) {
  put_op(static_cast<std::uint8_t>(OpType::kClean), region);
}

}  // namespace kvcore::raftlog
