// LmdbEngine's read side: read transactions, point reads, snapshots,
// iterators and the range figures. See lmdb_engine.hpp for the contracts and
// lmdb_internal.hpp for the shared state.
#include <lmdb.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "lmdb_engine.hpp"
#include "lmdb_internal.hpp"

namespace kvcore {
namespace lmdb_detail {

namespace {

// Entries a range walk visits per hold of the remap lock.
constexpr std::size_t kWalkChunk = 1024;

// Calls on_entry(key_bytes, value_bytes) for each entry of `range`, in one
// read transaction. The remap lock is held for kWalkChunk entries at a time,
// so a long walk delays a map growth by one chunk at most; each chunk starts
// with a fresh cursor position, as a growth may have moved the map.
template <class Fn>
Status walk_range(const std::shared_ptr<Env>& env, CF cf, KeyRange range, Fn&& on_entry) {
  std::shared_ptr<ReadTxn> txn;
  std::unique_ptr<MDB_cursor, CursorCloser> cursor;
  std::string from(range.start);
  for (;;) {
    MapReadLock lk(*env);
    KVCORE_RETURN_IF_ERROR(env->usable());
    int rc = 0;
    if (!txn) {
      KVCORE_ASSIGN_OR_RETURN(txn, open_read(env, false));
      MDB_cursor* c = nullptr;
      rc = mdb_cursor_open(txn->txn, env->dbi_of(cf), &c);
      cursor.reset(c);
    } else {
      rc = mdb_cursor_renew(txn->txn, cursor.get());
    }
    MDB_val k{};
    MDB_val v{};
    if (rc == 0) rc = first_at_or_after(cursor.get(), from, env->max_key, &k, &v);
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
    if (rc != 0) return lmdb_status(rc, "scan", env->path);
  }
}

// A pooled read transaction held for one point read, on the stack: a call
// that ends before it returns needs no shared ReadTxn (and no allocation).
class TxnLease {
 public:
  explicit TxnLease(Env& env) : env_(env) {}
  TxnLease(const TxnLease&) = delete;
  TxnLease& operator=(const TxnLease&) = delete;
  ~TxnLease() {
    if (txn_ != nullptr) env_.end_read(txn_);
  }
  // REQUIRES: a MapReadLock held.
  [[nodiscard]] Status begin() {
    KVCORE_RETURN_IF_ERROR(env_.usable());
    const int rc = env_.begin_read(&txn_);
    if (rc == 0) return {};
    txn_ = nullptr;
    return lmdb_status(rc, "begin a read transaction in", env_.path);
  }
  [[nodiscard]] MDB_txn* get() const { return txn_; }

