#include "kvcore/engine/memory_engine.hpp"

#include <map>
#include <mutex>

#include <fmt/format.h>

#include "engine/fs.hpp"
#include "engine/sorted_file.hpp"
#include "kvcore/engine/concept.hpp"
#include "memory/treap.hpp"

namespace kvcore {
namespace memory_detail {

// One "disk": what survives closing the engine (current) and what survives a
// crash (synced).
struct Disk {
  std::mutex mu;
  Roots current;  // guarded by mu
  Roots synced;   // guarded by mu
  bool open = false;  // guarded by mu
};

namespace {

constexpr std::string_view kVirtualPrefix = "mem:";

struct DiskTable {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Disk>, std::less<>> disks;  // guarded by mu
};

DiskTable& disk_table() {
  static DiskTable table;
  return table;
}

std::shared_ptr<Disk> find_disk(std::string_view path) {
  auto& table = disk_table();
  std::lock_guard lock(table.mu);
  auto it = table.disks.find(path);
  return it == table.disks.end() ? nullptr : it->second;
}

Result<std::optional<std::string>> get_from(const NodePtr& root, std::string_view key) {
  const Node* n = treap_find(root, key);
  if (n == nullptr) return std::optional<std::string>();
  return std::optional<std::string>(n->item->value);
}

Result<std::vector<std::optional<std::string>>> multi_get_from(
    const NodePtr& root, std::span<const std::string_view> keys) {
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (auto key : keys) {
    const Node* n = treap_find(root, key);
    out.push_back(n ? std::optional<std::string>(n->item->value) : std::nullopt);
  }
  return out;
}

}  // namespace
}  // namespace memory_detail

using memory_detail::Disk;
using memory_detail::Node;
using memory_detail::NodePtr;
using memory_detail::Roots;

// ---- Iterator ---------------------------------------------------------------

MemoryEngine::Iterator::Iterator(NodePtr root, const IterOptions& opts)
    : root_(std::move(root)), lower_(opts.lower_bound), upper_(opts.upper_bound) {}

void MemoryEngine::Iterator::clamp() {
  if (cur_ == nullptr) return;
  const std::string_view k = cur_->item->key;
  if (k < std::string_view(lower_) || (!upper_.empty() && k >= std::string_view(upper_))) {
    cur_ = nullptr;
  }
}

void MemoryEngine::Iterator::seek(std::string_view key) {
  cur_ = memory_detail::treap_lower_bound(root_, std::max(key, std::string_view(lower_)));
  clamp();
}

void MemoryEngine::Iterator::seek_for_prev(std::string_view key) {
  if (!upper_.empty() && key >= std::string_view(upper_)) {
    cur_ = memory_detail::treap_last_below(root_, upper_);
  } else {
    cur_ = memory_detail::treap_last_at_or_below(root_, key);
  }
  clamp();
}

void MemoryEngine::Iterator::seek_to_first() { seek(lower_); }

void MemoryEngine::Iterator::seek_to_last() {
  cur_ = upper_.empty() ? memory_detail::treap_last(root_)
                        : memory_detail::treap_last_below(root_, upper_);
  clamp();
}

void MemoryEngine::Iterator::next() {
  cur_ = memory_detail::treap_upper_bound(root_, cur_->item->key);
  clamp();
}

void MemoryEngine::Iterator::prev() {
  cur_ = memory_detail::treap_last_below(root_, cur_->item->key);
  clamp();
}

std::string_view MemoryEngine::Iterator::key() const { return cur_->item->key; }
std::string_view MemoryEngine::Iterator::value() const { return cur_->item->value; }

// ---- Snapshot ---------------------------------------------------------------

Result<std::optional<std::string>> MemoryEngine::Snapshot::get(CF cf, std::string_view key) const {
  return memory_detail::get_from(roots_[cf_index(cf)], key);
}

Result<std::vector<std::optional<std::string>>> MemoryEngine::Snapshot::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  return memory_detail::multi_get_from(roots_[cf_index(cf)], keys);
}

MemoryEngine::Iterator MemoryEngine::Snapshot::new_iterator(CF cf, const IterOptions& opts) const {
  return Iterator(roots_[cf_index(cf)], opts);
}

// ---- WriteBatch -------------------------------------------------------------

void MemoryEngine::WriteBatch::put(CF cf, std::string_view key, std::string_view value) {
  ops_.push_back({Op::kPut, cf, std::string(key), std::string(value)});
  bytes_ += key.size() + value.size();
}

