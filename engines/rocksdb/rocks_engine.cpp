#include "rocksdb/rocks_engine.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/iterator.h>
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/snapshot.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/status.h>
#include <rocksdb/table.h>
#include <rocksdb/table_properties.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "../manifest_guard.hpp"
#include "engine/fs.hpp"
#include "kvcore/engine/concept.hpp"
#include "util/log.hpp"

namespace kvcore {
namespace {

namespace fs = std::filesystem;

rocksdb::Slice to_slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view to_view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// Maps a RocksDB status to the kvcore code that says what the caller should
// do; `context` names the operation and the store's path.
Status to_status(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return {};
  std::string msg = fmt::format("{}: {}", context, s.ToString());
  using C = rocksdb::Status::Code;
  using S = rocksdb::Status::SubCode;
  switch (s.code()) {
    case C::kNotFound: return Status::not_found(msg);
    case C::kCorruption: return Status::corruption(msg);
    case C::kNotSupported: return Status::not_supported(msg);
    case C::kInvalidArgument: return Status::invalid_argument(msg);
    case C::kIOError:
      if (s.subcode() == S::kNoSpace || s.subcode() == S::kSpaceLimit) {
        return Status::resource_exhausted(msg);
      }
      return Status::io_error(msg);
    case C::kIncomplete:  // a read that would have had to block or fetch
    case C::kBusy:
    case C::kTryAgain: return Status::unavailable(msg);
    case C::kShutdownInProgress:
    case C::kColumnFamilyDropped: return Status::failed_precondition(msg);
    case C::kTimedOut:
    case C::kExpired: return Status::deadline_exceeded(msg);
    case C::kAborted:
      if (s.subcode() == S::kMemoryLimit) return Status::resource_exhausted(msg);
      return Status::aborted(msg);
    case C::kCompactionTooLarge: return Status::resource_exhausted(msg);
    default:  // kMergeInProgress: kvcore uses no merge operator
      return Status::internal(msg);
  }
}

// On open, a file the store's metadata names but the directory lacks (the
// MANIFEST that CURRENT names, an SST the MANIFEST lists) means the store is
// damaged, not that the OS failed: report Corruption so nobody retries.
Status open_status(const rocksdb::Status& s, std::string_view context) {
  if (s.IsPathNotFound()) {
    return Status::corruption(
        fmt::format("{}: a file of the store is missing: {}", context, s.ToString()));
  }
  return to_status(s, context);
}

std::string_view compression_name(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kSnappy: return "snappy";
    case Compression::kLz4: return "lz4";
    case Compression::kZstd: return "zstd";
  }
  return "unknown";
}

rocksdb::CompressionType to_rocks_compression(Compression c) {
  switch (c) {
    case Compression::kNone: return rocksdb::kNoCompression;
    case Compression::kSnappy: return rocksdb::kSnappyCompression;
    case Compression::kLz4: return rocksdb::kLZ4Compression;
    case Compression::kZstd: return rocksdb::kZSTD;
  }
  return rocksdb::kNoCompression;
}

rocksdb::Options make_options(const EngineOptions& opts, std::shared_ptr<rocksdb::Cache>* cache) {
  rocksdb::Options o;
  o.create_if_missing = opts.create_if_missing;
  o.create_missing_column_families = true;
  // prepare_engine_dir() already enforced error_if_exists with kvcore's marker.
  o.error_if_exists = false;
  o.paranoid_checks = true;
  o.max_background_jobs = std::max(1, opts.background_jobs);
  o.write_buffer_size = opts.write_buffer_bytes;
  o.level_compaction_dynamic_level_bytes = true;
  o.keep_log_file_num = 5;

  rocksdb::CompressionType compression = to_rocks_compression(opts.compression);
  const auto supported = rocksdb::GetSupportedCompressions();
  if (compression != rocksdb::kNoCompression &&
      std::find(supported.begin(), supported.end(), compression) == supported.end()) {
    KVCORE_LOG_WARN(
        "rocksdb: this librocksdb lacks the requested compression ({}); "
        "writing uncompressed blocks instead",
        compression_name(opts.compression));
    compression = rocksdb::kNoCompression;
  }
  o.compression = compression;

  rocksdb::BlockBasedTableOptions table;
  if (opts.block_cache_bytes == 0) {
    table.no_block_cache = true;
  } else {
    *cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
    table.block_cache = *cache;
  }
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // One factory for every column family: they share the block cache.
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

// An existing store (marker present) whose CURRENT is gone but whose other
// RocksDB files remain must not be silently replaced by a new empty database,
// which is what RocksDB does with create_if_missing.
Status check_current_file(const std::string& path, bool* has_current) {
  std::error_code ec;
  *has_current = fs::exists(path + "/CURRENT", ec);
  if (*has_current) return {};
  // Non-throwing iteration: a listing failure is an IOError, not an exception.
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string ext = it->path().extension().string();
    if (name.starts_with("MANIFEST-") || ext == ".sst" || ext == ".log") {
      return Status::corruption(fmt::format(
          "rocksdb store at {} has no CURRENT file but holds {}; refusing to create a new "
          "database over it",
          path, name));
    }
  }
  if (ec) return Status::io_error(fmt::format("cannot list {}: {}", path, ec.message()));
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------
// Engine state

struct RocksEngine::Impl {
  std::string path;
  rocksdb::Options options;  // what the DB was opened with; SstFileWriter reuses it
  std::shared_ptr<rocksdb::Cache> cache;
  std::unique_ptr<rocksdb::DB> db;
  // Every handle opened (kvcore's four plus any unknown column family the
  // store already had, which RocksDB requires to be opened too).
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::array<rocksdb::ColumnFamilyHandle*, kNumCFs> cfs{};

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (!db) return;
    for (auto* h : handles) {
      rocksdb::Status s = db->DestroyColumnFamilyHandle(h);
      if (!s.ok()) KVCORE_LOG_WARN("rocksdb {}: {}", path, s.ToString());
    }
    rocksdb::Status s = db->Close();
    if (!s.ok()) {
      KVCORE_LOG_WARN("rocksdb close {}: {}", path, s.ToString());
      return;
    }
    engine::record_clean_close(path, kName);
  }

  [[nodiscard]] rocksdb::ColumnFamilyHandle* cf(CF c) const { return cfs[cf_index(c)]; }

  [[nodiscard]] std::string context(std::string_view op, CF c) const {
    return fmt::format("rocksdb {} in {} [cf {}]", op, path, cf_name(c));
  }

  [[nodiscard]] Result<std::optional<std::string>> get(CF c, std::string_view key,
                                                       const rocksdb::Snapshot* snap) const {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    rocksdb::PinnableSlice value;
    rocksdb::Status s = db->Get(ro, cf(c), to_slice(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return to_status(s, context("get", c));
    return std::optional<std::string>(value.ToString());
  }

  [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
      CF c, std::span<const std::string_view> keys, const rocksdb::Snapshot* snap) const {
    std::vector<std::optional<std::string>> out(keys.size());
    if (keys.empty()) return out;
    std::vector<rocksdb::Slice> slices;
    slices.reserve(keys.size());
    for (auto k : keys) slices.push_back(to_slice(k));
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    // The batched single-CF MultiGet reads every key at one sequence number,
    // so the answers are consistent without an explicit snapshot.
    db->MultiGet(ro, cf(c), keys.size(), slices.data(), values.data(), statuses.data());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].IsNotFound()) continue;
      if (!statuses[i].ok()) return to_status(statuses[i], context("multi_get", c));
      out[i] = values[i].ToString();
    }
    return out;
  }

