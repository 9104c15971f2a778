#include "raftlog/segment.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "engine/fs.hpp"
#include "raftlog/format.hpp"

namespace kvcore::raftlog {

using engine::errno_status;

Status sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("cannot open directory", dir, errno);
  Status s;
  if (::fsync(fd) != 0) s = errno_status("cannot fsync directory", dir, errno);
  ::close(fd);
  return s;
}

Result<std::vector<std::uint64_t>> list_segments(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno_status("cannot list", dir, errno);
  std::vector<std::uint64_t> ids;
  while (const dirent* ent = ::readdir(d)) {
    std::uint64_t id = 0;
    if (parse_segment_file_name(ent->d_name, &id)) ids.push_back(id);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::shared_ptr<SegmentFile>> SegmentFile::create(const std::string& dir, std::uint64_t id,
                                                         runtime::Disk& disk) {
  std::string path = dir + "/" + segment_file_name(id);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("cannot create raft log segment", path, errno);
  disk.created(path);
  std::shared_ptr<SegmentFile> seg(new SegmentFile(std::move(path), id, fd, 0, disk));
  KVCORE_RETURN_IF_ERROR(seg->append(encode_segment_header(id)));
  KVCORE_RETURN_IF_ERROR(seg->sync());
  KVCORE_RETURN_IF_ERROR(sync_dir(dir));
  return seg;
}

Result<std::shared_ptr<SegmentFile>> SegmentFile::open(const std::string& dir, std::uint64_t id,
                                                       runtime::Disk& disk) {
  std::string path = dir + "/" + segment_file_name(id);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno_status("cannot open raft log segment", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_status("cannot stat", path, err);
  }
  return std::shared_ptr<SegmentFile>(
      new SegmentFile(std::move(path), id, fd, static_cast<std::uint64_t>(st.st_size), disk));
}

SegmentFile::~SegmentFile() { ::close(fd_); }

Status SegmentFile::pread(std::uint64_t offset, std::size_t n, std::string* out) const {
  out->resize(n);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, out->data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_status("cannot read", path_, errno);
    }
    if (r == 0) {
      return Status::corruption(
          fmt::format("{}: {} bytes at offset {} lie past the end of the file", path_, n, offset));
    }
    done += static_cast<std::size_t>(r);
  }
  return Status::ok();
}

Status SegmentFile::read_all(std::string* out) const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return errno_status("cannot stat", path_, errno);
  return pread(0, static_cast<std::size_t>(st.st_size), out);
}

Status SegmentFile::append(std::string_view data) {
  std::uint64_t at = size();
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t r =
        ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(at + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_status("cannot write", path_, errno);
    }
    done += static_cast<std::size_t>(r);
  }
  size_.store(at + data.size(), std::memory_order_release);
  return Status::ok();
}

Status SegmentFile::sync() { return disk_.sync_file(fd_, path_, size()); }

Status SegmentFile::truncate(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    return errno_status("cannot truncate", path_, errno);
  }
  size_.store(size, std::memory_order_release);
  return sync();
}

}  // namespace kvcore::raftlog
