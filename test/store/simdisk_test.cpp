// Clusters on simulated disks: crash() is a power loss for the raft log too
// (what was not synced is gone), disks can be slow, and stores can stall.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kvcore/store.hpp"
#include "local_cluster.hpp"
#include "seed.hpp"

using namespace std::chrono_literals;
using kvcore::Status;
using kvcore::test::LocalCluster;
using kvcore::test::LocalClusterOptions;
using kvcore::test::replay_hint;
using kvcore::test::test_seed;
using kvcore::test::test_seeds;

namespace {

std::string key(int i) { return fmt::format("key{:05d}", i); }
std::string val(int i) { return fmt::format("value-{}", i); }

// Writes key(i) = val(i) for i in [from, to) on `store` without waiting;
// each outcome lands in `acked` when it completes.
void write_async(LocalCluster& c, std::uint64_t store, int from, int to,
                 const std::shared_ptr<std::map<int, Status>>& acked) {
  for (int i = from; i < to; ++i) {
    kvcore::RawBatch b;
    b.put(key(i), val(i));
    c.store(store).async_write(std::move(b), {},
                               [acked, i](Status s) { acked->emplace(i, std::move(s)); });
  }
}

// Every acknowledged write of `acked` reads back; returns how many there were.
int check_acked(LocalCluster& c, const std::map<int, Status>& acked) {
  int ok = 0;
  for (const auto& [i, s] : acked) {
    if (!s.is_ok()) continue;
    ++ok;
    auto got = c.get_any(key(i));
    INFO("key " << key(i));
    REQUIRE(got.is_ok());
    CHECK(got->value_or("<lost>") == val(i));
  }
  return ok;
}

std::uint64_t applied(kvcore::Store& s) {
  auto r = s.regions();
  REQUIRE(r.size() == 1);
  return r.front().applied_index;
}

}  // namespace

TEST_CASE("simulated disk: off by default, the raft log unsynced as before") {
  LocalCluster plain({.seed = test_seed(1)});
  LocalCluster simulated({.seed = test_seed(1), .simulated_disk = true});
  for (auto id : plain.store_ids()) {
    CHECK(plain.disk(id) == nullptr);
    CHECK_FALSE(plain.options(id).sync_log);
    CHECK_THROWS_AS(plain.set_disk_latency(id, 1ms), std::logic_error);
    REQUIRE(simulated.disk(id) != nullptr);
    CHECK(simulated.options(id).sync_log);
    CHECK(&simulated.view(id).disk() == simulated.disk(id));
  }
  REQUIRE(simulated.wait_leader() != 0);
  REQUIRE(simulated.put_any("k", "v").is_ok());
  for (auto id : simulated.store_ids()) CHECK(simulated.disk(id)->syncs() > 0);
}

