#include "level_engine.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/iterator.h>
#include <leveldb/options.h>
#include <leveldb/status.h>
#include <leveldb/write_batch.h>

#include "../manifest_guard.hpp"
#include "engine/fs.hpp"
#include "kvcore/engine/concept.hpp"
#include "util/log.hpp"

namespace kvcore {
namespace {

namespace fs = std::filesystem;

// Ingest and checkpoint write LevelDB batches of about this size: large
// enough to amortise a sync, small enough to bound memory.
constexpr std::size_t kCopyBatchBytes = std::size_t{4} << 20;
// approximate_keys counts at most this many keys by iterating.
constexpr std::uint64_t kCountLimit = 10'000;
// The entry size approximate_keys assumes before anything was written.
constexpr std::uint64_t kDefaultEntryBytes = 64;
constexpr int kBloomBitsPerKey = 10;
// A key above every CF prefix (0..3): compacting [kSentinel, kSentinel]
// touches no table, which makes DB::CompactRange a pure memtable flush.
constexpr std::string_view kSentinel = "\xff";
constexpr std::string_view kCheckpointSuffix = ".checkpoint-tmp";

char prefix_of(CF cf) { return static_cast<char>(cf_index(cf)); }

std::string prefixed(CF cf, std::string_view key) {
  std::string out;
  out.reserve(key.size() + 1);
  out.push_back(prefix_of(cf));
  out.append(key);
  return out;
}

// The exclusive end of `cf`'s keys for a range end; empty means "to the last
// key of the CF", which is the next CF's prefix.
std::string prefixed_end(CF cf, std::string_view end) {
  if (end.empty()) return std::string(1, static_cast<char>(cf_index(cf) + 1));
  return prefixed(cf, end);
}

leveldb::Slice to_slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view to_view(const leveldb::Slice& s) { return {s.data(), s.size()}; }

Status from_leveldb(const leveldb::Status& s, std::string_view what, const std::string& path) {
  if (s.ok()) return {};
  std::string msg = fmt::format("leveldb {} at {}: {}", what, path, s.ToString());
  if (s.IsCorruption()) return Status::corruption(msg);
  if (s.IsNotFound()) return Status::not_found(msg);
  if (s.IsInvalidArgument()) return Status::invalid_argument(msg);
  if (s.IsNotSupportedError()) return Status::not_supported(msg);
  if (s.IsIOError()) {
    if (msg.find("No space left") != std::string::npos) return Status::resource_exhausted(msg);
    // LevelDB reads table files through mmap and reports a read past the end
    // of the mapping as EINVAL: the table is shorter than the MANIFEST says.
    if (msg.ends_with("Invalid argument") &&
        (msg.find(".ldb:") != std::string::npos || msg.find(".sst:") != std::string::npos)) {
      return Status::corruption(msg + " (table file truncated)");
    }
    return Status::io_error(msg);
  }
  return Status::internal(msg);
}

// LevelDB reports an absent key as NotFound with an empty message. A table
// file that has gone missing is NotFound too, but names the file: that one is
// damage, not absence.
bool is_absent_key(const leveldb::Status& s) {
  return s.IsNotFound() && s.ToString() == "NotFound: ";
}

leveldb::ReadOptions read_options(const leveldb::Snapshot* snap, bool fill_cache) {
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = fill_cache;
  ro.snapshot = snap;
  return ro;
}

// Releases a snapshot taken for one call (multi_get, checkpoint).
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(leveldb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snap_); }
  [[nodiscard]] const leveldb::Snapshot* get() const { return snap_; }

 private:
  leveldb::DB* db_;
  const leveldb::Snapshot* snap_;
};

// Replays a batch's point ops into `out`, expanding each delete_range, at its
// position among them, into point deletes of the keys that exist then: keys
// in the DB (read through `it`, whose view nobody changes meanwhile) and keys
// put earlier in the batch.
//
// Invariant: pending_ holds, for every key the batch has touched so far that a
// later range could cover, whether it is live (true) or deleted (false) once
// the ops replayed so far are applied. It is only filled while a range is
// still to come.
class RangeExpander final : public leveldb::WriteBatch::Handler {
 public:
  RangeExpander(leveldb::Iterator* it, std::span<const level_detail::RangeOp> ranges,
                leveldb::WriteBatch* out)
      : it_(it), ranges_(ranges), out_(out) {}

