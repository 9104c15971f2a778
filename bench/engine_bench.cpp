// Engine traits overhead: every built engine driven through kvcore's
// type-erased kvcore::Engine (open_engine) and, right next to it, the same
// library called directly with the settings its kvcore adapter uses (block
// cache, write buffer, compression, bloom filter, column families or CF key
// prefix, env flags, sync calls). The pair differs only by what kvcore adds,
// so the throughput ratio kvcore/raw is the cost of the traits; the target is
// >= 0.95 on every workload. bench/engine_ratios.py runs this and prints the
// ratios.
//
// Names: <engine>/<kvcore|raw>/<workload>[/batch:N/sync:S]. Each benchmark runs
// a fixed number of iterations (tuned so each takes about a second here; a
// synced LMDB commit, which fsyncs the whole data file, takes ~4 ms), in its
// own mkdtemp directory, removed afterwards. Keys are 16 bytes, values 100.
// The memory engine has no raw counterpart and is not measured.
// Every random sequence is seeded identically on both sides of a pair, so the
// two sides do exactly the same operations.
//
// Raw baselines mirror the adapters; when an adapter's settings change, update
// the matching Raw* class (each names the adapter file it copies).
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/build_config.hpp"
#include "kvcore/engine/engine.hpp"
#include "kvcore/engine/registry.hpp"
#include "kvcore/engine/types.hpp"

#if KVCORE_HAVE_ROCKSDB
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#endif
#if KVCORE_HAVE_LEVELDB
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/options.h>
#include <leveldb/write_batch.h>
#endif
#if KVCORE_HAVE_LMDB
#include <lmdb.h>
#endif

namespace {

constexpr std::size_t kKeyBytes = 16;
constexpr std::size_t kValueBytes = 100;
// Keys preloaded before the get and scan workloads.
constexpr std::uint64_t kPreloadKeys = 100'000;
constexpr std::uint64_t kPreloadBatch = 1'000;
constexpr int kScanLength = 1'000;
constexpr std::uint64_t kSeed = 20261125;

// ---------------------------------------------------------------------------
// Keys, values, directories

// splitmix64's finalizer: a bijection, so distinct counters give distinct keys.
std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// 16 big-endian bytes: "kvbench:" then n, so byte order is numeric order and
// preloaded key i is encode_key(i).
struct Key {
  char bytes[kKeyBytes];
  explicit Key(std::uint64_t n) {
    std::memcpy(bytes, "kvbench:", 8);
    for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<char>(n >> (56 - 8 * i));
  }
  [[nodiscard]] std::string_view view() const { return {bytes, kKeyBytes}; }
};

const std::string& bench_value() {
  static const std::string value = [] {
    std::mt19937_64 rng(kSeed);
    std::string v(kValueBytes, '\0');
    for (auto& c : v) c = static_cast<char>('a' + rng() % 26);
    return v;
  }();
  return value;
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when the benchmark ends. The store lives in its "db" subdirectory.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kvcore-engine-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] bool ok() const { return !path_.empty(); }
  [[nodiscard]] std::string db() const { return path_ + "/db"; }

 private:
  std::string path_;
};

// Every store, kvcore or raw, is opened with these options: kvcore's defaults,
// except that --lmdb_map_bytes=N sets LMDB's initial and maximum map to N
// (valgrind cannot map the default 1 TiB). Set once in main().
kvcore::EngineOptions g_options;

// ---------------------------------------------------------------------------
// Stores. Each side of a pair is a class with the same members:
//   static std::unique_ptr<X> open(const std::string& dir, std::string* err);
//   void put(key, value);              adds to the pending batch
//   bool commit(bool sync);            writes the batch and clears it
//   bool flush();                      memtable to files (untimed, after preload)
//   long get(key);                     value size, 0 when absent, -1 on error
//   long scan(start, upper, n);        entries read (bytes touched), -1 on error
// Values come back as an owned std::string on both sides, since that is what
// kvcore::Engine::get returns. The four operations are never inlined, so that
// callgrind can count each one's instructions on either side of a pair
// (engine_ratios.py --callgrind); the call costs both sides the same.
#define KVCORE_BENCH_OP [[gnu::noinline]]

