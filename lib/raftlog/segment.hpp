// Segment files of the raft log engine: append-only files of records (see
// format.hpp), the newest of which takes writes.
//
// Thread-safety: pread() may run from any thread at any time, also while the
// owner appends (it only reads bytes that were appended before). append(),
// sync() and truncate() are called by one thread at a time (the engine's
// writer). The file descriptor stays open until the last shared_ptr goes, so
// a reader holding one can finish even after the file is unlinked.
//
// Syncs and creations go through the runtime::Disk given at create/open
// (a simulation's disk decides what a crash keeps). REQUIRES: that disk
// outlives the SegmentFile.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/status.hpp"
#include "runtime/disk.hpp"

namespace kvcore::raftlog {

class SegmentFile {
 public:
  // Creates segment `id` in `dir` with its header, synced (file and
  // directory) so the file survives a crash before any record is acknowledged.
  [[nodiscard]] static Result<std::shared_ptr<SegmentFile>> create(const std::string& dir,
                                                                   std::uint64_t id,
                                                                   runtime::Disk& disk);
  // Opens an existing segment for reading and appending at its end.
  [[nodiscard]] static Result<std::shared_ptr<SegmentFile>> open(const std::string& dir,
                                                                 std::uint64_t id,
                                                                 runtime::Disk& disk);
  ~SegmentFile();
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::uint64_t size() const noexcept {
    return size_.load(std::memory_order_acquire);
  }

  // Reads exactly `n` bytes at `offset` into `out`. Corruption when the file
  // is shorter, IOError on a failed read.
  [[nodiscard]] Status pread(std::uint64_t offset, std::size_t n, std::string* out) const;
  // Reads the whole file.
  [[nodiscard]] Status read_all(std::string* out) const;
  // Writes `data` at the end. On failure the file's tail is unknown.
  [[nodiscard]] Status append(std::string_view data);
  // Makes the whole file durable (Disk::sync_file: fdatasync on a real disk).
  [[nodiscard]] Status sync();
  // Cuts the file to `size` bytes and syncs it (drops a torn tail).
  [[nodiscard]] Status truncate(std::uint64_t size);

 private:
  SegmentFile(std::string path, std::uint64_t id, int fd, std::uint64_t size, runtime::Disk& disk)
      : path_(std::move(path)), id_(id), fd_(fd), disk_(disk), size_(size) {}

  const std::string path_;
  const std::uint64_t id_;
  const int fd_;
  runtime::Disk& disk_;
  std::atomic<std::uint64_t> size_;
};

// fsync of a directory, so created, renamed and removed names are durable.
[[nodiscard]] Status sync_dir(const std::string& dir);

// Segment ids found in `dir`, ascending.
[[nodiscard]] Result<std::vector<std::uint64_t>> list_segments(const std::string& dir);

}  // namespace kvcore::raftlog
