// Plain value types shared by every storage engine: column families, options,
// health figures. Nothing here depends on a particular engine.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kvcore/status.hpp"

namespace kvcore {

// Column families. The set is fixed when an engine is opened: every engine has
// all four. RocksDB maps them to native column families, LMDB to named
// databases, LevelDB to a one-byte key prefix, the memory engine to one ordered
// map each.
enum class CF : std::uint8_t {
  kDefault = 0,  // user values (MVCC data too long to inline)
  kLock = 1,     // transaction locks
  kWrite = 2,    // MVCC commit records
  kRaft = 3,     // raft bookkeeping kept next to the data (apply state)
};
inline constexpr std::size_t kNumCFs = 4;
inline constexpr std::array<CF, kNumCFs> kAllCFs = {CF::kDefault, CF::kLock, CF::kWrite,
                                                    CF::kRaft};
// "default", "lock", "write", "raft".
std::string_view cf_name(CF cf) noexcept;
[[nodiscard]] inline std::size_t cf_index(CF cf) noexcept { return static_cast<std::size_t>(cf); }

// The engines kvcore knows by name. An application may also bring its own
// engine type (see kvcore/engine/concept.hpp) without a kind.
enum class EngineKind : std::uint8_t { kMemory, kRocksDB, kLevelDB, kLmdb };
// "memory", "rocksdb", "leveldb", "lmdb".
std::string_view to_string(EngineKind kind) noexcept;
// Parses the names above; InvalidArgument for anything else.
Result<EngineKind> parse_engine_kind(std::string_view name);

enum class Compression : std::uint8_t { kNone, kSnappy, kLz4, kZstd };

// Options for opening an engine. Each engine reads the fields that apply to it
// and ignores the rest.
struct EngineOptions {
  // Create the directory and an empty store when none exists. When false,
  // opening a missing store is NotFound.
  bool create_if_missing = true;
  // Fail with AlreadyExists when a store is already there.
  bool error_if_exists = false;

  // RocksDB, LevelDB: bytes of uncompressed blocks cached for reads. Larger
  // means fewer disk reads and more memory.
  std::size_t block_cache_bytes = std::size_t{64} << 20;
  // RocksDB, LevelDB: bytes buffered in a memtable before it is flushed to a
  // file. Larger means fewer, larger flushes and longer recovery.
  std::size_t write_buffer_bytes = std::size_t{64} << 20;
  // RocksDB (all levels), LevelDB (snappy or none): block compression. LZ4
  // costs little CPU; zstd saves more space; none is fastest on fast disks.
  Compression compression = Compression::kLz4;
  // RocksDB: background flush and compaction threads.
  int background_jobs = 2;

  // LMDB: the memory map's initial size. The map is address space only (the
  // file grows with use), so by default the whole maximum is reserved at once
  // and the map never moves: reads then take no lock and copy nothing. A
  // smaller value makes the map double by itself when a write fills it, at
  // the price of a shared lock and a copy on every read (a growth remaps).
  std::size_t lmdb_initial_map_bytes = std::size_t{1} << 40;
  // LMDB: the map never grows past this (ResourceExhausted beyond it).
  std::size_t lmdb_max_map_bytes = std::size_t{1} << 40;
};

// Bounds of an iterator: it yields only keys in [lower_bound, upper_bound).
// An empty lower bound means "from the first key"; an empty upper bound means
// "to the last key" of the column family.
struct IterOptions {
  std::string lower_bound;
  std::string upper_bound;
  // A hint that the whole range will be read once (bulk scans, snapshots):
  // engines that cache blocks may skip filling their cache.
  bool fill_cache = true;
};

struct WriteOptions {
  // Sync to stable storage before the write returns. A synced write survives
  // a machine crash; an unsynced one survives a process crash only (and on the
  // memory engine, not even Engine crash()).
  bool sync = false;
};

// [start, end) of keys; an empty `end` means "to the last key".
struct KeyRange {
  std::string_view start;
  std::string_view end;
};

// Figures flow control reads to throttle writes before the engine stalls.
// A figure the engine does not have is absent (std::nullopt), never zero:
// LMDB and the memory engine have no compaction, LevelDB reports no pending
// compaction bytes.
struct EngineHealth {
  std::optional<std::uint64_t> pending_compaction_bytes;
  std::optional<std::uint64_t> l0_files;
  std::optional<std::uint64_t> immutable_memtables;
  std::optional<std::uint64_t> memtable_bytes;
  // Bytes the engine occupies on disk (or in memory for the memory engine).
  std::optional<std::uint64_t> total_bytes;
};

// What an SstWriter produced, for ingestion and for the importer.
struct SstFileInfo {
  std::string path;
  std::uint64_t entries = 0;
  std::uint64_t file_bytes = 0;
  std::string smallest_key;
  std::string largest_key;
};

}  // namespace kvcore
