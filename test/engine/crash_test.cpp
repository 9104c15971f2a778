// Crash safety. A writer applies numbered batches, each writing several keys
// across the column families (tagged with the batch number) and a "slot" key
// per column family holding the batch number. After a crash:
// - every acknowledged synced batch is present;
// - no batch is half applied (all of its keys or none, and the slots agree);
// - the batches present are exactly 0..n-1 (each batch was written only
//   after the previous one was acknowledged);
// - the store keeps working (more batches, a clean reopen).
//
// Disk engines: the writer is a child process (forked before the parent opens
// anything, so no engine thread exists at fork time) that reports each
// acknowledged batch over a pipe; the parent kills it with SIGKILL at seeded
// random moments. The next child reopens the store, verifies it and carries
// on. Memory engine: the same property in-process with crash(), where
// unsynced batches must be dropped and synced ones kept.
#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "engine_test_util.hpp"
#include "kvcore/engine/adapter.hpp"
#include "kvcore/engine/memory_engine.hpp"

namespace kvcore::test {
namespace {

using std::chrono::milliseconds;

constexpr int kKeysPerBatch = 6;
constexpr std::string_view kBatchPrefix = "batch/";

std::string batch_key(std::uint64_t batch, int i) {
  std::string n = std::to_string(batch);
  return std::string(kBatchPrefix) + std::string(10 - n.size(), '0') + n + "/" + std::to_string(i);
}

CF batch_cf(int i) { return kAllCFs[static_cast<std::size_t>(i) % kNumCFs]; }

// Values of varying size (up to ~3 KiB) so memtables fill and flush often.
std::string batch_value(std::uint64_t batch, int i) {
  const std::size_t pad = (batch * 7919 + static_cast<std::uint64_t>(i) * 104729) % 3000;
  return "b" + std::to_string(batch) + "i" + std::to_string(i) + ":" + std::string(pad, 'x');
}

void add_batch(WriteBatch& wb, std::uint64_t batch) {
  for (int i = 0; i < kKeysPerBatch; ++i)
    wb.put(batch_cf(i), batch_key(batch, i), batch_value(batch, i));
  for (CF cf : kAllCFs) wb.put(cf, "slot", std::to_string(batch));
  // Range deletes take part in crashed batches too: every 16th batch clears
  // the scratch keys that the batches before it rewrote.
  if (batch % 16 == 15) wb.delete_range(CF::kDefault, "scratch/", "scratch0");
  wb.put(CF::kDefault, "scratch/" + std::to_string(batch % 16), std::to_string(batch));
}

// What a store holds: the number of batches present (0..count-1), or an error
// describing the inconsistency. No Catch2 here: it also runs in children.
struct Verified {
  std::uint64_t count = 0;
  std::string error;
};

Verified verify_batches(const Reader& r) {
  Verified out;
  // Per CF: the batches seen and the keys of each.
  std::vector<std::vector<int>> keys_of;  // batch -> keys present
  for (CF cf : kAllCFs) {
    auto it =
        r.new_iterator(cf, {.lower_bound = std::string(kBatchPrefix), .upper_bound = "batch0"});
    for (it->seek_to_first(); it->valid(); it->next()) {
      const std::string_view key = it->key();
      const std::string_view rest = key.substr(kBatchPrefix.size());
      const std::uint64_t batch = std::stoull(std::string(rest.substr(0, 10)));
      const int i = std::stoi(std::string(rest.substr(11)));
      if (batch_cf(i) != cf || it->value() != batch_value(batch, i)) {
        out.error = "wrong value or CF for " + std::string(key);
        return out;
      }
      if (keys_of.size() <= batch) keys_of.resize(batch + 1);
      keys_of[batch].push_back(i);
    }
    if (!it->status().is_ok()) {
      out.error = "iterator: " + it->status().to_string();
      return out;
    }
  }
  for (std::uint64_t b = 0; b < keys_of.size(); ++b) {
    if (keys_of[b].size() != kKeysPerBatch) {
      out.error = "batch " + std::to_string(b) + " has " + std::to_string(keys_of[b].size()) +
                  " of " + std::to_string(kKeysPerBatch) + " keys (of " +
                  std::to_string(keys_of.size()) + " batches)";
      return out;
    }
  }
  out.count = keys_of.size();
  for (CF cf : kAllCFs) {
    auto slot = r.get(cf, "slot");
    if (!slot.is_ok()) {
      out.error = "slot: " + slot.status().to_string();
      return out;
    }
    const std::string want = out.count == 0 ? "<absent>" : std::to_string(out.count - 1);
    if (slot->value_or("<absent>") != want) {
      out.error = std::string("slot of ") + std::string(cf_name(cf)) + " is " +
                  slot->value_or("<absent>") + ", want " + want;
      return out;
    }
  }
  return out;
}

EngineOptions crash_options() {
  EngineOptions opts = test_options();
  opts.write_buffer_bytes = std::size_t{64} << 10;       // flush every few batches
  opts.lmdb_initial_map_bytes = std::size_t{256} << 10;  // grow the map under load
  return opts;
}

// The writer child: open, verify, report, then write batches until killed
// (or, with `limit`, write `limit` batches, reopen, verify again and exit).
void writer_child(int fd, EngineKind kind, const std::string& path, std::uint64_t limit) {
  auto opened = open_engine(kind, path, crash_options());
  if (!opened.is_ok()) {
    report(fd, "error: open: " + opened.status().to_string());
    ::_exit(2);
  }
  std::unique_ptr<Engine> e = std::move(opened).value();
  Verified v = verify_batches(*e);
  if (!v.error.empty()) {
    report(fd, "error: after reopen: " + v.error);
    ::_exit(2);
  }
  report(fd, "verified " + std::to_string(v.count));
  auto wb = e->new_write_batch();
  for (std::uint64_t b = v.count; limit == 0 || b < v.count + limit; ++b) {
    wb->clear();
    add_batch(*wb, b);
    const Status st = e->write(*wb, WriteOptions{.sync = true});
    if (!st.is_ok()) {
      report(fd, "error: write of batch " + std::to_string(b) + ": " + st.to_string());
      ::_exit(2);
    }
    report(fd, "ack " + std::to_string(b));
  }
  wb.reset();
  e.reset();
  opened = open_engine(kind, path, crash_options());
  if (!opened.is_ok()) {
    report(fd, "error: clean reopen: " + opened.status().to_string());
    ::_exit(2);
  }
  v = verify_batches(**opened);
  if (!v.error.empty()) {
    report(fd, "error: after clean reopen: " + v.error);
    ::_exit(2);
  }
  report(fd, "clean " + std::to_string(v.count));
  opened.value().reset();
  ::_exit(0);
}

std::uint64_t number_after(const std::string& line, std::string_view prefix) {
  return std::stoull(line.substr(prefix.size()));
}

TEST_CASE("crash: killed writer loses no acknowledged batch and applies none by half",
          "[engine][crash]") {
  for (const EngineKind kind : engines_under_test()) {
    if (kind == EngineKind::kMemory) continue;  // in-process, below
    DYNAMIC_SECTION("engine: " << to_string(kind)) {
      const std::uint64_t seed = test_seed(42);
      INFO(replay_hint(seed));
      Rng rng(seed);
      TempDir dir("kvcore-crash");
      const std::string path = dir.sub("db");
      constexpr int kKills = 40;
      const auto start = std::chrono::steady_clock::now();
      std::uint64_t durable = 0;  // batches that must be present from now on
      int kills = 0;

      for (int round = 0; round < kKills; ++round) {
        INFO("round " << round << ", " << durable << " batches durable");
        Child child = Child::spawn([&](int fd) { writer_child(fd, kind, path, 0); });
        // Mostly kill a few milliseconds after a random number of acknowledged
        // batches (mid-write, mid-flush); one round in ten at once, during the
        // open and recovery itself.
        const auto mode = rng.uniform(10);
        const std::uint64_t acks_wanted = mode == 0 ? 0 : 1 + rng.uniform(40);
        std::uint64_t acks = 0;
        bool verified = false;
        std::vector<std::string> lines;
        if (mode != 0) {
          while (acks < acks_wanted) {
            auto line = child.read_line(std::chrono::seconds(30));
            if (!line) break;
            lines.push_back(*line);
            if (line->starts_with("verified ")) {
              const std::uint64_t n = number_after(*line, "verified ");
              INFO("child found " << n << " batches");
              CHECK(n >= durable);
              durable = std::max(durable, n);
              verified = true;
            } else if (line->starts_with("ack ")) {
              ++acks;
              durable = std::max(durable, number_after(*line, "ack ") + 1);
            } else {
              break;
            }
          }
          INFO("child stopped early or hung");
          CHECK(acks == acks_wanted);
          // Let the child run on for a random fraction of a write.
          (void)child.read_line(milliseconds(rng.uniform(4)));
        }
        child.kill_now();
        std::vector<std::string> rest;
        const ChildExit how = child.finish(std::chrono::seconds(30), &rest);
        for (auto& line : rest) {
          if (line.starts_with("ack ")) {
            durable = std::max(durable, number_after(line, "ack ") + 1);
          } else if (line.starts_with("verified ")) {
            CHECK(number_after(line, "verified ") >= durable);
            durable = std::max(durable, number_after(line, "verified "));
            verified = true;
          }
          lines.push_back(std::move(line));
        }
        for (const auto& line : lines) {
          INFO("child said: " << line);
          CHECK_FALSE(line.starts_with("error"));
        }
        INFO("child " << how.describe());
        REQUIRE((how.signal == SIGKILL && !how.timed_out));
        if (mode != 0) CHECK(verified);
        ++kills;
      }

      // A last child verifies, writes more, reopens cleanly and verifies again.
      const ChildResult last =
          run_in_child([&](int fd) { writer_child(fd, kind, path, 20); }, std::chrono::seconds(60));
      std::uint64_t found = 0;
      std::uint64_t clean = 0;
      for (const auto& line : last.lines) {
        INFO("last child said: " << line);
        CHECK_FALSE(line.starts_with("error"));
        if (line.starts_with("verified ")) found = number_after(line, "verified ");
        if (line.starts_with("clean ")) clean = number_after(line, "clean ");
      }
      INFO("last child " << last.exit.describe());
      CHECK((last.exit.exited && last.exit.exit_code == 0));
      CHECK(found >= durable);
      CHECK(clean == found + 20);
      CHECK(kills >= 20);
      const auto secs =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
              .count();
      WARN(to_string(kind) << ": " << kills << " kills, " << clean << " batches in " << secs
                           << " s");
      CHECK(secs < 60);
    }
  }
}

TEST_CASE("crash: memory engine crash() keeps synced batches, drops unsynced, none by half",
          "[engine][crash]") {
  for (const EngineKind kind : engines_under_test()) {
    if (kind != EngineKind::kMemory) continue;
    const std::uint64_t seed = test_seed(42);
    INFO(replay_hint(seed));
    Rng rng(seed);
    TestStore store(kind, crash_options());
    std::uint64_t next = 0;    // the next batch number
    std::uint64_t synced = 0;  // batches 0..synced-1 are synced
    for (int round = 0; round < 40; ++round) {
      INFO("round " << round);
      auto wb = store->new_write_batch();
      const auto n = rng.uniform(12);
      for (std::uint64_t i = 0; i < n; ++i) {
        wb->clear();
        add_batch(*wb, next);
        const bool sync = rng.chance(0.3);
        REQUIRE_OK(store->write(*wb, WriteOptions{.sync = sync}));
        ++next;
        if (sync) synced = next;
      }
      wb.reset();
      // A snapshot taken before the crash keeps its view.
      auto before = store->snapshot();
      const Verified pre = verify_batches(*before);
      REQUIRE(pre.error.empty());
      REQUIRE(pre.count == next);

      if (rng.chance(0.5)) {
        auto* mem = engine_cast<MemoryEngine>(store.engine());
        REQUIRE(mem != nullptr);
        mem->crash();
      } else {
        before.reset();
        store.close();
        REQUIRE_OK(MemoryEngine::crash_at(store.path()));
        store.reopen();
      }
      if (before) {
        const Verified kept = verify_batches(*before);
        CHECK(kept.error.empty());
        CHECK(kept.count == next);
        before.reset();
      }
      const Verified after = verify_batches(store.engine());
      INFO(after.error);
      REQUIRE(after.error.empty());
      CHECK(after.count == synced);  // unsynced batches are gone, synced ones kept
      next = after.count;
      synced = next;
    }
    // The store keeps working after the crashes, across a clean reopen.
    auto wb = store->new_write_batch();
    for (int i = 0; i < 5; ++i) {
      wb->clear();
      add_batch(*wb, next++);
      REQUIRE_OK(store->write(*wb, {}));
    }
    wb.reset();
    store.reopen();
    const Verified end = verify_batches(store.engine());
    CHECK(end.error.empty());
    CHECK(end.count == next);
  }
}

}  // namespace
}  // namespace kvcore::test
