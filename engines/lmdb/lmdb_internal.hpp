// Internals of LmdbEngine shared by its two source files: lmdb_engine.cpp
// (open, writes, map growth, maintenance) and lmdb_read.cpp (snapshots,
// iterators, point reads, range figures). Not part of any public interface.
#pragma once

#include <lmdb.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "kvcore/engine/types.hpp"
#include "kvcore/status.hpp"
#include "lmdb_engine.hpp"

namespace kvcore::lmdb_detail {

// Reset read transactions kept for reuse: renewing one skips the allocation
// and the reader-table mutex of mdb_txn_begin.
inline constexpr std::size_t kTxnPoolSize = 32;

inline MDB_val to_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// A Status for LMDB (or system) code `rc` while doing `what` to `path`.
[[nodiscard]] Status lmdb_status(int rc, std::string_view what, const std::string& path);
// InvalidArgument for a key LMDB cannot store (empty, or over `max_key`).
[[nodiscard]] Status check_key(std::string_view key, std::size_t max_key);

// A shared/exclusive lock that lets a waiting exclusive holder in first.
// std::shared_mutex (glibc rwlock) prefers readers, so under a steady stream
// of reads a map growth could wait forever; here new readers queue behind
// a pending growth on `gate_`, while readers already in finish their call.
// REQUIRES: a thread never takes it shared twice (it would deadlock against a
// pending growth).
class RemapLock {
 public:
  void lock_shared() {
    if (pending_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> wait(gate_);
    }
    mu_.lock_shared();
  }
  void unlock_shared() { mu_.unlock_shared(); }
  void lock() {
    gate_.lock();
    pending_.store(true, std::memory_order_release);
    mu_.lock();
  }
  void unlock() {
    mu_.unlock();
    pending_.store(false, std::memory_order_release);
    gate_.unlock();
  }

 private:
  std::mutex gate_;
  std::atomic<bool> pending_{false};
  std::shared_mutex mu_;
};

// Invariant: any call that reads the memory map (a read transaction's begin,
// renew, get or cursor move; mdb_env_info/stat/copy/sync) holds a
// MapReadLock (`remap` shared, unless the map is fixed), or holds `write_mu`
// (the only place the map is resized, under `remap` exclusive, is grow_map
// with `write_mu` held and no write transaction open).
struct Env {
  std::string path;
  std::string claimed;  // canonical path registered in open_dirs()
  MDB_env* env = nullptr;
  std::array<MDB_dbi, kNumCFs> dbi{};
  std::size_t max_key = 0;
  std::size_t max_map = 0;
  std::atomic<std::size_t> map_bytes{0};  // written under write_mu and remap
  bool opened = false;                    // open() finished: sync on close
  // Set by open(), constant afterwards: the map already has its maximum
  // size, so it never moves. Readers then take no remap lock and iterators
  // return views into the map.
  bool fixed_map = false;

  mutable RemapLock remap;
  // Both written under remap exclusive (with write_mu), read under remap.
  std::uint64_t generation = 0;  // bumped by each remap
  bool broken = false;           // a remap failed: the map is gone

  std::mutex write_mu;  // serializes write transactions and map growth

  // Reset read transactions kept for reuse, one per slot (null: empty). A
  // slot is taken by exchange and filled by compare-exchange, so a point
  // read takes no mutex; the acquire/release pair hands the reset
  // transaction to the thread that renews it (MDB_NOTLS allows that).
  std::array<std::atomic<MDB_txn*>, kTxnPoolSize> pool{};

  Env() = default;
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  // Syncs (when `opened`) and closes the environment, returns the pooled
  // transactions and releases the claim on the directory.
  ~Env();

  // Registers `dir` as open in this process; FailedPrecondition if it is.
  Status claim(const std::string& dir);

  // REQUIRES: remap or write_mu held.
  [[nodiscard]] Status usable() const {
    if (!broken) return {};
    return Status::io_error(
        fmt::format("lmdb: {} is unusable after a failed map resize; reopen it", path));
  }

  [[nodiscard]] MDB_dbi dbi_of(CF cf) const { return dbi[cf_index(cf)]; }

  // REQUIRES: a MapReadLock held.
  int begin_read(MDB_txn** out) {
    for (auto& slot : pool) {
      if (slot.load(std::memory_order_relaxed) == nullptr) continue;
      MDB_txn* txn = slot.exchange(nullptr, std::memory_order_acquire);
      if (txn == nullptr) continue;  // another reader took it first
      if (mdb_txn_renew(txn) == 0) {
        *out = txn;
        return 0;
      }
      mdb_txn_abort(txn);
      break;
    }
    return mdb_txn_begin(env, nullptr, MDB_RDONLY, out);
  }

  // Needs no lock: resetting a read transaction does not touch the map.
  void end_read(MDB_txn* txn) noexcept {
    mdb_txn_reset(txn);
    for (auto& slot : pool) {
      MDB_txn* empty = nullptr;
      if (slot.load(std::memory_order_relaxed) == nullptr &&
          slot.compare_exchange_strong(empty, txn, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return;
      }
    }
    mdb_txn_abort(txn);
  }
};

// Held while reading the map: `remap` shared, or nothing when the map is
// fixed (no growth can ever take `remap` exclusively then).
class MapReadLock {
 public:
  explicit MapReadLock(const Env& env) : lock_(env.fixed_map ? nullptr : &env.remap) {
    if (lock_ != nullptr) lock_->lock_shared();
  }
  MapReadLock(const MapReadLock&) = delete;
  MapReadLock& operator=(const MapReadLock&) = delete;
  ~MapReadLock() {
    if (lock_ != nullptr) lock_->unlock_shared();
  }

 private:
  RemapLock* lock_;
};

// A read transaction shared by a snapshot and its iterators, or owned by one
// engine iterator; returned to the pool when the last owner lets go.
struct ReadTxn {
  ReadTxn(std::shared_ptr<Env> e, MDB_txn* t) : env(std::move(e)), txn(t) {}
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  ~ReadTxn() { env->end_read(txn); }
  std::shared_ptr<Env> env;
  MDB_txn* txn;
};

// A read transaction of the engine now. With `for_threads`, every column
// family's record is loaded at once: LMDB loads it lazily on first use,
// writing into the transaction, which must not happen while several threads
// read through it.
// REQUIRES: a MapReadLock held.
[[nodiscard]] Result<std::shared_ptr<ReadTxn>> open_read(const std::shared_ptr<Env>& env,
                                                         bool for_threads);

// REQUIRES (both): a MapReadLock held.
[[nodiscard]] Result<std::optional<std::string>> get_in(const Env& env, MDB_txn* txn, CF cf,
                                                        std::string_view key);
[[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get_in(
    const Env& env, MDB_txn* txn, CF cf, std::span<const std::string_view> keys);

// Cursor positioning; each returns an LMDB code (MDB_NOTFOUND: no such key).
// The first key >= target. A target longer than any key LMDB can hold is
// probed by its longest storable prefix.
int first_at_or_after(MDB_cursor* c, std::string_view target, std::size_t max_key, MDB_val* k,
                      MDB_val* v);
// The last key < bound.
int last_before(MDB_cursor* c, std::string_view bound, std::size_t max_key, MDB_val* k, MDB_val* v);
// The last key <= target.
int last_at_or_before(MDB_cursor* c, std::string_view target, std::size_t max_key, MDB_val* k,
                      MDB_val* v);

}  // namespace kvcore::lmdb_detail
