#include "lmdb_engine.hpp"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <utility>

#include <fmt/format.h>

#include "engine/fs.hpp"
#include "kvcore/engine/concept.hpp"
#include "util/log.hpp"

namespace kvcore {
namespace lmdb_detail {

namespace fs = std::filesystem;

namespace {

// Reader slots of the lock table. Every snapshot and every live iterator
// holds one for its life (MDB_NOTLS), plus the pooled transactions.
constexpr unsigned kMaxReaders = 1024;
// Reset read transactions kept for reuse: renewing one skips the allocation
// and the reader-table mutex of mdb_txn_begin.
constexpr std::size_t kTxnPoolSize = 32;
// Entries a range walk visits per hold of the remap lock.
constexpr std::size_t kWalkChunk = 1024;
// What a transaction body returns when it failed for a reason of its own
// (its Status is then in the caller's hands); never an LMDB code.
constexpr int kBodyFailed = INT_MIN;

MDB_val to_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

std::size_t round_up_to_page(std::size_t bytes) {
  constexpr std::size_t kPage = 4096;
  return (bytes + kPage - 1) / kPage * kPage;
}

Status lmdb_status(int rc, std::string_view what, const std::string& path) {
  std::string msg = fmt::format("lmdb: cannot {} {}: {}", what, path, mdb_strerror(rc));
  switch (rc) {
    case MDB_NOTFOUND:
    case ENOENT:
      return Status::not_found(msg);
    case MDB_KEYEXIST:
      return Status::already_exists(msg);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
    case MDB_CURSOR_FULL:  // a tree deeper than LMDB ever builds
      return Status::corruption(msg);
    case MDB_MAP_FULL:
    case MDB_READERS_FULL:
    case MDB_TLS_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
    case ENOMEM:
    case EDQUOT:
      return Status::resource_exhausted(msg);
    case MDB_BAD_VALSIZE:
      return Status::invalid_argument(msg);
    case MDB_MAP_RESIZED:
    case EAGAIN:
    case EBUSY:
      return Status::failed_precondition(msg + " (is another process using the store?)");
    case MDB_DBS_FULL:
    case MDB_PAGE_FULL:
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_BAD_DBI:
    case EINVAL:
      return Status::internal(msg);
    default:  // MDB_PANIC, EACCES, EROFS, EIO and every other errno
      return Status::io_error(msg);
  }
}

Status check_key(std::string_view key, std::size_t max_key) {
  if (key.empty()) return Status::invalid_argument("lmdb: empty keys cannot be stored");
  if (key.size() > max_key) {
    return Status::invalid_argument(
        fmt::format("lmdb: a key of {} bytes is longer than LMDB's maximum key size ({} bytes)",
                    key.size(), max_key));
  }
  return {};
}

// Directories open in this process. LMDB forbids opening one environment
// twice in a process: closing either handle drops the other's file locks.
std::mutex g_open_mu;
std::set<std::string>& open_dirs() {
  static std::set<std::string> dirs;  // guarded by g_open_mu
  return dirs;
}

Status fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return engine::errno_status("cannot open", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? Status() : engine::errno_status("cannot fsync", path, err);
}

}  // namespace

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
// renew, get or cursor move; mdb_env_info/stat/copy/sync) holds `remap`
// shared, or holds `write_mu` (the only place the map is resized, under
// `remap` exclusive, is grow_map with `write_mu` held and no write
// transaction open).
struct Env {
  std::string path;
  std::string claimed;  // canonical path registered in open_dirs()
  MDB_env* env = nullptr;
  std::array<MDB_dbi, kNumCFs> dbi{};
  std::size_t max_key = 0;
  std::size_t max_map = 0;
  std::atomic<std::size_t> map_bytes{0};  // written under write_mu and remap

  mutable RemapLock remap;
  std::uint64_t generation = 0;  // guarded by remap; bumped by each remap
  bool broken = false;           // guarded by remap; a remap failed: unusable

  std::mutex write_mu;  // serializes write transactions and map growth

  std::mutex pool_mu;
  std::vector<MDB_txn*> pool;  // guarded by pool_mu; reset read transactions

  Env() = default;
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  ~Env() {
    for (MDB_txn* txn : pool) mdb_txn_abort(txn);
    if (env != nullptr) {
      // Closing is a natural durability point and narrows the window in
      // which a machine crash meets unsynced commits.
      if (int rc = mdb_env_sync(env, 1); rc != 0) {
        KVCORE_LOG_WARN("lmdb: cannot sync {} on close: {}", path, mdb_strerror(rc));
      }
      mdb_env_close(env);
    }
    if (!claimed.empty()) {
      std::lock_guard<std::mutex> g(g_open_mu);
      open_dirs().erase(claimed);
    }
  }

