// RaftLogEngine: opening a directory and replaying its segments.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "engine/fs.hpp"
#include "raftlog/engine.hpp"
#include "raftlog/format.hpp"
#include "util/log.hpp"

namespace kvcore::raftlog {

namespace {

constexpr std::string_view kEngineName = "raftlog";
constexpr std::string_view kLockFile = "LOCK";

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '\0'; });
}

}  // namespace

RaftLogEngine::RaftLogEngine(std::string dir, RaftLogOptions opts, int lock_fd)
    : dir_(std::move(dir)),
      opts_(opts),
      lock_fd_(lock_fd),
      disk_(opts_.disk != nullptr ? *opts_.disk : runtime::real_disk()) {}

RaftLogEngine::~RaftLogEngine() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<RaftLogEngine>> RaftLogEngine::open(const std::string& dir,
                                                           const RaftLogOptions& opts) {
  if (opts.segment_bytes < kSegmentHeaderSize) {
    return Status::invalid_argument("raft log: segment_bytes is smaller than a segment header");
  }
  EngineOptions eopts;
  eopts.create_if_missing = opts.create_if_missing;
  bool fresh = false;
  KVCORE_RETURN_IF_ERROR(engine::prepare_engine_dir(dir, kEngineName, eopts, &fresh));

  const std::string lock_path = dir + "/" + std::string(kLockFile);
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return engine::errno_status("cannot open", lock_path, errno);
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(lock_fd);
    if (err == EWOULDBLOCK) {
      return Status::failed_precondition(
          fmt::format("raft log at {} is open already (in this or another process)", dir));
    }
    return engine::errno_status("cannot lock", lock_path, err);
  }
  std::unique_ptr<RaftLogEngine> eng(new RaftLogEngine(dir, opts, lock_fd));
  KVCORE_RETURN_IF_ERROR(eng->recover());
  return eng;
}

Status RaftLogEngine::recover() {
  KVCORE_ASSIGN_OR_RETURN(std::vector<std::uint64_t> ids, list_segments(dir_));
  // Segments are created with consecutive ids and purge deletes a prefix, so a
  // hole means a purge was cut short after deleting a later file but before
  // an earlier one: the files before the hole are already dead.
  std::size_t keep_from = 0;
  for (std::size_t i = 1; i < ids.size(); ++i) {
    if (ids[i] != ids[i - 1] + 1) keep_from = i;
  }
  for (std::size_t i = 0; i < keep_from; ++i) {
    const std::string path = dir_ + "/" + segment_file_name(ids[i]);
    KVCORE_LOG_WARN("raft log: removing {} left behind by an interrupted purge", path);
    if (::unlink(path.c_str()) != 0) return engine::errno_status("cannot remove", path, errno);
    disk_.removed(path);
  }
  if (keep_from > 0) {
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep_from));
    KVCORE_RETURN_IF_ERROR(sync_dir(dir_));
  }

  for (std::size_t i = 0; i < ids.size(); ++i) {
    KVCORE_ASSIGN_OR_RETURN(auto seg, SegmentFile::open(dir_, ids[i], disk_));
    KVCORE_RETURN_IF_ERROR(replay_segment(seg, i + 1 == ids.size()));
    segs_.emplace(ids[i], seg);
  }
  if (segs_.empty()) {
    KVCORE_ASSIGN_OR_RETURN(auto seg, SegmentFile::create(dir_, 1, disk_));
    segs_.emplace(1, seg);
  }
  active_ = segs_.rbegin()->second;
  return Status::ok();
}

Status RaftLogEngine::replay_segment(const std::shared_ptr<SegmentFile>& seg, bool last) {
  std::string data;
  KVCORE_RETURN_IF_ERROR(seg->read_all(&data));
  const std::string_view file(data);
  const std::string& path = seg->path();
  auto corruption = [&](std::uint64_t offset, std::string_view what) {
    return Status::corruption(
        fmt::format("raft log segment {} at offset {}: {}", path, offset, what));
  };

  const std::string header = encode_segment_header(seg->id());
  if (file.size() < kSegmentHeaderSize || file.substr(0, kSegmentHeaderSize) != header) {
    const bool torn_header = file.size() < kSegmentHeaderSize &&
                             (all_zero(file) || std::string_view(header).starts_with(file));
    if (!last || !(torn_header || all_zero(file))) {
      return corruption(0, "bad segment header");
    }
    KVCORE_LOG_WARN("raft log: rewriting the torn header of {} (crash while it was created)", path);
    KVCORE_RETURN_IF_ERROR(seg->truncate(0));
    KVCORE_RETURN_IF_ERROR(seg->append(header));
    return seg->sync();
  }

  // True when a sound record starts at `p`.
  auto record_at = [&](std::uint64_t p) {
    RecordHeader h;
    if (file.size() - p < kRecordHeaderSize || !decode_record_header(file.substr(p), &h)) {
      return false;
    }
    if (h.length > file.size() - p - kRecordHeaderSize) return false;
    return record_crc(h.type, file.substr(p + kRecordHeaderSize, h.length)) == h.crc;
  };
  auto sound_record_from = [&](std::uint64_t from) {
    for (std::uint64_t p = from; p < file.size(); ++p) {
      if (record_at(p)) return true;
    }
    return false;
  };

  std::uint64_t pos = kSegmentHeaderSize;
  std::string_view torn;  // why the tail is cut, empty when it is not
  while (pos < file.size()) {
    // A bad record is a crash leftover only at the tail of the newest
    // segment: nothing sound may follow it (after its end when its header
    // is sound, else after its first byte).
    std::string_view bad;
    std::uint64_t search_from = file.size();
    RecordHeader h;
    std::uint64_t end = 0;
    if (file.size() - pos < kRecordHeaderSize) {
      bad = "torn record header";
    } else if (!decode_record_header(file.substr(pos), &h)) {
      bad = "record header checksum mismatch";
      search_from = pos + 1;
    } else if (h.length > file.size() - pos - kRecordHeaderSize) {
      bad = "record runs past the end of the file";
    } else {
      end = pos + kRecordHeaderSize + h.length;
      if (record_crc(h.type, file.substr(pos + kRecordHeaderSize, h.length)) != h.crc) {
        bad = "record checksum mismatch";
        search_from = end;
      }
    }
    if (!bad.empty()) {
      if (!last) return corruption(pos, bad);
      if (sound_record_from(search_from)) {
        return corruption(pos, fmt::format("{}, followed by sound records", bad));
      }
      torn = bad;
      break;
    }
    if (h.type != RecordType::kBatch) {
      return corruption(pos, fmt::format("unknown record type {}", static_cast<int>(h.type)));
    }
    auto ops = decode_batch(file.substr(pos + kRecordHeaderSize, h.length));
    if (!ops.is_ok()) return corruption(pos, ops.status().message());
    for (const Op& op : *ops) mem_.apply(op, seg->id(), pos + kRecordHeaderSize);
    pos = end;
  }
  if (!torn.empty()) {
    KVCORE_LOG_WARN("raft log: {} at offset {} of {}; dropping {} bytes of unacknowledged tail",
                    torn, pos, path, file.size() - pos);
    KVCORE_RETURN_IF_ERROR(seg->truncate(pos));
  }
  return Status::ok();
}

}  // namespace kvcore::raftlog