TEST_CASE("simulated disk: a power loss of every store loses no acknowledged write") {
  for (auto seed : test_seeds(200, 4)) {
    INFO(replay_hint(seed));
    LocalCluster c({.seed = seed, .simulated_disk = true});
    const auto leader = c.wait_leader();
    REQUIRE(leader != 0);
    auto acked = std::make_shared<std::map<int, Status>>();
    for (int i = 0; i < 20; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    for (int i = 0; i < 20; ++i) acked->emplace(i, Status::ok());
    // More in flight when the power goes: some acknowledged, some not.
    write_async(c, leader, 20, 60, acked);
    c.sim().run_for(std::chrono::milliseconds(10 + seed % 30));
    for (auto id : c.store_ids()) c.crash(id);
    for (auto id : c.store_ids()) REQUIRE(c.restart(id).is_ok());
    REQUIRE(c.wait_leader() != 0);
    CHECK(check_acked(c, *acked) >= 20);
    REQUIRE(c.put_any("after", "power loss").is_ok());
  }
}

TEST_CASE("simulated disk: with sync_log off, a power loss does lose acknowledged writes") {
  // The control for the test above: the disk really drops unsynced writes,
  // so only the store's syncs make it pass.
  const auto seed = test_seed(210);
  INFO(replay_hint(seed));
  LocalCluster c({.seed = seed,
                  .tune = [](kvcore::StoreOptions& o) { o.sync_log = false; },
                  .simulated_disk = true});
  REQUIRE(c.wait_leader() != 0);
  for (int i = 0; i < 20; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
  for (auto id : c.store_ids()) c.crash(id);
  for (auto id : c.store_ids()) REQUIRE(c.restart(id).is_ok());
  REQUIRE(c.wait_leader() != 0);
  int lost = 0;
  for (int i = 0; i < 20; ++i) {
    auto got = c.get_any(key(i));
    REQUIRE(got.is_ok());
    if (!got->has_value()) ++lost;
  }
  CHECK(lost > 0);
}

TEST_CASE("simulated disk: crashes of random stores amid writes lose no acknowledged write") {
  for (auto seed : test_seeds(300, 8)) {
    INFO(replay_hint(seed));
    kvcore::test::Rng rng(seed);
    LocalCluster c({.seed = seed, .simulated_disk = true});
    REQUIRE(c.wait_leader() != 0);
    auto acked = std::make_shared<std::map<int, Status>>();
    int next = 0;
    for (int round = 0; round < 12; ++round) {
      INFO("round " << round);
      std::uint64_t target = c.leader();
      if (target == 0 || rng.chance(0.2)) {
        for (auto id : c.store_ids()) {
          if (c.running(id) && (target == 0 || rng.chance(0.5))) target = id;
        }
      }
      if (target != 0) {
        const int n = 1 + static_cast<int>(rng.uniform(15));
        write_async(c, target, next, next + n, acked);
        next += n;
      }
      c.sim().run_for(std::chrono::milliseconds(rng.uniform(300)));
      // Crash one store (now and then two at once), then bring the down
      // ones back after a while.
      const auto victim = 1 + rng.uniform(c.size());
      c.crash(victim);
      if (rng.chance(0.2)) c.crash(1 + rng.uniform(c.size()));
      c.sim().run_for(std::chrono::milliseconds(rng.uniform(1500)));
      for (auto id : c.store_ids()) {
        if (!c.running(id)) REQUIRE(c.restart(id).is_ok());
      }
    }
    REQUIRE(c.wait_leader() != 0);
    c.sim().run_for(2s);
    CHECK(check_acked(c, *acked) > 0);
  }
}

TEST_CASE("simulated disk: a slow disk slows its leader's writes, not the cluster's progress") {
  const auto seed = test_seed(400);
  INFO(replay_hint(seed));
  LocalCluster c({.seed = seed, .simulated_disk = true});
  const auto leader = c.wait_leader();
  REQUIRE(leader != 0);
  REQUIRE(c.put(leader, "warm", "up").is_ok());
  auto timed_put = [&](int i) {
    const auto t0 = c.sim().now();
    REQUIRE(c.put(leader, key(i), val(i)).is_ok());
    return c.sim().now() - t0;
  };
  const auto fast = timed_put(0);
  CHECK(fast < 50ms);
  c.set_disk_latency(leader, 80ms);
  CHECK(c.disk(leader)->sync_latency() == 80ms);
  for (int i = 1; i <= 5; ++i) CHECK(timed_put(i) >= 80ms);
  CHECK(c.leader() == leader);  // slower than its followers, still leading
  // The latency is the disk's: it stays across a restart.
  c.stop(leader);
  REQUIRE(c.restart(leader).is_ok());
  CHECK(c.disk(leader)->sync_latency() == 80ms);
  c.set_disk_latency(leader, 0ms);
  REQUIRE(c.wait_leader() != 0);
  for (int i = 0; i <= 5; ++i) CHECK(c.get_any(key(i))->value_or("") == val(i));
}

TEST_CASE("pause: a leader stalled past the election timeout is replaced, then catches up") {
  const auto seed = test_seed(500);
  INFO(replay_hint(seed));
  LocalCluster c({.seed = seed, .simulated_disk = true});
  const auto old = c.wait_leader();
  REQUIRE(old != 0);
  REQUIRE(c.put_any("before", "pause").is_ok());
  c.pause(old, 5s);
  CHECK(c.view(old).paused_for() == 5s);
  const auto applied_before = applied(c.store(old));
  // The others elect a leader among themselves and serve.
  std::uint64_t fresh = 0;
  REQUIRE(c.sim().run_until(
      [&] {
        fresh = c.leader();
        return fresh != 0 && fresh != old;
      },
      4s));
  REQUIRE(c.put(fresh, "during", "pause").is_ok());
  CHECK(applied(c.store(old)) == applied_before);  // it did nothing meanwhile
  c.sim().run_for(5s);
  CHECK(c.view(old).paused_for() == 0ms);
  CHECK(c.leader() != old);
  CHECK(applied(c.store(old)) == applied(c.store(c.leader())));
}

// Heavier than the case above, hidden ([.]): overwrites of a few keys
// (an older value coming back shows), log compaction every few ticks (so
// followers catch up by snapshot), and crashes of up to every store at once.
// Run: store_simdisk_test "[experiment]" with KVCORE_SEEDS=<n>.
TEST_CASE("simulated disk experiment: overwrites, compaction, crashes of any number of stores",
          "[.][experiment]") {
  std::size_t total_acked = 0, total_crashes = 0, total_unknown = 0;
  for (auto seed : test_seeds(1000, 20)) {
    INFO(replay_hint(seed));
    kvcore::test::Rng rng(seed);
    LocalCluster c({.seed = seed,
                    .tune =
                        [](kvcore::StoreOptions& o) {
                          o.raft_log_gc_ticks = 2;
                          o.raft_log_gc_count_limit = 8;
                        },
                    .simulated_disk = true});
    REQUIRE(c.wait_leader() != 0);
    constexpr int kKeys = 5;
    // Per key: writes in the order issued: (value, outcome or none yet).
    struct Write {
      int value;
      std::shared_ptr<std::optional<Status>> outcome;
      std::uint64_t issued_round;
    };
    std::map<int, std::vector<Write>> writes;
    int next_value = 0;
    for (int round = 0; round < 30; ++round) {
      std::uint64_t target = c.leader();
      if (target == 0 || rng.chance(0.2)) {
        for (auto id : c.store_ids()) {
          if (c.running(id) && (target == 0 || rng.chance(0.5))) target = id;
        }
      }
      if (target != 0) {
        const int n = 1 + static_cast<int>(rng.uniform(20));
        for (int j = 0; j < n; ++j) {
          const int k = static_cast<int>(rng.uniform(kKeys));
          const int v = next_value++;
          auto outcome = std::make_shared<std::optional<Status>>();
          kvcore::RawBatch b;
          b.put(key(k), val(v));
          c.store(target).async_write(std::move(b), {},
                                      [outcome](Status s) { *outcome = std::move(s); });
          writes[k].push_back({v, outcome, static_cast<std::uint64_t>(round)});
          if (rng.chance(0.3)) c.sim().run_for(std::chrono::milliseconds(rng.uniform(20)));
        }
      }
      c.sim().run_for(std::chrono::milliseconds(rng.uniform(400)));
      const auto victims = rng.chance(0.15) ? c.size() : 1 + rng.uniform(2);
      for (std::uint64_t v = 0; v < victims; ++v) {
        const auto id = 1 + rng.uniform(c.size());
        if (c.running(id)) ++total_crashes;
        c.crash(id);
      }
      c.sim().run_for(std::chrono::milliseconds(rng.uniform(1500)));
      for (auto id : c.store_ids()) {
        if (!c.running(id)) REQUIRE(c.restart(id).is_ok());
      }
    }
    REQUIRE(c.wait_leader() != 0);
    c.sim().run_for(3s);
    // Each key must hold the last acknowledged value or one written after
    // it was issued (acknowledged or not); a value older than the last
    // acknowledged one, or nothing, means an acknowledged write was lost.
    for (const auto& [k, ws] : writes) {
      INFO("key " << key(k));
      auto got = c.get_any(key(k));
      REQUIRE(got.is_ok());
      std::optional<std::size_t> last_acked;
      for (std::size_t i = 0; i < ws.size(); ++i) {
        if (!ws[i].outcome->has_value()) ++total_unknown;
        if (ws[i].outcome->has_value() && (*ws[i].outcome)->is_ok()) {
          last_acked = i;
          ++total_acked;
        }
      }
      if (!last_acked) continue;
      bool fine = false;
      for (std::size_t i = *last_acked; i < ws.size(); ++i) {
        if (got->has_value() && **got == val(ws[i].value)) fine = true;
      }
      INFO("found " << got->value_or("<nothing>") << ", last acknowledged "
                    << val(ws[*last_acked].value));
      CHECK(fine);
    }
  }
  WARN("acknowledged " << total_acked << ", crashes " << total_crashes << ", never answered "
                       << total_unknown);
}
