// LevelEngine: kvcore's storage engine on LevelDB (Debian's 1.23).
//
// Layout. LevelDB has one keyspace, so each column family is a one-byte key
// prefix (the CF index, 0..3) on a single DB. Every key the engine stores is
// `prefix + user key`; iterators translate their bounds to prefixed keys and
// enforce them on every move, so they never yield a key of another CF.
//
// Thread-safety: as kvcore::Engine. All writes (write(), delete_range(),
// ingest()) go through one write gate: plain batches take it shared (LevelDB
// serialises and group-commits them itself), a batch holding delete_range
// takes it exclusive, so the range is expanded from a view no other kvcore
// writer can change before the expansion is written.
//
// What LevelDB lacks, and how the engine makes up for it:
// - delete_range: the batch keeps ranges in order with its point ops; write()
//   expands each range into point deletes of the keys that exist at write time,
//   including keys put earlier in the same batch, and writes everything as one
//   LevelDB batch (atomic). A huge range makes a huge batch.
// - ingest: files are kvcore's sorted-run files (engine/sorted_file.hpp). All
//   files are verified before anything is applied; the entries are then
//   written in batches of about 4 MiB, each one synced (LevelDB does not sync
//   a log it rotates away from, so syncing only the last batch would not make
//   the earlier ones durable). Ingestion is NOT atomic across a crash
//   mid-ingest (a prefix of the entries may survive), but it is idempotent:
//   re-running the same ingest converges to the same state.
// - flush: LevelDB has no public flush. flush() compacts an empty sentinel
//   range outside every CF; DB::CompactRange always writes the memtable to a
//   table first and then finds no file to merge, so only the memtable moves.
// - approximate_keys: LevelDB counts no keys. The engine counts the first
//   10,000 keys of the range by iterating (exact when the range ends there);
//   past that it scales the count by approximate_size(range) over
//   approximate_size(counted head), i.e. by the range's own on-disk bytes per
//   key. When the head is still only in the memtable (LevelDB measures no
//   memtable bytes per range) it falls back to bytes per entry written since
//   open (key+value, 64 before any write), an upper bound.
// - health: l0_files and total_bytes only; LevelDB reports no pending
//   compaction bytes and no memtable figures (nullopt).
// - checkpoint: no native one. A new DB is built in `dir + ".checkpoint-tmp"`
//   by copying every key from a snapshot in synced batches, then renamed
//   to `dir`, so a crash mid-checkpoint never leaves a partial store at `dir`.
//   It costs a full copy of the data.
// - a truncated MANIFEST: LevelDB reads it as the torn tail of a crash, opens
//   an older version and deletes the table files that version does not name.
//   After a clean close the engine records the MANIFEST's size; an open that
//   finds it changed is Corruption before LevelDB touches anything. After a
//   crash there is no record and no check: a torn tail and unnamed table files
//   are then normal leftovers. See engines/manifest_guard.hpp for why no
//   check on the files alone can tell the two apart.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sorted_file.hpp"
#include "kvcore/engine/types.hpp"
#include "kvcore/status.hpp"

namespace leveldb {
class Cache;
class DB;
class FilterPolicy;
class Iterator;
class Snapshot;
class WriteBatch;
}  // namespace leveldb

namespace kvcore {

namespace level_detail {
// A delete_range held by a LevelEngine::WriteBatch until write() expands it.
struct RangeOp {
  std::size_t position;  // number of point ops added to the batch before it
  std::string begin;     // prefixed, inclusive
  std::string end;       // prefixed, exclusive
};
}  // namespace level_detail

class LevelEngine {
 public:
  static constexpr std::string_view kName = "leveldb";

  // A bounded cursor over one CF of a consistent view. LevelDB's iterator
  // pins the memtables and table files it started from, so the view stays
  // consistent for the iterator's whole life, even after its snapshot (if
  // any) is released.
  class Iterator {
   public:
    Iterator(Iterator&&) noexcept;
    Iterator& operator=(Iterator&&) noexcept;
    ~Iterator();