void MemoryEngine::WriteBatch::delete_key(CF cf, std::string_view key) {
  ops_.push_back({Op::kDelete, cf, std::string(key), {}});
  bytes_ += key.size();
}

void MemoryEngine::WriteBatch::delete_range(CF cf, std::string_view begin, std::string_view end) {
  if (end.empty() || begin >= end) return;  // deletes nothing; not counted
  ops_.push_back({Op::kDeleteRange, cf, std::string(begin), std::string(end)});
  bytes_ += begin.size() + end.size();
}

// ---- SstWriter --------------------------------------------------------------

struct MemoryEngine::SstWriter::Impl {
  engine::SortedFileWriter file;
};

MemoryEngine::SstWriter::SstWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MemoryEngine::SstWriter::SstWriter(SstWriter&&) noexcept = default;
MemoryEngine::SstWriter& MemoryEngine::SstWriter::operator=(SstWriter&&) noexcept = default;
MemoryEngine::SstWriter::~SstWriter() = default;

Status MemoryEngine::SstWriter::put(std::string_view key, std::string_view value) {
  return impl_->file.put(key, value);
}

Result<SstFileInfo> MemoryEngine::SstWriter::finish() { return impl_->file.finish(); }

// ---- MemoryEngine -----------------------------------------------------------

MemoryEngine::MemoryEngine(std::string path, std::shared_ptr<Disk> disk)
    : path_(std::move(path)), disk_(std::move(disk)) {}

MemoryEngine::~MemoryEngine() {
  std::lock_guard lock(disk_->mu);
  disk_->open = false;
}

Result<std::unique_ptr<MemoryEngine>> MemoryEngine::open(const std::string& path,
                                                         const EngineOptions& opts) {
  const bool is_virtual = path.starts_with(memory_detail::kVirtualPrefix);
  if (!is_virtual) {
    bool fresh = false;
    KVCORE_RETURN_IF_ERROR(engine::prepare_engine_dir(path, kName, opts, &fresh));
  }
  auto& table = memory_detail::disk_table();
  std::shared_ptr<Disk> disk;
  {
    std::lock_guard lock(table.mu);
    auto it = table.disks.find(path);
    if (it == table.disks.end()) {
      if (is_virtual && !opts.create_if_missing) {
        return Status::not_found(fmt::format("no memory store at {}", path));
      }
      disk = std::make_shared<Disk>();
      table.disks.emplace(path, disk);
    } else {
      if (is_virtual && opts.error_if_exists) {
        return Status::already_exists(fmt::format("a memory store exists at {}", path));
      }
      disk = it->second;
    }
  }
  std::lock_guard lock(disk->mu);
  if (disk->open) {
    return Status::failed_precondition(
        fmt::format("memory store {} is already open in this process", path));
  }
  disk->open = true;
  return std::unique_ptr<MemoryEngine>(new MemoryEngine(path, std::move(disk)));
}

Roots MemoryEngine::current_roots() const {
  std::lock_guard lock(disk_->mu);
  return disk_->current;
}

Result<std::optional<std::string>> MemoryEngine::get(CF cf, std::string_view key) const {
  NodePtr root;
  {
    std::lock_guard lock(disk_->mu);
    root = disk_->current[cf_index(cf)];
  }
  return memory_detail::get_from(root, key);
}

Result<std::vector<std::optional<std::string>>> MemoryEngine::multi_get(
    CF cf, std::span<const std::string_view> keys) const {
  NodePtr root;
  {
    std::lock_guard lock(disk_->mu);
    root = disk_->current[cf_index(cf)];
  }
  return memory_detail::multi_get_from(root, keys);
}

MemoryEngine::Iterator MemoryEngine::new_iterator(CF cf, const IterOptions& opts) const {
  NodePtr root;
  {
    std::lock_guard lock(disk_->mu);
    root = disk_->current[cf_index(cf)];
  }
  return Iterator(std::move(root), opts);
}

Status MemoryEngine::write(const WriteBatch& batch, const WriteOptions& opts) {
  std::lock_guard lock(disk_->mu);
  Roots roots = disk_->current;
  for (const auto& op : batch.ops_) {
    NodePtr& root = roots[cf_index(op.cf)];
    switch (op.op) {
      case WriteBatch::Op::kPut: root = memory_detail::treap_put(root, op.key, op.value); break;
      case WriteBatch::Op::kDelete: root = memory_detail::treap_erase(root, op.key); break;
      case WriteBatch::Op::kDeleteRange:
        root = memory_detail::treap_erase_range(root, op.key, op.value);
        break;
    }
  }
  disk_->current = std::move(roots);
  if (opts.sync) disk_->synced = disk_->current;
  return {};
}

