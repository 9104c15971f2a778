// MemoryEngine: an ordered in-memory engine, always built. It exists for
// tests and the deterministic simulator: snapshots cost O(1), every result is
// deterministic, and crash() models a machine crash by dropping every write
// that was not synced.
//
// Durability model. Each path names a "disk" held in a process-wide table.
// Closing an engine keeps everything written (like a process exit: the OS
// still holds the data); reopening the same path sees it. crash() or
// crash_at(path) rolls the disk back to its last synced write, as a power
// loss would. A path beginning with "mem:" touches no file at all; any other
// path is a directory that gets kvcore's engine marker (so opening a file or
// another engine's directory fails as it does for the other engines), while
// the data itself stays in memory.
//
// Thread-safety: as kvcore::Engine. Writers are serialized by a mutex;
// readers copy the current roots under that mutex and then read lock-free
// (the trees are immutable).
#pragma once

#include <array>
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

namespace memory_detail {
struct Node;
using NodePtr = std::shared_ptr<const Node>;
using Roots = std::array<NodePtr, kNumCFs>;
struct Disk;
}  // namespace memory_detail

class MemoryEngine {
 public:
  static constexpr std::string_view kName = "memory";

  class Iterator {
   public:
    Iterator(memory_detail::NodePtr root, const IterOptions& opts);
    [[nodiscard]] bool valid() const { return cur_ != nullptr; }
    void seek(std::string_view key);
    void seek_for_prev(std::string_view key);
    void seek_to_first();
    void seek_to_last();
    void next();
    void prev();
    [[nodiscard]] std::string_view key() const;
    [[nodiscard]] std::string_view value() const;
    [[nodiscard]] Status status() const { return {}; }

   private:
    void clamp();
    memory_detail::NodePtr root_;
    std::string lower_;
    std::string upper_;
    const memory_detail::Node* cur_ = nullptr;  // owned through root_
  };

  class Snapshot {
   public:
    using Iterator = MemoryEngine::Iterator;
    explicit Snapshot(memory_detail::Roots roots) : roots_(std::move(roots)) {}
    [[nodiscard]] Result<std::optional<std::string>> get(CF cf, std::string_view key) const;
    [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
        CF cf, std::span<const std::string_view> keys) const;
    [[nodiscard]] Iterator new_iterator(CF cf, const IterOptions& opts) const;

   private:
    memory_detail::Roots roots_;
  };

  class WriteBatch {
   public:
    void put(CF cf, std::string_view key, std::string_view value);
    void delete_key(CF cf, std::string_view key);
    void delete_range(CF cf, std::string_view begin, std::string_view end);
    [[nodiscard]] std::size_t count() const { return ops_.size(); }
    [[nodiscard]] std::size_t byte_size() const { return bytes_; }
    void clear() {
      ops_.clear();
      bytes_ = 0;
    }

   private:
    friend class MemoryEngine;
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

  // Writes kvcore's sorted-run file (see lib/engine/sorted_file.hpp).
  class SstWriter {
   public:
    SstWriter(SstWriter&&) noexcept;
    SstWriter& operator=(SstWriter&&) noexcept;
    ~SstWriter();
    [[nodiscard]] Status put(std::string_view key, std::string_view value);
    [[nodiscard]] Result<SstFileInfo> finish();

   private:
    friend class MemoryEngine;
    struct Impl;
    explicit SstWriter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };

  [[nodiscard]] static Result<std::unique_ptr<MemoryEngine>> open(const std::string& path,
                                                                  const EngineOptions& opts);
  ~MemoryEngine();
  MemoryEngine(const MemoryEngine&) = delete;
  MemoryEngine& operator=(const MemoryEngine&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

  [[nodiscard]] Result<std::optional<std::string>> get(CF cf, std::string_view key) const;
  [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
      CF cf, std::span<const std::string_view> keys) const;
  [[nodiscard]] Iterator new_iterator(CF cf, const IterOptions& opts) const;

  [[nodiscard]] WriteBatch new_write_batch() const { return {}; }
  [[nodiscard]] Status write(const WriteBatch& batch, const WriteOptions& opts);
  [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const;
  [[nodiscard]] Status delete_range(CF cf, KeyRange range);

  [[nodiscard]] Result<SstWriter> new_sst_writer(const std::string& path) const;
  [[nodiscard]] Status ingest(CF cf, std::span<const std::string> files);

  // Exact figures: the trees keep subtree counts and byte sums.
  [[nodiscard]] Result<std::uint64_t> approximate_size(CF cf, KeyRange range) const;
  [[nodiscard]] Result<std::uint64_t> approximate_keys(CF cf, KeyRange range) const;
  // Nothing is buffered: both are no-ops.
  [[nodiscard]] Status flush() { return {}; }
  [[nodiscard]] Status compact_range(CF, KeyRange) { return {}; }
  // Only total_bytes (keys and values held, current state) is present.
  [[nodiscard]] EngineHealth health() const;
  // Copies the current state to the disk named `dir` (consistent: taken
  // under the write lock), durable there as if synced.
  [[nodiscard]] Status checkpoint(const std::string& dir);

  // Rolls this engine's disk back to the last synced write, as a machine
  // crash would. Snapshots and iterators taken before keep their view.
  void crash();
  // The same for the disk at `path` (open or not). NotFound when none.
  [[nodiscard]] static Status crash_at(const std::string& path);
  // Forgets the disk at `path` entirely (as deleting its directory would).
  // FailedPrecondition while an engine has it open.
  [[nodiscard]] static Status destroy(const std::string& path);

 private:
  MemoryEngine(std::string path, std::shared_ptr<memory_detail::Disk> disk);
  [[nodiscard]] memory_detail::Roots current_roots() const;

  std::string path_;
  std::shared_ptr<memory_detail::Disk> disk_;
};

}  // namespace kvcore