class KvcoreStore {
 public:
  static std::unique_ptr<KvcoreStore> open(kvcore::EngineKind kind, const std::string& dir,
                                           std::string* err) {
    auto opened = kvcore::open_engine(kind, dir, g_options);
    if (!opened.is_ok()) {
      *err = opened.status().to_string();
      return nullptr;
    }
    auto store = std::make_unique<KvcoreStore>();
    store->engine_ = std::move(opened).value();
    store->batch_ = store->engine_->new_write_batch();
    return store;
  }
  ~KvcoreStore() {
    batch_.reset();  // a batch must not outlive its engine
  }

  KVCORE_BENCH_OP void put(std::string_view key, std::string_view value) {
    batch_->put(kvcore::CF::kDefault, key, value);
  }
  KVCORE_BENCH_OP bool commit(bool sync) {
    kvcore::WriteOptions wo;
    wo.sync = sync;
    const kvcore::Status s = engine_->write(*batch_, wo);
    batch_->clear();
    return s.is_ok();
  }
  bool flush() { return engine_->flush().is_ok(); }
  KVCORE_BENCH_OP long get(std::string_view key) {
    auto r = engine_->get(kvcore::CF::kDefault, key);
    if (!r.is_ok()) return -1;
    return r.value() ? static_cast<long>(r.value()->size()) : 0;
  }
  KVCORE_BENCH_OP long scan(std::string_view start, std::string_view upper, int n) {
    kvcore::IterOptions io;
    io.lower_bound = std::string(start);
    io.upper_bound = std::string(upper);
    auto it = engine_->new_iterator(kvcore::CF::kDefault, io);
    long bytes = 0;
    int i = 0;
    for (it->seek(start); i < n && it->valid(); it->next(), ++i) {
      bytes += static_cast<long>(it->key().size() + it->value().size());
    }
    if (!it->status().is_ok()) return -1;
    return bytes;
  }

 private:
  std::unique_ptr<kvcore::Engine> engine_;
  std::unique_ptr<kvcore::WriteBatch> batch_;
};

template <kvcore::EngineKind K>
struct Kvcore {
  static std::unique_ptr<KvcoreStore> open(const std::string& dir, std::string* err) {
    return KvcoreStore::open(K, dir, err);
  }
  using Store = KvcoreStore;
};

#if KVCORE_HAVE_ROCKSDB
// Mirrors engines/rocksdb/rocks_engine.cpp: make_options() and the four
// column families, with g_options.
class RawRocks {
 public:
  using Store = RawRocks;
  static std::unique_ptr<RawRocks> open(const std::string& dir, std::string* err) {
    const kvcore::EngineOptions& eo = g_options;
    auto store = std::make_unique<RawRocks>();
    rocksdb::Options o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    o.paranoid_checks = true;
    o.max_background_jobs = eo.background_jobs;
    o.write_buffer_size = eo.write_buffer_bytes;
    o.level_compaction_dynamic_level_bytes = true;
    o.keep_log_file_num = 5;
    o.compression = rocksdb::kLZ4Compression;  // EngineOptions' default, built into Debian's
    rocksdb::BlockBasedTableOptions table;
    store->cache_ = rocksdb::NewLRUCache(eo.block_cache_bytes);
    table.block_cache = store->cache_;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : {"default", "lock", "write", "raft"}) cfs.emplace_back(name, o);
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(o), dir, cfs, &store->handles_, &db);
    if (!s.ok()) {
      *err = s.ToString();
      return nullptr;
    }
    store->db_.reset(db);
    return store;
  }
  ~RawRocks() {
    if (!db_) return;
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    (void)db_->Close();
  }

  KVCORE_BENCH_OP void put(std::string_view key, std::string_view value) {
    (void)batch_.Put(handles_[0], slice(key), slice(value));
  }
  KVCORE_BENCH_OP bool commit(bool sync) {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    const rocksdb::Status s = db_->Write(wo, &batch_);
    batch_.Clear();
    return s.ok();
  }
  bool flush() { return db_->Flush(rocksdb::FlushOptions(), handles_[0]).ok(); }
  KVCORE_BENCH_OP long get(std::string_view key) {
    std::string value;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[0], slice(key), &value);
    if (s.IsNotFound()) return 0;
    return s.ok() ? static_cast<long>(value.size()) : -1;
  }
  KVCORE_BENCH_OP long scan(std::string_view start, std::string_view upper, int n) {
    rocksdb::ReadOptions ro;
    const rocksdb::Slice lower_slice = slice(start);
    const rocksdb::Slice upper_slice = slice(upper);
    ro.iterate_lower_bound = &lower_slice;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handles_[0]));
    long bytes = 0;
    int i = 0;
    for (it->Seek(lower_slice); i < n && it->Valid(); it->Next(), ++i) {
      bytes += static_cast<long>(it->key().size() + it->value().size());
    }
    return it->status().ok() ? bytes : -1;
  }

 private:
  static rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
  std::shared_ptr<rocksdb::Cache> cache_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteBatch batch_;
};
#endif  // KVCORE_HAVE_ROCKSDB