std::shared_ptr<const MemoryEngine::Snapshot> MemoryEngine::snapshot() const {
  return std::make_shared<const Snapshot>(current_roots());
}

Status MemoryEngine::delete_range(CF cf, KeyRange range) {
  if (range.end.empty()) return Status::invalid_argument("delete_range needs an end key");
  std::lock_guard lock(disk_->mu);
  NodePtr& root = disk_->current[cf_index(cf)];
  root = memory_detail::treap_erase_range(root, range.start, range.end);
  return {};
}

Result<MemoryEngine::SstWriter> MemoryEngine::new_sst_writer(const std::string& path) const {
  KVCORE_ASSIGN_OR_RETURN(auto file, engine::SortedFileWriter::create(path));
  return SstWriter(std::make_unique<SstWriter::Impl>(SstWriter::Impl{std::move(file)}));
}

Status MemoryEngine::ingest(CF cf, std::span<const std::string> files) {
  // Verify every file before touching the engine, so ingestion is all or nothing.
  for (const auto& f : files) KVCORE_RETURN_IF_ERROR(engine::scan_sorted_file(f, {}));
  std::lock_guard lock(disk_->mu);
  NodePtr root = disk_->current[cf_index(cf)];
  for (const auto& f : files) {
    KVCORE_RETURN_IF_ERROR(
        engine::scan_sorted_file(f, [&root](std::string_view k, std::string_view v) {
          root = memory_detail::treap_put(root, k, v);
          return Status();
        }));
  }
  disk_->current[cf_index(cf)] = std::move(root);
  disk_->synced = disk_->current;  // ingestion is durable when it returns
  return {};
}

Result<std::uint64_t> MemoryEngine::approximate_size(CF cf, KeyRange range) const {
  NodePtr root = current_roots()[cf_index(cf)];
  const auto lo = memory_detail::treap_rank(root, range.start).second;
  const auto hi = range.end.empty() ? memory_detail::subtree_bytes(root)
                                    : memory_detail::treap_rank(root, range.end).second;
  return hi > lo ? hi - lo : 0;
}

Result<std::uint64_t> MemoryEngine::approximate_keys(CF cf, KeyRange range) const {
  NodePtr root = current_roots()[cf_index(cf)];
  const auto lo = memory_detail::treap_rank(root, range.start).first;
  const auto hi = range.end.empty() ? memory_detail::subtree_count(root)
                                    : memory_detail::treap_rank(root, range.end).first;
  return hi > lo ? hi - lo : 0;
}

EngineHealth MemoryEngine::health() const {
  EngineHealth h;
  std::uint64_t total = 0;
  for (const auto& root : current_roots()) total += memory_detail::subtree_bytes(root);
  h.total_bytes = total;
  return h;
}

Status MemoryEngine::checkpoint(const std::string& dir) {
  if (memory_detail::find_disk(dir) != nullptr) return Status::already_exists(dir + " exists already");
  if (!dir.starts_with(memory_detail::kVirtualPrefix)) {
    KVCORE_RETURN_IF_ERROR(engine::require_absent(dir));
    EngineOptions opts;
    bool fresh = false;
    KVCORE_RETURN_IF_ERROR(engine::prepare_engine_dir(dir, kName, opts, &fresh));
  }
  auto copy = std::make_shared<Disk>();
  copy->current = current_roots();
  copy->synced = copy->current;
  auto& table = memory_detail::disk_table();
  std::lock_guard lock(table.mu);
  if (!table.disks.emplace(dir, std::move(copy)).second) {
    return Status::already_exists(dir + " exists already");
  }
  return {};
}

void MemoryEngine::crash() {
  std::lock_guard lock(disk_->mu);
  disk_->current = disk_->synced;
}

Status MemoryEngine::crash_at(const std::string& path) {
  auto disk = memory_detail::find_disk(path);
  if (!disk) return Status::not_found(fmt::format("no memory store at {}", path));
  std::lock_guard lock(disk->mu);
  disk->current = disk->synced;
  return {};
}

Status MemoryEngine::destroy(const std::string& path) {
  auto& table = memory_detail::disk_table();
  std::lock_guard lock(table.mu);
  auto it = table.disks.find(path);
  if (it == table.disks.end()) return {};
  {
    std::lock_guard disk_lock(it->second->mu);
    if (it->second->open) {
      return Status::failed_precondition(fmt::format("memory store {} is open", path));
    }
  }
  table.disks.erase(it);
  return {};
}

static_assert(StorageEngine<MemoryEngine>);

}  // namespace kvcore
