// Batch split on LocalCluster: one command splits a region into several,
// every store opens the new regions, they elect leaders, keys route to them,
// and everything survives restarts.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

#include "kvcore/store.hpp"
#include "local_cluster.hpp"
#include "seed.hpp"

using namespace std::chrono_literals;
using kvcore::test::LocalCluster;
using kvcore::test::LocalClusterOptions;
using kvcore::test::replay_hint;

namespace {

std::string key(int i) { return fmt::format("key{:05d}", i); }
std::string val(int i) { return fmt::format("value-{}", i); }

// region start key -> status, as store `id` sees its regions.
std::map<std::string, kvcore::RegionStatus> ranges(LocalCluster& c, std::uint64_t id) {
  std::map<std::string, kvcore::RegionStatus> out;
  for (auto& r : c.store(id).regions()) out[r.start_key] = r;
  return out;
}

}  // namespace

TEST_CASE("a batch split makes three regions on every store, with their own leaders") {
  for (auto seed : kvcore::test::test_seeds(500, 3)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    const auto leader = c.wait_leader();
    REQUIRE(leader != 0);
    for (int i = 0; i < 150; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());

    // Writes keep coming while the split is proposed.
    std::map<int, kvcore::Status> during;
    for (int i = 150; i < 200; ++i) {
      kvcore::RawBatch b;
      b.put(key(i), val(i));
      c.store(leader).async_write(
          std::move(b), {}, [&during, i](kvcore::Status s) { during.emplace(i, std::move(s)); });
    }
    bool split_done = false;
    kvcore::Status split_status;
    c.store(leader).async_split_region(1, {key(50), key(100)}, {}, [&](kvcore::Status s) {
      split_status = std::move(s);
      split_done = true;
    });
    REQUIRE(c.sim().run_until([&] { return split_done && during.size() == 50; }, 10s));
    REQUIRE(split_status.is_ok());
    c.sim().run_for(3s);

    for (auto id : c.store_ids()) {
      INFO("store " << id);
      auto r = ranges(c, id);
      REQUIRE(r.size() == 3);
      CHECK(r[""].end_key == key(50));
      CHECK(r[key(50)].end_key == key(100));
      CHECK(r[key(100)].end_key.empty());
      for (auto& [start, st] : r) CHECK(st.version == 3);
    }
    // Each new region has a leader of its own.
    for (auto& [start, st] : ranges(c, leader)) {
      INFO("region " << st.region_id);
      CHECK(c.leader(st.region_id) != 0);
    }
    CHECK(c.store(leader).metric("kvcore_region_splits_total") == 1);

    // Old data reads back through the new routes, and new writes land in
    // every region. Writes that raced the split either applied or failed
    // with a routing error; a failed one is retried.
    for (auto& [i, s] : during) {
      if (!s.is_ok()) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    }
    for (int i = 0; i < 200; i += 7) CHECK(c.get_any(key(i))->value_or("<none>") == val(i));
    for (int i = 200; i < 230; ++i) REQUIRE(c.put_any(key(i - 200), val(i)).is_ok());
    auto scan = c.scan_any(key(60), key(70));
    REQUIRE(scan.is_ok());
    CHECK(scan->size() == 10);

    // Everything survives a restart of every store.
    for (auto id : c.store_ids()) c.crash(id);
    for (auto id : c.store_ids()) REQUIRE(c.restart(id).is_ok());
    c.sim().run_for(5s);
    for (auto id : c.store_ids()) CHECK(ranges(c, id).size() == 3);
    for (int i = 30; i < 200; i += 11) {
      const std::string want = i < 30 ? val(i + 200) : val(i);
      CHECK(c.get_any(key(i))->value_or("<none>") == want);
    }
    CHECK(c.get_any(key(5))->value_or("<none>") == val(205));
  }
}