  Status claim(const std::string& dir) {
    std::error_code ec;
    std::string canonical = fs::weakly_canonical(dir, ec).string();
    if (ec) canonical = dir;
    std::lock_guard<std::mutex> g(g_open_mu);
    if (!open_dirs().insert(canonical).second) {
      return Status::failed_precondition(
          fmt::format("lmdb: {} is already open in this process", dir));
    }
    claimed = canonical;
    return {};
  }

  // REQUIRES: remap held (either way) or write_mu held.
  [[nodiscard]] Status usable() const {
    if (!broken) return {};
    return Status::io_error(
        fmt::format("lmdb: {} is unusable after a failed map resize; reopen it", path));
  }

  [[nodiscard]] MDB_dbi dbi_of(CF cf) const { return dbi[cf_index(cf)]; }

  // REQUIRES: remap held shared.
  int begin_read(MDB_txn** out) {
    MDB_txn* txn = nullptr;
    {
      std::lock_guard<std::mutex> g(pool_mu);
      if (!pool.empty()) {
        txn = pool.back();
        pool.pop_back();
      }
    }
    if (txn != nullptr) {
      if (mdb_txn_renew(txn) == 0) {
        *out = txn;
        return 0;
      }
      mdb_txn_abort(txn);
    }
    return mdb_txn_begin(env, nullptr, MDB_RDONLY, out);
  }

  // Needs no lock: resetting a read transaction does not touch the map.
  void end_read(MDB_txn* txn) noexcept {
    mdb_txn_reset(txn);
    {
      std::lock_guard<std::mutex> g(pool_mu);
      if (pool.size() < kTxnPoolSize) {
        pool.push_back(txn);
        return;
      }
    }
    mdb_txn_abort(txn);
  }
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

void CursorCloser::operator()(MDB_cursor* cursor) const noexcept { mdb_cursor_close(cursor); }

namespace {

// A read transaction for the length of one call.
class TxnLease {
 public:
  explicit TxnLease(Env& env) : env_(env) {}
  TxnLease(const TxnLease&) = delete;
  TxnLease& operator=(const TxnLease&) = delete;
  ~TxnLease() {
    if (txn_ != nullptr) env_.end_read(txn_);
  }
  // REQUIRES: env.remap held shared.
  [[nodiscard]] Status begin() {
    KVCORE_RETURN_IF_ERROR(env_.usable());
    int rc = env_.begin_read(&txn_);
    if (rc != 0) {
      txn_ = nullptr;
      return lmdb_status(rc, "begin a read transaction in", env_.path);
    }
    return {};
  }
  [[nodiscard]] MDB_txn* get() const { return txn_; }

