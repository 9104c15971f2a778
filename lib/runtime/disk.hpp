// The disk: where a component's durability promises meet the hardware.
// Code that keeps a write-ahead file (the raft log engine) makes its file
// syncs, creations and removals through a Disk taken from its Runtime, so a
// simulation can decide what a power loss leaves behind (SimDisk) while
// production syncs for real (RealDisk).
//
// Only what a crash can lose goes through here: the bytes themselves are
// still written with ordinary file calls, and a Disk only hears which prefix
// of a file was made durable and which files came and went. Directory syncs
// are the caller's business.
#pragma once

#include <cstdint>
#include <string>

#include "kvcore/status.hpp"

namespace kvcore::runtime {

// Thread-safety: every implementation may be called from any thread.
class Disk {
 public:
  virtual ~Disk() = default;

  // Makes the first `length` bytes of the open file `fd`, named `path`, as
  // durable as a machine crash allows (fdatasync for a real disk), and
  // returns when they are. `length` is the file's size as the caller knows
  // it: what a crash after this call must keep. IOError when the sync fails
  // (the file's durable contents are then unknown).
  [[nodiscard]] virtual Status sync_file(int fd, const std::string& path, std::uint64_t length) = 0;

  // `path` was just created (empty) / removed. Until its first sync_file, a
  // created file is not promised to survive a crash at all.
  virtual void created(const std::string& path) = 0;
  virtual void removed(const std::string& path) = 0;
};

// The machine's own disk: sync_file is fdatasync; created and removed need
// nothing (the file system keeps its own books). Stateless.
class RealDisk final : public Disk {
 public:
  [[nodiscard]] Status sync_file(int fd, const std::string& path, std::uint64_t length) override;
  void created(const std::string& /*path*/) override {}
  void removed(const std::string& /*path*/) override {}
};

// The process's one RealDisk, for runtimes (and options left at nullptr)
// that mean the real thing. Lives until the process exits.
[[nodiscard]] Disk& real_disk();

}  // namespace kvcore::runtime