#if KVCORE_HAVE_LEVELDB
// Mirrors engines/leveldb/level_engine.cpp: one DB, the CF index as a one-byte
// key prefix (0 for the default CF), checksummed reads, snappy (LevelDB's only
// codec; kvcore maps its default LZ4 to it), 10-bit bloom filter.
class RawLevel {
 public:
  using Store = RawLevel;
  static std::unique_ptr<RawLevel> open(const std::string& dir, std::string* err) {
    const kvcore::EngineOptions& eo = g_options;
    auto store = std::make_unique<RawLevel>();
    store->cache_.reset(leveldb::NewLRUCache(eo.block_cache_bytes));
    store->filter_.reset(leveldb::NewBloomFilterPolicy(10));
    leveldb::Options o;
    o.create_if_missing = true;
    o.paranoid_checks = true;
    o.write_buffer_size = eo.write_buffer_bytes;
    o.block_cache = store->cache_.get();
    o.filter_policy = store->filter_.get();
    o.compression = leveldb::kSnappyCompression;
    std::filesystem::create_directories(dir);
    leveldb::DB* db = nullptr;
    leveldb::Status s = leveldb::DB::Open(o, dir, &db);
    if (!s.ok()) {
      *err = s.ToString();
      return nullptr;
    }
    store->db_.reset(db);
    return store;
  }
  ~RawLevel() { db_.reset(); }  // before the cache and filter it uses

  KVCORE_BENCH_OP void put(std::string_view key, std::string_view value) {
    batch_.Put(prefixed(key), slice(value));
  }
  KVCORE_BENCH_OP bool commit(bool sync) {
    leveldb::WriteOptions wo;
    wo.sync = sync;
    const leveldb::Status s = db_->Write(wo, &batch_);
    batch_.Clear();
    return s.ok();
  }
  // What LevelEngine::flush() does: compacting an empty range above every CF
  // prefix makes LevelDB write its memtable to a table and merge nothing.
  bool flush() {
    const leveldb::Slice sentinel("\xff", 1);
    db_->CompactRange(&sentinel, &sentinel);
    return true;
  }
  KVCORE_BENCH_OP long get(std::string_view key) {
    std::string value;
    const leveldb::Status s = db_->Get(read_options(), prefixed(key), &value);
    if (s.IsNotFound()) return 0;
    return s.ok() ? static_cast<long>(value.size()) : -1;
  }
  KVCORE_BENCH_OP long scan(std::string_view start, std::string_view upper, int n) {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options()));
    std::string upper_key(1, '\0');
    upper_key.append(upper);
    const leveldb::Slice upper_slice(upper_key);
    long bytes = 0;
    int i = 0;
    for (it->Seek(prefixed(start)); i < n && it->Valid() && it->key().compare(upper_slice) < 0;
         it->Next(), ++i) {
      bytes += static_cast<long>(it->key().size() - 1 + it->value().size());
    }
    return it->status().ok() ? bytes : -1;
  }

 private:
  static leveldb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
  static leveldb::ReadOptions read_options() {
    leveldb::ReadOptions ro;
    ro.verify_checksums = true;
    ro.fill_cache = true;
    return ro;
  }
  // The default CF's prefix byte, then the key, in a reused buffer.
  leveldb::Slice prefixed(std::string_view key) {
    scratch_.assign(1, '\0');
    scratch_.append(key);
    return leveldb::Slice(scratch_);
  }
  std::unique_ptr<leveldb::Cache> cache_;
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::DB> db_;
  leveldb::WriteBatch batch_;
  std::string scratch_;
};
#endif  // KVCORE_HAVE_LEVELDB

