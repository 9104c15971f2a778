// Whole simulated clusters under faults (test/sim/simulator.hpp).
//
// [shard1]..[shard4]: the fixed seeds CI runs, 125 each (KVCORE_SEEDS=<n>
// runs n per shard instead; KVCORE_SEED=<n> runs only that one). Each must
// pass every check, and over a shard the faults must bite: writes of
// unknown outcome, failed compare-and-sets, and splits, merges and
// membership changes that completed while the workload ran.
// [replay]: one seed run twice gives the same run, event for event.
// [sabotage]: stores broken on purpose are caught, and the failure shrinks.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>

#include "raftstore/sabotage.hpp"
#include "seed.hpp"
#include "simulator.hpp"

using kvcore::raftstore::testing::Sabotage;
using kvcore::sim::run_simulation;
using kvcore::sim::SimOptions;
using kvcore::sim::SimReport;

namespace {

constexpr std::uint64_t kSeedsPerShard = 125;

bool logged(const SimReport& r, std::string_view a, std::string_view b) {
  return std::any_of(r.fault_log.begin(), r.fault_log.end(), [&](const std::string& l) {
    return l.find(a) != std::string::npos && l.find(b) != std::string::npos;
  });
}

void run_shard(std::uint64_t shard) {
  std::uint64_t unknown = 0;
  std::uint64_t cas_ok = 0;
  std::uint64_t cas_failed = 0;
  int splits = 0;
  int merges = 0;
  int membership = 0;
  int five_store_runs = 0;
  const auto seeds = kvcore::test::test_seeds(1 + (shard - 1) * kSeedsPerShard, kSeedsPerShard);
  for (auto seed : seeds) {
    SimOptions o;
    o.seed = seed;
    const SimReport r = run_simulation(o);
    INFO(r.details());
    CHECK(r.ok);
    CHECK(r.stats.writes_ok + r.stats.cas_ok > 20);
    CHECK(r.stats.reads_ok > 20);
    unknown += r.stats.unknown;
    cas_ok += r.stats.cas_ok;
    cas_failed += r.stats.cas_failed;
    splits += logged(r, ": split", ": done") ? 1 : 0;
    merges += logged(r, ": merge", ": done") ? 1 : 0;
    membership += logged(r, "membership: region", ": done") ? 1 : 0;
    five_store_runs += r.stores == 5 ? 1 : 0;
  }
  if (seeds.size() < kSeedsPerShard) return;  // a replay of one seed
  INFO(fmt::format("unknown {} cas ok {} failed {} splits {} merges {} membership {} 5-store {}",
                   unknown, cas_ok, cas_failed, splits, merges, membership, five_store_runs));
  CHECK(unknown > 0);
  CHECK(cas_ok > 0);
  CHECK(cas_failed > 0);
  CHECK(splits > 0);
  CHECK(merges > 0);
  CHECK(membership > 0);
  CHECK(five_store_runs > 0);
}

// Runs seeds with the store broken by `s` until one fails; returns it.
std::optional<SimReport> first_failure(Sabotage s, std::uint64_t max_seeds) {
  kvcore::raftstore::testing::set_sabotage(s);
  std::optional<SimReport> found;
  for (std::uint64_t seed = 1; seed <= max_seeds && !found; ++seed) {
    SimOptions o;
    o.seed = seed;
    SimReport r = run_simulation(o);
    if (!r.ok) found = std::move(r);
  }
  kvcore::raftstore::testing::set_sabotage(Sabotage::kNone);
  return found;
}

bool mentions(const SimReport& r, std::string_view what) {
  return std::any_of(r.failures.begin(), r.failures.end(),
                     [&](const std::string& f) { return f.find(what) != std::string::npos; });
}

}  // namespace

TEST_CASE("simulated clusters under faults, seeds 1-125", "[shard1]") { run_shard(1); }
TEST_CASE("simulated clusters under faults, seeds 126-250", "[shard2]") { run_shard(2); }
TEST_CASE("simulated clusters under faults, seeds 251-375", "[shard3]") { run_shard(3); }
TEST_CASE("simulated clusters under faults, seeds 376-500", "[shard4]") { run_shard(4); }

TEST_CASE("a seed replays exactly", "[replay]") {
  for (auto seed : kvcore::test::test_seeds(11, 3)) {
    INFO(kvcore::test::replay_hint(seed));
    SimOptions o;
    o.seed = seed;
    const SimReport a = run_simulation(o);
    const SimReport b = run_simulation(o);
    CHECK(a.summary() == b.summary());
    CHECK(a.fault_log == b.fault_log);
    CHECK(a.stats.issued == b.stats.issued);
    CHECK(a.stats.failures == b.stats.failures);
    CHECK(a.frames_dropped == b.frames_dropped);
    // Leaving a fault out changes the run (the schedule is not decorative).
    o.skip_faults = {0, 1};
    const SimReport c = run_simulation(o);
    CHECK(c.fault_log != a.fault_log);
  }
}

TEST_CASE("follower reads without ReadIndex are caught as non-linearizable", "[sabotage]") {
  const auto r = first_failure(Sabotage::kFollowerReads, 20);
  REQUIRE(r.has_value());
  INFO(r->details());
  CHECK(mentions(*r, "not linearizable"));
  // The same seed passes with the store intact: the failure is the sabotage's.
  SimOptions o = r->options;
  CHECK(run_simulation(o).ok);

  // Shrinking keeps it failing with no more faults than before.
  kvcore::raftstore::testing::set_sabotage(Sabotage::kFollowerReads);
  const SimReport small = kvcore::sim::shrink_faults(o, *r, 8);
  kvcore::raftstore::testing::set_sabotage(Sabotage::kNone);
  CHECK_FALSE(small.ok);
  CHECK(small.skipped.size() >= r->skipped.size());
}

TEST_CASE("writes acknowledged before the raft log is synced are caught", "[sabotage]") {
  const auto r = first_failure(Sabotage::kSkipLogSync, 40);
  REQUIRE(r.has_value());
  INFO(r->details());
  CHECK((mentions(*r, "acknowledged write was lost") || mentions(*r, "not linearizable")));
  SimOptions o = r->options;
  CHECK(run_simulation(o).ok);
}
