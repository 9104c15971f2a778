// LmdbEngine: kvcore's storage engine over LMDB (a copy-on-write B+tree in one
// memory-mapped file). One LMDB environment per directory; the four column
// families are LMDB named databases ("default", "lock", "write", "raft").
//
// Durability. The environment runs with MDB_NOSYNC: a commit writes its pages
// with write(2) but does not fsync, so an unsynced write survives a process
// crash (the kernel holds the pages) but not a machine crash. A write with
// WriteOptions::sync, ingest() and flush() fsync the data file after the
// commit, which makes that commit and every earlier one durable. LMDB does not
// order its unsynced page writes, so a machine crash while unsynced commits
// are pending may leave the file damaged, not only stale (see MDB_NOSYNC in
// lmdb.h): applications that must survive power loss write with sync, or call
// flush() at the points they need.
//
// Limits. A key is 1 to max_key_size() bytes (511 on a stock build of LMDB):
// writing an empty or longer key is InvalidArgument. Such a key can never be
// stored, so reading or deleting one finds nothing. Values may be up to 4 GiB.
// One write (a batch, a delete_range, an ingest) is one LMDB transaction;
// LMDB spills the dirty pages of a very large one to the file as it goes,
// and in the rare case it cannot the write is ResourceExhausted (MDB_TXN_FULL).
//
// Map modes. With a fixed map (the map has lmdb_max_map_bytes from the open
// on, e.g. lmdb_initial_map_bytes == lmdb_max_map_bytes; it is only address
// space, the file grows with use) the map never moves: readers take no lock
// and iterators return views into the map. With a growable map it starts at
// lmdb_initial_map_bytes and doubles, up to lmdb_max_map_bytes, whenever a
// write fills it; the write is then retried from scratch, so callers never
// see MDB_MAP_FULL. In both modes a write past the maximum is
// ResourceExhausted. Growing remaps the file while snapshots and iterators
// stay open: every read then holds a shared "remap lock" that growth takes
// exclusively, iterators copy what they return out of the map, and an
// iterator re-positions its cursor after a remap.
//
// Figures. approximate_size() and approximate_keys() are exact and cost O(n)
// in the range (LMDB keeps no estimates); keys of a whole column family come
// from the B-tree header in O(1). compact_range() is a no-op (a B-tree needs
// no compaction; checkpoint() writes a compacted copy).
//
// Thread-safety: as kvcore::Engine. Writers are serialized by a mutex (LMDB
// has one writer at a time); readers never wait for writers, only, briefly,
// for a map growth. A directory may be open in one LmdbEngine at a time per
// process (FailedPrecondition otherwise), and by no other process.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sorted_file.hpp"
#include "kvcore/engine/types.hpp"
#include "kvcore/status.hpp"

struct MDB_cursor;

namespace kvcore {

namespace lmdb_detail {
struct Env;      // the environment, its locks and its pool of read transactions
struct ReadTxn;  // one read-only transaction, returned to the pool when destroyed
struct CursorCloser {
  void operator()(MDB_cursor* cursor) const noexcept;
};
}  // namespace lmdb_detail

class LmdbEngine {
 public:
  static constexpr std::string_view kName = "lmdb";

  // A cursor over one read transaction (its own, or its snapshot's). key()
  // and value() stay valid until the iterator moves, whatever the engine does
  // meanwhile: with a fixed map they are views into the map (its pages stay
  // put while the read transaction lives); with a growable one they are
  // copies (a growth may move the map).
  class Iterator {
   public:
    [[nodiscard]] bool valid() const { return valid_; }
    void seek(std::string_view key) { move(Move::kSeek, key); }
    void seek_for_prev(std::string_view key) { move(Move::kSeekForPrev, key); }
    void seek_to_first() { move(Move::kFirst, {}); }
    void seek_to_last() { move(Move::kLast, {}); }
    // With a fixed map, a step from a valid entry needs no lock, no staleness
    // check and only one bound: step_in_map().
    void next() {
      if (in_map_ && valid_) {
        step_in_map(true);
      } else {
        move(Move::kNext, {});
      }
    }
    void prev() {
      if (in_map_ && valid_) {
        step_in_map(false);
      } else {
        move(Move::kPrev, {});
      }
    }
    [[nodiscard]] std::string_view key() const {
      return in_map_ ? key_ : std::string_view(key_buf_);
    }
    [[nodiscard]] std::string_view value() const {
      return in_map_ ? value_ : std::string_view(value_buf_);
    }
    [[nodiscard]] Status status() const { return status_; }