#if KVCORE_HAVE_LMDB
// Mirrors engines/lmdb/lmdb_engine.cpp: MDB_NOTLS | MDB_NOSYNC, the four CFs
// as named databases, the same map size (by default the map is fixed at its
// maximum, 1 TiB of address space, and never moves), mdb_env_sync after a
// commit written with sync. One write is one write transaction; reads reuse
// one reset/renewed read transaction and read in place, which is how a caller
// of LMDB gets its cheapest reads.
class RawLmdb {
 public:
  using Store = RawLmdb;
  static std::unique_ptr<RawLmdb> open(const std::string& dir, std::string* err) {
    auto store = std::make_unique<RawLmdb>();
    std::filesystem::create_directories(dir);
    int rc = mdb_env_create(&store->env_);
    if (rc == 0) rc = mdb_env_set_maxdbs(store->env_, 4);
    if (rc == 0) rc = mdb_env_set_maxreaders(store->env_, 1024);
    if (rc == 0) rc = mdb_env_set_mapsize(store->env_, store->map_bytes_);
    if (rc == 0) rc = mdb_env_open(store->env_, dir.c_str(), MDB_NOTLS | MDB_NOSYNC, 0644);
    MDB_txn* txn = nullptr;
    if (rc == 0) rc = mdb_txn_begin(store->env_, nullptr, 0, &txn);
    for (const char* name : {"default", "lock", "write", "raft"}) {
      MDB_dbi dbi = 0;
      if (rc == 0) rc = mdb_dbi_open(txn, name, MDB_CREATE, &dbi);
      if (rc == 0 && std::strcmp(name, "default") == 0) store->dbi_ = dbi;
    }
    if (rc == 0) {
      rc = mdb_txn_commit(txn);
    } else if (txn != nullptr) {
      mdb_txn_abort(txn);
    }
    if (rc == 0) rc = mdb_txn_begin(store->env_, nullptr, MDB_RDONLY, &store->read_txn_);
    if (rc == 0) mdb_txn_reset(store->read_txn_);
    if (rc != 0) {
      *err = mdb_strerror(rc);
      return nullptr;
    }
    return store;
  }
  ~RawLmdb() {
    if (read_txn_ != nullptr) mdb_txn_abort(read_txn_);
    if (env_ != nullptr) mdb_env_close(env_);
  }

