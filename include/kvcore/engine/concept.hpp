// What a storage engine is, stated as C++20 concepts over static types.
//
// A concrete engine (RocksEngine, LevelEngine, LmdbEngine, MemoryEngine, or
// one an application writes) satisfies StorageEngine with plain member
// functions and nested types; EngineAdapter<E> (kvcore/engine/adapter.hpp)
// turns it into the type-erased kvcore::Engine. The contracts of each member
// are those of the same-named member of kvcore::Engine in engine.hpp, and the
// conformance suite (test/engine) checks them on every engine.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/engine/types.hpp"
#include "kvcore/status.hpp"

namespace kvcore {

template <class I>
concept EngineIterator = std::movable<I> && requires(I& it, const I& cit, std::string_view k) {
  { cit.valid() } -> std::same_as<bool>;
  { it.seek(k) } -> std::same_as<void>;
  { it.seek_for_prev(k) } -> std::same_as<void>;
  { it.seek_to_first() } -> std::same_as<void>;
  { it.seek_to_last() } -> std::same_as<void>;
  { it.next() } -> std::same_as<void>;
  { it.prev() } -> std::same_as<void>;
  { cit.key() } -> std::same_as<std::string_view>;
  { cit.value() } -> std::same_as<std::string_view>;
  { cit.status() } -> std::same_as<Status>;
};

// Point reads and iterators over one consistent view. An iterator returned by
// value holds whatever it needs to stay consistent (a snapshot, a read
// transaction) for its lifetime.
template <class R>
concept EngineReadable =
    requires(const R& r, CF cf, std::string_view key, std::span<const std::string_view> keys,
             const IterOptions& iter_opts) {
      typename R::Iterator;
      requires EngineIterator<typename R::Iterator>;
      { r.get(cf, key) } -> std::same_as<Result<std::optional<std::string>>>;
      { r.multi_get(cf, keys) } -> std::same_as<Result<std::vector<std::optional<std::string>>>>;
      { r.new_iterator(cf, iter_opts) } -> std::same_as<typename R::Iterator>;
    };

template <class B>
concept EngineWriteBatch =
    std::movable<B> && requires(B& b, const B& cb, CF cf, std::string_view k, std::string_view v) {
      { b.put(cf, k, v) } -> std::same_as<void>;
      { b.delete_key(cf, k) } -> std::same_as<void>;
      { b.delete_range(cf, k, v) } -> std::same_as<void>;
      { cb.count() } -> std::same_as<std::size_t>;
      { cb.byte_size() } -> std::same_as<std::size_t>;
      { b.clear() } -> std::same_as<void>;
    };

template <class W>
concept EngineSstWriter = std::movable<W> && requires(W& w, std::string_view k) {
  { w.put(k, k) } -> std::same_as<Status>;
  { w.finish() } -> std::same_as<Result<SstFileInfo>>;
};

template <class E>
concept StorageEngine =
    EngineReadable<E> &&
    requires(E& e, const E& ce, const std::string& path, const EngineOptions& opts, CF cf,
             KeyRange range, const typename E::WriteBatch& batch, const WriteOptions& wopts,
             std::span<const std::string> files) {
      // The name open_engine() and the logs use, e.g. "rocksdb".
      { E::kName } -> std::convertible_to<std::string_view>;
      { E::open(path, opts) } -> std::same_as<Result<std::unique_ptr<E>>>;
      { ce.path() } -> std::same_as<const std::string&>;

      typename E::WriteBatch;
      requires EngineWriteBatch<typename E::WriteBatch>;
      { ce.new_write_batch() } -> std::same_as<typename E::WriteBatch>;
      { e.write(batch, wopts) } -> std::same_as<Status>;

      typename E::Snapshot;
      requires EngineReadable<typename E::Snapshot>;
      { ce.snapshot() } -> std::same_as<std::shared_ptr<const typename E::Snapshot>>;

      { e.delete_range(cf, range) } -> std::same_as<Status>;

      typename E::SstWriter;
      requires EngineSstWriter<typename E::SstWriter>;
      { ce.new_sst_writer(path) } -> std::same_as<Result<typename E::SstWriter>>;
      { e.ingest(cf, files) } -> std::same_as<Status>;

      { ce.approximate_size(cf, range) } -> std::same_as<Result<std::uint64_t>>;
      { ce.approximate_keys(cf, range) } -> std::same_as<Result<std::uint64_t>>;
      { e.flush() } -> std::same_as<Status>;
      { e.compact_range(cf, range) } -> std::same_as<Status>;
      { ce.health() } -> std::same_as<EngineHealth>;
      { e.checkpoint(path) } -> std::same_as<Status>;
    };

}  // namespace kvcore