  void Put(const leveldb::Slice& key, const leveldb::Slice& value) override {
    apply_ranges_through(index_);
    if (next_range_ < ranges_.size()) pending_[key.ToString()] = true;
    out_->Put(key, value);
    ++index_;
  }
  void Delete(const leveldb::Slice& key) override {
    apply_ranges_through(index_);
    if (next_range_ < ranges_.size()) pending_[key.ToString()] = false;
    out_->Delete(key);
    ++index_;
  }
  // Applies the ranges added after the last point op; then the first read
  // error, if any.
  leveldb::Status finish() {
    apply_ranges_through(std::numeric_limits<std::size_t>::max());
    return status_;
  }

 private:
  void apply_ranges_through(std::size_t position) {
    while (next_range_ < ranges_.size() && ranges_[next_range_].position <= position) {
      const bool more_follow = next_range_ + 1 < ranges_.size();
      apply(ranges_[next_range_], more_follow);
      ++next_range_;
    }
  }

  void apply(const level_detail::RangeOp& r, bool track) {
    if (!status_.ok()) return;
    for (it_->Seek(to_slice(r.begin)); it_->Valid() && to_view(it_->key()) < r.end; it_->Next()) {
      const std::string_view key = to_view(it_->key());
      auto p = pending_.find(key);
      if (p != pending_.end() && !p->second) continue;  // already deleted by this batch
      out_->Delete(it_->key());
      if (p != pending_.end()) {
        p->second = false;
      } else if (track) {
        pending_.emplace(key, false);
      }
    }
    if (!it_->status().ok()) {
      status_ = it_->status();
      return;
    }
    // Keys put earlier in this batch that the DB does not hold yet.
    for (auto p = pending_.lower_bound(r.begin); p != pending_.end() && p->first < r.end; ++p) {
      if (p->second) {
        out_->Delete(p->first);
        p->second = false;
      }
    }
  }

  leveldb::Iterator* it_;
  std::span<const level_detail::RangeOp> ranges_;
  leveldb::WriteBatch* out_;
  std::size_t index_ = 0;       // point ops replayed so far
  std::size_t next_range_ = 0;  // first range not applied yet
  std::map<std::string, bool, std::less<>> pending_;
  leveldb::Status status_;
};

leveldb::CompressionType compression_of(Compression c) {
  switch (c) {
    case Compression::kNone: return leveldb::kNoCompression;
    case Compression::kSnappy: return leveldb::kSnappyCompression;
    case Compression::kLz4:
    case Compression::kZstd: break;
  }
  static std::once_flag once;
  std::call_once(once, [] {
    KVCORE_LOG_DEBUG("leveldb offers only snappy compression; using snappy instead of lz4/zstd");
  });
  return leveldb::kSnappyCompression;
}

// LevelDB, finding no CURRENT, would create a new empty store over the old
// files and then delete them as garbage. Refuse when store files are there.
Status check_current_present(const std::string& path, const EngineOptions& opts) {
  std::error_code ec;
  if (fs::exists(path + "/CURRENT", ec)) return {};
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("MANIFEST-") || name.ends_with(".ldb") || name.ends_with(".sst") ||
        name.ends_with(".log")) {
      return Status::corruption(fmt::format(
          "leveldb store at {} is damaged: CURRENT is missing but {} exists", path, name));
    }
  }
  if (ec) return Status::io_error(fmt::format("cannot list {}: {}", path, ec.message()));
  if (!opts.create_if_missing) {
    return Status::not_found(
        fmt::format("no leveldb store at {} (create_if_missing is off)", path));
  }
  return {};
}

Status sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return engine::errno_status("cannot open", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return engine::errno_status("cannot sync", dir, err);
  return {};
}

// True when `dir` is a leftover of this engine's checkpoint (its marker says
// leveldb), so it may be removed.
bool is_leveldb_store(const std::string& dir) {
  std::ifstream in(dir + "/" + std::string(engine::kMarkerFile));
  std::string name;
  return in && std::getline(in, name) && name == LevelEngine::kName;
}

}  // namespace

