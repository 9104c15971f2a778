// Shared helpers of the engine suites (conformance, crash, bad input): which
// engines a run covers, a store in a fresh directory, and whole-column-family
// dumps to compare with a std::map model.
//
// Every suite is written against the type-erased kvcore::Engine only, so one
// case runs unchanged against each engine. KVCORE_TEST_ENGINES (a
// comma-separated list of engine names) picks the engines; by default every
// built engine runs. meson registers one test per built engine.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "kvcore/engine/engine.hpp"
#include "kvcore/engine/registry.hpp"
#include "kvcore/engine/types.hpp"
#include "kvcore/status.hpp"
#include "seed.hpp"
#include "temp_dir.hpp"

// REQUIREs that a Status or Result is OK, printing the Status when it is not.
#define REQUIRE_OK(expr)                                                    \
  do {                                                                      \
    const ::kvcore::Status kvt_status_ = ::kvcore::detail::status_of(expr); \
    INFO(#expr " -> " << kvt_status_.to_string());                          \
    REQUIRE(kvt_status_.is_ok());                                           \
  } while (0)

// CHECKs that a Status or Result failed with `code`, printing what it was.
#define CHECK_CODE(expr, expected_code)                                     \
  do {                                                                      \
    const ::kvcore::Status kvt_status_ = ::kvcore::detail::status_of(expr); \
    INFO(#expr " -> " << kvt_status_.to_string());                          \
    CHECK(kvt_status_.code() == (expected_code));                           \
  } while (0)

// Runs the block once per engine under test, each in its own Catch2 section
// (so a failure names the engine and does not stop the other engines).
#define FOR_EACH_ENGINE(kind)                                                  \
  for (const ::kvcore::EngineKind kind : ::kvcore::test::engines_under_test()) \
  DYNAMIC_SECTION("engine: " << ::kvcore::to_string(kind))

namespace kvcore::test {

// The engines named by KVCORE_TEST_ENGINES, else every built engine. An
// unknown or unbuilt name fails the calling test case.
[[nodiscard]] std::vector<EngineKind> engines_under_test();

// Small buffers and maps, so flushes, compactions and LMDB map growth happen
// within the sizes tests write.
[[nodiscard]] EngineOptions test_options();

using Model = std::map<std::string, std::string>;
using StoreModel = std::array<Model, kNumCFs>;

// An engine opened at `<fresh temp dir>/db`. On destruction the engine is
// closed and, for the memory engine, its in-process "disk" is forgotten (the
// memory engine keeps closed stores for the life of the process).
class TestStore {
 public:
  explicit TestStore(EngineKind kind, const EngineOptions& opts = test_options());
  ~TestStore();
  TestStore(const TestStore&) = delete;
  TestStore& operator=(const TestStore&) = delete;

  [[nodiscard]] Engine& engine() { return *engine_; }
  Engine* operator->() { return engine_.get(); }
  [[nodiscard]] EngineKind kind() const { return kind_; }
  [[nodiscard]] const std::string& path() const { return path_; }
  // A path next to the store, in the same temporary directory (not created).
  [[nodiscard]] std::string sub(std::string_view name) const { return dir_.sub(name); }
  [[nodiscard]] bool is_open() const { return engine_ != nullptr; }

  void close();
  // Closes (if open) and opens the same path again; REQUIREs success.
  void reopen(const EngineOptions& opts);
  void reopen() { reopen(opts_); }
  // Marks another path (a checkpoint, say) as holding a store of this
  // engine, to be forgotten at the end like the store itself.
  void also_forget(std::string path) { extra_paths_.push_back(std::move(path)); }

 private:
  EngineKind kind_;
  EngineOptions opts_;
  TempDir dir_;
  std::string path_;
  std::vector<std::string> extra_paths_;
  std::unique_ptr<Engine> engine_;  // after dir_: closed before the directory goes
};

// Forgets the memory engine's in-process disk at `path`; a no-op for other
// engines. REQUIRES: no engine has `path` open.
void forget_store(EngineKind kind, const std::string& path);

// Writes one put (or delete) as its own batch; REQUIREs success.
void put(Engine& engine, CF cf, std::string_view key, std::string_view value, bool sync = false);
void del(Engine& engine, CF cf, std::string_view key, bool sync = false);

// get() that REQUIREs the read to succeed.
[[nodiscard]] std::optional<std::string> get(const Reader& reader, CF cf, std::string_view key);

// Every entry of `cf` within `opts`' bounds, read forward; REQUIREs the
// iterator to end with an OK status.
[[nodiscard]] Model dump(const Reader& reader, CF cf, const IterOptions& opts = {});
// The same, read backward from seek_to_last().
[[nodiscard]] Model dump_backward(const Reader& reader, CF cf, const IterOptions& opts = {});
[[nodiscard]] StoreModel dump_all(const Reader& reader);

// A short printable rendering of a binary key, for failure messages.
[[nodiscard]] std::string printable(std::string_view bytes);

// The entries of `model` in [lower, upper) (an empty upper is unbounded): what
// an iterator with those bounds must yield.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> bounded(const Model& model,
                                                                       const IterOptions& opts);

// A reference cursor over bounded(model, opts) with the Iterator contract.
class ModelCursor {
 public:
  ModelCursor(const Model& model, const IterOptions& opts) : entries_(bounded(model, opts)) {}
  [[nodiscard]] bool valid() const { return pos_ < entries_.size(); }
  void seek(std::string_view key);
  void seek_for_prev(std::string_view key);
  void seek_to_first() { pos_ = 0; }
  void seek_to_last() { pos_ = entries_.empty() ? kInvalid : entries_.size() - 1; }
  void next() { pos_ = pos_ + 1 < entries_.size() ? pos_ + 1 : kInvalid; }
  void prev() { pos_ = pos_ == 0 ? kInvalid : pos_ - 1; }
  [[nodiscard]] const std::string& key() const { return entries_[pos_].first; }
  [[nodiscard]] const std::string& value() const { return entries_[pos_].second; }

 private:
  static constexpr std::size_t kInvalid = static_cast<std::size_t>(-1);
  std::vector<std::pair<std::string, std::string>> entries_;
  std::size_t pos_ = kInvalid;
};

// Checks that `it` and the cursor agree (validity, key, value, OK status).
// Returns false (after failing a CHECK) when they do not.
bool same_position(const Iterator& it, const ModelCursor& ref, std::string_view step);

// A random walk of `steps` moves (seeks of keys drawn by `pick_key`, first,
// last, next, prev) over `it`, compared after each move with the model.
// Returns false at the first disagreement.
template <class PickKey>
bool random_walk(Iterator& it, const Model& model, const IterOptions& opts, Rng& rng, int steps,
                 PickKey&& pick_key) {
  ModelCursor ref(model, opts);
  std::string trace;
  for (int i = 0; i < steps; ++i) {
    const auto choice = rng.uniform(10);
    std::string step;
    if (choice < 2 || (!ref.valid() && choice >= 6)) {
      std::string k = pick_key();
      step = "seek(" + printable(k) + ")";
      it.seek(k);
      ref.seek(k);
    } else if (choice < 4) {
      std::string k = pick_key();
      step = "seek_for_prev(" + printable(k) + ")";
      it.seek_for_prev(k);
      ref.seek_for_prev(k);
    } else if (choice == 4) {
      step = "seek_to_first";
      it.seek_to_first();
      ref.seek_to_first();
    } else if (choice == 5) {
      step = "seek_to_last";
      it.seek_to_last();
      ref.seek_to_last();
    } else if (choice < 8) {
      step = "next";
      it.next();
      ref.next();
    } else {
      step = "prev";
      it.prev();
      ref.prev();
    }
    trace += step + " ";
    if (!same_position(it, ref, trace)) return false;
  }
  return true;
}

}  // namespace kvcore::test