   private:
    friend class LmdbEngine;
    enum class Move : std::uint8_t { kSeek, kSeekForPrev, kFirst, kLast, kNext, kPrev };
    Iterator(std::shared_ptr<lmdb_detail::Env> env, std::shared_ptr<lmdb_detail::ReadTxn> txn,
             CF cf, const IterOptions& opts, Status init);
    void move(Move how, std::string_view target);
    // REQUIRES: in_map_ && valid_. The fast path of next() and prev(): a
    // fixed map never moves or breaks, and a step forward from a key >= the
    // lower bound stays above it (backward: below the upper bound).
    void step_in_map(bool forward);

    std::shared_ptr<lmdb_detail::Env> env_;
    std::shared_ptr<lmdb_detail::ReadTxn> txn_;  // null when status_ is an error
    std::unique_ptr<MDB_cursor, lmdb_detail::CursorCloser> cursor_;
    std::uint64_t generation_ = 0;  // the map generation cursor_ was positioned in
    std::string lower_;
    std::string upper_;
    // The current entry: key_/value_ view the map when in_map_ (a fixed
    // map), else key_buf_/value_buf_ hold copies. key() picks per call, so a
    // moved Iterator never views a buffer of its old self.
    bool in_map_ = false;
    std::string_view key_;
    std::string_view value_;
    std::string key_buf_;
    std::string value_buf_;
    bool valid_ = false;
    Status status_;
  };

  // A read transaction: an immutable view of every column family, readable
  // from any thread at once. It pins the pages of its view (the data file
  // cannot reuse them) until it is destroyed, so do not keep one for hours.
  class Snapshot {
   public:
    using Iterator = LmdbEngine::Iterator;
    [[nodiscard]] Result<std::optional<std::string>> get(CF cf, std::string_view key) const;
    [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
        CF cf, std::span<const std::string_view> keys) const;
    [[nodiscard]] Iterator new_iterator(CF cf, const IterOptions& opts) const;

   private:
    friend class LmdbEngine;
    Snapshot(std::shared_ptr<lmdb_detail::Env> env, std::shared_ptr<lmdb_detail::ReadTxn> txn,
             Status init);
    std::shared_ptr<lmdb_detail::Env> env_;
    std::shared_ptr<lmdb_detail::ReadTxn> txn_;  // null when status_ is an error
    Status status_;                              // why the read transaction could not begin
  };

  // Buffers operations; LmdbEngine::write() applies them in order in one
  // write transaction. Keys are checked there, not here.
  class WriteBatch {
   public:
    void put(CF cf, std::string_view key, std::string_view value) {
      ops_.push_back(Entry{Op::kPut, cf, std::string(key), std::string(value)});
      bytes_ += key.size() + value.size();
    }
    void delete_key(CF cf, std::string_view key) {
      ops_.push_back(Entry{Op::kDelete, cf, std::string(key), {}});
      bytes_ += key.size();
    }
    // A range with begin >= end (an empty end included) deletes nothing and
    // is not added.
    void delete_range(CF cf, std::string_view begin, std::string_view end) {
      if (begin >= end) return;
      ops_.push_back(Entry{Op::kDeleteRange, cf, std::string(begin), std::string(end)});
      bytes_ += begin.size() + end.size();
    }
    [[nodiscard]] std::size_t count() const { return ops_.size(); }
    [[nodiscard]] std::size_t byte_size() const { return bytes_; }
    void clear() {
      ops_.clear();
      bytes_ = 0;
    }

