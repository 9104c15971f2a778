// RaftLogEngine: group-committed writes, segment rotation and purge.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include <fmt/format.h>

#include "engine/fs.hpp"
#include "raftlog/engine.hpp"
#include "raftlog/format.hpp"
#include "util/log.hpp"

namespace kvcore::raftlog {

// A caller of write() waiting in the queue.
struct RaftLogEngine::Writer {
  const LogBatch* batch = nullptr;
  bool sync = false;
  bool done = false;  // guarded by queue_mu_
  Status status;      // guarded by queue_mu_
  std::condition_variable cv;
};

Status RaftLogEngine::write(LogBatch& batch, bool sync) {
  if (batch.empty()) return Status::ok();
  Writer self;
  self.batch = &batch;
  self.sync = sync;

  std::unique_lock lock(queue_mu_);
  queue_.push_back(&self);
  self.cv.wait(lock, [&] { return self.done || queue_.front() == &self; });
  if (self.done) {
    if (self.status.is_ok()) batch.clear();
    return self.status;
  }

  // Leader: everything queued now (this writer first) goes in one write.
  const std::vector<Writer*> group(queue_.begin(), queue_.end());
  lock.unlock();
  std::vector<const LogBatch*> batches;
  batches.reserve(group.size());
  bool any_sync = false;
  for (const Writer* w : group) {
    batches.push_back(w->batch);
    any_sync = any_sync || w->sync;
  }
  Status s;
  {
    std::lock_guard io(io_mu_);
    s = write_batches_locked(batches, any_sync);
  }
  batches_.fetch_add(group.size());

  lock.lock();
  for (Writer* w : group) {
    queue_.pop_front();
    if (w == &self) continue;
    w->status = s;
    w->done = true;
    w->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  lock.unlock();
  if (s.is_ok()) batch.clear();
  return s;
}

Status RaftLogEngine::rotate_locked() {
  // The old segment must be complete on disk before a newer one exists:
  // recovery only forgives damage at the tail of the newest segment.
  KVCORE_RETURN_IF_ERROR(active_->sync());
  fsyncs_.fetch_add(1);
  KVCORE_ASSIGN_OR_RETURN(auto seg, SegmentFile::create(dir_, active_->id() + 1, disk_));
  fsyncs_.fetch_add(1);
  {
    std::unique_lock lock(index_mu_);
    segs_.emplace(seg->id(), seg);
  }
  active_ = std::move(seg);
  return Status::ok();
}

Status RaftLogEngine::write_batches_locked(const std::vector<const LogBatch*>& batches, bool sync) {
  if (!failed_.is_ok()) return failed_;
  // Decoding our own encoding cannot fail; doing it before touching the file
  // keeps even a bug from leaving a half-applied index.
  std::vector<std::vector<Op>> decoded;
  decoded.reserve(batches.size());
  std::uint64_t total = 0;
  for (const LogBatch* b : batches) {
    auto ops = decode_batch(b->payload());
    if (!ops.is_ok()) return Status::internal(ops.status().message());
    decoded.push_back(std::move(*ops));
    total += kRecordHeaderSize + b->payload().size();
  }
  if (active_->size() > kSegmentHeaderSize && active_->size() + total > opts_.segment_bytes) {
    Status s = rotate_locked();
    if (!s.is_ok()) {
      failed_ = s;
      return s;
    }
  }

  std::string buf;
  buf.reserve(total);
  std::vector<std::uint64_t> payload_offsets;
  payload_offsets.reserve(batches.size());
  const std::uint64_t base = active_->size();
  for (const LogBatch* b : batches) {
    buf += encode_record_header(RecordType::kBatch, b->payload());
    payload_offsets.push_back(base + buf.size());
    buf += b->payload();
  }
  Status s = active_->append(buf);
  if (s.is_ok() && sync) {
    s = active_->sync();
    fsyncs_.fetch_add(1);
  }
  if (!s.is_ok()) {
    // The file's tail is now unknown (and after a failed fsync the page cache
    // may lie), so no later write may be acknowledged on top of it.
    KVCORE_LOG_ERROR("raft log: write failed, refusing further writes: {}", s.to_string());
    failed_ = s;
    return s;
  }
  write_groups_.fetch_add(1);

  std::unique_lock lock(index_mu_);
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    for (const Op& op : decoded[i]) mem_.apply(op, active_->id(), payload_offsets[i]);
  }
  return Status::ok();
}

Status RaftLogEngine::purge() {
  std::lock_guard io(io_mu_);
  if (!failed_.is_ok()) return failed_;
  const std::uint64_t active = active_->id();

  struct Move {
    std::uint64_t region = 0;
    raft::Index first = 0;
    std::vector<Read> reads;
  };
  LogBatch rewrite;
  std::vector<Move> moves;
  std::uint64_t cut = active;  // segments below `cut` are deleted
  std::uint64_t oldest = 0;
  {
    std::shared_lock lock(index_mu_);
    oldest = segs_.begin()->first;
    if (oldest >= active) return Status::ok();
    // Logs too big to move pin their oldest segment; small ones are moved
    // oldest first while the budget lasts.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> small;  // (segment, region)
    for (const auto& [id, r] : mem_.regions()) {
      if (r.entries.empty() || r.entries.front().segment >= active) continue;
      if (r.entry_bytes > opts_.rewrite_region_bytes) {
        cut = std::min(cut, r.entries.front().segment);
      } else {
        small.emplace_back(r.entries.front().segment, id);
      }
    }
    std::sort(small.begin(), small.end());
    std::uint64_t budget = 0;
    for (const auto& [seg, id] : small) {
      if (seg >= cut) break;
      budget += mem_.find(id)->entry_bytes;
      if (budget > opts_.rewrite_budget_bytes) {
        cut = seg;
        break;
      }
    }
    if (cut <= oldest) return Status::ok();

    for (const auto& [id, r] : mem_.regions()) {
      if (r.oldest_segment() >= cut) continue;
      if (r.hard_state && r.hard_state_segment < cut) rewrite.set_hard_state(id, *r.hard_state);
      for (const auto& [key, rec] : r.states) {
        if (rec.segment < cut) rewrite.put_state(id, key, rec.value);
      }
      if (!r.entries.empty() && r.entries.front().segment < cut) {
        Move m;
        m.region = id;
        m.first = r.first_index;
        plan_reads(r.entries, 0, r.entries.size(), &m.reads);
        moves.push_back(std::move(m));
      }
    }
  }

  // The index cannot change meanwhile: every writer needs io_mu_.
  for (const Move& m : moves) {
    std::vector<raft::Entry> ents;
    KVCORE_RETURN_IF_ERROR(
        execute_reads(m.reads, m.first, std::numeric_limits<std::uint64_t>::max(), &ents));
    rewrite.rewrite_entries(m.region, ents);
  }
  if (!rewrite.empty()) {
    KVCORE_LOG_INFO("raft log: purge rewrites {} bytes out of segments below {}",
                    rewrite.byte_size(), cut);
    KVCORE_RETURN_IF_ERROR(write_batches_locked({&rewrite}, true));
  }

  std::vector<std::shared_ptr<SegmentFile>> dead;
  {
    std::unique_lock lock(index_mu_);
    while (!segs_.empty() && segs_.begin()->first < cut) {
      dead.push_back(std::move(segs_.begin()->second));
      segs_.erase(segs_.begin());
    }
  }
  // Oldest first, so a crash midway leaves a deleted prefix; should the file
  // system persist the unlinks out of order, recovery recognises the hole.
  for (const auto& seg : dead) {
    if (::unlink(seg->path().c_str()) != 0) {
      return engine::errno_status("cannot remove raft log segment", seg->path(), errno);
    }
    disk_.removed(seg->path());
  }
  return sync_dir(dir_);
}

}  // namespace kvcore::raftlog