  [[nodiscard]] Iterator new_iterator(CF c, const IterOptions& opts,
                                      const rocksdb::Snapshot* snap) const;

  // The smallest key past everything `c` holds in any file or memtable, or
  // nullopt when it holds nothing. Used as the end of an open-ended range.
  [[nodiscard]] std::optional<std::string> end_of_cf(CF c) const {
    std::optional<std::string> largest;
    rocksdb::ColumnFamilyMetaData meta;
    db->GetColumnFamilyMetaData(cf(c), &meta);
    for (const auto& level : meta.levels) {
      for (const auto& file : level.files) {
        if (!largest || file.largestkey > *largest) largest = file.largestkey;
      }
    }
    // Memtables: the live iterator's last key. Tombstones past it are only in
    // memtables and weigh little, so missing them is within the estimate.
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf(c)));
    it->SeekToLast();
    if (it->Valid()) {
      std::string key = it->key().ToString();
      if (!largest || key > *largest) largest = std::move(key);
    }
    if (!largest) return std::nullopt;
    largest->push_back('\0');
    return largest;
  }

  // [start, limit) of a KeyRange with the open end resolved; nullopt when the
  // range is empty.
  [[nodiscard]] std::optional<std::pair<std::string, std::string>> resolve(CF c,
                                                                           KeyRange range) const {
    std::string limit;
    if (range.end.empty()) {
      auto end = end_of_cf(c);
      if (!end) return std::nullopt;
      limit = std::move(*end);
    } else {
      limit = std::string(range.end);
    }
    if (std::string_view(limit) <= range.start) return std::nullopt;
    return std::make_pair(std::string(range.start), std::move(limit));
  }
};