// ---- Iterator ----

LevelEngine::Iterator::Iterator(std::unique_ptr<leveldb::Iterator> it, std::string lower,
                                std::string upper, const std::string* path)
    : it_(std::move(it)), lower_(std::move(lower)), upper_(std::move(upper)), path_(path) {}
// A moved-from iterator is not valid(), so it never dereferences a null it_.
LevelEngine::Iterator::Iterator(Iterator&& other) noexcept
    : it_(std::move(other.it_)),
      lower_(std::move(other.lower_)),
      upper_(std::move(other.upper_)),
      key_(other.key_),
      value_(other.value_),
      path_(other.path_),
      valid_(std::exchange(other.valid_, false)) {}
LevelEngine::Iterator& LevelEngine::Iterator::operator=(Iterator&& other) noexcept {
  it_ = std::move(other.it_);
  lower_ = std::move(other.lower_);
  upper_ = std::move(other.upper_);
  key_ = other.key_;
  value_ = other.value_;
  path_ = other.path_;
  valid_ = std::exchange(other.valid_, false);
  return *this;
}
LevelEngine::Iterator::~Iterator() = default;

void LevelEngine::Iterator::settle_forward() {
  valid_ = it_->Valid();
  if (!valid_) return;
  const std::string_view key = to_view(it_->key());
  valid_ = key < upper_;
  if (valid_) set_entry(key);
}

void LevelEngine::Iterator::settle_backward() {
  valid_ = it_->Valid();
  if (!valid_) return;
  const std::string_view key = to_view(it_->key());
  valid_ = key >= lower_;
  if (valid_) set_entry(key);
}

void LevelEngine::Iterator::set_entry(std::string_view prefixed_key) {
  key_ = prefixed_key.substr(1);
  value_ = to_view(it_->value());
}

void LevelEngine::Iterator::seek(std::string_view key) {
  std::string target(1, lower_[0]);
  target.append(key);
  it_->Seek(to_slice(std::max(target, lower_)));
  settle_forward();
}

void LevelEngine::Iterator::seek_for_prev(std::string_view key) {
  std::string target(1, lower_[0]);
  target.append(key);
  if (target >= upper_) {
    seek_to_last();
    return;
  }
  it_->Seek(to_slice(target));
  if (it_->Valid()) {
    if (to_view(it_->key()) != target) it_->Prev();
  } else if (it_->status().ok()) {
    it_->SeekToLast();
  }
  settle_backward();  // every key found is <= target < upper_
}

void LevelEngine::Iterator::seek_to_first() {
  it_->Seek(to_slice(lower_));
  settle_forward();
}

void LevelEngine::Iterator::seek_to_last() {
  it_->Seek(to_slice(upper_));
  if (it_->Valid()) {
    it_->Prev();
  } else if (it_->status().ok()) {
    it_->SeekToLast();  // no key >= upper_ exists
  }
  settle_backward();
}

void LevelEngine::Iterator::next() {
  it_->Next();
  settle_forward();
}

void LevelEngine::Iterator::prev() {
  it_->Prev();
  settle_backward();
}

Status LevelEngine::Iterator::status() const {
  if (!it_) return {};
  return from_leveldb(it_->status(), "iterator", *path_);
}

// ---- Snapshot ----

LevelEngine::Snapshot::~Snapshot() { engine_->db_->ReleaseSnapshot(snap_); }

Result<std::optional<std::string>> LevelEngine::Snapshot::get(CF cf, std::string_view key) const {
  return engine_->read(snap_, cf, key);
}

Result<std::vector<std::optional<std::string>>> LevelEngine::Snapshot::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (std::string_view key : keys) {
    KVCORE_ASSIGN_OR_RETURN(auto value, engine_->read(snap_, cf, key));
    out.push_back(std::move(value));
  }
  return out;
}

LevelEngine::Iterator LevelEngine::Snapshot::new_iterator(CF cf, const IterOptions& opts) const {
  return engine_->make_iterator(snap_, cf, opts);
}

