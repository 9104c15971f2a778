// Clusters on simulated disks: crash() is a power loss for the raft log too
// (what was not synced is gone), disks can be slow, and stores can stall.
// The hidden [experiment] cases push harder (overwrites, compaction, splits,
// merges, crashes of every store) for long runs with KVCORE_SEEDS.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

// The running store whose peer of the region holding `k` leads in the
// highest term; 0 when none claims it.
std::uint64_t leader_of_key(LocalCluster& c, const std::string& k, kvcore::RegionStatus* out) {
  std::uint64_t best = 0, best_term = 0;
  for (auto id : c.store_ids()) {
    if (!c.running(id)) continue;
    for (const auto& r : c.store(id).regions()) {
      if (!r.is_leader || k < r.start_key || (!r.end_key.empty() && k >= r.end_key)) continue;
      if (best == 0 || r.term > best_term) {
        best = id;
        best_term = r.term;
        if (out != nullptr) *out = r;
      }
    }
  }
  return best;
}

// One write of the experiments: the value, and its outcome once known.
struct Write {
  int value;
  std::shared_ptr<std::optional<Status>> outcome;
};

// Writes key(k) = val(value) on `store` without waiting, recorded in `log`.
void write_value(LocalCluster& c, std::uint64_t store, int k, int value,
                 std::map<int, std::vector<Write>>& log) {
  auto outcome = std::make_shared<std::optional<Status>>();
  kvcore::RawBatch b;
  b.put(key(k), val(value));
  c.store(store).async_write(std::move(b), {}, [outcome](Status s) { *outcome = std::move(s); });
  log[k].push_back({value, outcome});
}

// Each key must hold the value of its last acknowledged write (in the order
// issued) or of one issued after it, acknowledged or not: anything older, or
// nothing, is an acknowledged write lost. Issue order stands in for log
// order, which holds while one leader at a time takes a key's writes; a
// failure is to be confirmed in the seed's history. Returns the number of
// acknowledged writes.
std::size_t check_last_acked(LocalCluster& c, const std::map<int, std::vector<Write>>& log) {
  std::size_t acked = 0;
  for (const auto& [k, ws] : log) {
    INFO("key " << key(k));
    auto got = c.get_any(key(k), 30s);
    REQUIRE(got.is_ok());
    std::optional<std::size_t> last_acked;
    for (std::size_t i = 0; i < ws.size(); ++i) {
      if (ws[i].outcome->has_value() && (*ws[i].outcome)->is_ok()) {
        last_acked = i;
        ++acked;
      }
    }
    if (!last_acked) continue;
    bool fine = false;
    for (std::size_t i = *last_acked; i < ws.size(); ++i) {
      fine = fine || (got->has_value() && **got == val(ws[i].value));
    }
    INFO("found " << got->value_or("<nothing>") << ", last acknowledged "
                  << val(ws[*last_acked].value));
    CHECK(fine);
  }
  return acked;
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
// followers catch up by snapshot), slow disks and stalled stores, and
// crashes of up to every store at once.
// Run: store_simdisk_test "[experiment]" with KVCORE_SEEDS=<n>.
TEST_CASE("simulated disk experiment: overwrites, compaction, crashes of any number of stores",
          "[.][experiment]") {
  std::size_t total_acked = 0, total_crashes = 0, total_unknown = 0;
  for (auto seed : test_seeds(1000, 20)) {
    INFO(replay_hint(seed));
    kvcore::test::Rng rng(seed);
    // One, three or five stores.
    LocalCluster c({.stores = 1 + 2 * (seed % 3),
                    .seed = seed,
                    .tune =
                        [](kvcore::StoreOptions& o) {
                          o.raft_log_gc_ticks = 2;
                          o.raft_log_gc_count_limit = 8;
                        },
                    .simulated_disk = true});
    REQUIRE(c.wait_leader() != 0);
    constexpr int kKeys = 5;
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
          write_value(c, target, static_cast<int>(rng.uniform(kKeys)), next_value++, writes);
          if (rng.chance(0.3)) c.sim().run_for(std::chrono::milliseconds(rng.uniform(20)));
        }
      }
      // Slow disks and stalls now and then.
      if (rng.chance(0.3)) {
        c.set_disk_latency(1 + rng.uniform(c.size()),
                           std::chrono::milliseconds(rng.chance(0.5) ? 0 : rng.uniform(60)));
      }
      if (rng.chance(0.2)) {
        const auto id = 1 + rng.uniform(c.size());
        if (c.running(id)) c.pause(id, std::chrono::milliseconds(rng.uniform(3000)));
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
    total_acked += check_last_acked(c, writes);
    for (const auto& [k, ws] : writes) {
      for (const auto& w : ws) total_unknown += w.outcome->has_value() ? 0 : 1;
    }
  }
  WARN("acknowledged " << total_acked << ", crashes " << total_crashes << ", never answered "
                       << total_unknown);
}

// The experiment above with splits and merges going on between the crashes.
TEST_CASE("simulated disk experiment: splits and merges amid crashes", "[.][experiment]") {
  std::size_t total_acked = 0, splits = 0, merges = 0;
  for (auto seed : test_seeds(2000, 20)) {
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
    constexpr int kKeys = 20;
    std::map<int, std::vector<Write>> writes;
    auto ok_count = std::make_shared<std::pair<std::size_t, std::size_t>>();
    int next_value = 0;
    for (int round = 0; round < 30; ++round) {
      const int n = 1 + static_cast<int>(rng.uniform(20));
      for (int j = 0; j < n; ++j) {
        const int k = static_cast<int>(rng.uniform(kKeys));
        if (const auto target = leader_of_key(c, key(k), nullptr); target != 0) {
          write_value(c, target, k, next_value++, writes);
        }
        if (rng.chance(0.3)) c.sim().run_for(std::chrono::milliseconds(rng.uniform(20)));
      }
      if (rng.chance(0.4)) {
        const std::string at = key(1 + static_cast<int>(rng.uniform(kKeys - 1)));
        kvcore::RegionStatus r;
        if (auto l = leader_of_key(c, at, &r); l != 0 && at > r.start_key) {
          c.store(l).async_split_region(r.region_id, {at}, {}, [ok_count](Status s) {
            if (s.is_ok()) ++ok_count->first;
          });
        }
      }
      if (rng.chance(0.3)) {
        // Splits only happen at key(i): the region left of one starting
        // at key(i) holds key(i - 1).
        const int i = 1 + static_cast<int>(rng.uniform(kKeys - 1));
        kvcore::RegionStatus left, right;
        if (auto l = leader_of_key(c, key(i), &right);
            l != 0 && right.start_key == key(i) && leader_of_key(c, key(i - 1), &left) != 0) {
          c.store(l).async_merge_region(right.region_id, left.region_id, {}, [ok_count](Status s) {
            if (s.is_ok()) ++ok_count->second;
          });
        }
      }
      c.sim().run_for(std::chrono::milliseconds(rng.uniform(400)));
      const auto victims = rng.chance(0.15) ? c.size() : 1 + rng.uniform(2);
      for (std::uint64_t v = 0; v < victims; ++v) c.crash(1 + rng.uniform(c.size()));
      c.sim().run_for(std::chrono::milliseconds(rng.uniform(1500)));
      for (auto id : c.store_ids()) {
        if (!c.running(id)) REQUIRE(c.restart(id).is_ok());
      }
    }
    c.sim().run_for(5s);
    splits += ok_count->first;
    merges += ok_count->second;
    total_acked += check_last_acked(c, writes);
  }
  WARN("acknowledged " << total_acked << ", splits " << splits << ", merges " << merges);
}