// ---------------------------------------------------------------------------
// Iterator

struct RocksEngine::Iterator::State {
  const Impl* impl = nullptr;
  CF cf = CF::kDefault;
  // Owned here because ReadOptions only points at them; State is heap-held,
  // so the slices stay valid when the Iterator moves.
  std::string lower;
  std::string upper;
  rocksdb::Slice lower_slice;
  rocksdb::Slice upper_slice;
  std::unique_ptr<rocksdb::Iterator> it;
};

RocksEngine::Iterator RocksEngine::Impl::new_iterator(CF c, const IterOptions& opts,
                                                      const rocksdb::Snapshot* snap) const {
  auto st = std::make_unique<Iterator::State>();
  st->impl = this;
  st->cf = c;
  st->lower = opts.lower_bound;
  st->upper = opts.upper_bound;
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  ro.fill_cache = opts.fill_cache;
  if (!st->lower.empty()) {
    st->lower_slice = to_slice(st->lower);
    ro.iterate_lower_bound = &st->lower_slice;
  }
  if (!st->upper.empty()) {
    st->upper_slice = to_slice(st->upper);
    ro.iterate_upper_bound = &st->upper_slice;
  }
  st->it.reset(db->NewIterator(ro, cf(c)));
  return Iterator(std::move(st));
}

RocksEngine::Iterator::Iterator(std::unique_ptr<State> state) : state_(std::move(state)) {}
RocksEngine::Iterator::Iterator(Iterator&&) noexcept = default;
RocksEngine::Iterator& RocksEngine::Iterator::operator=(Iterator&&) noexcept = default;
RocksEngine::Iterator::~Iterator() = default;

bool RocksEngine::Iterator::valid() const { return state_ && state_->it->Valid(); }

void RocksEngine::Iterator::seek(std::string_view key) {
  if (key < state_->lower) key = state_->lower;
  state_->it->Seek(to_slice(key));
}

void RocksEngine::Iterator::seek_for_prev(std::string_view key) {
  // The upper bound is exclusive: the last key below it is what SeekToLast
  // finds under an iterate_upper_bound.
  if (!state_->upper.empty() && key >= state_->upper) {
    state_->it->SeekToLast();
    return;
  }
  state_->it->SeekForPrev(to_slice(key));
}

void RocksEngine::Iterator::seek_to_first() { state_->it->SeekToFirst(); }
void RocksEngine::Iterator::seek_to_last() { state_->it->SeekToLast(); }
void RocksEngine::Iterator::next() { state_->it->Next(); }
void RocksEngine::Iterator::prev() { state_->it->Prev(); }
std::string_view RocksEngine::Iterator::key() const { return to_view(state_->it->key()); }
std::string_view RocksEngine::Iterator::value() const { return to_view(state_->it->value()); }

Status RocksEngine::Iterator::status() const {
  if (!state_) return {};
  rocksdb::Status s = state_->it->status();
  if (s.ok()) return {};  // the context is formatted only for an error
  return to_status(s, state_->impl->context("iterator", state_->cf));
}

