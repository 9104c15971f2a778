#include "engine/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace kvcore::engine {
namespace fs = std::filesystem;

Status errno_status(std::string_view what, const std::string& path, int err) {
  auto msg = fmt::format("{} {}: {}", what, path, std::strerror(err));
  if (err == ENOENT) return Status::not_found(msg);
  if (err == ENOSPC) return Status::resource_exhausted(msg);
  return Status::io_error(msg);
}

Status require_absent(const std::string& path) {
  std::error_code ec;
  if (fs::exists(path, ec)) return Status::already_exists(path + " exists already");
  return {};
}

Status prepare_engine_dir(const std::string& dir, std::string_view name,
                          const EngineOptions& opts, bool* fresh) {
  *fresh = false;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return errno_status("cannot stat", dir, errno);
    if (!opts.create_if_missing) {
      return Status::not_found(fmt::format("no {} store at {} (create_if_missing is off)", name, dir));
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::io_error(fmt::format("cannot create {}: {}", dir, ec.message()));
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::invalid_argument(fmt::format("{} is not a directory", dir));
  }

  const std::string marker = dir + "/" + std::string(kMarkerFile);
  std::ifstream in(marker);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    std::string found = ss.str();
    while (!found.empty() && (found.back() == '\n' || found.back() == '\r')) found.pop_back();
    if (found != name) {
      return Status::invalid_argument(
          fmt::format("{} holds a '{}' store, not a '{}' store", dir, found, name));
    }
    if (opts.error_if_exists) {
      return Status::already_exists(fmt::format("a {} store exists at {}", name, dir));
    }
    return {};
  }

  std::error_code ec;
  bool empty = fs::is_empty(dir, ec);
  if (ec) return Status::io_error(fmt::format("cannot list {}: {}", dir, ec.message()));
  if (!empty) {
    // Files but no marker: another program's directory. Opening it could mix
    // two formats in one place, so refuse instead of guessing.
    return Status::invalid_argument(fmt::format(
        "{} is not empty and holds no kvcore store (no {} file); refusing to open it as {}", dir,
        kMarkerFile, name));
  }
  if (!opts.create_if_missing) {
    return Status::not_found(fmt::format("no {} store at {} (create_if_missing is off)", name, dir));
  }
  *fresh = true;
  if (::access(dir.c_str(), W_OK) != 0) return errno_status("cannot write to", dir, errno);
  return write_engine_marker(dir, name);
}

Status write_engine_marker(const std::string& dir, std::string_view name) {
  const std::string marker = dir + "/" + std::string(kMarkerFile);
  const std::string tmp = marker + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("cannot create", tmp, errno);
  std::string text = std::string(name) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) return errno_status("cannot write", tmp, err);
  if (::rename(tmp.c_str(), marker.c_str()) != 0) return errno_status("cannot rename", tmp, errno);
  return {};
}

}  // namespace kvcore::engine
