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
      c.store(leader).async_write(std::move(b), {}, [&during, i](kvcore::Status s) {
        during.emplace(i, std::move(s));
      });
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