// ---------------------------------------------------------------------------
// Snapshot

struct RocksEngine::Snapshot::State {
  const Impl* impl = nullptr;
  const rocksdb::Snapshot* snap = nullptr;
};

RocksEngine::Snapshot::Snapshot(std::unique_ptr<State> state) : state_(std::move(state)) {}

RocksEngine::Snapshot::~Snapshot() { state_->impl->db->ReleaseSnapshot(state_->snap); }

Result<std::optional<std::string>> RocksEngine::Snapshot::get(CF cf, std::string_view key) const {
  return state_->impl->get(cf, key, state_->snap);
}

Result<std::vector<std::optional<std::string>>> RocksEngine::Snapshot::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  return state_->impl->multi_get(cf, keys, state_->snap);
}

RocksEngine::Iterator RocksEngine::Snapshot::new_iterator(CF cf, const IterOptions& opts) const {
  return state_->impl->new_iterator(cf, opts, state_->snap);
}

// ---------------------------------------------------------------------------
// WriteBatch

struct RocksEngine::WriteBatch::State {
  // DB::Write() takes a non-const batch because it stamps the sequence number
  // into the batch header; the operations themselves are left as they were,
  // which is what Engine::write() promises.
  rocksdb::WriteBatch batch;
  std::array<rocksdb::ColumnFamilyHandle*, kNumCFs> cfs{};
  rocksdb::Status error;  // the first operation RocksDB refused, if any

  void note(const rocksdb::Status& s) {
    if (!s.ok() && error.ok()) error = s;
  }
};

RocksEngine::WriteBatch::WriteBatch(std::unique_ptr<State> state) : state_(std::move(state)) {}
RocksEngine::WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
RocksEngine::WriteBatch& RocksEngine::WriteBatch::operator=(WriteBatch&&) noexcept = default;
RocksEngine::WriteBatch::~WriteBatch() = default;

void RocksEngine::WriteBatch::put(CF cf, std::string_view key, std::string_view value) {
  state_->note(state_->batch.Put(state_->cfs[cf_index(cf)], to_slice(key), to_slice(value)));
}

void RocksEngine::WriteBatch::delete_key(CF cf, std::string_view key) {
  state_->note(state_->batch.Delete(state_->cfs[cf_index(cf)], to_slice(key)));
}

void RocksEngine::WriteBatch::delete_range(CF cf, std::string_view begin, std::string_view end) {
  if (begin >= end) return;
  state_->note(
      state_->batch.DeleteRange(state_->cfs[cf_index(cf)], to_slice(begin), to_slice(end)));
}

std::size_t RocksEngine::WriteBatch::count() const { return state_ ? state_->batch.Count() : 0; }

std::size_t RocksEngine::WriteBatch::byte_size() const {
  return state_ ? state_->batch.GetDataSize() : 0;
}

void RocksEngine::WriteBatch::clear() {
  state_->batch.Clear();
  state_->error = rocksdb::Status::OK();
}

// ---------------------------------------------------------------------------
// SstWriter

struct RocksEngine::SstWriter::State {
  std::string path;
  std::unique_ptr<rocksdb::SstFileWriter> writer;
  std::string last_key;
  std::uint64_t entries = 0;
  bool finished = false;
  bool failed = false;

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    if (finished) return;
    writer.reset();  // closes the file before it is removed
    std::remove(path.c_str());
  }
};

RocksEngine::SstWriter::SstWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
RocksEngine::SstWriter::SstWriter(SstWriter&&) noexcept = default;
RocksEngine::SstWriter& RocksEngine::SstWriter::operator=(SstWriter&&) noexcept = default;
RocksEngine::SstWriter::~SstWriter() = default;