   private:
    friend class LmdbEngine;
    enum class Op : std::uint8_t { kPut, kDelete, kDeleteRange };
    struct Entry {
      Op op;
      CF cf;
      std::string key;
      std::string value;  // kPut: the value; kDeleteRange: the end key
    };
    std::vector<Entry> ops_;
    std::size_t bytes_ = 0;
  };

  // Writes kvcore's sorted-run file (lib/engine/sorted_file.hpp); put()
  // rejects keys LMDB cannot store, so ingest() never fails on them.
  class SstWriter {
   public:
    [[nodiscard]] Status put(std::string_view key, std::string_view value);
    [[nodiscard]] Result<SstFileInfo> finish() { return file_.finish(); }

   private:
    friend class LmdbEngine;
    SstWriter(engine::SortedFileWriter file, std::size_t max_key)
        : file_(std::move(file)), max_key_(max_key) {}
    engine::SortedFileWriter file_;
    std::size_t max_key_;
  };

  // Opens (or creates) the store at `path`. Corruption when data.mdb is
  // damaged, or missing or shorter than its two meta pages in a directory
  // that is not new (LMDB would silently start an empty store there).
  [[nodiscard]] static Result<std::unique_ptr<LmdbEngine>> open(const std::string& path,
                                                                const EngineOptions& opts);
  ~LmdbEngine();
  LmdbEngine(const LmdbEngine&) = delete;
  LmdbEngine& operator=(const LmdbEngine&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

  [[nodiscard]] Result<std::optional<std::string>> get(CF cf, std::string_view key) const;
  [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
      CF cf, std::span<const std::string_view> keys) const;
  // Holds its own read transaction (a view of the engine now) for its life.
  [[nodiscard]] Iterator new_iterator(CF cf, const IterOptions& opts) const;

  [[nodiscard]] WriteBatch new_write_batch() const { return {}; }
  [[nodiscard]] Status write(const WriteBatch& batch, const WriteOptions& opts);
  [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const;
  [[nodiscard]] Status delete_range(CF cf, KeyRange range);

  [[nodiscard]] Result<SstWriter> new_sst_writer(const std::string& path) const;
  // Verifies every file, then adds all of them in one write transaction
  // (appending in bulk where keys sort after the column family's last key),
  // and syncs.
  [[nodiscard]] Status ingest(CF cf, std::span<const std::string> files);

  // Exact: walks the range (O(n)), summing key and value bytes.
  [[nodiscard]] Result<std::uint64_t> approximate_size(CF cf, KeyRange range) const;
  // Exact: walks the range (O(n)); O(1) for a whole column family.
  [[nodiscard]] Result<std::uint64_t> approximate_keys(CF cf, KeyRange range) const;
  // Fsyncs the data file: every commit so far becomes durable.
  [[nodiscard]] Status flush();
  // A no-op: a B-tree has nothing to compact.
  [[nodiscard]] Status compact_range(CF, KeyRange) { return {}; }
  // Only total_bytes is present: the pages in use (last page number + 1)
  // times the page size.
  [[nodiscard]] EngineHealth health() const;
  // Writes a compacted copy of the environment to `dir` (which must not
  // exist; AlreadyExists otherwise) from one read transaction, syncs it and
  // marks it as an lmdb store.
  [[nodiscard]] Status checkpoint(const std::string& dir);

  // The longest key LMDB accepts (mdb_env_get_maxkeysize).
  [[nodiscard]] std::size_t max_key_size() const;
  // The current size of the memory map; it grows as writes need.
  [[nodiscard]] std::size_t map_bytes() const;

 private:
  LmdbEngine(std::string path, std::shared_ptr<lmdb_detail::Env> env);

  std::string path_;
  std::shared_ptr<lmdb_detail::Env> env_;
};

}  // namespace kvcore
