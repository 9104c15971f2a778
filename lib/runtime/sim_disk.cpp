#include "runtime/sim_disk.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "runtime/sim_runtime.hpp"

namespace kvcore::runtime {
namespace {

Status errno_error(std::string_view what, const std::string& path, int err) {
  return Status::io_error(
      fmt::format("simulated disk: cannot {} {}: {}", what, path, std::strerror(err)));
}

}  // namespace

SimDisk::~SimDisk() { assert(view_ == nullptr && "SimDisk destroyed while a view is bound"); }

Status SimDisk::sync_file(int /*fd*/, const std::string& path, std::uint64_t length) {
  std::lock_guard lock(mu_);
  files_[path] = length;
  ++syncs_;
  if (view_ != nullptr && latency_ > Duration::zero()) {
    view_->pause_for(view_->paused_for() + latency_);
  }
  return Status::ok();
}

void SimDisk::created(const std::string& path) {
  std::lock_guard lock(mu_);
  // A name reused after a removal starts over: nothing of it is durable yet.
  files_[path] = std::nullopt;
}

void SimDisk::removed(const std::string& path) {
  std::lock_guard lock(mu_);
  files_.erase(path);
}

Status SimDisk::crash() {
  std::lock_guard lock(mu_);
  for (auto it = files_.begin(); it != files_.end();) {
    const std::string& path = it->first;
    if (!it->second) {
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return errno_error("remove", path, errno);
      }
      it = files_.erase(it);
      continue;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno != ENOENT) return errno_error("stat", path, errno);
      // Gone behind the disk's back: nothing is left to cut.
      it = files_.erase(it);
      continue;
    }
    // Only ever shorter: a file below its synced length was cut on purpose
    // (and the cut synced), and growing it would invent zeros.
    if (static_cast<std::uint64_t>(st.st_size) > *it->second &&
        ::truncate(path.c_str(), static_cast<off_t>(*it->second)) != 0) {
      return errno_error("truncate", path, errno);
    }
    ++it;
  }
  return Status::ok();
}

void SimDisk::set_sync_latency(Duration latency) {
  assert(latency >= Duration::zero());
  std::lock_guard lock(mu_);
  latency_ = std::max(latency, Duration::zero());
}

Duration SimDisk::sync_latency() const {
  std::lock_guard lock(mu_);
  return latency_;
}

std::optional<std::uint64_t> SimDisk::synced_length(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return std::nullopt;
  return it->second;
}

bool SimDisk::knows(const std::string& path) const {
  std::lock_guard lock(mu_);
  return files_.count(path) > 0;
}

std::uint64_t SimDisk::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

SimView* SimDisk::bound_view() const {
  std::lock_guard lock(mu_);
  return view_;
}

void SimDisk::bind(SimView* view) {
  std::lock_guard lock(mu_);
  view_ = view;
}

void SimDisk::unbind(SimView* view) {
  std::lock_guard lock(mu_);
  if (view_ == view) view_ = nullptr;
}

}  // namespace kvcore::runtime