Status RocksEngine::SstWriter::put(std::string_view key, std::string_view value) {
  State& st = *state_;
  if (st.finished) return Status::invalid_argument(fmt::format("sst {} is finished", st.path));
  if (st.failed) {
    return Status::invalid_argument(fmt::format("sst {} failed earlier; discard it", st.path));
  }
  if (st.entries > 0 && key <= st.last_key) {
    st.failed = true;
    return Status::invalid_argument(fmt::format(
        "sst {}: keys must be strictly ascending ({:?} after {:?})", st.path, key, st.last_key));
  }
  rocksdb::Status s = st.writer->Put(to_slice(key), to_slice(value));
  if (!s.ok()) {
    st.failed = true;
    return to_status(s, fmt::format("rocksdb sst put {}", st.path));
  }
  if (st.entries == 0) st.last_key.reserve(key.size());
  st.last_key.assign(key);
  ++st.entries;
  return {};
}

Result<SstFileInfo> RocksEngine::SstWriter::finish() {
  State& st = *state_;
  if (st.finished) return Status::invalid_argument(fmt::format("sst {} is finished", st.path));
  if (st.failed) {
    return Status::invalid_argument(fmt::format("sst {} failed earlier; discard it", st.path));
  }
  if (st.entries == 0) {
    return Status::invalid_argument(fmt::format("sst {} has no entries", st.path));
  }
  rocksdb::ExternalSstFileInfo info;
  rocksdb::Status s = st.writer->Finish(&info);  // syncs the file
  if (!s.ok()) {
    st.failed = true;
    return to_status(s, fmt::format("rocksdb sst finish {}", st.path));
  }
  st.finished = true;
  SstFileInfo out;
  out.path = st.path;
  out.entries = st.entries;
  out.file_bytes = info.file_size;
  out.smallest_key = std::move(info.smallest_key);
  out.largest_key = std::move(info.largest_key);
  return out;
}

// ---------------------------------------------------------------------------
// Engine

RocksEngine::RocksEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RocksEngine::~RocksEngine() = default;

Result<std::unique_ptr<RocksEngine>> RocksEngine::open(const std::string& path,
                                                       const EngineOptions& opts) {
  bool fresh = false;
  KVCORE_RETURN_IF_ERROR(engine::prepare_engine_dir(path, kName, opts, &fresh));

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = make_options(opts, &impl->cache);

  std::vector<std::string> existing;
  if (!fresh) {
    bool has_current = false;
    KVCORE_RETURN_IF_ERROR(check_current_file(path, &has_current));
    if (has_current) {
      KVCORE_RETURN_IF_ERROR(engine::check_manifest_since_clean_close(path, kName));
      rocksdb::Status s = rocksdb::DB::ListColumnFamilies(impl->options, path, &existing);
      if (!s.ok()) {
        return open_status(s, fmt::format("cannot read the rocksdb store at {}", path));
      }
    } else if (!opts.create_if_missing) {
      return Status::not_found(
          fmt::format("no rocksdb store at {} (create_if_missing is off)", path));
    }
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (CF c : kAllCFs) {
    descriptors.emplace_back(std::string(cf_name(c)), impl->options);
  }
  for (const auto& name : existing) {
    bool known =
        std::any_of(kAllCFs.begin(), kAllCFs.end(), [&](CF c) { return cf_name(c) == name; });
    if (!known) {
      KVCORE_LOG_WARN("rocksdb store at {} has an unknown column family '{}'; opening it unused",
                      path, name);
      descriptors.emplace_back(name, impl->options);
    }
  }

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(rocksdb::DBOptions(impl->options), path, descriptors, &impl->handles, &raw);
  if (!s.ok()) {
    for (auto* h : impl->handles) delete h;
    impl->handles.clear();
    delete raw;
    return open_status(s, fmt::format("cannot open the rocksdb store at {}", path));
  }
  impl->db.reset(raw);
  engine::forget_clean_close(path);
  for (std::size_t i = 0; i < kNumCFs; ++i) impl->cfs[i] = impl->handles[i];
  return std::unique_ptr<RocksEngine>(new RocksEngine(std::move(impl)));
}

const std::string& RocksEngine::path() const { return impl_->path; }

Result<std::optional<std::string>> RocksEngine::get(CF cf, std::string_view key) const {
  return impl_->get(cf, key, nullptr);
}

Result<std::vector<std::optional<std::string>>> RocksEngine::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  return impl_->multi_get(cf, keys, nullptr);
}

