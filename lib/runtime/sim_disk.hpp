// SimDisk: the disk of one simulated machine. It keeps a ledger of how much
// of each file was last synced, and crash() cuts every file back to that, so
// what a reopen finds is exactly what a power loss would have left: synced
// bytes survive, unsynced ones are gone, and a file created but never synced
// is gone altogether.
//
// The bytes themselves live in ordinary files (the simulation writes them as
// production does); sync_file only updates the ledger and never calls
// fdatasync, so syncing costs a simulation nothing unless set_sync_latency()
// says otherwise. Files the disk never heard of (made before it existed, or
// by code that does not go through it) are left alone by crash(). Removals
// and creations are taken as durable at once: directory syncs are not
// modelled.
//
// A SimDisk belongs to one simulated machine and outlives its restarts: it
// is created by the harness and bound to each SimView made for that machine
// (SimRuntime::make_view(skew, &disk)), whose disk() it then is.
//
// Thread-safety: the ledger calls (sync_file, created, removed, crash and the
// inspection calls) may come from any thread, so a raft log engine with
// concurrent writers can use a SimDisk outside a simulation. A sync latency
// acts only through a bound view, and views belong to the simulation's
// thread: set one only where every sync comes from that thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "runtime/clock.hpp"
#include "runtime/disk.hpp"

namespace kvcore::runtime {

class SimView;

class SimDisk final : public Disk {
 public:
  SimDisk() = default;
  // REQUIRES: no SimView is bound to it any more (views are destroyed first).
  ~SimDisk() override;

  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  // Records `length` as the durable size of `path` (the last sync wins, also
  // when it is shorter: a truncation that was synced). Never fails. When a
  // sync latency is set and a view is bound, that view is paused for the
  // latency on top of any pause it is already in (syncs queue as on one
  // disk): the call itself returns at once, since the simulation's one
  // thread cannot block, and the machine does nothing else meanwhile.
  [[nodiscard]] Status sync_file(int fd, const std::string& path, std::uint64_t length) override;
  void created(const std::string& path) override;
  void removed(const std::string& path) override;

  // A power loss: every file in the ledger is truncated to its synced
  // length, and every file created but never synced is removed (a file
  // already missing is fine). The ledger then describes the files as they
  // are. IOError when a file cannot be cut or removed.
  // REQUIRES: nothing has those files open for writing (stop the store that
  // uses the disk first): they change under its feet otherwise.
  [[nodiscard]] Status crash();

  // How long each later sync_file stalls the bound view; zero (the default)
  // for a disk whose syncs are free. REQUIRES: latency >= 0.
  void set_sync_latency(Duration latency);
  [[nodiscard]] Duration sync_latency() const;

  // --- inspection ---
  // The durable size of `path`; nullopt when it was never synced or the disk
  // does not know it.
  [[nodiscard]] std::optional<std::uint64_t> synced_length(const std::string& path) const;
  // Whether `path` is in the ledger (created or synced, and not removed).
  [[nodiscard]] bool knows(const std::string& path) const;
  // sync_file calls so far.
  [[nodiscard]] std::uint64_t syncs() const;
  // The view the disk stalls, nullptr when none is bound.
  [[nodiscard]] SimView* bound_view() const;

 private:
  friend class SimView;
  // A view made with this disk binds itself; the newest binding wins, and a
  // view unbinds itself (only if still bound) when it is destroyed.
  void bind(SimView* view);
  void unbind(SimView* view);

  mutable std::mutex mu_;
  // path -> synced length; nullopt for a file created and not yet synced.
  std::map<std::string, std::optional<std::uint64_t>> files_;  // guarded by mu_
  Duration latency_{0};                                        // guarded by mu_
  std::uint64_t syncs_ = 0;                                    // guarded by mu_
  SimView* view_ = nullptr;                                    // guarded by mu_
};

}  // namespace kvcore::runtime
