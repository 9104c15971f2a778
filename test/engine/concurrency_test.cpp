// Conformance: one writer with concurrent readers, and concurrent writers.
//
// The writer's batches rewrite a fixed group of keys, all with the same
// version; a reader must never see two versions (or a missing key) within
// one snapshot, one iterator or one multi_get, and must never see versions go
// backwards. Threads coordinate through atomics only; nothing sleeps.
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine_test_util.hpp"

namespace kvcore::test {
namespace {

constexpr int kGroup = 16;

std::string group_key(int i) { return "g/" + std::to_string(100 + i); }
std::string version_value(std::uint64_t v) { return "version-" + std::to_string(1000000 + v); }

// Collects failures from reader threads (Catch2 assertions are not
// thread-safe); the main thread reports them.
class Failures {
 public:
  void add(std::string what) {
    std::lock_guard lock(mu_);
    if (list_.size() < 20) list_.push_back(std::move(what));
  }
  [[nodiscard]] std::vector<std::string> take() {
    std::lock_guard lock(mu_);
    return list_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> list_;  // guarded by mu_
};

// Parses a version_value; -1 when `v` is not one.
std::int64_t parse_version(std::string_view v) {
  constexpr std::string_view kPrefix = "version-";
  if (!v.starts_with(kPrefix)) return -1;
  return std::stoll(std::string(v.substr(kPrefix.size()))) - 1000000;
}

// One read of the group through `r`; returns its version, or -1 after
// recording a failure.
std::int64_t read_group(const Reader& r, int mode, Failures& failures) {
  std::vector<std::string> values;
  std::string note;
  if (mode == 0) {
    std::vector<std::string> owned;
    for (int i = 0; i < kGroup; ++i) owned.push_back(group_key(i));
    const std::vector<std::string_view> keys(owned.begin(), owned.end());
    auto got = r.multi_get(CF::kDefault, keys);
    if (!got.is_ok()) {
      failures.add("multi_get: " + got.status().to_string());
      return -1;
    }
    for (auto& v : *got) values.push_back(v.value_or("<absent>"));
    note = "multi_get";
  } else {
    auto it = r.new_iterator(CF::kDefault, {.lower_bound = "g/", .upper_bound = "g0"});
    if (mode == 1) {
      for (it->seek_to_first(); it->valid(); it->next()) values.emplace_back(it->value());
    } else {
      for (it->seek_to_last(); it->valid(); it->prev()) values.emplace_back(it->value());
    }
    if (!it->status().is_ok()) {
      failures.add("iterator: " + it->status().to_string());
      return -1;
    }
    note = mode == 1 ? "forward scan" : "backward scan";
  }
  if (values.size() != kGroup) {
    failures.add(note + ": " + std::to_string(values.size()) + " keys instead of " +
                 std::to_string(kGroup));
    return -1;
  }
  const std::int64_t version = parse_version(values[0]);
  for (const auto& v : values) {
    if (parse_version(v) != version) {
      failures.add(note + ": mixed versions " + values[0] + " and " + v);
      return -1;
    }
  }
  return version;
}

TEST_CASE("one writer, concurrent readers see consistent views", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    auto write_version = [&](std::uint64_t v, bool with_range) {
      auto batch = e.new_write_batch();
      // A range delete of the whole group first: a reader must not see the
      // gap between it and the puts.
      if (with_range) batch->delete_range(CF::kDefault, "g/", "g0");
      for (int i = 0; i < kGroup; ++i) batch->put(CF::kDefault, group_key(i), version_value(v));
      batch->put(CF::kWrite, "version", version_value(v));
      return e.write(*batch, {});
    };
    REQUIRE_OK(write_version(0, false));
    // One snapshot shared by every reader thread: it must keep answering 0.
    const std::shared_ptr<const Snapshot> shared = e.snapshot();

    constexpr std::uint64_t kVersions = 400;
    constexpr int kReaders = 3;
    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> reads{0};
    Failures failures;
    Status writer_status;

    std::thread writer([&] {
      for (std::uint64_t v = 1; v <= kVersions && writer_status.is_ok(); ++v) {
        writer_status = write_version(v, v % 5 == 0);
        if (writer_status.is_ok() && v % 100 == 0) writer_status = e.flush();
      }
      done.store(true);
    });
    std::vector<std::thread> readers;
    for (int t = 0; t < kReaders; ++t) {
      readers.emplace_back([&, t] {
        std::int64_t last = 0;
        // Keep reading until the writer is done and this reader did enough.
        for (int n = 0; !done.load() || n < 60; ++n) {
          const int mode = (n + t) % 3;
          std::int64_t version = -1;
          if (n % 2 == 0) {
            auto snap = e.snapshot();
            version = read_group(*snap, mode, failures);
            // The version key of another CF belongs to the same view, and a
            // second read of the snapshot gives the same answer.
            auto ver = snap->get(CF::kWrite, "version");
            if (!ver.is_ok() || !ver->has_value() || parse_version(**ver) != version) {
              failures.add("snapshot: version key disagrees with the group at " +
                           std::to_string(version));
            }
            if (read_group(*snap, (mode + 1) % 3, failures) != version) {
              failures.add("snapshot: two reads differ");
            }
          } else if (n % 5 == 1) {
            if (read_group(*shared, mode, failures) != 0) {
              failures.add("the shared snapshot moved");
              break;
            }
            version = read_group(e, mode, failures);
          } else {
            version = read_group(e, mode, failures);
          }
          if (version < 0) break;
          if (version < last) {
            failures.add("version went back from " + std::to_string(last) + " to " +
                         std::to_string(version));
            break;
          }
          last = version;
          reads.fetch_add(1);
        }
      });
    }
    writer.join();
    for (auto& r : readers) r.join();
    REQUIRE_OK(writer_status);
    for (const auto& f : failures.take()) FAIL_CHECK(f);
    CHECK(reads.load() >= kReaders * 60);
    CHECK(read_group(e, 1, failures) == static_cast<std::int64_t>(kVersions));
  }
}

TEST_CASE("concurrent writers", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    constexpr int kWriters = 3;
    constexpr int kBatches = 150;
    std::vector<Status> results(kWriters);
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        const std::string prefix = "w" + std::to_string(w) + "/";
        for (int b = 0; b < kBatches && results[w].is_ok(); ++b) {
          auto batch = e.new_write_batch();
          for (int i = 0; i < 4; ++i) {
            batch->put(kAllCFs[static_cast<std::size_t>(i)], prefix + std::to_string(1000 + b),
                       std::to_string(b));
          }
          // Each writer also range-deletes its own scratch keys.
          batch->put(CF::kDefault, prefix + "scratch/" + std::to_string(b), "s");
          if (b % 10 == 9)
            batch->delete_range(CF::kDefault, prefix + "scratch/", prefix + "scratch0");
          results[w] = e.write(*batch, WriteOptions{.sync = b % 50 == 0});
        }
      });
    }
    for (auto& t : writers) t.join();
    for (const auto& st : results) REQUIRE_OK(st);
    for (CF cf : kAllCFs) {
      const Model m = dump(e, cf);
      std::size_t expected = kWriters * kBatches;
      CHECK(m.size() == expected);
    }
  }
}

}  // namespace
}  // namespace kvcore::test