// ---- WriteBatch ----

LevelEngine::WriteBatch::WriteBatch() : rep_(std::make_unique<leveldb::WriteBatch>()) {}
LevelEngine::WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
LevelEngine::WriteBatch& LevelEngine::WriteBatch::operator=(WriteBatch&&) noexcept = default;
LevelEngine::WriteBatch::~WriteBatch() = default;

leveldb::WriteBatch& LevelEngine::WriteBatch::make_rep() {
  rep_ = std::make_unique<leveldb::WriteBatch>();
  return *rep_;
}

void LevelEngine::WriteBatch::put(CF cf, std::string_view key, std::string_view value) {
  set_scratch(cf, key);
  rep().Put(to_slice(scratch_), to_slice(value));
  ++point_ops_;
  bytes_ += key.size() + value.size();
}

void LevelEngine::WriteBatch::delete_key(CF cf, std::string_view key) {
  set_scratch(cf, key);
  rep().Delete(to_slice(scratch_));
  ++point_ops_;
  bytes_ += key.size();
}

void LevelEngine::WriteBatch::delete_range(CF cf, std::string_view begin, std::string_view end) {
  // An empty end sorts first, so it is caught here too: such a range deletes
  // nothing and is not part of the batch.
  if (begin >= end) return;
  bytes_ += begin.size() + end.size();
  ranges_.push_back({point_ops_, prefixed(cf, begin), prefixed(cf, end)});
}

void LevelEngine::WriteBatch::clear() {
  rep().Clear();
  ranges_.clear();
  point_ops_ = 0;
  bytes_ = 0;
}

// ---- Engine: open, reads ----

LevelEngine::LevelEngine(std::string path, const EngineOptions& opts)
    : path_(std::move(path)), opts_(opts) {}

LevelEngine::~LevelEngine() {
  if (!db_) return;
  db_.reset();
  // LevelDB's destructor waits for background work and reports nothing; a
  // background error may have left a partial MANIFEST record, which the
  // record below then covers (see manifest_guard.hpp).
  engine::record_clean_close(path_, kName);
}

Result<std::unique_ptr<LevelEngine>> LevelEngine::open(const std::string& path,
                                                       const EngineOptions& opts) {
  bool fresh = false;
  KVCORE_RETURN_IF_ERROR(engine::prepare_engine_dir(path, kName, opts, &fresh));
  if (!fresh) {
    KVCORE_RETURN_IF_ERROR(check_current_present(path, opts));
    KVCORE_RETURN_IF_ERROR(engine::check_manifest_since_clean_close(path, kName));
  }

  std::unique_ptr<LevelEngine> engine(new LevelEngine(path, opts));
  engine->cache_.reset(leveldb::NewLRUCache(opts.block_cache_bytes));
  engine->filter_.reset(leveldb::NewBloomFilterPolicy(kBloomBitsPerKey));

  leveldb::Options o;
  o.create_if_missing = true;  // prepare_engine_dir and check_current_present decided
  o.paranoid_checks = true;
  o.write_buffer_size = opts.write_buffer_bytes;
  o.block_cache = engine->cache_.get();
  o.filter_policy = engine->filter_.get();
  o.compression = compression_of(opts.compression);

  leveldb::DB* db = nullptr;
  const leveldb::Status s = leveldb::DB::Open(o, path, &db);
  if (!s.ok()) {
    // A file named by CURRENT or the MANIFEST is missing: the store is damaged.
    if (s.IsNotFound()) {
      return Status::corruption(
          fmt::format("leveldb store at {} is damaged: {}", path, s.ToString()));
    }
    return from_leveldb(s, "open", path);
  }
  engine->db_.reset(db);
  engine::forget_clean_close(path);
  return engine;
}

Result<std::optional<std::string>> LevelEngine::read(const leveldb::Snapshot* snap, CF cf,
                                                     std::string_view key) const {
  std::string value;
  const leveldb::Status s = db_->Get(read_options(snap, true), to_slice(prefixed(cf, key)), &value);
  if (s.ok()) return std::optional<std::string>(std::move(value));
  if (is_absent_key(s)) return std::optional<std::string>();
  return from_leveldb(s, "get", path_);
}