 private:
  Env& env_;
  MDB_txn* txn_ = nullptr;
};

// A read transaction that may outlive the call. With `for_threads`, every
// column family's record is loaded now: LMDB loads it lazily on first use,
// writing into the transaction, which must not happen while several
// threads read through it.
Result<std::shared_ptr<ReadTxn>> open_read(const std::shared_ptr<Env>& env, bool for_threads) {
  std::shared_lock<RemapLock> lk(env->remap);
  KVCORE_RETURN_IF_ERROR(env->usable());
  MDB_txn* raw = nullptr;
  int rc = env->begin_read(&raw);
  if (rc != 0) return lmdb_status(rc, "begin a read transaction in", env->path);
  auto txn = std::make_shared<ReadTxn>(env, raw);
  if (for_threads) {
    for (CF cf : kAllCFs) {
      MDB_stat st;
      rc = mdb_stat(raw, env->dbi_of(cf), &st);
      if (rc != 0) return lmdb_status(rc, "read the column families of", env->path);
    }
  }
  return txn;
}

// REQUIRES: env.remap held shared.
Result<std::optional<std::string>> get_in(const Env& env, MDB_txn* txn, CF cf,
                                          std::string_view key) {
  if (key.empty() || key.size() > env.max_key) return std::optional<std::string>();
  MDB_val k = to_val(key);
  MDB_val v{};
  int rc = mdb_get(txn, env.dbi_of(cf), &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string>();
  if (rc != 0) return lmdb_status(rc, "read from", env.path);
  return std::optional<std::string>(view(v));
}

// REQUIRES: env.remap held shared.
Result<std::vector<std::optional<std::string>>> multi_get_in(
    const Env& env, MDB_txn* txn, CF cf, std::span<const std::string_view> keys) {
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (std::string_view key : keys) {
    KVCORE_ASSIGN_OR_RETURN(auto value, get_in(env, txn, cf, key));
    out.push_back(std::move(value));
  }
  return out;
}

// Positions `c` on the first key >= target. A target longer than any key
// LMDB can hold is probed by its longest storable prefix: only that prefix
// itself sorts between the probe and the target, so it is stepped over.
int first_at_or_after(MDB_cursor* c, std::string_view target, std::size_t max_key, MDB_val* k,
                      MDB_val* v) {
  if (target.empty()) return mdb_cursor_get(c, k, v, MDB_FIRST);
  std::string_view probe = target.substr(0, max_key);
  *k = to_val(probe);
  int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
  if (rc == 0 && probe.size() < target.size() && view(*k) == probe) {
    rc = mdb_cursor_get(c, k, v, MDB_NEXT);
  }
  return rc;
}

// Positions `c` on the last key < bound.
int last_before(MDB_cursor* c, std::string_view bound, std::size_t max_key, MDB_val* k,
                MDB_val* v) {
  int rc = first_at_or_after(c, bound, max_key, k, v);
  if (rc == MDB_NOTFOUND) return mdb_cursor_get(c, k, v, MDB_LAST);
  if (rc != 0) return rc;
  return mdb_cursor_get(c, k, v, MDB_PREV);
}

// Positions `c` on the last key <= target.
int last_at_or_before(MDB_cursor* c, std::string_view target, std::size_t max_key, MDB_val* k,
                      MDB_val* v) {
  int rc = first_at_or_after(c, target, max_key, k, v);
  if (rc == MDB_NOTFOUND) return mdb_cursor_get(c, k, v, MDB_LAST);
  if (rc != 0 || view(*k) == target) return rc;
  return mdb_cursor_get(c, k, v, MDB_PREV);
}

// Doubles the map (up to env.max_map).
// REQUIRES: env.write_mu held and no write transaction open.
Status grow_map(Env& env) {
  const std::size_t current = env.map_bytes.load();
  if (current >= env.max_map) {
    return Status::resource_exhausted(fmt::format(
        "lmdb: {} is full: its map reached lmdb_max_map_bytes ({} bytes)", env.path, env.max_map));
  }
  const std::size_t next = current > env.max_map / 2 ? env.max_map : current * 2;
  // If LMDB's own remap failed it would leave the environment unmapped, so
  // first make sure the address space is there.
  void* probe = ::mmap(nullptr, next, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (probe == MAP_FAILED) {
    return Status::resource_exhausted(fmt::format("lmdb: cannot grow the map of {} to {} bytes: {}",
                                                  env.path, next, std::strerror(errno)));
  }
  ::munmap(probe, next);

  std::unique_lock<RemapLock> lk(env.remap);
  int rc = mdb_env_set_mapsize(env.env, next);
  ++env.generation;
  if (rc != 0) {
    env.broken = true;
    return lmdb_status(rc, fmt::format("grow the map to {} bytes of", next), env.path);
  }
  MDB_envinfo info;
  mdb_env_info(env.env, &info);
  env.map_bytes.store(info.me_mapsize);
  KVCORE_LOG_INFO("lmdb: grew the map of {} from {} to {} bytes", env.path, current,
                  info.me_mapsize);
  return {};
}

// Runs `body` (int(MDB_txn*)) in one write transaction and commits it. When
// the map fills, at any put or at the commit, the transaction is dropped,
// the map grows and `body` runs again from the start, so it must depend on
// nothing but the transaction. `body` returns an LMDB code, or kBodyFailed
// after storing its reason in `failure`.
// REQUIRES: env.write_mu held.
template <class Body>
Status run_write(Env& env, std::string_view what, Status& failure, Body&& body) {
  for (;;) {
    KVCORE_RETURN_IF_ERROR(env.usable());
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env.env, nullptr, 0, &txn);
    if (rc != 0) return lmdb_status(rc, "begin a write transaction in", env.path);
    rc = body(txn);
    if (rc == 0) {
      rc = mdb_txn_commit(txn);  // frees the transaction, also on failure
    } else {
      mdb_txn_abort(txn);
    }
    if (rc == 0) return {};
    if (rc == kBodyFailed) return failure;
    if (rc != MDB_MAP_FULL) return lmdb_status(rc, what, env.path);
    KVCORE_RETURN_IF_ERROR(grow_map(env));
  }
}

Status sync_env(Env& env) {
  std::shared_lock<RemapLock> lk(env.remap);
  KVCORE_RETURN_IF_ERROR(env.usable());
  int rc = mdb_env_sync(env.env, 1);
  return rc == 0 ? Status() : lmdb_status(rc, "sync", env.path);
}

int put_in(const Env& env, MDB_txn* txn, CF cf, std::string_view key, std::string_view value) {
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  return mdb_put(txn, env.dbi_of(cf), &k, &v, 0);
}

// A key LMDB cannot store is absent: deleting it does nothing.
int delete_in(const Env& env, MDB_txn* txn, CF cf, std::string_view key) {
  if (key.empty() || key.size() > env.max_key) return 0;
  MDB_val k = to_val(key);
  int rc = mdb_del(txn, env.dbi_of(cf), &k, nullptr);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

// Deletes [begin, end) with one cursor. After mdb_cursor_del the cursor
// stands on the following entry, and MDB_NEXT returns exactly that entry.
int delete_range_in(const Env& env, MDB_txn* txn, CF cf, std::string_view begin,
                    std::string_view end) {
  if (begin >= end) return 0;
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn, env.dbi_of(cf), &c);
  if (rc != 0) return rc;
  MDB_val k{};
  MDB_val v{};
  rc = first_at_or_after(c, begin, env.max_key, &k, &v);
  while (rc == 0 && view(k) < end) {
    rc = mdb_cursor_del(c, 0);
    if (rc == 0) rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

// Calls on_entry(key_bytes, value_bytes) for each entry of `range`, in one
// read transaction. The remap lock is held for kWalkChunk entries at a time,
// so a long walk delays a map growth by one chunk at most; each chunk starts
// with a fresh cursor position, as a growth may have moved the map.
template <class Fn>
Status walk_range(Env& env, CF cf, KeyRange range, Fn&& on_entry) {
  TxnLease txn(env);
  std::unique_ptr<MDB_cursor, CursorCloser> cursor;
  std::string from(range.start);
  for (;;) {
    std::shared_lock<RemapLock> lk(env.remap);
    int rc = 0;
    if (!cursor) {
      KVCORE_RETURN_IF_ERROR(txn.begin());
      MDB_cursor* c = nullptr;
      rc = mdb_cursor_open(txn.get(), env.dbi_of(cf), &c);
      if (rc != 0) return lmdb_status(rc, "open a cursor in", env.path);
      cursor.reset(c);
    } else {
      KVCORE_RETURN_IF_ERROR(env.usable());
      rc = mdb_cursor_renew(txn.get(), cursor.get());
    }
    MDB_val k{};
    MDB_val v{};
    if (rc == 0) rc = first_at_or_after(cursor.get(), from, env.max_key, &k, &v);
    for (std::size_t n = 0; rc == 0; ++n) {
      if (!range.end.empty() && view(k) >= range.end) return {};
      if (n == kWalkChunk) {
        from.assign(view(k));
        break;
      }
      on_entry(k.mv_size, v.mv_size);
      rc = mdb_cursor_get(cursor.get(), &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) return {};
    if (rc != 0) return lmdb_status(rc, "scan", env.path);
  }
}

// Opening a half-copied or truncated data file would map pages past its end,
// and reading them raises SIGBUS; LMDB checks only the meta pages.
Status check_data_file(const Env& env) {
  MDB_envinfo info;
  MDB_stat st;
  int rc = mdb_env_info(env.env, &info);
  if (rc == 0) rc = mdb_env_stat(env.env, &st);
  if (rc != 0) return lmdb_status(rc, "read the header of", env.path);
  const std::string file = env.path + "/data.mdb";
  struct stat fst {};
  if (::stat(file.c_str(), &fst) != 0) return engine::errno_status("cannot stat", file, errno);
  const auto need = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  if (static_cast<std::uint64_t>(fst.st_size) < need) {
    return Status::corruption(
        fmt::format("lmdb: {} is truncated: it has {} bytes but its pages end at byte {}", file,
                    fst.st_size, need));
  }
  return {};
}

}  // namespace
}  // namespace lmdb_detail

using lmdb_detail::Env;
using lmdb_detail::RemapLock;

// ---------------------------------------------------------------- Iterator

LmdbEngine::Iterator::Iterator(std::shared_ptr<Env> env, std::shared_ptr<lmdb_detail::ReadTxn> txn,
                               CF cf, const IterOptions& opts, Status init)
    : env_(std::move(env)),
      txn_(std::move(txn)),
      lower_(opts.lower_bound),
      upper_(opts.upper_bound),
      status_(std::move(init)) {
  if (!status_.is_ok()) return;
  std::shared_lock<RemapLock> lk(env_->remap);
  status_ = env_->usable();
  MDB_cursor* c = nullptr;
  int rc = status_.is_ok() ? mdb_cursor_open(txn_->txn, env_->dbi_of(cf), &c) : 0;
  if (rc != 0) status_ = lmdb_detail::lmdb_status(rc, "open a cursor in", env_->path);
  if (!status_.is_ok()) {
    txn_.reset();
    return;
  }
  cursor_.reset(c);
  generation_ = env_->generation;
}

void LmdbEngine::Iterator::seek(std::string_view key) { move(Move::kSeek, key); }
void LmdbEngine::Iterator::seek_for_prev(std::string_view key) { move(Move::kSeekForPrev, key); }
void LmdbEngine::Iterator::seek_to_first() { move(Move::kFirst, {}); }
void LmdbEngine::Iterator::seek_to_last() { move(Move::kLast, {}); }
void LmdbEngine::Iterator::next() { move(Move::kNext, {}); }
void LmdbEngine::Iterator::prev() { move(Move::kPrev, {}); }

void LmdbEngine::Iterator::move(Move how, std::string_view target) {
  using namespace lmdb_detail;
  const bool was_valid = valid_;
  valid_ = false;
  if (!status_.is_ok()) return;
  const bool step = how == Move::kNext || how == Move::kPrev;
  if (step && !was_valid) return;

  Env& env = *env_;
  std::shared_lock<RemapLock> lk(env.remap);
  if (Status s = env.usable(); !s.is_ok()) {
    status_ = s;
    return;
  }
  MDB_cursor* c = cursor_.get();
  // After a remap the cursor's page pointers dangle: renew it (the read
  // transaction itself is still valid) and, for a step, stand on key_ again.
  const bool stale = generation_ != env.generation;
  int rc = 0;
  if (stale) {
    rc = mdb_cursor_renew(txn_->txn, c);
    generation_ = env.generation;
  }
  MDB_val k{};
  MDB_val v{};
  if (rc == 0) {
    switch (how) {
      case Move::kSeek:
        rc = first_at_or_after(c, std::max(target, std::string_view(lower_)), env.max_key, &k, &v);
        break;
      case Move::kFirst:
        rc = first_at_or_after(c, lower_, env.max_key, &k, &v);
        break;
      case Move::kSeekForPrev:
        rc = !upper_.empty() && target >= upper_
                 ? last_before(c, upper_, env.max_key, &k, &v)
                 : last_at_or_before(c, target, env.max_key, &k, &v);
        break;
      case Move::kLast:
        rc = upper_.empty() ? mdb_cursor_get(c, &k, &v, MDB_LAST)
                            : last_before(c, upper_, env.max_key, &k, &v);
        break;
      case Move::kNext:
      case Move::kPrev:
        if (stale) {
          k = to_val(key_);
          rc = mdb_cursor_get(c, &k, &v, MDB_SET);
          if (rc == MDB_NOTFOUND) {
            status_ = Status::internal(
                fmt::format("lmdb: iterator of {} lost its key after a map growth", env.path));
            return;
          }
        }
        if (rc == 0) rc = mdb_cursor_get(c, &k, &v, how == Move::kNext ? MDB_NEXT : MDB_PREV);
        break;
    }
  }
  if (rc == MDB_NOTFOUND) return;
  if (rc != 0) {
    status_ = lmdb_status(rc, "iterate over", env.path);
    return;
  }
  const std::string_view found = view(k);
  if ((!lower_.empty() && found < lower_) || (!upper_.empty() && found >= upper_)) return;
  key_.assign(found);
  value_.assign(view(v));
  valid_ = true;
}

// ---------------------------------------------------------------- Snapshot

LmdbEngine::Snapshot::Snapshot(std::shared_ptr<Env> env,
                               std::shared_ptr<lmdb_detail::ReadTxn> txn, Status init)
    : env_(std::move(env)), txn_(std::move(txn)), status_(std::move(init)) {}

Result<std::optional<std::string>> LmdbEngine::Snapshot::get(CF cf, std::string_view key) const {
  if (!status_.is_ok()) return status_;
  std::shared_lock<RemapLock> lk(env_->remap);
  KVCORE_RETURN_IF_ERROR(env_->usable());
  return lmdb_detail::get_in(*env_, txn_->txn, cf, key);
}

Result<std::vector<std::optional<std::string>>> LmdbEngine::Snapshot::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  if (!status_.is_ok()) return status_;
  std::shared_lock<RemapLock> lk(env_->remap);
  KVCORE_RETURN_IF_ERROR(env_->usable());
  return lmdb_detail::multi_get_in(*env_, txn_->txn, cf, keys);
}

LmdbEngine::Iterator LmdbEngine::Snapshot::new_iterator(CF cf, const IterOptions& opts) const {
  return Iterator(env_, txn_, cf, opts, status_);
}

// ---------------------------------------------------------------- WriteBatch

void LmdbEngine::WriteBatch::put(CF cf, std::string_view key, std::string_view value) {
  ops_.push_back(Entry{Op::kPut, cf, std::string(key), std::string(value)});
  bytes_ += key.size() + value.size();
}

void LmdbEngine::WriteBatch::delete_key(CF cf, std::string_view key) {
  ops_.push_back(Entry{Op::kDelete, cf, std::string(key), {}});
  bytes_ += key.size();
}

void LmdbEngine::WriteBatch::delete_range(CF cf, std::string_view begin, std::string_view end) {
  ops_.push_back(Entry{Op::kDeleteRange, cf, std::string(begin), std::string(end)});
  bytes_ += begin.size() + end.size();
}

// ---------------------------------------------------------------- SstWriter

Status LmdbEngine::SstWriter::put(std::string_view key, std::string_view value) {
  KVCORE_RETURN_IF_ERROR(lmdb_detail::check_key(key, max_key_));
  return file_.put(key, value);
}

// ---------------------------------------------------------------- LmdbEngine

LmdbEngine::LmdbEngine(std::string path, std::shared_ptr<Env> env)
    : path_(std::move(path)), env_(std::move(env)) {}

LmdbEngine::~LmdbEngine() = default;

Result<std::unique_ptr<LmdbEngine>> LmdbEngine::open(const std::string& path,
                                                     const EngineOptions& opts) {
  using namespace lmdb_detail;
  if (opts.lmdb_initial_map_bytes == 0 || opts.lmdb_initial_map_bytes > opts.lmdb_max_map_bytes) {
    return Status::invalid_argument(fmt::format(
        "lmdb: lmdb_initial_map_bytes ({}) must be positive and at most lmdb_max_map_bytes ({})",
        opts.lmdb_initial_map_bytes, opts.lmdb_max_map_bytes));
  }
  bool fresh = false;
  KVCORE_RETURN_IF_ERROR(engine::prepare_engine_dir(path, kName, opts, &fresh));
  if (!fresh && !fs::exists(path + "/data.mdb")) {
    // The marker is written before LMDB creates its file, so a first open
    // that died in between leaves exactly this.
    KVCORE_LOG_WARN("lmdb: {} has no data.mdb; creating an empty store", path);
  }

  auto env = std::make_shared<Env>();
  env->path = path;
  KVCORE_RETURN_IF_ERROR(env->claim(path));
  int rc = mdb_env_create(&env->env);
  if (rc != 0) {
    env->env = nullptr;
    return lmdb_status(rc, "create an environment for", path);
  }
  env->max_map = round_up_to_page(opts.lmdb_max_map_bytes);
  rc = mdb_env_set_maxdbs(env->env, kNumCFs);
  if (rc == 0) rc = mdb_env_set_maxreaders(env->env, kMaxReaders);
  if (rc == 0) rc = mdb_env_set_mapsize(env->env, round_up_to_page(opts.lmdb_initial_map_bytes));
  if (rc != 0) return lmdb_status(rc, "configure the environment of", path);
  rc = mdb_env_open(env->env, path.c_str(), MDB_NOTLS | MDB_NOSYNC, 0644);
  if (rc != 0) return lmdb_status(rc, "open", path);
  KVCORE_RETURN_IF_ERROR(check_data_file(*env));
  env->max_key = static_cast<std::size_t>(mdb_env_get_maxkeysize(env->env));
  MDB_envinfo info;
  mdb_env_info(env->env, &info);
  env->map_bytes.store(info.me_mapsize);
  env->max_map = std::max(env->max_map, info.me_mapsize);

  {
    std::lock_guard<std::mutex> w(env->write_mu);
    Status failure;
    KVCORE_RETURN_IF_ERROR(
        run_write(*env, "create the column families of", failure, [&](MDB_txn* txn) {
          for (CF cf : kAllCFs) {
            const std::string name(cf_name(cf));
            int r = mdb_dbi_open(txn, name.c_str(), MDB_CREATE, &env->dbi[cf_index(cf)]);
            if (r != 0) return r;
          }
          return 0;
        }));
  }
  KVCORE_LOG_INFO("lmdb: opened {} (map {} bytes, max key {} bytes)", path, info.me_mapsize,
                  env->max_key);
  return std::unique_ptr<LmdbEngine>(new LmdbEngine(path, std::move(env)));
}

std::size_t LmdbEngine::max_key_size() const { return env_->max_key; }
std::size_t LmdbEngine::map_bytes() const { return env_->map_bytes.load(); }

Result<std::optional<std::string>> LmdbEngine::get(CF cf, std::string_view key) const {
  std::shared_lock<RemapLock> lk(env_->remap);
  lmdb_detail::TxnLease txn(*env_);
  KVCORE_RETURN_IF_ERROR(txn.begin());
  return lmdb_detail::get_in(*env_, txn.get(), cf, key);
}

Result<std::vector<std::optional<std::string>>> LmdbEngine::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  std::shared_lock<RemapLock> lk(env_->remap);
  lmdb_detail::TxnLease txn(*env_);
  KVCORE_RETURN_IF_ERROR(txn.begin());
  return lmdb_detail::multi_get_in(*env_, txn.get(), cf, keys);
}

LmdbEngine::Iterator LmdbEngine::new_iterator(CF cf, const IterOptions& opts) const {
  auto txn = lmdb_detail::open_read(env_, false);
  if (!txn.is_ok()) return Iterator(env_, nullptr, cf, opts, txn.status());
  return Iterator(env_, std::move(txn).value(), cf, opts, {});
}

Status LmdbEngine::write(const WriteBatch& batch, const WriteOptions& opts) {
  using Op = WriteBatch::Op;
  Env& env = *env_;
  for (const auto& e : batch.ops_) {
    if (e.op == Op::kPut) KVCORE_RETURN_IF_ERROR(lmdb_detail::check_key(e.key, env.max_key));
    if (e.op == Op::kDeleteRange && e.value.empty()) {
      return Status::invalid_argument("lmdb: a delete_range in the batch has an empty end key");
    }
  }
  if (!batch.ops_.empty()) {
    std::lock_guard<std::mutex> w(env.write_mu);
    Status failure;
    KVCORE_RETURN_IF_ERROR(
        lmdb_detail::run_write(env, "write a batch to", failure, [&](MDB_txn* txn) {
          for (const auto& e : batch.ops_) {
            int rc = 0;
            switch (e.op) {
              case Op::kPut:
                rc = lmdb_detail::put_in(env, txn, e.cf, e.key, e.value);
                break;
              case Op::kDelete:
                rc = lmdb_detail::delete_in(env, txn, e.cf, e.key);
                break;
              case Op::kDeleteRange:
                rc = lmdb_detail::delete_range_in(env, txn, e.cf, e.key, e.value);
                break;
            }
            if (rc != 0) return rc;
          }
          return 0;
        }));
  }
  // Synced after the writer lock is released: the fsync covers this commit
  // and lets the next writer commit meanwhile.
  return opts.sync ? lmdb_detail::sync_env(env) : Status();
}

std::shared_ptr<const LmdbEngine::Snapshot> LmdbEngine::snapshot() const {
  auto txn = lmdb_detail::open_read(env_, true);
  if (!txn.is_ok()) {
    return std::shared_ptr<const Snapshot>(new Snapshot(env_, nullptr, txn.status()));
  }
  return std::shared_ptr<const Snapshot>(new Snapshot(env_, std::move(txn).value(), {}));
}

Status LmdbEngine::delete_range(CF cf, KeyRange range) {
  if (range.end.empty()) {
    return Status::invalid_argument("lmdb: delete_range needs a non-empty end key");
  }
  if (range.start >= range.end) return {};
  Env& env = *env_;
  std::lock_guard<std::mutex> w(env.write_mu);
  Status failure;
  return lmdb_detail::run_write(env, "delete a range in", failure, [&](MDB_txn* txn) {
    return lmdb_detail::delete_range_in(env, txn, cf, range.start, range.end);
  });
}

Result<LmdbEngine::SstWriter> LmdbEngine::new_sst_writer(const std::string& path) const {
  KVCORE_ASSIGN_OR_RETURN(auto file, engine::SortedFileWriter::create(path));
  return SstWriter(std::move(file), env_->max_key);
}

Status LmdbEngine::ingest(CF cf, std::span<const std::string> files) {
  using namespace lmdb_detail;
  Env& env = *env_;
  for (const std::string& file : files) {
    Status s = engine::scan_sorted_file(file, [&](std::string_view key, std::string_view) {
      return check_key(key, env.max_key);
    });
    if (!s.is_ok()) return s.with_context(fmt::format("lmdb: cannot ingest {}", file));
  }
  if (files.empty()) return {};
  {
    std::lock_guard<std::mutex> w(env.write_mu);
    Status failure;
    KVCORE_RETURN_IF_ERROR(run_write(env, "ingest into", failure, [&](MDB_txn* txn) {
      MDB_cursor* c = nullptr;
      int rc = mdb_cursor_open(txn, env.dbi_of(cf), &c);
      if (rc != 0) return rc;
      std::unique_ptr<MDB_cursor, CursorCloser> owned(c);
      // The column family's largest key: anything above it is appended,
      // which fills pages sequentially instead of searching and splitting.
      std::string last;
      bool has_last = false;
      MDB_val k{};
      MDB_val v{};
      rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
      if (rc == 0) {
        last.assign(view(k));
        has_last = true;
      } else if (rc != MDB_NOTFOUND) {
        return rc;
      }
      rc = 0;
      for (const std::string& file : files) {
        Status s = engine::scan_sorted_file(file, [&](std::string_view key, std::string_view value) {
          const bool append = !has_last || key > last;
          MDB_val mk = to_val(key);
          MDB_val mv = to_val(value);
          rc = mdb_cursor_put(c, &mk, &mv, append ? MDB_APPEND : 0);
          if (rc != 0) return Status::aborted("lmdb put failed");  // rc says why
          if (append) {
            last.assign(key);
            has_last = true;
          }
          return Status();
        });
        if (rc != 0) return rc;
        if (!s.is_ok()) {
          failure = s.with_context(fmt::format("lmdb: cannot ingest {}", file));
          return kBodyFailed;
        }
      }
      return 0;
    }));
  }
  return sync_env(env);
}

Result<std::uint64_t> LmdbEngine::approximate_size(CF cf, KeyRange range) const {
  std::uint64_t bytes = 0;
  KVCORE_RETURN_IF_ERROR(lmdb_detail::walk_range(
      *env_, cf, range, [&](std::size_t key, std::size_t value) { bytes += key + value; }));
  return bytes;
}

Result<std::uint64_t> LmdbEngine::approximate_keys(CF cf, KeyRange range) const {
  if (range.start.empty() && range.end.empty()) {
    std::shared_lock<RemapLock> lk(env_->remap);
    lmdb_detail::TxnLease txn(*env_);
    KVCORE_RETURN_IF_ERROR(txn.begin());
    MDB_stat st;
    int rc = mdb_stat(txn.get(), env_->dbi_of(cf), &st);
    if (rc != 0) return lmdb_detail::lmdb_status(rc, "read the statistics of", path_);
    return static_cast<std::uint64_t>(st.ms_entries);
  }
  std::uint64_t keys = 0;
  KVCORE_RETURN_IF_ERROR(
      lmdb_detail::walk_range(*env_, cf, range, [&](std::size_t, std::size_t) { ++keys; }));
  return keys;
}

Status LmdbEngine::flush() { return lmdb_detail::sync_env(*env_); }

EngineHealth LmdbEngine::health() const {
  EngineHealth health;
  std::shared_lock<RemapLock> lk(env_->remap);
  if (!env_->usable().is_ok()) return health;
  MDB_envinfo info;
  MDB_stat st;
  if (mdb_env_info(env_->env, &info) == 0 && mdb_env_stat(env_->env, &st) == 0) {
    health.total_bytes = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  }
  return health;
}

Status LmdbEngine::checkpoint(const std::string& dir) {
  using namespace lmdb_detail;
  KVCORE_RETURN_IF_ERROR(engine::require_absent(dir));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error(fmt::format("lmdb: cannot create {}: {}", dir, ec.message()));
  Status s = [&]() -> Status {
    {
      // The compacting copy reads through one read transaction of its own
      // and never takes LMDB's writer lock, so writers go on meanwhile.
      std::shared_lock<RemapLock> lk(env_->remap);
      KVCORE_RETURN_IF_ERROR(env_->usable());
      int rc = mdb_env_copy2(env_->env, dir.c_str(), MDB_CP_COMPACT);
      if (rc != 0) return lmdb_status(rc, fmt::format("copy to {} the store", dir), path_);
    }
    KVCORE_RETURN_IF_ERROR(fsync_path(dir + "/data.mdb"));
    KVCORE_RETURN_IF_ERROR(engine::write_engine_marker(dir, kName));
    return fsync_path(dir);
  }();
  if (!s.is_ok()) fs::remove_all(dir, ec);
  return s;
}

}  // namespace kvcore

static_assert(kvcore::StorageEngine<kvcore::LmdbEngine>);