TEST_CASE("split keys outside the region or out of order are refused") {
  const auto seed = kvcore::test::test_seed(510);
  INFO(replay_hint(seed));
  LocalCluster c(LocalClusterOptions{.seed = seed});
  const auto leader = c.wait_leader();
  REQUIRE(leader != 0);
  const auto split = [&](std::vector<std::string> keys) {
    bool done = false;
    kvcore::Status out;
    c.store(leader).async_split_region(1, std::move(keys), {}, [&](kvcore::Status s) {
      out = std::move(s);
      done = true;
    });
    REQUIRE(c.sim().run_until([&] { return done; }, 5s));
    return out;
  };
  CHECK(!split({"b", "a"}).is_ok());
  CHECK(!split({""}).is_ok());
  CHECK(!split({}).is_ok());
  CHECK(c.store(leader).regions().size() == 1);
  REQUIRE(split({"m"}).is_ok());
  c.sim().run_for(2s);
  // The first region now ends at "m": a split key beyond it is refused.
  CHECK(!split({"x"}).is_ok());
  const std::uint64_t follower = leader == 1 ? 2 : 1;
  bool done = false;
  kvcore::Status s;
  c.store(follower).async_split_region(1, {"c"}, {}, [&](kvcore::Status st) {
    s = std::move(st);
    done = true;
  });
  REQUIRE(c.sim().run_until([&] { return done; }, 5s));
  if (c.leader(1) != follower) CHECK(s.sub_code() == kvcore::SubCode::kNotLeader);
}

TEST_CASE("a store that missed the split gets the new region from its leader by snapshot") {
  for (auto seed : kvcore::test::test_seeds(520, 3)) {
    INFO(replay_hint(seed));
    LocalClusterOptions o{.seed = seed};
    o.tune = [](kvcore::StoreOptions& s) {
      s.raft_log_gc_count_limit = 20;
      s.raft_log_gc_ticks = 2;
    };
    LocalCluster c(o);
    const auto leader = c.wait_leader();
    REQUIRE(leader != 0);
    std::uint64_t lagging = 0;
    for (auto id : c.store_ids()) {
      if (id != leader) lagging = id;
    }
    for (int i = 0; i < 20; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    c.net().isolate(lagging);
    bool done = false;
    kvcore::Status st;
    c.store(leader).async_split_region(1, {key(10)}, {}, [&](kvcore::Status s) {
      st = std::move(s);
      done = true;
    });
    REQUIRE(c.sim().run_until([&] { return done; }, 5s));
    REQUIRE(st.is_ok());
    // Enough writes on both sides of the split that both regions compact
    // past the split entry.
    for (int i = 20; i < 120; ++i) {
      REQUIRE(c.put_any(key(i % 10), val(i)).is_ok());
      REQUIRE(c.put_any(key(10 + i), val(i)).is_ok());
    }
    c.sim().run_for(2s);
    CHECK(ranges(c, lagging).size() == 1);
    c.net().heal();
    c.sim().run_for(6s);
    auto r = ranges(c, lagging);
    REQUIRE(r.size() == 2);
    CHECK(r[""].end_key == key(10));
    CHECK(r[key(10)].end_key.empty());
    CHECK(c.store(lagging).metric("kvcore_peers_created_total") >= 1);
    CHECK(c.store(lagging).metric("kvcore_snapshots_applied_total") >= 2);
    // The caught-up store serves both regions once it leads them.
    for (auto& [start, status] : ranges(c, lagging)) {
      const auto l = c.leader(status.region_id);
      REQUIRE(l != 0);
      if (l != lagging) REQUIRE(c.store(l).transfer_leader(status.region_id, lagging).is_ok());
    }
    c.sim().run_for(3s);
    CHECK(c.get(lagging, key(5))->value_or("") == val(115));
    CHECK(c.get(lagging, key(129))->value_or("") == val(119));
    // And after a restart of it.
    c.crash(lagging);
    REQUIRE(c.restart(lagging).is_ok());
    c.sim().run_for(3s);
    CHECK(ranges(c, lagging).size() == 2);
  }
}