RocksEngine::Iterator RocksEngine::new_iterator(CF cf, const IterOptions& opts) const {
  return impl_->new_iterator(cf, opts, nullptr);
}

RocksEngine::WriteBatch RocksEngine::new_write_batch() const {
  auto st = std::make_unique<WriteBatch::State>();
  st->cfs = impl_->cfs;
  return WriteBatch(std::move(st));
}

Status RocksEngine::write(const WriteBatch& batch, const WriteOptions& opts) {
  if (!batch.state_) return Status::invalid_argument("write of a moved-from rocksdb batch");
  auto& st = *batch.state_;
  // The context is formatted only for an error: this is the hot write path.
  if (!st.error.ok()) {
    return to_status(st.error,
                     fmt::format("rocksdb write in {} (batch rejected an operation)", impl_->path));
  }
  if (st.batch.Count() == 0) return {};
  rocksdb::WriteOptions wo;
  wo.sync = opts.sync;
  rocksdb::Status s = impl_->db->Write(wo, &st.batch);
  if (s.ok()) return {};
  return to_status(s, fmt::format("rocksdb write in {}", impl_->path));
}

std::shared_ptr<const RocksEngine::Snapshot> RocksEngine::snapshot() const {
  auto st = std::make_unique<Snapshot::State>();
  st->impl = impl_.get();
  st->snap = impl_->db->GetSnapshot();
  return std::shared_ptr<const Snapshot>(new Snapshot(std::move(st)));
}

Status RocksEngine::delete_range(CF cf, KeyRange range) {
  if (range.end.empty()) {
    return Status::invalid_argument(
        fmt::format("rocksdb delete_range in {}: the range needs an end", impl_->path));
  }
  if (range.start >= range.end) return {};
  rocksdb::Status s = impl_->db->DeleteRange(rocksdb::WriteOptions(), impl_->cf(cf),
                                             to_slice(range.start), to_slice(range.end));
  if (s.ok()) return {};
  return to_status(s, impl_->context("delete_range", cf));
}

Result<RocksEngine::SstWriter> RocksEngine::new_sst_writer(const std::string& path) const {
  KVCORE_RETURN_IF_ERROR(engine::require_absent(path));
  auto st = std::make_unique<SstWriter::State>();
  st->writer = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(), impl_->options);
  rocksdb::Status s = st->writer->Open(path);
  if (!s.ok()) {
    st->finished = true;  // nothing of ours to remove
    return to_status(s, fmt::format("rocksdb cannot create sst {}", path));
  }
  st->path = path;
  return SstWriter(std::move(st));
}

Status RocksEngine::ingest(CF cf, std::span<const std::string> files) {
  if (files.empty()) return {};
  rocksdb::IngestExternalFileOptions io;
  io.move_files = false;  // the caller's files are never moved or modified
  io.allow_global_seqno = true;
  io.allow_blocking_flush = true;
  io.write_global_seqno = false;
  io.verify_checksums_before_ingest = true;
  std::vector<std::string> paths(files.begin(), files.end());
  rocksdb::Status s = impl_->db->IngestExternalFile(impl_->cf(cf), paths, io);
  return to_status(
      s,
      impl_->context(fmt::format("ingest of {} file(s) from {}", paths.size(), paths.front()), cf));
}

Result<std::uint64_t> RocksEngine::approximate_size(CF cf, KeyRange range) const {
  auto bounds = impl_->resolve(cf, range);
  if (!bounds) return std::uint64_t{0};
  rocksdb::Range r(bounds->first, bounds->second);
  rocksdb::SizeApproximationOptions so;
  so.include_memtables = true;
  so.include_files = true;
  std::uint64_t size = 0;
  rocksdb::Status s = impl_->db->GetApproximateSizes(so, impl_->cf(cf), &r, 1, &size);
  if (!s.ok()) return to_status(s, impl_->context("approximate_size", cf));
  return size;
}

