// LmdbEngine: open, writes, map growth and maintenance. The read side
// (snapshots, iterators, point reads, range figures) is in lmdb_read.cpp.
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
#include <initializer_list>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <utility>

#include <fmt/format.h>

#include "engine/fs.hpp"
#include "kvcore/engine/concept.hpp"
#include "lmdb_internal.hpp"
#include "util/log.hpp"

namespace kvcore {
namespace lmdb_detail {

namespace fs = std::filesystem;

namespace {

// Reader slots of the lock table. Every snapshot and every live iterator
// holds one for its life (MDB_NOTLS), plus the pooled transactions.
// The smallest map open() falls back to when the address space cannot hold
// the configured initial map.
constexpr std::size_t kMinFallbackMapBytes = std::size_t{64} << 20;
constexpr unsigned kMaxReaders = 1024;
// What a transaction body returns when it failed for a reason of its own
// (its Status is then in the caller's hands); never an LMDB code.
constexpr int kBodyFailed = INT_MIN;

std::size_t round_up_to_page(std::size_t bytes) {
  constexpr std::size_t kPage = 4096;
  return (bytes + kPage - 1) / kPage * kPage;
}

bool is_one_of(int rc, std::initializer_list<int> codes) {
  return std::find(codes.begin(), codes.end(), rc) != codes.end();
}

// What each LMDB or system error means to a caller.
Code code_of(int rc) {
  if (is_one_of(rc, {MDB_NOTFOUND, ENOENT})) return Code::kNotFound;
  if (rc == MDB_KEYEXIST) return Code::kAlreadyExists;
  // MDB_CURSOR_FULL: a tree deeper than LMDB ever builds.
  if (is_one_of(rc, {MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID, MDB_VERSION_MISMATCH,
                     MDB_INCOMPATIBLE, MDB_CURSOR_FULL})) {
    return Code::kCorruption;
  }
  if (is_one_of(rc, {MDB_MAP_FULL, MDB_READERS_FULL, MDB_TLS_FULL, MDB_TXN_FULL, ENOSPC, ENOMEM,
                     EDQUOT})) {
    return Code::kResourceExhausted;
  }
  if (rc == MDB_BAD_VALSIZE) return Code::kInvalidArgument;
  if (is_one_of(rc, {MDB_MAP_RESIZED, EAGAIN, EBUSY})) return Code::kFailedPrecondition;
  if (is_one_of(rc,
                {MDB_DBS_FULL, MDB_PAGE_FULL, MDB_BAD_RSLOT, MDB_BAD_TXN, MDB_BAD_DBI, EINVAL})) {
    return Code::kInternal;
  }
  return Code::kIOError;  // MDB_PANIC, EACCES, EROFS, EIO and every other errno
}

// Directories open in this process. LMDB forbids opening one environment
// twice in a process: closing either handle drops the other's file locks.
std::mutex g_open_mu;
// Never destroyed, so an engine may still close during static destruction.
std::set<std::string>& open_dirs() {
  static auto* dirs = new std::set<std::string>;  // guarded by g_open_mu
  return *dirs;
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

Status lmdb_status(int rc, std::string_view what, const std::string& path) {
  std::string msg = fmt::format("lmdb: cannot {} {}: {}", what, path, mdb_strerror(rc));
  const Code code = code_of(rc);
  if (code == Code::kFailedPrecondition) msg += " (is another process using the store?)";
  return {code, msg};
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

Env::~Env() {
  for (auto& slot : pool) {
    if (MDB_txn* txn = slot.exchange(nullptr); txn != nullptr) mdb_txn_abort(txn);
  }
  if (env != nullptr && opened) {
    // Closing is a natural durability point and narrows the window in
    // which a machine crash meets unsynced commits.
    if (int rc = mdb_env_sync(env, 1); rc != 0) {
      KVCORE_LOG_WARN("lmdb: cannot sync {} on close: {}", path, mdb_strerror(rc));
    }
  }
  if (env != nullptr) mdb_env_close(env);
  if (!claimed.empty()) {
    std::lock_guard<std::mutex> g(g_open_mu);
    open_dirs().erase(claimed);
  }
}

Status Env::claim(const std::string& dir) {
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

namespace {

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
  void* probe =
      ::mmap(nullptr, next, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
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
  MapReadLock lk(env);
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

// LMDB creates data.mdb on an environment's first open and writes its two
// meta pages at once, so a store that was ever opened has a data file of two
// pages or more. Given a missing or shorter one, LMDB would silently start an
// empty store: in a directory that is not fresh that is lost data, not a new
// store. (The marker is written just before LMDB creates its files, so a
// first open killed in that instant leaves such a directory too; then it
// holds no data and may simply be removed.)
Status check_data_file_present(const std::string& path) {
  constexpr std::uintmax_t kMinDataFileBytes = 2 * 4096;
  const std::string file = path + "/data.mdb";
  struct stat fst {};
  if (::stat(file.c_str(), &fst) != 0) {
    if (errno != ENOENT) return engine::errno_status("cannot stat", file, errno);
    return Status::corruption(fmt::format(
        "lmdb: {} is missing in a store that is not new (its marker is there); if the store was "
        "never written (a first open that died), remove the directory",
        file));
  }
  if (static_cast<std::uintmax_t>(fst.st_size) < kMinDataFileBytes) {
    return Status::corruption(
        fmt::format("lmdb: {} is truncated: {} bytes, less than the two meta pages every store has",
                    file, fst.st_size));
  }
  return {};
}

}  // namespace
}  // namespace lmdb_detail

using lmdb_detail::Env;
using lmdb_detail::MapReadLock;

Status LmdbEngine::SstWriter::put(std::string_view key, std::string_view value) {
  KVCORE_RETURN_IF_ERROR(lmdb_detail::check_key(key, max_key_));
  return file_.put(key, value);
}

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
  if (!fresh) KVCORE_RETURN_IF_ERROR(check_data_file_present(path));

  auto env = std::make_shared<Env>();
  env->path = path;
  KVCORE_RETURN_IF_ERROR(env->claim(path));
  env->max_map = round_up_to_page(opts.lmdb_max_map_bytes);
  std::size_t map_bytes = round_up_to_page(opts.lmdb_initial_map_bytes);
  int rc = 0;
  for (;;) {
    rc = mdb_env_create(&env->env);
    if (rc != 0) {
      env->env = nullptr;
      return lmdb_status(rc, "create an environment for", path);
    }
    rc = mdb_env_set_maxdbs(env->env, kNumCFs);
    if (rc == 0) rc = mdb_env_set_maxreaders(env->env, kMaxReaders);
    if (rc == 0) rc = mdb_env_set_mapsize(env->env, map_bytes);
    if (rc != 0) return lmdb_status(rc, "configure the environment of", path);
    rc = mdb_env_open(env->env, path.c_str(), MDB_NOTLS | MDB_NOSYNC, 0644);
    if (rc != ENOMEM || map_bytes <= kMinFallbackMapBytes) break;
    // The address space cannot hold a map this large (ulimit -v, a
    // sanitizer's memory layout): reserve less. The map is then smaller than
    // its maximum and grows on demand, on the locked read path. A failed
    // mdb_env_open leaves the handle usable only for mdb_env_close.
    mdb_env_close(env->env);
    env->env = nullptr;
    const std::size_t smaller = std::max(kMinFallbackMapBytes, round_up_to_page(map_bytes / 4));
    KVCORE_LOG_INFO("lmdb: cannot map {} bytes for {}; trying {}", map_bytes, path, smaller);
    map_bytes = smaller;
  }
  if (rc != 0) return lmdb_status(rc, "open", path);
  KVCORE_RETURN_IF_ERROR(check_data_file(*env));
  env->max_key = static_cast<std::size_t>(mdb_env_get_maxkeysize(env->env));
  MDB_envinfo info;
  mdb_env_info(env->env, &info);
  env->map_bytes.store(info.me_mapsize);
  env->max_map = std::max(env->max_map, info.me_mapsize);
  env->fixed_map = info.me_mapsize >= env->max_map;

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
  env->opened = true;
  KVCORE_LOG_INFO("lmdb: opened {} (map {} bytes, max key {} bytes)", path, info.me_mapsize,
                  env->max_key);
  return std::unique_ptr<LmdbEngine>(new LmdbEngine(path, std::move(env)));
}

std::size_t LmdbEngine::max_key_size() const { return env_->max_key; }
std::size_t LmdbEngine::map_bytes() const { return env_->map_bytes.load(); }

Status LmdbEngine::write(const WriteBatch& batch, const WriteOptions& opts) {
  using namespace lmdb_detail;
  using Op = WriteBatch::Op;
  Env& env = *env_;
  for (const auto& e : batch.ops_) {
    if (e.op == Op::kPut) KVCORE_RETURN_IF_ERROR(check_key(e.key, env.max_key));
  }
  if (!batch.ops_.empty()) {
    std::lock_guard<std::mutex> w(env.write_mu);
    Status failure;
    KVCORE_RETURN_IF_ERROR(run_write(env, "write a batch to", failure, [&](MDB_txn* txn) {
      for (const auto& e : batch.ops_) {
        int rc = e.op == Op::kPut      ? put_in(env, txn, e.cf, e.key, e.value)
                 : e.op == Op::kDelete ? delete_in(env, txn, e.cf, e.key)
                                       : delete_range_in(env, txn, e.cf, e.key, e.value);
        if (rc != 0) return rc;
      }
      return 0;
    }));
  }
  // Synced after the writer lock is released: the fsync covers this commit
  // and lets the next writer commit meanwhile.
  return opts.sync ? sync_env(env) : Status();
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
    Status s = engine::scan_sorted_file(
        file, [&](std::string_view key, std::string_view) { return check_key(key, env.max_key); });
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
      MDB_val k{};
      MDB_val v{};
      rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
      if (rc != 0 && rc != MDB_NOTFOUND) return rc;
      bool has_last = rc == 0;
      std::string last(has_last ? view(k) : std::string_view());
      rc = 0;
      for (const std::string& file : files) {
        Status s =
            engine::scan_sorted_file(file, [&](std::string_view key, std::string_view value) {
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

Status LmdbEngine::flush() { return lmdb_detail::sync_env(*env_); }

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
      MapReadLock lk(*env_);
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
