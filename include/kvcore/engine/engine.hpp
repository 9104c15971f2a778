// The type-erased storage engine handle that the kvcore library is compiled
// against. Engines are written as concrete types satisfying the concepts in
// kvcore/engine/concept.hpp; EngineAdapter (kvcore/engine/adapter.hpp) wraps
// any of them into this interface, so libkvcore is compiled once and an
// application can bring an engine of its own.
//
// Thread-safety: an Engine may be used from any number of threads at once
// (reads, writes, snapshots). A Snapshot is immutable and may be read from any
// thread. An Iterator, WriteBatch or SstWriter is used by one thread at a time.
#pragma once

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

// A forward/backward cursor over one column family of a consistent view (a
// snapshot, or the engine as it was when the iterator was created), limited
// to the bounds of its IterOptions. It never yields a key of another column
// family or outside its bounds.
class Iterator {
 public:
  virtual ~Iterator() = default;
  // True when positioned on an entry. False after running off either end or
  // on error (then status() says which).
  [[nodiscard]] virtual bool valid() const = 0;
  // First key >= `key` (clamped to the lower bound).
  virtual void seek(std::string_view key) = 0;
  // Last key <= `key` (clamped to the upper bound).
  virtual void seek_for_prev(std::string_view key) = 0;
  virtual void seek_to_first() = 0;
  virtual void seek_to_last() = 0;
  // REQUIRES: valid().
  virtual void next() = 0;
  // REQUIRES: valid().
  virtual void prev() = 0;
  // REQUIRES: valid(). The views stay valid until the iterator moves or dies.
  [[nodiscard]] virtual std::string_view key() const = 0;
  [[nodiscard]] virtual std::string_view value() const = 0;
  // OK unless the engine failed to read; then valid() is false.
  [[nodiscard]] virtual Status status() const = 0;
};

// Point reads and iterators: what an Engine and a Snapshot have in common.
class Reader {
 public:
  virtual ~Reader() = default;
  // The value of `key` in `cf`; an empty optional when the key is absent.
  [[nodiscard]] virtual Result<std::optional<std::string>> get(CF cf,
                                                               std::string_view key) const = 0;
  // One entry per key, in the order given, all read from one consistent view.
  [[nodiscard]] virtual Result<std::vector<std::optional<std::string>>> multi_get(
      CF cf, std::span<const std::string_view> keys) const = 0;
  // A new iterator, not yet positioned (call a seek first). An iterator of a
  // Snapshot keeps the snapshot alive; an iterator of the Engine reads the
  // engine as it was when the iterator was created.
  // REQUIRES: the Engine outlives the iterator.
  [[nodiscard]] virtual std::unique_ptr<Iterator> new_iterator(CF cf,
                                                               const IterOptions& opts) const = 0;
};

// A consistent, immutable view of every column family at one moment. Shared
// by shared_ptr; it pins the engine's state until the last reference is gone.
// REQUIRES: the Engine outlives all its snapshots.
class Snapshot : public Reader {};

// An ordered list of writes applied atomically by Engine::write(): after a
// crash either all of them are visible or none. Created by the engine that
// will write it.
class WriteBatch {
 public:
  virtual ~WriteBatch() = default;
  virtual void put(CF cf, std::string_view key, std::string_view value) = 0;
  virtual void delete_key(CF cf, std::string_view key) = 0;
  // Deletes every key in [begin, end) of `cf` that exists when the batch is
  // written. REQUIRES: !end.empty(). A range with begin >= end (or an empty
  // end) deletes nothing and is not counted by count().
  virtual void delete_range(CF cf, std::string_view begin, std::string_view end) = 0;
  // Number of operations added since the last clear().
  [[nodiscard]] virtual std::size_t count() const = 0;
  // Approximate bytes of keys and values held.
  [[nodiscard]] virtual std::size_t byte_size() const = 0;
  virtual void clear() = 0;
  [[nodiscard]] bool empty() const { return count() == 0; }
};

// Writes a file of sorted entries that Engine::ingest() can add in bulk. Each
// engine writes its own format (RocksDB: an SST file; the others: kvcore's
// checksummed sorted-run file).
class SstWriter {
 public:
  virtual ~SstWriter() = default;
  // REQUIRES: keys strictly ascending; otherwise InvalidArgument and the file
  // is not usable.
  [[nodiscard]] virtual Status put(std::string_view key, std::string_view value) = 0;
  // Finishes and syncs the file. Writing an empty file is InvalidArgument.
  [[nodiscard]] virtual Result<SstFileInfo> finish() = 0;
};

class Engine : public Reader {
 public:
  // Short engine name, e.g. "rocksdb".
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual const std::string& path() const = 0;

  [[nodiscard]] virtual std::unique_ptr<WriteBatch> new_write_batch() const = 0;
  // Applies `batch` atomically. With opts.sync the write is on stable storage
  // when this returns OK. The batch is left as it was (clear() it to reuse).
  // InvalidArgument when the batch was made by another engine type.
  [[nodiscard]] virtual Status write(const WriteBatch& batch, const WriteOptions& opts) = 0;
  [[nodiscard]] virtual std::shared_ptr<const Snapshot> snapshot() const = 0;

  // Deletes [range.start, range.end) of `cf` at once, unsynced.
  // REQUIRES: !range.end.empty().
  [[nodiscard]] virtual Status delete_range(CF cf, KeyRange range) = 0;

  // A writer for a file that ingest() accepts. `path` must not exist yet.
  [[nodiscard]] virtual Result<std::unique_ptr<SstWriter>> new_sst_writer(
      const std::string& path) const = 0;
  // Adds the entries of `files` (written by this engine's SstWriter) to `cf`,
  // overwriting keys already present; durable when it returns OK. The files
  // may be moved into the engine or left in place, never modified.
  [[nodiscard]] virtual Status ingest(CF cf, std::span<const std::string> files) = 0;

  // Approximate bytes and keys in a range, for split checks. The figures may
  // lag recent writes; they are never negative and 0 for an empty range.
  [[nodiscard]] virtual Result<std::uint64_t> approximate_size(CF cf, KeyRange range) const = 0;
  [[nodiscard]] virtual Result<std::uint64_t> approximate_keys(CF cf, KeyRange range) const = 0;

  // Persists buffered writes (memtables) to the engine's files.
  [[nodiscard]] virtual Status flush() = 0;
  // Compacts the range (or all of `cf` for an empty range) now.
  [[nodiscard]] virtual Status compact_range(CF cf, KeyRange range) = 0;
  [[nodiscard]] virtual EngineHealth health() const = 0;
  // Writes a consistent copy of the whole engine to `dir` (which must not
  // exist) that open_engine() can open. NotSupported where impossible.
  [[nodiscard]] virtual Status checkpoint(const std::string& dir) = 0;
};

}  // namespace kvcore