  // LMDB has no batch object: a batch is the key/value pairs buffered until
  // commit() puts them in one write transaction.
  KVCORE_BENCH_OP void put(std::string_view key, std::string_view value) {
    pending_.emplace_back(key, value);
  }
  // Like the adapter, a write that fills the map doubles it and runs again
  // (outside the timed steady state: it happens a few times per run at most).
  KVCORE_BENCH_OP bool commit(bool sync) {
    int rc = write_pending();
    while (rc == MDB_MAP_FULL && map_bytes_ < g_options.lmdb_max_map_bytes) {
      map_bytes_ = std::min(map_bytes_ * 2, g_options.lmdb_max_map_bytes);
      rc = mdb_env_set_mapsize(env_, map_bytes_);
      if (rc == 0) rc = write_pending();
    }
    if (rc == 0 && sync) rc = mdb_env_sync(env_, 1);
    pending_.clear();
    return rc == 0;
  }
  bool flush() { return mdb_env_sync(env_, 1) == 0; }
  KVCORE_BENCH_OP long get(std::string_view key) {
    if (mdb_txn_renew(read_txn_) != 0) return -1;
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{};
    const int rc = mdb_get(read_txn_, dbi_, &k, &v);
    std::string value;
    if (rc == 0) value.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    mdb_txn_reset(read_txn_);
    if (rc == MDB_NOTFOUND) return 0;
    return rc == 0 ? static_cast<long>(value.size()) : -1;
  }
  KVCORE_BENCH_OP long scan(std::string_view start, std::string_view upper, int n) {
    if (mdb_txn_renew(read_txn_) != 0) return -1;
    MDB_cursor* cursor = nullptr;
    if (mdb_cursor_open(read_txn_, dbi_, &cursor) != 0) {
      mdb_txn_reset(read_txn_);
      return -1;
    }
    MDB_val k{start.size(), const_cast<char*>(start.data())};
    MDB_val v{};
    MDB_val upper_val{upper.size(), const_cast<char*>(upper.data())};
    long bytes = 0;
    int rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    for (int i = 0; i < n && rc == 0 && mdb_cmp(read_txn_, dbi_, &k, &upper_val) < 0; ++i) {
      bytes += static_cast<long>(k.mv_size + v.mv_size);
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    mdb_txn_reset(read_txn_);
    return rc == 0 || rc == MDB_NOTFOUND ? bytes : -1;
  }

 private:
  int write_pending() {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    for (std::size_t i = 0; rc == 0 && i < pending_.size(); ++i) {
      MDB_val k{pending_[i].first.size(), const_cast<char*>(pending_[i].first.data())};
      MDB_val v{pending_[i].second.size(), const_cast<char*>(pending_[i].second.data())};
      rc = mdb_put(txn, dbi_, &k, &v, 0);
    }
    if (rc == 0) return mdb_txn_commit(txn);
    if (txn != nullptr) mdb_txn_abort(txn);
    return rc;
  }

  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  std::size_t map_bytes_ = g_options.lmdb_initial_map_bytes;
  MDB_txn* read_txn_ = nullptr;
  std::vector<std::pair<std::string, std::string>> pending_;
};
#endif  // KVCORE_HAVE_LMDB

// ---------------------------------------------------------------------------
// Workloads

enum class Order { kSeq, kRand };

template <class Side>
std::unique_ptr<typename Side::Store> open_or_skip(benchmark::State& state, const TempDir& dir) {
  if (!dir.ok()) {
    state.SkipWithError("mkdtemp failed");
    return nullptr;
  }
  std::string err;
  auto store = Side::open(dir.db(), &err);
  if (!store) state.SkipWithError(("open failed: " + err).c_str());
  return store;
}

// `batch` puts per iteration, one write (synced or not) each; items = puts.
template <class Side>
void bm_put(benchmark::State& state, Order order, int batch, bool sync) {
  TempDir dir;
  auto store = open_or_skip<Side>(state, dir);
  if (!store) return;
  const std::string& value = bench_value();
  std::uint64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i, ++n) {
      const Key key(order == Order::kSeq ? n : mix64(n));
      store->put(key.view(), value);
    }
    if (!store->commit(sync)) {
      state.SkipWithError("write failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
}

// kPreloadKeys keys 0..kPreloadKeys-1 in unsynced batches, then a flush, so
// reads go through the engine's files and block cache, not only a memtable.
template <class Store>
bool preload(Store& store) {
  const std::string& value = bench_value();
  for (std::uint64_t n = 0; n < kPreloadKeys;) {
    for (std::uint64_t i = 0; i < kPreloadBatch; ++i, ++n) store.put(Key(n).view(), value);
    if (!store.commit(false)) return false;
  }
  return store.flush();
}

template <class Side>
void bm_get(benchmark::State& state) {
  TempDir dir;
  auto store = open_or_skip<Side>(state, dir);
  if (!store) return;
  if (!preload(*store)) {
    state.SkipWithError("preload failed");
    return;
  }
  std::mt19937_64 rng(kSeed);
  std::int64_t found = 0;
  for (auto _ : state) {
    const long size = store->get(Key(rng() % kPreloadKeys).view());
    if (size <= 0) {
      state.SkipWithError(size < 0 ? "get failed" : "preloaded key missing");
      break;
    }
    ++found;
  }
  state.SetItemsProcessed(found);
}

// Each iteration: a new iterator bounded to [start, end of the preloaded keys),
// a seek to a random start, then kScanLength entries; items = entries read.
template <class Side>
void bm_scan(benchmark::State& state) {
  TempDir dir;
  auto store = open_or_skip<Side>(state, dir);
  if (!store) return;
  if (!preload(*store)) {
    state.SkipWithError("preload failed");
    return;
  }
  std::mt19937_64 rng(kSeed);
  const Key upper(kPreloadKeys);
  for (auto _ : state) {
    const Key start(rng() % (kPreloadKeys - kScanLength));
    const long bytes = store->scan(start.view(), upper.view(), kScanLength);
    if (bytes != static_cast<long>(kScanLength * (kKeyBytes + kValueBytes))) {
      state.SkipWithError(bytes < 0 ? "scan failed" : "scan read a wrong number of entries");
      break;
    }
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kScanLength);
}

// ---------------------------------------------------------------------------
// Registration

// Fixed iteration counts, each about a second on the 2-core machine this was
// tuned on; a fixed count keeps the preload to once per repetition.
struct Iterations {
  std::int64_t put_nosync_batch1;
  std::int64_t put_nosync_batch100;
  std::int64_t put_sync_batch1;
  std::int64_t put_sync_batch100;
  std::int64_t get;
  std::int64_t scan;
};

// Registers every workload of one engine, the two sides of each pair next to
// each other, kvcore first.
template <class KvcoreSide, class RawSide>
void register_engine(const std::string& engine, const Iterations& it, double scale) {
  auto both = [&](const std::string& workload, std::int64_t unscaled, auto&& make) {
    const auto iterations =
        std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(unscaled) * scale));
    benchmark::RegisterBenchmark((engine + "/kvcore/" + workload).c_str(), make.template
                                 operator()<KvcoreSide>())
        ->Iterations(iterations)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((engine + "/raw/" + workload).c_str(), make.template
                                 operator()<RawSide>())
        ->Iterations(iterations)
        ->Unit(benchmark::kMicrosecond);
  };
  for (Order order : {Order::kSeq, Order::kRand}) {
    for (int batch : {1, 100}) {
      for (bool sync : {false, true}) {
        const std::string name = std::string(order == Order::kSeq ? "put_seq" : "put_rand") +
                                 "/batch:" + std::to_string(batch) + "/sync:" + (sync ? "1" : "0");
        const std::int64_t iterations = sync ? (batch == 1 ? it.put_sync_batch1
                                                           : it.put_sync_batch100)
                                             : (batch == 1 ? it.put_nosync_batch1
                                                           : it.put_nosync_batch100);
        both(name, iterations, [=]<class Side>() {
          return [=](benchmark::State& state) { bm_put<Side>(state, order, batch, sync); };
        });
      }
    }
  }
  both("get_rand", it.get, []<class Side>() { return bm_get<Side>; });
  both("scan/len:1000", it.scan, []<class Side>() { return bm_scan<Side>; });
}

