// The raft log engine on a runtime::SimDisk: a simulated power loss keeps
// exactly what was synced (synced batches, and whatever a rotation or a purge
// synced before them) and drops the rest, never part of a batch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

#include "helpers.hpp"
#include "runtime/sim_disk.hpp"
#include "seed.hpp"
#include "temp_dir.hpp"

using namespace kvcore;
using namespace kvcore::raftlog;
using namespace kvcore::raftlog::testing;

namespace {

constexpr std::uint64_t kRegions = 3;

// Batch n (1-based) appends entry n to every region and sets each region's
// "last" record to n, so a half-kept batch shows as regions that differ.
LogBatch numbered_batch(raft::Index n, std::size_t pad) {
  LogBatch b;
  for (std::uint64_t region = 1; region <= kRegions; ++region) {
    REQUIRE(b.append(region, make_entries(region, n, n + 1, 1, pad)).is_ok());
    b.put_state(region, "last", std::to_string(n));
    if (n % 16 == 0) b.compact_to(region, n - 8);
  }
  return b;
}

// The batch number every region agrees on (0: none); fails when they differ.
raft::Index recovered_batches(const RaftLogEngine& eng) {
  const raft::Index last = eng.last_index(1).value_or(0);
  for (std::uint64_t region = 1; region <= kRegions; ++region) {
    INFO("region " << region);
    CHECK(eng.last_index(region).value_or(0) == last);
    auto state = eng.get_state(region, "last");
    REQUIRE(state.is_ok());
    CHECK(state->value_or("0") == std::to_string(last));
    if (last == 0) continue;
    const auto ents = all_entries(eng, region);
    REQUIRE(!ents.empty());
    CHECK(ents.back().index == last);
    CHECK(ents.back().data.rfind("r" + std::to_string(region) + "i" + std::to_string(last), 0) ==
          0);
  }
  return last;
}

}  // namespace

TEST_CASE("raftlog simdisk: an unsynced batch is gone after a crash, a synced one stays",
          "[raftlog][simdisk]") {
  test::TempDir tmp("raftlog-simdisk");
  const std::string dir = tmp.sub("log");
  runtime::SimDisk disk;
  RaftLogOptions opts;
  opts.disk = &disk;
  {
    auto eng = open_engine(dir, opts);
    LogBatch one = numbered_batch(1, 10);
    REQUIRE(eng->write(one, true).is_ok());
    LogBatch two = numbered_batch(2, 10);
    REQUIRE(eng->write(two, false).is_ok());
    CHECK(recovered_batches(*eng) == 2);
    CHECK(disk.synced_length(segment_path(dir, 1)).value_or(0) > 0);
  }
  {
    // Closing is a process exit: the unsynced batch is still in the file.
    auto eng = open_engine(dir, opts);
    CHECK(recovered_batches(*eng) == 2);
  }
  REQUIRE(disk.crash().is_ok());
  {
    auto eng = open_engine(dir, opts);
    CHECK(recovered_batches(*eng) == 1);
    LogBatch again = numbered_batch(2, 10);
    REQUIRE(eng->write(again, true).is_ok());
  }
  REQUIRE(disk.crash().is_ok());
  auto eng = open_engine(dir, opts);
  CHECK(recovered_batches(*eng) == 2);
}

TEST_CASE("raftlog simdisk: a fresh engine's first segment survives a crash before any write",
          "[raftlog][simdisk]") {
  test::TempDir tmp("raftlog-simdisk");
  const std::string dir = tmp.sub("log");
  runtime::SimDisk disk;
  RaftLogOptions opts;
  opts.disk = &disk;
  { auto eng = open_engine(dir, opts); }
  CHECK(disk.knows(segment_path(dir, 1)));
  REQUIRE(disk.crash().is_ok());
  CHECK(std::filesystem::exists(segment_path(dir, 1)));
  auto eng = open_engine(dir, opts);
  CHECK(recovered_batches(*eng) == 0);
}

TEST_CASE("raftlog simdisk: crashes amid rotations and purges keep a prefix, every synced batch",
          "[raftlog][simdisk]") {
  for (std::uint64_t seed : test::test_seeds(31, 6)) {
    INFO(test::replay_hint(seed));
    test::Rng rng(seed);
    test::TempDir tmp("raftlog-simdisk");
    const std::string dir = tmp.sub("log");
    runtime::SimDisk disk;
    RaftLogOptions opts;
    opts.disk = &disk;
    opts.segment_bytes = 1024;
    raft::Index written = 0;  // batches in the engine before the crash
    raft::Index synced = 0;   // the last batch written with sync
    std::size_t losses = 0;
    std::size_t most_segments = 0;
    for (int crash = 0; crash < 20; ++crash) {
      INFO("crash " << crash);
      {
        auto eng = open_engine(dir, opts);
        const raft::Index have = recovered_batches(*eng);
        CHECK(have >= synced);
        CHECK(have <= written);
        if (have < written) ++losses;
        written = have;
        synced = have;  // what a crash found is on disk for good: it was synced
        const int batches = 1 + static_cast<int>(rng.uniform(12));
        for (int i = 0; i < batches; ++i) {
          LogBatch b = numbered_batch(++written, rng.uniform(120));
          const bool sync = rng.chance(0.3);
          REQUIRE(eng->write(b, sync).is_ok());
          if (sync) synced = written;
          most_segments = std::max(most_segments, eng->segments());
          if (rng.chance(0.1)) REQUIRE(eng->purge().is_ok());
        }
        CHECK(recovered_batches(*eng) == written);
      }
      REQUIRE(disk.crash().is_ok());
    }
    // Unsynced tails were lost now and then, so the crashes did something;
    // segments rotated, and purges removed the first.
    CHECK(losses > 0);
    CHECK(disk.syncs() > 0);
    CHECK(most_segments > 2);
    CHECK_FALSE(disk.knows(segment_path(dir, 1)));
    CHECK_FALSE(std::filesystem::exists(segment_path(dir, 1)));
  }
}
