// kvcore::raftlog::RaftLogEngine: the detached raft log engine of a store.
// It keeps, for many raft groups (regions, keyed by id), their log entries,
// hard state and small named state records (region metadata, apply state)
// in its own directory, apart from user data, as append-only segment files
// of checksummed records plus an in-memory index.
//
// Writes: write() takes a LogBatch (any number of regions) and appends it as
// one record; a synced write returns after fdatasync. Concurrent write()
// calls are group-committed: the first caller in line takes the batches
// queued behind it, writes them all with one write and at most one
// fdatasync, and wakes the others (RocksDB's write-thread scheme). So a raft
// poller thread should put all its ready regions into one batch, and several
// pollers still share fsyncs.
//
// Durability: an acknowledged synced batch survives a crash. An unsynced
// batch may be lost, together with later unsynced ones, never partially. On
// open, a torn or damaged record at the tail of the newest segment (no sound
// record follows it) is taken as the leftover of a crash and cut away (with
// a warning); damage anywhere else is Corruption naming the file and offset.
//
// Space: purge() deletes the oldest segments once nothing live remains in
// them; state records, hard states and small logs still living there are
// first rewritten into the newest segment. Deletion only ever removes a
// prefix of the segments, so the clean/compact/delete records in a deleted
// segment only ever shadowed data that is deleted with it.
//
// Thread-safety: all methods may be called concurrently. Reads take a shared
// lock on the index and read entry data with pread outside it; they see
// every write that has returned.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/raft/types.hpp"
#include "kvcore/status.hpp"
#include "raftlog/log_batch.hpp"
#include "raftlog/memtable.hpp"
#include "raftlog/segment.hpp"
#include "runtime/disk.hpp"

namespace kvcore::raftlog {

struct RaftLogOptions {
  // Create the directory when it does not exist (else open fails NotFound).
  bool create_if_missing = true;
  // A segment is closed and a new one started once a write would take it
  // past this size. Larger means fewer files and coarser purges; a batch
  // bigger than this gets a segment of its own.
  std::uint64_t segment_bytes = std::uint64_t{128} << 20;
  // purge() moves a region's whole live log out of old segments when its
  // entries take at most this many bytes; a bigger log keeps its oldest
  // segment (and all newer ones) alive until it is compacted.
  std::uint64_t rewrite_region_bytes = std::uint64_t{256} << 10;
  // At most this many entry bytes are rewritten by one purge() call.
  std::uint64_t rewrite_budget_bytes = std::uint64_t{16} << 20;
  // The disk every segment sync, creation and removal goes through: a store
  // passes its runtime's, so that a simulated crash drops what was not
  // synced. nullptr: the real disk. REQUIRES: outlives the engine.
  runtime::Disk* disk = nullptr;
};

class RaftLogEngine {
 public:
  // Opens (or creates) the engine in `dir` and replays its segments.
  // FailedPrecondition when another engine has the directory open;
  // InvalidArgument when the directory holds another store; Corruption when a
  // segment is damaged other than at the tail of the newest one.
  [[nodiscard]] static Result<std::unique_ptr<RaftLogEngine>> open(const std::string& dir,
                                                                   const RaftLogOptions& opts);
  ~RaftLogEngine();
  RaftLogEngine(const RaftLogEngine&) = delete;
  RaftLogEngine& operator=(const RaftLogEngine&) = delete;

  // Writes `batch` as one record; with `sync`, returns after it is on disk.
  // On success the batch is cleared. An empty batch is a no-op. After an I/O
  // failure the engine refuses further writes (the file's tail is unknown):
  // every later write returns that error, and the store must be reopened.
  [[nodiscard]] Status write(LogBatch& batch, bool sync);