    [[nodiscard]] bool valid() const { return valid_; }
    void seek(std::string_view key);
    void seek_for_prev(std::string_view key);
    void seek_to_first();
    void seek_to_last();
    void next();
    void prev();
    // REQUIRES: valid(). Views into LevelDB's current entry (the key without
    // its CF prefix), valid until the iterator moves or dies.
    [[nodiscard]] std::string_view key() const { return key_; }
    [[nodiscard]] std::string_view value() const { return value_; }
    [[nodiscard]] Status status() const;

   private:
    friend class LevelEngine;
    Iterator(std::unique_ptr<leveldb::Iterator> it, std::string lower, std::string upper,
             const std::string* path);
    // Recompute valid_ after a move (a key of [lower_, upper_), no error).
    // After a forward move (a seek at or past lower_, next() from a valid
    // key) the key is >= lower_ already, so only upper_ is checked; after a
    // backward one only lower_.
    void settle_forward();
    void settle_backward();
    // REQUIRES: it_ valid on `prefixed_key`. Points key_ and value_ at its
    // entry.
    void set_entry(std::string_view prefixed_key);

    std::unique_ptr<leveldb::Iterator> it_;
    std::string lower_;  // prefixed, inclusive
    std::string upper_;  // prefixed, exclusive; never empty
    // The current entry when valid_, set by settle_*: views into the memory
    // of *it_, which a move of this Iterator does not move.
    std::string_view key_;
    std::string_view value_;
    const std::string* path_;  // the engine's, for error messages
    bool valid_ = false;
  };

  // A LevelDB snapshot, released when the last reference is gone.
  // REQUIRES: the engine outlives it.
  class Snapshot {
   public:
    using Iterator = LevelEngine::Iterator;
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;
    ~Snapshot();

    [[nodiscard]] Result<std::optional<std::string>> get(CF cf, std::string_view key) const;
    [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
        CF cf, std::span<const std::string_view> keys) const;
    [[nodiscard]] Iterator new_iterator(CF cf, const IterOptions& opts) const;

   private:
    friend class LevelEngine;
    Snapshot(const LevelEngine* engine, const leveldb::Snapshot* snap)
        : engine_(engine), snap_(snap) {}
    const LevelEngine* engine_;
    const leveldb::Snapshot* snap_;
  };

  // Point ops go straight into a LevelDB batch with prefixed keys; ranges are
  // kept aside with their position among the point ops, so write() can replay
  // everything in the order it was added.
  class WriteBatch {
   public:
    WriteBatch();
    WriteBatch(WriteBatch&&) noexcept;
    WriteBatch& operator=(WriteBatch&&) noexcept;
    ~WriteBatch();

    void put(CF cf, std::string_view key, std::string_view value);
    void delete_key(CF cf, std::string_view key);
    // REQUIRES: !end.empty(). begin >= end (an empty end included) deletes
    // nothing and is not added: count() does not include it.
    void delete_range(CF cf, std::string_view begin, std::string_view end);
    [[nodiscard]] std::size_t count() const { return point_ops_ + ranges_.size(); }
    [[nodiscard]] std::size_t byte_size() const { return bytes_; }
    void clear();

   private:
    friend class LevelEngine;
    // rep_ is null only in a moved-from batch, which make_rep() revives.
    leveldb::WriteBatch& rep() { return rep_ ? *rep_ : make_rep(); }
    leveldb::WriteBatch& make_rep();
    // Sets scratch_ to `key` with the prefix of `cf`.
    void set_scratch(CF cf, std::string_view key) {
      scratch_.assign(1, static_cast<char>(cf_index(cf)));
      scratch_.append(key);
    }