LevelEngine::Iterator LevelEngine::make_iterator(const leveldb::Snapshot* snap, CF cf,
                                                 const IterOptions& opts) const {
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options(snap, opts.fill_cache)));
  return Iterator(std::move(it), prefixed(cf, opts.lower_bound), prefixed_end(cf, opts.upper_bound),
                  &path_);
}

Result<std::optional<std::string>> LevelEngine::get(CF cf, std::string_view key) const {
  return read(nullptr, cf, key);
}

Result<std::vector<std::optional<std::string>>> LevelEngine::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  ScopedSnapshot snap(db_.get());
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (std::string_view key : keys) {
    KVCORE_ASSIGN_OR_RETURN(auto value, read(snap.get(), cf, key));
    out.push_back(std::move(value));
  }
  return out;
}

LevelEngine::Iterator LevelEngine::new_iterator(CF cf, const IterOptions& opts) const {
  return make_iterator(nullptr, cf, opts);
}

std::shared_ptr<const LevelEngine::Snapshot> LevelEngine::snapshot() const {
  return std::shared_ptr<const Snapshot>(new Snapshot(this, db_->GetSnapshot()));
}

// ---- Engine: writes ----

void LevelEngine::note_written(std::uint64_t entries, std::uint64_t bytes) {
  written_entries_.fetch_add(entries, std::memory_order_relaxed);
  written_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

Status LevelEngine::write(const WriteBatch& batch, const WriteOptions& opts) {
  leveldb::WriteOptions wo;
  wo.sync = opts.sync;
  Status st;
  if (batch.ranges_.empty()) {
    // LevelDB stamps a sequence number into the batch header while writing
    // it; the ops, which is all the batch's owner sees, are unchanged.
    std::shared_lock lock(write_gate_);
    if (batch.rep_) {
      st = from_leveldb(db_->Write(wo, batch.rep_.get()), "write", path_);
    } else {
      leveldb::WriteBatch empty;  // a moved-from batch: no op, but honour sync
      st = from_leveldb(db_->Write(wo, &empty), "write", path_);
    }
  } else {
    std::unique_lock lock(write_gate_);
    st = write_expanded(batch, opts.sync);
  }
  // The average entry size approximate_keys() uses counts every point op's
  // bytes (deletes too): a rough figure, kept by the batch's own counters.
  if (st.is_ok() && batch.point_ops_ > 0) note_written(batch.point_ops_, batch.bytes_);
  return st;
}

Status LevelEngine::write_expanded(const WriteBatch& batch, bool sync) {
  leveldb::WriteBatch out;
  // An implicit-snapshot iterator suffices: the exclusive write gate keeps
  // every other kvcore writer out until `out` is written.
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options(nullptr, false)));
  RangeExpander expander(it.get(), batch.ranges_, &out);
  if (batch.rep_) {
    KVCORE_RETURN_IF_ERROR(
        from_leveldb(batch.rep_->Iterate(&expander), "replay of write batch", path_));
  }
  KVCORE_RETURN_IF_ERROR(from_leveldb(expander.finish(), "delete_range scan", path_));
  it.reset();
  leveldb::WriteOptions wo;
  wo.sync = sync;
  return from_leveldb(db_->Write(wo, &out), "write", path_);
}

Status LevelEngine::delete_range(CF cf, KeyRange range) {
  if (range.end.empty()) return Status::invalid_argument("delete_range needs a non-empty end");
  if (range.start >= range.end) return {};
  WriteBatch batch;
  batch.delete_range(cf, range.start, range.end);
  return write(batch, WriteOptions{});
}

Result<LevelEngine::SstWriter> LevelEngine::new_sst_writer(const std::string& path) const {
  KVCORE_ASSIGN_OR_RETURN(auto writer, engine::SortedFileWriter::create(path));
  return SstWriter(std::move(writer));
}