  // Entries [lo, hi) of `region`, stopping before max_bytes (counted with
  // Entry::byte_size()) but always at least one when lo < hi; the contract of
  // raft::Storage::entries. A raft::storage_error kCompacted when lo is
  // below the first index, kUnavailable when hi is past last index + 1 or the
  // region has no entries; Corruption or IOError when a read fails.
  [[nodiscard]] Result<std::vector<raft::Entry>> entries(std::uint64_t region, raft::Index lo,
                                                         raft::Index hi,
                                                         std::uint64_t max_bytes) const;
  // The term of entry `index` (errors as entries()).
  [[nodiscard]] Result<raft::Term> term(std::uint64_t region, raft::Index index) const;
  // The first and last index of `region`'s entries; nullopt when it has none.
  [[nodiscard]] std::optional<raft::Index> first_index(std::uint64_t region) const;
  [[nodiscard]] std::optional<raft::Index> last_index(std::uint64_t region) const;
  [[nodiscard]] std::optional<raft::HardState> hard_state(std::uint64_t region) const;
  // The state record `key` of `region`; nullopt when absent.
  [[nodiscard]] Result<std::optional<std::string>> get_state(std::uint64_t region,
                                                             std::string_view key) const;
  // Regions holding any entry, hard state or state record, ascending.
  [[nodiscard]] std::vector<std::uint64_t> regions() const;

  // Rewrites what still lives in old segments into the newest one, then
  // deletes the old segments that hold nothing live. Serialized with writes.
  [[nodiscard]] Status purge();

  // Figures, for tests and metrics.
  [[nodiscard]] std::size_t segments() const;        // segment files
  [[nodiscard]] std::uint64_t bytes() const;         // their total size
  [[nodiscard]] std::uint64_t live_entries() const;  // over all regions
  [[nodiscard]] std::uint64_t entry_count(std::uint64_t region) const;
  [[nodiscard]] std::uint64_t fsyncs() const noexcept { return fsyncs_.load(); }
  // Write groups (one file write each) and batches written through write().
  [[nodiscard]] std::uint64_t write_groups() const noexcept { return write_groups_.load(); }
  [[nodiscard]] std::uint64_t batches_written() const noexcept { return batches_.load(); }
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

 private:
  struct Writer;
  struct Read {
    std::shared_ptr<SegmentFile> segment;
    std::uint64_t offset = 0;
    std::vector<std::uint32_t> lengths;  // consecutive entries, back to back
    std::uint64_t bytes = 0;
  };

  RaftLogEngine(std::string dir, RaftLogOptions opts, int lock_fd);

  // Recovery (engine_open.cpp).
  [[nodiscard]] Status recover();
  [[nodiscard]] Status replay_segment(const std::shared_ptr<SegmentFile>& seg, bool last);

  // Writing (engine_write.cpp). REQUIRES: io_mu_ held.
  [[nodiscard]] Status write_batches_locked(const std::vector<const LogBatch*>& batches, bool sync);
  [[nodiscard]] Status rotate_locked();

  // Plans the preads of `locs` (consecutive entries from `first`).
  // REQUIRES: index_mu_ held (shared is enough).
  void plan_reads(const std::deque<EntryLocation>& locs, std::size_t begin, std::size_t end,
                  std::vector<Read>* reads) const;
  [[nodiscard]] static Status execute_reads(const std::vector<Read>& reads, raft::Index first,
                                            std::uint64_t max_bytes, std::vector<raft::Entry>* out);

  const std::string dir_;
  const RaftLogOptions opts_;
  const int lock_fd_;
  runtime::Disk& disk_;

  // Group commit: writers queue here; the front one leads a group.
  std::mutex queue_mu_;
  std::deque<Writer*> queue_;  // guarded by queue_mu_

  // Held by the group leader while it writes, and by purge().
  std::mutex io_mu_;
  Status failed_;                        // guarded by io_mu_
  std::shared_ptr<SegmentFile> active_;  // guarded by io_mu_

  mutable std::shared_mutex index_mu_;
  MemTable mem_;                                                // guarded by index_mu_
  std::map<std::uint64_t, std::shared_ptr<SegmentFile>> segs_;  // guarded by index_mu_

  std::atomic<std::uint64_t> fsyncs_{0};
  std::atomic<std::uint64_t> write_groups_{0};
  std::atomic<std::uint64_t> batches_{0};
};

}  // namespace kvcore::raftlog