    std::unique_ptr<leveldb::WriteBatch> rep_;
    std::vector<level_detail::RangeOp> ranges_;
    std::string scratch_;        // reused prefixed key, saves an allocation per op
    std::size_t point_ops_ = 0;  // puts and deletes; count() adds the ranges
    std::size_t bytes_ = 0;      // key (and value) bytes of every op
  };

  // Writes a kvcore sorted-run file for ingest().
  class SstWriter {
   public:
    [[nodiscard]] Status put(std::string_view key, std::string_view value) {
      return writer_.put(key, value);
    }
    [[nodiscard]] Result<SstFileInfo> finish() { return writer_.finish(); }

   private:
    friend class LevelEngine;
    explicit SstWriter(engine::SortedFileWriter writer) : writer_(std::move(writer)) {}
    engine::SortedFileWriter writer_;
  };

  // Opens (or creates) the store at `path`. Corruption for a damaged
  // CURRENT/MANIFEST/table file (a MANIFEST cut short after a clean close
  // included), IOError when the directory is locked by
  // another process or unreadable, InvalidArgument for a directory of another
  // engine or program.
  [[nodiscard]] static Result<std::unique_ptr<LevelEngine>> open(const std::string& path,
                                                                 const EngineOptions& opts);
  LevelEngine(const LevelEngine&) = delete;
  LevelEngine& operator=(const LevelEngine&) = delete;
  ~LevelEngine();

  [[nodiscard]] const std::string& path() const { return path_; }

  [[nodiscard]] Result<std::optional<std::string>> get(CF cf, std::string_view key) const;
  [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
      CF cf, std::span<const std::string_view> keys) const;
  [[nodiscard]] Iterator new_iterator(CF cf, const IterOptions& opts) const;

  [[nodiscard]] WriteBatch new_write_batch() const { return WriteBatch(); }
  [[nodiscard]] Status write(const WriteBatch& batch, const WriteOptions& opts);
  [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const;
  [[nodiscard]] Status delete_range(CF cf, KeyRange range);

  [[nodiscard]] Result<SstWriter> new_sst_writer(const std::string& path) const;
  [[nodiscard]] Status ingest(CF cf, std::span<const std::string> files);

  [[nodiscard]] Result<std::uint64_t> approximate_size(CF cf, KeyRange range) const;
  [[nodiscard]] Result<std::uint64_t> approximate_keys(CF cf, KeyRange range) const;
  [[nodiscard]] Status flush();
  [[nodiscard]] Status compact_range(CF cf, KeyRange range);
  [[nodiscard]] EngineHealth health() const;
  [[nodiscard]] Status checkpoint(const std::string& dir);

 private:
  LevelEngine(std::string path, const EngineOptions& opts);

  [[nodiscard]] Result<std::optional<std::string>> read(const leveldb::Snapshot* snap, CF cf,
                                                        std::string_view key) const;
  [[nodiscard]] Iterator make_iterator(const leveldb::Snapshot* snap, CF cf,
                                       const IterOptions& opts) const;
  // Builds the expansion of `batch` (which holds ranges) and writes it.
  // REQUIRES: write_gate_ held exclusively.
  [[nodiscard]] Status write_expanded(const WriteBatch& batch, bool sync);
  // LevelDB's background error (a failed flush or compaction), or OK.
  [[nodiscard]] Status background_status();
  // Copies every key of every CF, from one snapshot, into `target`'s DB.
  [[nodiscard]] Status copy_into(LevelEngine& target) const;
  [[nodiscard]] std::uint64_t average_entry_bytes() const;
  void note_written(std::uint64_t entries, std::uint64_t bytes);

  std::string path_;
  EngineOptions opts_;
  // Declared before db_: LevelDB uses both until the DB is closed.
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::DB> db_;
  // Shared by point-only writes, exclusive while a delete_range is expanded.
  std::shared_mutex write_gate_;
  std::atomic<std::uint64_t> written_entries_{0};  // puts since open
  std::atomic<std::uint64_t> written_bytes_{0};    // their key+value bytes
};

}  // namespace kvcore
