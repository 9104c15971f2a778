// Group commit: concurrent synced writers share fsyncs, and readers run
// alongside writers and purges.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "helpers.hpp"
#include "temp_dir.hpp"

using namespace kvcore;
using namespace kvcore::raftlog;
using namespace kvcore::raftlog::testing;

TEST_CASE("raftlog: concurrent synced writes are group-committed", "[raftlog][concurrency]") {
  test::TempDir tmp("raftlog-group");
  const std::string dir = tmp.sub("log");
  RaftLogOptions opts;
  opts.segment_bytes = 64 << 10;
  constexpr int kThreads = 8;
  constexpr int kBatches = 60;
  {
    auto eng = open_engine(dir, opts);
    std::atomic<bool> failed{false};
    std::atomic<int> running{kThreads};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::uint64_t region = 10 + t;
        for (int i = 1; i <= kBatches; ++i) {
          LogBatch b;
          if (!b.append(region, make_entries(region, i, i + 1, 1, 64)).is_ok()) failed = true;
          b.set_hard_state(region, raft::HardState{1, 0, static_cast<raft::Index>(i)});
          if (i % 20 == 0) b.compact_to(region, i - 5);
          if (!eng->write(b, true).is_ok()) failed = true;
          // What this thread wrote is visible as soon as write() returns.
          if (eng->last_index(region) != static_cast<raft::Index>(i)) failed = true;
        }
        --running;
      });
    }
    // A reader and a purger alongside the writers.
    threads.emplace_back([&] {
      while (running.load() > 0) {
        for (int t = 0; t < kThreads; ++t) {
          const std::uint64_t region = 10 + t;
          auto first = eng->first_index(region);
          auto last = eng->last_index(region);
          if (!first || !last) continue;
          auto ents = eng->entries(region, *first, *last + 1, UINT64_MAX);
          // A compaction may land between the calls: only Compacted is allowed.
          if (ents.is_ok()) {
            for (const auto& e : *ents) {
              if (e.data.rfind("r" + std::to_string(region) + "i" + std::to_string(e.index), 0) !=
                  0) {
                failed = true;
              }
            }
          }
        }
        if (!eng->purge().is_ok()) failed = true;
      }
    });
    for (auto& th : threads) th.join();
    CHECK_FALSE(failed.load());
    INFO("fsyncs " << eng->fsyncs() << " groups " << eng->write_groups() << " batches "
                   << eng->batches_written());
    CHECK(eng->batches_written() >= kThreads * kBatches);
    CHECK(eng->write_groups() < eng->batches_written());
    CHECK(eng->fsyncs() < static_cast<std::uint64_t>(kThreads * kBatches));
  }
  auto eng = open_engine(dir, opts);
  for (int t = 0; t < kThreads; ++t) {
    const std::uint64_t region = 10 + t;
    CHECK(eng->last_index(region) == static_cast<raft::Index>(kBatches));
    CHECK(eng->hard_state(region)->commit == static_cast<raft::Index>(kBatches));
    CHECK(all_entries(*eng, region) == make_entries(region, kBatches - 5, kBatches + 1, 1, 64));
  }
}
