// EngineAdapter<E>: wraps any type satisfying StorageEngine into the
// type-erased kvcore::Engine. This is the only place where static engine types
// meet the interface libkvcore is compiled against, so an application engine
// needs nothing else:
//
//   auto mine = MyEngine::open(path, opts);            // Result<unique_ptr<MyEngine>>
//   std::unique_ptr<kvcore::Engine> engine =
//       kvcore::make_engine(std::move(mine).value());
//
// The adapter adds one virtual call per operation and nothing else: batches,
// iterators and snapshots are the engine's own objects held by value.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "kvcore/engine/concept.hpp"
#include "kvcore/engine/engine.hpp"

namespace kvcore {

namespace engine_detail {

// `Keep` is whatever must outlive the iterator (a snapshot), or std::nullptr_t.
template <EngineIterator I, class Keep = std::nullptr_t>
class IteratorAdapter final : public Iterator {
 public:
  IteratorAdapter(I it, Keep keep) : keep_(std::move(keep)), it_(std::move(it)) {}
  [[nodiscard]] bool valid() const override { return it_.valid(); }
  void seek(std::string_view key) override { it_.seek(key); }
  void seek_for_prev(std::string_view key) override { it_.seek_for_prev(key); }
  void seek_to_first() override { it_.seek_to_first(); }
  void seek_to_last() override { it_.seek_to_last(); }
  void next() override { it_.next(); }
  void prev() override { it_.prev(); }
  [[nodiscard]] std::string_view key() const override { return it_.key(); }
  [[nodiscard]] std::string_view value() const override { return it_.value(); }
  [[nodiscard]] Status status() const override { return it_.status(); }

 private:
  Keep keep_;  // declared first: destroyed after the iterator
  I it_;
};

template <EngineReadable S>
class SnapshotAdapter final : public Snapshot {
 public:
  explicit SnapshotAdapter(std::shared_ptr<const S> snap) : snap_(std::move(snap)) {}
  [[nodiscard]] Result<std::optional<std::string>> get(CF cf,
                                                       std::string_view key) const override {
    return snap_->get(cf, key);
  }
  [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
      CF cf, std::span<const std::string_view> keys) const override {
    return snap_->multi_get(cf, keys);
  }
  [[nodiscard]] std::unique_ptr<Iterator> new_iterator(CF cf,
                                                       const IterOptions& opts) const override {
    using It = IteratorAdapter<typename S::Iterator, std::shared_ptr<const S>>;
    return std::make_unique<It>(snap_->new_iterator(cf, opts), snap_);
  }

 private:
  std::shared_ptr<const S> snap_;
};

template <EngineWriteBatch B>
class WriteBatchAdapter final : public WriteBatch {
 public:
  explicit WriteBatchAdapter(B batch) : batch_(std::move(batch)) {}
  void put(CF cf, std::string_view key, std::string_view value) override {
    batch_.put(cf, key, value);
  }
  void delete_key(CF cf, std::string_view key) override { batch_.delete_key(cf, key); }
  void delete_range(CF cf, std::string_view begin, std::string_view end) override {
    batch_.delete_range(cf, begin, end);
  }
  [[nodiscard]] std::size_t count() const override { return batch_.count(); }
  [[nodiscard]] std::size_t byte_size() const override { return batch_.byte_size(); }
  void clear() override { batch_.clear(); }
  [[nodiscard]] const B& native() const { return batch_; }

 private:
  B batch_;
};

template <EngineSstWriter W>
class SstWriterAdapter final : public SstWriter {
 public:
  explicit SstWriterAdapter(W writer) : writer_(std::move(writer)) {}
  [[nodiscard]] Status put(std::string_view key, std::string_view value) override {
    return writer_.put(key, value);
  }
  [[nodiscard]] Result<SstFileInfo> finish() override { return writer_.finish(); }

 private:
  W writer_;
};

}  // namespace engine_detail

template <StorageEngine E>
class EngineAdapter final : public Engine {
 public:
  explicit EngineAdapter(std::unique_ptr<E> engine) : engine_(std::move(engine)) {}

  // The wrapped engine, for engine-specific calls (e.g. MemoryEngine::crash).
  [[nodiscard]] E& native() { return *engine_; }
  [[nodiscard]] const E& native() const { return *engine_; }