Status LevelEngine::ingest(CF cf, std::span<const std::string> files) {
  // Verify everything first, so a damaged file leaves the engine untouched.
  for (const std::string& file : files) {
    KVCORE_RETURN_IF_ERROR(engine::scan_sorted_file(file, {}).with_context(
        fmt::format("ingest into leveldb store {}", path_)));
  }
  leveldb::WriteBatch batch;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  // Every batch is synced, not only the last: LevelDB does not sync a log it
  // rotates away from, so an unsynced early batch could be lost in a crash
  // after a later synced one, and ingest must be durable when it returns.
  auto write_batch = [&]() -> Status {
    leveldb::WriteOptions wo;
    wo.sync = true;
    leveldb::Status s;
    {
      std::shared_lock lock(write_gate_);
      s = db_->Write(wo, &batch);
    }
    batch.Clear();
    if (s.ok()) note_written(entries, bytes);
    entries = 0;
    bytes = 0;
    return from_leveldb(s, "ingest", path_);
  };
  std::string key;
  for (const std::string& file : files) {
    KVCORE_RETURN_IF_ERROR(
        engine::scan_sorted_file(file, [&](std::string_view k, std::string_view v) -> Status {
          key.assign(1, prefix_of(cf));
          key.append(k);
          batch.Put(to_slice(key), to_slice(v));
          ++entries;
          bytes += key.size() + v.size();
          if (batch.ApproximateSize() >= kCopyBatchBytes) return write_batch();
          return {};
        }));
  }
  if (entries == 0) return {};
  return write_batch();
}

// ---- Engine: sizes, maintenance ----

Result<std::uint64_t> LevelEngine::approximate_size(CF cf, KeyRange range) const {
  if (!range.end.empty() && range.start >= range.end) return std::uint64_t{0};
  const std::string begin = prefixed(cf, range.start);
  const std::string end = prefixed_end(cf, range.end);
  // GetApproximateSizes resolves both ends to block offsets in each table, so
  // a range holding no key still gets the bytes of the block around it (say,
  // an empty CF between two CFs stored in one table). One seek settles it.
  {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options(nullptr, false)));
    it->Seek(to_slice(begin));
    if (!it->Valid()) {
      KVCORE_RETURN_IF_ERROR(from_leveldb(it->status(), "approximate_size", path_));
      return std::uint64_t{0};
    }
    if (to_view(it->key()) >= end) return std::uint64_t{0};
  }
  const leveldb::Range r(to_slice(begin), to_slice(end));
  std::uint64_t size = 0;
  db_->GetApproximateSizes(&r, 1, &size);
  return size;
}

std::uint64_t LevelEngine::average_entry_bytes() const {
  const std::uint64_t entries = written_entries_.load(std::memory_order_relaxed);
  if (entries == 0) return kDefaultEntryBytes;
  return std::max<std::uint64_t>(1, written_bytes_.load(std::memory_order_relaxed) / entries);
}

Result<std::uint64_t> LevelEngine::approximate_keys(CF cf, KeyRange range) const {
  if (!range.end.empty() && range.start >= range.end) return std::uint64_t{0};
  // Count the first kCountLimit keys exactly. A range that ends within them
  // has an exact answer; a longer one is extrapolated from the bytes the
  // counted head occupies in the same units LevelDB measures the whole range
  // in (on-disk bytes per key of this very range, not a global average).
  IterOptions io;
  io.lower_bound = std::string(range.start);
  io.upper_bound = std::string(range.end);
  io.fill_cache = false;
  Iterator it = new_iterator(cf, io);
  std::uint64_t counted = 0;
  for (it.seek_to_first(); it.valid() && counted < kCountLimit; it.next()) ++counted;
  KVCORE_RETURN_IF_ERROR(it.status());
  if (!it.valid()) return counted;
  const std::string head_end(it.key());

  KVCORE_ASSIGN_OR_RETURN(const std::uint64_t total, approximate_size(cf, range));
  KVCORE_ASSIGN_OR_RETURN(const std::uint64_t head,
                          approximate_size(cf, KeyRange{range.start, head_end}));
  if (head > 0 && total >= head) return counted * total / head;

  // The head is still only in the memtable, where LevelDB measures nothing:
  // fall back to the bytes written per entry since open.
  const std::uint64_t average = average_entry_bytes();
  std::string usage;
  std::uint64_t memtable_bytes = 0;
  if (db_->GetProperty("leveldb.approximate-memory-usage", &usage)) {
    std::uint64_t all = 0;
    std::from_chars(usage.data(), usage.data() + usage.size(), all);
    const std::uint64_t cached = cache_->TotalCharge();
    memtable_bytes = all > cached ? all - cached : 0;
  }
  return std::max(counted + 1, (total + memtable_bytes) / average);
}