// Takes engine_bench's own flags out of argv before Google Benchmark parses
// its flags: --iter_scale=X multiplies every iteration count (e.g. 0.02 under
// valgrind); --lmdb_map_bytes=N fixes LMDB's map at N bytes on both sides.
double take_own_flags(int* argc, char** argv) {
  constexpr std::string_view kScale = "--iter_scale=";
  constexpr std::string_view kMap = "--lmdb_map_bytes=";
  double scale = 1.0;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with(kScale)) {
      scale = std::strtod(argv[i] + kScale.size(), nullptr);
    } else if (arg.starts_with(kMap)) {
      const auto bytes = std::strtoull(argv[i] + kMap.size(), nullptr, 10);
      if (bytes > 0) {
        g_options.lmdb_initial_map_bytes = bytes;
        g_options.lmdb_max_map_bytes = bytes;
      }
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  return scale > 0 ? scale : 1.0;
}

}  // namespace

int main(int argc, char** argv) {
  const double scale = take_own_flags(&argc, argv);
#if KVCORE_HAVE_ROCKSDB
  register_engine<Kvcore<kvcore::EngineKind::kRocksDB>, RawRocks>(
      "rocksdb", {150'000, 1'500, 2'000, 500, 400'000, 3'000}, scale);
#endif
#if KVCORE_HAVE_LEVELDB
  register_engine<Kvcore<kvcore::EngineKind::kLevelDB>, RawLevel>(
      "leveldb", {150'000, 1'500, 2'000, 500, 400'000, 3'000}, scale);
#endif
#if KVCORE_HAVE_LMDB
  register_engine<Kvcore<kvcore::EngineKind::kLmdb>, RawLmdb>(
      "lmdb", {100'000, 1'500, 300, 200, 500'000, 3'000}, scale);
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
