#include "runtime/disk.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace kvcore::runtime {

Status RealDisk::sync_file(int fd, const std::string& path, std::uint64_t /*length*/) {
  if (::fdatasync(fd) == 0) return Status::ok();
  const int err = errno;
  const std::string msg = fmt::format("cannot fdatasync {}: {}", path, std::strerror(err));
  if (err == ENOSPC) return Status::resource_exhausted(msg);
  return Status::io_error(msg);
}

Disk& real_disk() {
  static RealDisk disk;
  return disk;
}

}  // namespace kvcore::runtime