  [[nodiscard]] std::string_view name() const override { return E::kName; }
  [[nodiscard]] const std::string& path() const override { return engine_->path(); }

  [[nodiscard]] Result<std::optional<std::string>> get(CF cf,
                                                       std::string_view key) const override {
    return engine_->get(cf, key);
  }
  [[nodiscard]] Result<std::vector<std::optional<std::string>>> multi_get(
      CF cf, std::span<const std::string_view> keys) const override {
    return engine_->multi_get(cf, keys);
  }
  [[nodiscard]] std::unique_ptr<Iterator> new_iterator(CF cf,
                                                       const IterOptions& opts) const override {
    using It = engine_detail::IteratorAdapter<typename E::Iterator>;
    return std::make_unique<It>(engine_->new_iterator(cf, opts), nullptr);
  }

  [[nodiscard]] std::unique_ptr<WriteBatch> new_write_batch() const override {
    return std::make_unique<BatchAdapter>(engine_->new_write_batch());
  }
  [[nodiscard]] Status write(const WriteBatch& batch, const WriteOptions& opts) override {
    // BatchAdapter is final, so comparing the dynamic type is exact and costs
    // a pointer compare instead of a dynamic_cast walk on every write.
    if (typeid(batch) != typeid(BatchAdapter)) {
      return Status::invalid_argument("write batch was created by another engine type");
    }
    return engine_->write(static_cast<const BatchAdapter&>(batch).native(), opts);
  }
  [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const override {
    return std::make_shared<engine_detail::SnapshotAdapter<typename E::Snapshot>>(
        engine_->snapshot());
  }
  [[nodiscard]] Status delete_range(CF cf, KeyRange range) override {
    return engine_->delete_range(cf, range);
  }
  [[nodiscard]] Result<std::unique_ptr<SstWriter>> new_sst_writer(
      const std::string& path) const override {
    auto writer = engine_->new_sst_writer(path);
    if (!writer.is_ok()) return writer.status();
    return std::unique_ptr<SstWriter>(
        std::make_unique<engine_detail::SstWriterAdapter<typename E::SstWriter>>(
            std::move(writer).value()));
  }
  [[nodiscard]] Status ingest(CF cf, std::span<const std::string> files) override {
    return engine_->ingest(cf, files);
  }
  [[nodiscard]] Result<std::uint64_t> approximate_size(CF cf, KeyRange range) const override {
    return engine_->approximate_size(cf, range);
  }
  [[nodiscard]] Result<std::uint64_t> approximate_keys(CF cf, KeyRange range) const override {
    return engine_->approximate_keys(cf, range);
  }
  [[nodiscard]] Status flush() override { return engine_->flush(); }
  [[nodiscard]] Status compact_range(CF cf, KeyRange range) override {
    return engine_->compact_range(cf, range);
  }
  [[nodiscard]] EngineHealth health() const override { return engine_->health(); }
  [[nodiscard]] Status checkpoint(const std::string& dir) override {
    return engine_->checkpoint(dir);
  }

 private:
  using BatchAdapter = engine_detail::WriteBatchAdapter<typename E::WriteBatch>;
  std::unique_ptr<E> engine_;
};

// Wraps a concrete engine into the type-erased handle.
template <StorageEngine E>
[[nodiscard]] std::unique_ptr<Engine> make_engine(std::unique_ptr<E> engine) {
  return std::make_unique<EngineAdapter<E>>(std::move(engine));
}

// Opens a concrete engine type and wraps it.
template <StorageEngine E>
[[nodiscard]] Result<std::unique_ptr<Engine>> open_engine_as(const std::string& path,
                                                             const EngineOptions& opts) {
  auto opened = E::open(path, opts);
  if (!opened.is_ok()) return opened.status();
  return make_engine(std::move(opened).value());
}

// The concrete engine behind `engine`, or nullptr when it is another type.
template <StorageEngine E>
[[nodiscard]] E* engine_cast(Engine& engine) {
  auto* adapter = dynamic_cast<EngineAdapter<E>*>(&engine);
  return adapter ? &adapter->native() : nullptr;
}

}  // namespace kvcore