 private:
  Env& env_;
  MDB_txn* txn_ = nullptr;
};

}  // namespace

void CursorCloser::operator()(MDB_cursor* cursor) const noexcept { mdb_cursor_close(cursor); }

Result<std::shared_ptr<ReadTxn>> open_read(const std::shared_ptr<Env>& env, bool for_threads) {
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

int last_before(MDB_cursor* c, std::string_view bound, std::size_t max_key, MDB_val* k,
                MDB_val* v) {
  int rc = first_at_or_after(c, bound, max_key, k, v);
  if (rc == MDB_NOTFOUND) return mdb_cursor_get(c, k, v, MDB_LAST);
  if (rc != 0) return rc;
  return mdb_cursor_get(c, k, v, MDB_PREV);
}

int last_at_or_before(MDB_cursor* c, std::string_view target, std::size_t max_key, MDB_val* k,
                      MDB_val* v) {
  int rc = first_at_or_after(c, target, max_key, k, v);
  if (rc == MDB_NOTFOUND) return mdb_cursor_get(c, k, v, MDB_LAST);
  if (rc != 0 || view(*k) == target) return rc;
  return mdb_cursor_get(c, k, v, MDB_PREV);
}

}  // namespace lmdb_detail

using lmdb_detail::Env;
using lmdb_detail::MapReadLock;

// REQUIRES: a MapReadLock held.
LmdbEngine::Iterator::Iterator(std::shared_ptr<Env> env, std::shared_ptr<lmdb_detail::ReadTxn> txn,
                               CF cf, const IterOptions& opts, Status init)
    : env_(std::move(env)),
      txn_(std::move(txn)),
      lower_(opts.lower_bound),
      upper_(opts.upper_bound),
      status_(std::move(init)) {
  MDB_cursor* c = nullptr;
  int rc = status_.is_ok() ? mdb_cursor_open(txn_->txn, env_->dbi_of(cf), &c) : 0;
  if (rc != 0) status_ = lmdb_detail::lmdb_status(rc, "open a cursor in", env_->path);
  cursor_.reset(c);
  generation_ = env_->generation;
  in_map_ = env_->fixed_map;
}

void LmdbEngine::Iterator::move(Move how, std::string_view target) {
  using namespace lmdb_detail;
  const bool was_valid = valid_;
  valid_ = false;
  if (!status_.is_ok()) return;
  const bool step = how == Move::kNext || how == Move::kPrev;
  if (step && !was_valid) return;

  Env& env = *env_;
  MapReadLock lk(env);
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
      case Move::kFirst: rc = first_at_or_after(c, lower_, env.max_key, &k, &v); break;
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
          k = to_val(key_buf_);  // stale only with a growable map: key_buf_ holds the key
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
  if (in_map_) {
    key_ = found;
    value_ = view(v);
  } else {
    key_buf_.assign(found);
    value_buf_.assign(view(v));
  }
  valid_ = true;
}

void LmdbEngine::Iterator::step_in_map(bool forward) {
  MDB_val k{};
  MDB_val v{};
  const int rc = mdb_cursor_get(cursor_.get(), &k, &v, forward ? MDB_NEXT : MDB_PREV);
  valid_ = false;
  if (rc != 0) {
    if (rc != MDB_NOTFOUND) status_ = lmdb_detail::lmdb_status(rc, "iterate over", env_->path);
    return;
  }
  const std::string_view found = lmdb_detail::view(k);
  if (forward ? !upper_.empty() && found >= upper_ : !lower_.empty() && found < lower_) return;
  key_ = found;
  value_ = lmdb_detail::view(v);
  valid_ = true;
}

LmdbEngine::Snapshot::Snapshot(std::shared_ptr<Env> env, std::shared_ptr<lmdb_detail::ReadTxn> txn,
                               Status init)
    : env_(std::move(env)), txn_(std::move(txn)), status_(std::move(init)) {}

Result<std::optional<std::string>> LmdbEngine::Snapshot::get(CF cf, std::string_view key) const {
  if (!status_.is_ok()) return status_;
  MapReadLock lk(*env_);
  KVCORE_RETURN_IF_ERROR(env_->usable());
  return lmdb_detail::get_in(*env_, txn_->txn, cf, key);
}

Result<std::vector<std::optional<std::string>>> LmdbEngine::Snapshot::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  if (!status_.is_ok()) return status_;
  MapReadLock lk(*env_);
  KVCORE_RETURN_IF_ERROR(env_->usable());
  return lmdb_detail::multi_get_in(*env_, txn_->txn, cf, keys);
}

LmdbEngine::Iterator LmdbEngine::Snapshot::new_iterator(CF cf, const IterOptions& opts) const {
  MapReadLock lk(*env_);
  return Iterator(env_, txn_, cf, opts, status_);
}

Result<std::optional<std::string>> LmdbEngine::get(CF cf, std::string_view key) const {
  MapReadLock lk(*env_);
  lmdb_detail::TxnLease txn(*env_);
  KVCORE_RETURN_IF_ERROR(txn.begin());
  return lmdb_detail::get_in(*env_, txn.get(), cf, key);
}

Result<std::vector<std::optional<std::string>>> LmdbEngine::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  MapReadLock lk(*env_);
  lmdb_detail::TxnLease txn(*env_);
  KVCORE_RETURN_IF_ERROR(txn.begin());
  return lmdb_detail::multi_get_in(*env_, txn.get(), cf, keys);
}

LmdbEngine::Iterator LmdbEngine::new_iterator(CF cf, const IterOptions& opts) const {
  MapReadLock lk(*env_);
  auto txn = lmdb_detail::open_read(env_, false);
  if (!txn.is_ok()) return Iterator(env_, nullptr, cf, opts, txn.status());
  return Iterator(env_, std::move(txn).value(), cf, opts, {});
}

std::shared_ptr<const LmdbEngine::Snapshot> LmdbEngine::snapshot() const {
  MapReadLock lk(*env_);
  auto txn = lmdb_detail::open_read(env_, true);
  if (!txn.is_ok()) {
    return std::shared_ptr<const Snapshot>(new Snapshot(env_, nullptr, txn.status()));
  }
  return std::shared_ptr<const Snapshot>(new Snapshot(env_, std::move(txn).value(), {}));
}

Result<std::uint64_t> LmdbEngine::approximate_size(CF cf, KeyRange range) const {
  std::uint64_t bytes = 0;
  KVCORE_RETURN_IF_ERROR(lmdb_detail::walk_range(
      env_, cf, range, [&](std::size_t key, std::size_t value) { bytes += key + value; }));
  return bytes;
}

Result<std::uint64_t> LmdbEngine::approximate_keys(CF cf, KeyRange range) const {
  if (range.start.empty() && range.end.empty()) {
    MapReadLock lk(*env_);
    lmdb_detail::TxnLease txn(*env_);
    KVCORE_RETURN_IF_ERROR(txn.begin());
    MDB_stat st;
    int rc = mdb_stat(txn.get(), env_->dbi_of(cf), &st);
    if (rc != 0) return lmdb_detail::lmdb_status(rc, "read the statistics of", path_);
    return static_cast<std::uint64_t>(st.ms_entries);
  }
  std::uint64_t keys = 0;
  KVCORE_RETURN_IF_ERROR(
      lmdb_detail::walk_range(env_, cf, range, [&](std::size_t, std::size_t) { ++keys; }));
  return keys;
}

EngineHealth LmdbEngine::health() const {
  EngineHealth health;
  MapReadLock lk(*env_);
  if (!env_->usable().is_ok()) return health;
  MDB_envinfo info;
  MDB_stat st;
  if (mdb_env_info(env_->env, &info) == 0 && mdb_env_stat(env_->env, &st) == 0) {
    health.total_bytes = (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  }
  return health;
}

}  // namespace kvcore
