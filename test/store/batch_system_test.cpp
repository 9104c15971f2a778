// The round machinery on LocalCluster: hibernation of idle regions (they stop
// ticking and sending, wake on a request, and followers wake when their
// leader's store dies), the per-round bounds (regions per round, messages
// per region, the apply budget) that keep a hot region from starving the
// rest.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <set>
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

// Splits region 1 at key(step), key(2*step), ... into `regions` regions and
// waits until each has a leader. Returns the split keys' owners' region ids.
void split_into(LocalCluster& c, int regions, int step) {
  const auto leader = c.wait_leader();
  REQUIRE(leader != 0);
  std::vector<std::string> keys;
  for (int i = 1; i < regions; ++i) keys.push_back(key(i * step));
  bool done = false;
  kvcore::Status st;
  c.store(leader).async_split_region(1, keys, {}, [&](kvcore::Status s) {
    st = std::move(s);
    done = true;
  });
  REQUIRE(c.sim().run_until([&] { return done; }, 10s));
  REQUIRE(st.is_ok());
  REQUIRE(c.sim().run_until(
      [&] {
        for (auto id : c.store_ids()) {
          if (!c.running(id)) continue;
          auto rs = c.store(id).regions();
          if (rs.size() != static_cast<std::size_t>(regions)) return false;
          for (auto& r : rs) {
            if (c.leader(r.region_id) == 0) return false;
          }
        }
        return true;
      },
      10s));
}

std::uint64_t total(LocalCluster& c, std::string_view metric) {
  std::uint64_t n = 0;
  for (auto id : c.store_ids()) {
    if (c.running(id)) n += c.store(id).metric(metric);
  }
  return n;
}

}  // namespace

TEST_CASE("idle regions hibernate: no raft traffic until a request wakes one") {
  for (auto seed : kvcore::test::test_seeds(700, 3)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    split_into(c, 16, 100);
    for (int i = 0; i < 1600; i += 50) REQUIRE(c.put_any(key(i), val(i)).is_ok());

    // hibernate_idle_ticks (20) of 100 ms, plus a heartbeat: every peer of
    // every region (16 x 3) is asleep well within 5 s.
    c.sim().run_for(5s);
    for (auto id : c.store_ids()) {
      INFO("store " << id);
      CHECK(c.store(id).metric("kvcore_region_hibernations_total") >= 16);
    }
    const auto sent = total(c, "kvcore_raft_messages_sent_total");
    const auto rounds = total(c, "kvcore_raft_rounds_total");
    c.sim().run_for(10s);
    // Asleep: not one raft message in 10 s; the only rounds are the stores'
    // ticks (10 per second each, plus a few frames).
    CHECK(total(c, "kvcore_raft_messages_sent_total") == sent);
    CHECK(total(c, "kvcore_raft_rounds_total") - rounds < 3 * 100 * 2);
    CHECK(total(c, "kvcore_store_heartbeats_total") > 0);

    // A request wakes its region only, and is served.
    const auto wakeups = total(c, "kvcore_region_wakeups_total");
    REQUIRE(c.put_any(key(705), "woken").is_ok());
    auto got = c.get_any(key(705));
    REQUIRE(got.is_ok());
    CHECK(got->value_or("") == "woken");
    CHECK(total(c, "kvcore_region_wakeups_total") > wakeups);
    CHECK(total(c, "kvcore_region_wakeups_total") - wakeups <= 3);
    for (int i = 0; i < 1600; i += 50) {
      auto v = c.get_any(key(i));
      REQUIRE(v.is_ok());
      CHECK(v->value_or("") == val(i));
    }
  }
}