Status LevelEngine::background_status() {
  // DB::CompactRange reports nothing; a failed flush or compaction becomes
  // LevelDB's background error, which any write returns from then on.
  leveldb::WriteBatch empty;
  return from_leveldb(db_->Write(leveldb::WriteOptions(), &empty), "background work", path_);
}

Status LevelEngine::flush() {
  const leveldb::Slice sentinel = to_slice(kSentinel);
  db_->CompactRange(&sentinel, &sentinel);
  return background_status();
}

Status LevelEngine::compact_range(CF cf, KeyRange range) {
  if (!range.end.empty() && range.start >= range.end) return {};
  const std::string begin = prefixed(cf, range.start);
  const std::string end = prefixed_end(cf, range.end);
  const leveldb::Slice b = to_slice(begin);
  const leveldb::Slice e = to_slice(end);
  db_->CompactRange(&b, &e);
  return background_status();
}

EngineHealth LevelEngine::health() const {
  EngineHealth h;
  std::string value;
  if (db_->GetProperty("leveldb.num-files-at-level0", &value)) {
    std::uint64_t files = 0;
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), files);
    if (ec == std::errc()) h.l0_files = files;
  }
  const std::string end(1, static_cast<char>(kNumCFs));
  const leveldb::Range all(leveldb::Slice(), to_slice(end));
  std::uint64_t bytes = 0;
  db_->GetApproximateSizes(&all, 1, &bytes);
  h.total_bytes = bytes;
  return h;
}

// ---- Engine: checkpoint ----

Status LevelEngine::copy_into(LevelEngine& target) const {
  ScopedSnapshot snap(db_.get());
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(read_options(snap.get(), false)));
  leveldb::WriteBatch batch;
  leveldb::WriteOptions wo;
  wo.sync = true;  // see ingest(): every batch, because LevelDB rotates logs unsynced
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    batch.Put(it->key(), it->value());
    if (batch.ApproximateSize() >= kCopyBatchBytes) {
      KVCORE_RETURN_IF_ERROR(
          from_leveldb(target.db_->Write(wo, &batch), "checkpoint write", target.path_));
      batch.Clear();
    }
  }
  KVCORE_RETURN_IF_ERROR(from_leveldb(it->status(), "checkpoint read", path_));
  return from_leveldb(target.db_->Write(wo, &batch), "checkpoint write", target.path_);
}

Status LevelEngine::checkpoint(const std::string& dir) {
  KVCORE_RETURN_IF_ERROR(engine::require_absent(dir));
  const std::string tmp = dir + std::string(kCheckpointSuffix);
  std::error_code ec;
  if (fs::exists(tmp, ec)) {
    if (!is_leveldb_store(tmp)) {
      return Status::already_exists(
          fmt::format("{} exists and is not a leftover leveldb checkpoint", tmp));
    }
    fs::remove_all(tmp, ec);
    if (ec) return Status::io_error(fmt::format("cannot remove {}: {}", tmp, ec.message()));
  }

  EngineOptions opts = opts_;
  opts.create_if_missing = true;
  opts.error_if_exists = true;
  {
    KVCORE_ASSIGN_OR_RETURN(auto target, open(tmp, opts));
    const Status st = copy_into(*target);
    if (!st.is_ok()) {
      target.reset();
      fs::remove_all(tmp, ec);
      return st;
    }
  }
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    return engine::errno_status("cannot rename checkpoint to", dir, errno);
  }
  std::string parent = fs::path(dir).parent_path().string();
  return sync_dir(parent.empty() ? std::string(".") : parent);
}

}  // namespace kvcore

static_assert(kvcore::StorageEngine<kvcore::LevelEngine>);