Result<std::uint64_t> RocksEngine::approximate_keys(CF cf, KeyRange range) const {
  auto bounds = impl_->resolve(cf, range);
  if (!bounds) return std::uint64_t{0};
  rocksdb::Range r(bounds->first, bounds->second);
  auto* handle = impl_->cf(cf);

  rocksdb::TablePropertiesCollection props;
  rocksdb::Status s = impl_->db->GetPropertiesOfTablesInRange(handle, &r, 1, &props);
  if (!s.ok()) return to_status(s, impl_->context("approximate_keys", cf));
  std::uint64_t table_entries = 0;
  std::uint64_t table_bytes = 0;
  for (const auto& [name, p] : props) {
    table_entries += p->num_entries;
    table_bytes += p->data_size + p->index_size + p->filter_size;
  }

  std::uint64_t file_keys = 0;
  if (table_entries > 0 && table_bytes > 0) {
    rocksdb::SizeApproximationOptions so;
    so.include_memtables = false;
    so.include_files = true;
    std::uint64_t range_bytes = 0;
    s = impl_->db->GetApproximateSizes(so, handle, &r, 1, &range_bytes);
    if (!s.ok()) return to_status(s, impl_->context("approximate_keys", cf));
    double share =
        std::min(1.0, static_cast<double>(range_bytes) / static_cast<double>(table_bytes));
    file_keys = static_cast<std::uint64_t>(static_cast<double>(table_entries) * share);
  }

  std::uint64_t mem_keys = 0;
  std::uint64_t mem_bytes = 0;
  impl_->db->GetApproximateMemTableStats(handle, r, &mem_keys, &mem_bytes);
  return file_keys + mem_keys;
}

Status RocksEngine::flush() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs(impl_->cfs.begin(), impl_->cfs.end());
  return to_status(impl_->db->Flush(fo, cfs), fmt::format("rocksdb flush in {}", impl_->path));
}

Status RocksEngine::compact_range(CF cf, KeyRange range) {
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  rocksdb::Slice begin = to_slice(range.start);
  rocksdb::Slice end = to_slice(range.end);
  rocksdb::Status s =
      impl_->db->CompactRange(co, impl_->cf(cf), range.start.empty() ? nullptr : &begin,
                              range.end.empty() ? nullptr : &end);
  return to_status(s, impl_->context("compact_range", cf));
}

EngineHealth RocksEngine::health() const {
  auto sum = [&](const char* property) -> std::optional<std::uint64_t> {
    std::uint64_t v = 0;
    if (!impl_->db->GetAggregatedIntProperty(property, &v)) return std::nullopt;
    return v;
  };
  EngineHealth h;
  h.pending_compaction_bytes = sum("rocksdb.estimate-pending-compaction-bytes");
  // A string property (the level is part of its name), so it is read and
  // summed per column family rather than aggregated by RocksDB.
  std::uint64_t l0 = 0;
  bool have_l0 = true;
  for (auto* cf : impl_->cfs) {
    std::string v;
    if (!impl_->db->GetProperty(cf, "rocksdb.num-files-at-level0", &v)) {
      have_l0 = false;
      break;
    }
    l0 += std::strtoull(v.c_str(), nullptr, 10);
  }
  if (have_l0) h.l0_files = l0;
  h.immutable_memtables = sum("rocksdb.num-immutable-mem-table");
  h.memtable_bytes = sum("rocksdb.cur-size-all-mem-tables");
  auto sst = sum("rocksdb.total-sst-files-size");
  if (sst) h.total_bytes = *sst + h.memtable_bytes.value_or(0);
  return h;
}

Status RocksEngine::checkpoint(const std::string& dir) {
  KVCORE_RETURN_IF_ERROR(engine::require_absent(dir));
  rocksdb::Checkpoint* raw = nullptr;
  const std::string where = fmt::format("rocksdb checkpoint of {} to {}", impl_->path, dir);
  rocksdb::Status s = rocksdb::Checkpoint::Create(impl_->db.get(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  if (!s.ok()) return to_status(s, where);
  s = cp->CreateCheckpoint(dir);
  if (!s.ok()) return to_status(s, where);
  return engine::write_engine_marker(dir, kName);
}

static_assert(StorageEngine<RocksEngine>);

}  // namespace kvcore
