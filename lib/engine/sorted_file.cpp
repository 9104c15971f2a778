#include "engine/sorted_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include <fmt/format.h>

#include "engine/fs.hpp"
#include "util/coding.hpp"
#include "util/crc32c.hpp"

namespace kvcore::engine {
namespace {

constexpr std::string_view kHeadMagic = "KVSORT01";
constexpr std::string_view kTailMagic = "KVSORTND";
constexpr std::size_t kFooterBytes = 8 + 4 + 8;
constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

}  // namespace

struct SortedFileWriter::State {
  std::string path;
  int fd = -1;
  std::string buffer;  // bytes not yet written
  std::uint32_t crc = 0;
  std::uint64_t entries = 0;
  std::uint64_t bytes_written = 0;
  std::string smallest;
  std::string last;
  bool finished = false;
  bool failed = false;

  Status flush_buffer() {
    std::size_t off = 0;
    while (off < buffer.size()) {
      ssize_t n = ::write(fd, buffer.data() + off, buffer.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        failed = true;
        return errno_status("cannot write", path, errno);
      }
      off += static_cast<std::size_t>(n);
    }
    bytes_written += buffer.size();
    buffer.clear();
    return {};
  }
};

SortedFileWriter::SortedFileWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
SortedFileWriter::SortedFileWriter(SortedFileWriter&&) noexcept = default;
SortedFileWriter& SortedFileWriter::operator=(SortedFileWriter&&) noexcept = default;

SortedFileWriter::~SortedFileWriter() {
  if (!state_) return;
  if (state_->fd >= 0) ::close(state_->fd);
  if (!state_->finished) ::unlink(state_->path.c_str());
}

Result<SortedFileWriter> SortedFileWriter::create(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return Status::already_exists(path + " exists already");
    return errno_status("cannot create", path, errno);
  }
  auto state = std::make_unique<State>();
  state->path = path;
  state->fd = fd;
  state->buffer.append(kHeadMagic);
  return SortedFileWriter(std::move(state));
}

Status SortedFileWriter::put(std::string_view key, std::string_view value) {
  State& s = *state_;
  if (s.finished || s.failed) return Status::failed_precondition("sorted file writer is closed");
  if (s.entries > 0 && key <= std::string_view(s.last)) {
    return Status::invalid_argument(fmt::format(
        "{}: keys must be strictly ascending (entry {} is not greater than the previous)", s.path,
        s.entries));
  }
  const std::size_t start = s.buffer.size();
  util::put_varint64(s.buffer, key.size());
  util::put_varint64(s.buffer, value.size());
  s.buffer.append(key);
  s.buffer.append(value);
  s.crc = util::crc32c_extend(s.crc, s.buffer.data() + start, s.buffer.size() - start);
  if (s.entries == 0) s.smallest.assign(key);
  s.last.assign(key);
  ++s.entries;
  if (s.buffer.size() >= kFlushBytes) return s.flush_buffer();
  return {};
}

Result<SstFileInfo> SortedFileWriter::finish() {
  State& s = *state_;
  if (s.finished || s.failed) return Status::failed_precondition("sorted file writer is closed");
  if (s.entries == 0) return Status::invalid_argument(s.path + ": a sorted file needs an entry");
  util::put_fixed64(s.buffer, s.entries);
  util::put_fixed32(s.buffer, s.crc);
  s.buffer.append(kTailMagic);
  KVCORE_RETURN_IF_ERROR(s.flush_buffer());
  if (::fsync(s.fd) != 0) return errno_status("cannot sync", s.path, errno);
  ::close(s.fd);
  s.fd = -1;
  s.finished = true;
  SstFileInfo info;
  info.path = s.path;
  info.entries = s.entries;
  info.file_bytes = s.bytes_written;
  info.smallest_key = s.smallest;
  info.largest_key = s.last;
  return info;
}

Status scan_sorted_file(
    const std::string& path,
    const std::function<Status(std::string_view key, std::string_view value)>& on_entry) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return errno_status("cannot open", path, errno);
  std::string data;
  char chunk[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) data.append(chunk, n);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) return Status::io_error("cannot read " + path);

  auto corrupt = [&](std::string_view why) {
    return Status::corruption(fmt::format("sorted file {}: {}", path, why));
  };
  if (data.size() < kHeadMagic.size() + kFooterBytes ||
      std::string_view(data).substr(0, kHeadMagic.size()) != kHeadMagic) {
    return corrupt("bad header (not a kvcore sorted file, or truncated)");
  }
  std::string_view footer = std::string_view(data).substr(data.size() - kFooterBytes);
  if (footer.substr(12) != kTailMagic) return corrupt("bad footer (truncated?)");
  const std::uint64_t want_entries = util::decode_fixed64(footer.data());
  const std::uint32_t want_crc = util::decode_fixed32(footer.data() + 8);
  std::string_view body = std::string_view(data).substr(
      kHeadMagic.size(), data.size() - kHeadMagic.size() - kFooterBytes);
  if (util::crc32c(body) != want_crc) return corrupt("checksum mismatch");

  std::uint64_t entries = 0;
  std::string_view prev;
  while (!body.empty()) {
    std::uint64_t klen = 0;
    std::uint64_t vlen = 0;
    if (!util::get_varint64(body, klen) || !util::get_varint64(body, vlen) ||
        klen > body.size() || vlen > body.size() - klen) {
      return corrupt(fmt::format("entry {} is malformed", entries));
    }
    std::string_view key = body.substr(0, klen);
    std::string_view value = body.substr(klen, vlen);
    body.remove_prefix(klen + vlen);
    if (entries > 0 && key <= prev) return corrupt(fmt::format("entry {} is out of order", entries));
    prev = key;
    ++entries;
    if (on_entry) KVCORE_RETURN_IF_ERROR(on_entry(key, value));
  }
  if (entries != want_entries) return corrupt("entry count mismatch");
  return {};
}

}  // namespace kvcore::engine