TEST_CASE("sleeping followers wake when their leader's store dies, elect, and lose nothing") {
  for (auto seed : kvcore::test::test_seeds(710, 3)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    split_into(c, 8, 100);
    std::map<std::string, std::string> acked;
    for (int i = 0; i < 800; i += 25) {
      REQUIRE(c.put_any(key(i), val(i)).is_ok());
      acked[key(i)] = val(i);
    }
    c.sim().run_for(5s);
    REQUIRE(c.store(1).metric("kvcore_region_hibernations_total") >= 8);

    // The store leading the most regions dies while they sleep.
    std::map<std::uint64_t, int> leads;
    for (auto& r : c.store(1).regions()) ++leads[c.leader(r.region_id)];
    std::uint64_t victim = 1;
    for (auto& [store, n] : leads) {
      if (n > leads[victim]) victim = store;
    }
    c.crash(victim);

    // Every region gets a live leader again and takes writes.
    for (int i = 1; i < 800; i += 25) {
      REQUIRE(c.put_any(key(i), val(i), 20s).is_ok());
      acked[key(i)] = val(i);
    }
    for (auto& r : c.store(victim == 1 ? 2 : 1).regions()) {
      INFO("region " << r.region_id);
      CHECK(c.leader(r.region_id) != 0);
      CHECK(c.leader(r.region_id) != victim);
    }
    for (auto& [k, v] : acked) {
      auto got = c.get_any(k);
      REQUIRE(got.is_ok());
      CHECK(got->value_or("") == v);
    }
    // The dead store comes back and catches up.
    REQUIRE(c.restart(victim).is_ok());
    c.sim().run_for(5s);
    CHECK(c.store(victim).regions().size() == 8);
  }
}

TEST_CASE("hibernation off: idle regions keep heartbeating") {
  LocalCluster c(LocalClusterOptions{
      .seed = kvcore::test::test_seed(720),
      .tune = [](kvcore::StoreOptions& o) { o.hibernate_regions = false; }});
  INFO(replay_hint(c.seed()));
  split_into(c, 4, 100);
  c.sim().run_for(5s);
  const auto sent = total(c, "kvcore_raft_messages_sent_total");
  c.sim().run_for(5s);
  CHECK(total(c, "kvcore_raft_messages_sent_total") > sent + 100);
  CHECK(total(c, "kvcore_region_hibernations_total") == 0);
}

TEST_CASE("tight round bounds: every region progresses and the apply budget defers") {
  // Either one region per round with one message or request of it per
  // round, or an apply budget of zero (one region per apply lane per pass).
  const bool budget = GENERATE(false, true);
  for (auto seed : kvcore::test::test_seeds(730, 3)) {
    INFO(replay_hint(seed) << (budget ? ", apply budget 0" : ", one region per round"));
    LocalCluster c(LocalClusterOptions{.seed = seed, .tune = [budget](kvcore::StoreOptions& o) {
                                         if (budget) {
                                           o.apply_round_budget = std::chrono::microseconds(0);
                                         } else {
                                           o.max_regions_per_round = 1;
                                           o.max_messages_per_region_round = 1;
                                         }
                                       }});
    split_into(c, 4, 100);
    const auto leader = c.leader(1);
    REQUIRE(leader != 0);
    // A burst of writes to one hot region and a few to every other region,
    // all at once on the stores that lead them.
    std::map<std::string, kvcore::Status> results;
    std::size_t issued = 0;
    auto issue = [&](int i) {
      std::uint64_t region = 0;
      for (auto& r : c.store(leader).regions()) {
        if (key(i) >= r.start_key && (r.end_key.empty() || key(i) < r.end_key)) {
          region = r.region_id;
        }
      }
      const auto owner = c.leader(region);
      REQUIRE(owner != 0);
      kvcore::RawBatch b;
      b.put(key(i), val(i));
      ++issued;
      c.store(owner).async_write(std::move(b), {}, [&results, k = key(i)](kvcore::Status s) {
        results.emplace(k, std::move(s));
      });
    };
    for (int i = 0; i < 60; ++i) issue(i);               // hot: region of key(0)
    for (int i = 100; i < 400; i += 30) issue(i);        // the others
    REQUIRE(c.sim().run_until([&] { return results.size() == issued; }, 20s));
    for (auto& [k, s] : results) {
      INFO(k << ": " << s.to_string());
      CHECK(s.is_ok());
    }
    if (budget) {
      CHECK(total(c, "kvcore_apply_deferred_total") > 0);
    } else {
      // One region per round: the rounds outnumber the requests.
      CHECK(total(c, "kvcore_raft_rounds_total") > issued);
    }
    for (auto& [k, s] : results) {
      auto got = c.get_any(k);
      REQUIRE(got.is_ok());
      CHECK(got->has_value());
    }
  }
}
