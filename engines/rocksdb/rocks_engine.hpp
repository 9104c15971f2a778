// RocksEngine: the kvcore storage engine on RocksDB.
//
// Each kvcore column family is a native RocksDB column family of the same
// name ("default", "lock", "write", "raft"); the ones missing from an existing
// store are created on open. All column families share one LRU block cache and
// use block-based tables with a 10-bit bloom filter. External files for
// ingest() are real RocksDB SST files.
//
// The contracts of every member are those of the same-named member of
// kvcore::Engine (kvcore/engine/engine.hpp); this header only adds what is
// specific to RocksDB. No RocksDB header is included here: every RocksDB
// object lives behind a private State or Impl.
//
// A truncated MANIFEST: RocksDB reads it as the torn tail of a crash, opens an
// older version and deletes the SST files that version does not name. After a
// clean close the engine records the MANIFEST's size; an open that finds it
// changed is Corruption before RocksDB touches anything. After a crash there
// is no record and no check: a torn tail and unnamed SST files are then
// normal leftovers (engines/manifest_guard.hpp says why nothing else can tell
// the two apart).
//
// Thread-safety: a RocksEngine may be used from any number of threads at once.
// A Snapshot is immutable and may be read from any thread. An Iterator,
// WriteBatch or SstWriter is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/engine/types.hpp"
#include "kvcore/status.hpp"

namespace kvcore {

class RocksEngine {
 public:
  static constexpr std::string_view kName = "rocksdb";

  class Snapshot;

  // A RocksDB iterator over one column family with its bounds. It owns the
  // bound strings the RocksDB ReadOptions point at, and, over a Snapshot, the
  // RocksDB iterator reads at that snapshot's sequence number (the kvcore
  // adapter keeps the Snapshot alive). A moved-from Iterator is never valid.
  class Iterator {
   public:
    Iterator(Iterator&&) noexcept;
    Iterator& operator=(Iterator&&) noexcept;
    ~Iterator();

    [[nodiscard]] bool valid() const;
    void seek(std::string_view key);
    void seek_for_prev(std::string_view key);
    void seek_to_first();
    void seek_to_last();
    void next();
    void prev();
    [[nodiscard]] std::string_view key() const;
    [[nodiscard]] std::string_view value() const;
    [[nodiscard]] Status status() const;

   private:
    friend class RocksEngine;
    friend class RocksEngine::Snapshot;
    struct State;
    explicit Iterator(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
  };

  // A RocksDB snapshot, released when the last shared_ptr to it goes.
  // REQUIRES: the RocksEngine outlives it.
  class Snapshot {
   public:
    using Iterator = RocksEngine::Iterator;

    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;
    ~Snapshot();

    [[nodiscard]] Result<std::optional<std::string>> get(CF cf, std::string_view key) const;
    [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
        CF cf, std::span<const std::string_view> keys) const;
    [[nodiscard]] Iterator new_iterator(CF cf, const IterOptions& opts) const;

   private:
    friend class RocksEngine;
    struct State;
    explicit Snapshot(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
  };

  // A rocksdb::WriteBatch plus the column family handles of the engine that
  // made it. A put or delete RocksDB refuses (a key or value over 4 GiB) is
  // remembered and returned by write(). count() is the number of operations
  // the batch holds: a delete_range with begin >= end adds none.
  // REQUIRES: the RocksEngine that made it outlives it.
  class WriteBatch {
   public:
    WriteBatch(WriteBatch&&) noexcept;
    WriteBatch& operator=(WriteBatch&&) noexcept;
    ~WriteBatch();

    void put(CF cf, std::string_view key, std::string_view value);
    void delete_key(CF cf, std::string_view key);
    void delete_range(CF cf, std::string_view begin, std::string_view end);
    [[nodiscard]] std::size_t count() const;
    [[nodiscard]] std::size_t byte_size() const;
    void clear();

   private:
    friend class RocksEngine;
    struct State;
    explicit WriteBatch(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
  };

  // A rocksdb::SstFileWriter with the engine's table options. An unfinished
  // file (destroyed before finish(), or after a failed put) is removed.
  class SstWriter {
   public:
    SstWriter(SstWriter&&) noexcept;
    SstWriter& operator=(SstWriter&&) noexcept;
    ~SstWriter();

    [[nodiscard]] Status put(std::string_view key, std::string_view value);
    [[nodiscard]] Result<SstFileInfo> finish();

   private:
    friend class RocksEngine;
    struct State;
    explicit SstWriter(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
  };

  // Opens (or creates) the store at `path`. A damaged CURRENT, MANIFEST or
  // SST file (a MANIFEST cut short after a clean close included) is
  // Corruption (or IOError when the OS failed to read it), with RocksDB's own
  // explanation in the message.
  [[nodiscard]] static Result<std::unique_ptr<RocksEngine>> open(const std::string& path,
                                                                 const EngineOptions& opts);

  RocksEngine(const RocksEngine&) = delete;
  RocksEngine& operator=(const RocksEngine&) = delete;
  // Closes the database. REQUIRES: no Snapshot, Iterator or WriteBatch of
  // this engine is alive.
  ~RocksEngine();

  [[nodiscard]] const std::string& path() const;

  [[nodiscard]] Result<std::optional<std::string>> get(CF cf, std::string_view key) const;
  // All keys are read at one implicit snapshot (RocksDB's batched MultiGet).
  [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
      CF cf, std::span<const std::string_view> keys) const;
  [[nodiscard]] Iterator new_iterator(CF cf, const IterOptions& opts) const;

  [[nodiscard]] WriteBatch new_write_batch() const;
  [[nodiscard]] Status write(const WriteBatch& batch, const WriteOptions& opts);
  [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const;

  [[nodiscard]] Status delete_range(CF cf, KeyRange range);

  [[nodiscard]] Result<SstWriter> new_sst_writer(const std::string& path) const;
  // The files are copied (never moved or modified), so the caller may delete
  // them afterwards.
  [[nodiscard]] Status ingest(CF cf, std::span<const std::string> files);

  // For an empty range.end, the end is just past the largest key the column
  // family holds in any file or memtable (so deleted data still counts).
  [[nodiscard]] Result<std::uint64_t> approximate_size(CF cf, KeyRange range) const;
  // Keys in files, from each overlapping table's entry count scaled by the
  // share of those tables' bytes that the range covers, plus the memtables'
  // own estimate. Deletions count as entries until compacted away.
  [[nodiscard]] Result<std::uint64_t> approximate_keys(CF cf, KeyRange range) const;

  [[nodiscard]] Status flush();
  // Bottommost files are rewritten too, so deleted data in the range is
  // dropped.
  [[nodiscard]] Status compact_range(CF cf, KeyRange range);
  [[nodiscard]] EngineHealth health() const;
  [[nodiscard]] Status checkpoint(const std::string& dir);

 private:
  struct Impl;
  explicit RocksEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvcore
