// A guard against opening a LevelDB or RocksDB store whose MANIFEST was cut
// short, shared by both engines (header-only: each engine library compiles it
// into its own object, so no build target is shared).
//
// Why it is needed. Both libraries read the MANIFEST (the log of version
// edits naming the live table files) with a log reader that treats an
// incomplete last record as the torn tail of a crash and silently drops it.
// A MANIFEST truncated in the middle therefore opens "fine" on an older
// version, and the library then deletes every table file that version does
// not name: the data is destroyed, not just hidden.
//
// Why not judge the MANIFEST (or the table files) alone. After a crash, a
// torn MANIFEST tail is legitimate (power loss during an edit), and so are
// table files no version names (outputs of a compaction or flush that never
// committed, inputs of a committed compaction not yet deleted, outputs left by
// a compaction aborted at shutdown). A truncated MANIFEST looks exactly like
// these, so any check on the store alone either misses the damage or refuses
// stores a crash left behind.
//
// What it does instead. After a clean close (the library closed without
// error, so every MANIFEST edit is complete and synced), the engine records
// in kCleanCloseFile which MANIFEST CURRENT names and its size. Before the
// next open, if CURRENT still names that MANIFEST and its size differs, the
// file was cut short (or grown) after the close: Corruption, before the
// library opens anything, so nothing is deleted. The record is removed after
// every successful open. A stale record can never match by accident: both
// libraries write a new MANIFEST (a new file number, never reused) on every
// read-write open, and so does a repair.
//
// Limits: a MANIFEST truncated after a crash (no record) is not detected;
// the libraries then behave as they always do.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "kvcore/status.hpp"
#include "util/log.hpp"

namespace kvcore::engine {

inline constexpr std::string_view kCleanCloseFile = "KVCORE_CLEAN_CLOSE";

namespace manifest_guard_detail {

// The MANIFEST file name CURRENT holds ("MANIFEST-000005"), or empty.
inline std::string current_manifest(const std::string& dir) {
  std::ifstream in(dir + "/CURRENT");
  std::string name;
  if (!in || !std::getline(in, name)) return {};
  if (!name.starts_with("MANIFEST-") || name.find('/') != std::string::npos) return {};
  return name;
}

inline bool fsync_fd_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace manifest_guard_detail

// After the library closed `dir` cleanly: records the MANIFEST and its size.
// Failure only costs the check at the next open, so it is logged, not
// returned.
inline void record_clean_close(const std::string& dir, std::string_view engine_name) {
  namespace fs = std::filesystem;
  using manifest_guard_detail::current_manifest;
  const std::string manifest = current_manifest(dir);
  if (manifest.empty()) return;
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(dir + "/" + manifest, ec);
  if (ec) return;
  const std::string file = dir + "/" + std::string(kCleanCloseFile);
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << manifest << ' ' << size << '\n';
    out.flush();
    if (!out) {
      KVCORE_LOG_WARN("{}: cannot write {}", engine_name, tmp);
      fs::remove(tmp, ec);
      return;
    }
  }
  // Synced before the rename, so a record that survives a machine crash is
  // never empty; the directory sync makes the record itself durable.
  if (!manifest_guard_detail::fsync_fd_path(tmp, O_RDONLY) ||
      ::rename(tmp.c_str(), file.c_str()) != 0) {
    KVCORE_LOG_WARN("{}: cannot record the clean close of {}", engine_name, dir);
    fs::remove(tmp, ec);
    return;
  }
  manifest_guard_detail::fsync_fd_path(dir, O_RDONLY | O_DIRECTORY);
}

// Before the library opens `dir`: Corruption when the store was closed
// cleanly and the MANIFEST CURRENT names has changed size since.
[[nodiscard]] inline Status check_manifest_since_clean_close(const std::string& dir,
                                                             std::string_view engine_name) {
  namespace fs = std::filesystem;
  std::ifstream in(dir + "/" + std::string(kCleanCloseFile));
  if (!in) return {};
  std::string recorded;
  std::uintmax_t recorded_size = 0;
  if (!(in >> recorded >> recorded_size)) return {};  // unreadable: no claim to check
  const std::string manifest = manifest_guard_detail::current_manifest(dir);
  if (manifest != recorded) return {};  // rewritten by an open or a repair since
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(dir + "/" + manifest, ec);
  if (ec) return {};  // missing: the library reports it
  if (size == recorded_size) return {};
  return Status::corruption(fmt::format(
      "{} store at {} is damaged: {} has {} bytes but had {} when the store was last closed "
      "cleanly (the MANIFEST was truncated or overwritten); refusing to open, which would make "
      "{} delete the table files the damaged MANIFEST no longer names",
      engine_name, dir, manifest, size, recorded_size, engine_name));
}

// After a successful open: the record no longer describes the store.
inline void forget_clean_close(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove(dir + "/" + std::string(kCleanCloseFile), ec);
}

}  // namespace kvcore::engine
