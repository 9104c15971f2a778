// The simulator's checkers on hand-written cases and on random ones drawn
// from true models: compare-and-set in the linearizability checker (test
// support), lost acknowledged writes, and region tiling.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "checks.hpp"
#include "linearizability.hpp"
#include "seed.hpp"

using kvcore::sim::check_acknowledged_writes;
using kvcore::sim::check_tiling;
using kvcore::sim::RegionReport;
using kvcore::test::check_linearizable;
using kvcore::test::kUnknownReturn;
using kvcore::test::Operation;

namespace {

using Kind = Operation::Kind;
using Value = std::optional<std::string>;

Operation write(std::uint64_t client, Value v, std::int64_t call, std::int64_t ret,
                std::string key = "k") {
  return {client, Kind::kWrite, std::move(key), std::move(v), std::nullopt, call, ret};
}

Operation read(std::uint64_t client, Value v, std::int64_t call, std::int64_t ret,
               std::string key = "k") {
  return {client, Kind::kRead, std::move(key), std::move(v), std::nullopt, call, ret};
}

Operation cas(std::uint64_t client, Value expected, Value v, std::int64_t call, std::int64_t ret,
              std::string key = "k") {
  return {client, Kind::kCas, std::move(key), std::move(v), std::move(expected), call, ret};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

// --- compare-and-set in the linearizability checker ---------------------------

TEST_CASE("compare-and-set chains are linearizable", "[linearizability][cas]") {
  const auto r = check_linearizable({
      cas(1, std::nullopt, "a", 0, 10),  // create
      cas(2, "a", "b", 20, 30),
      read(3, "b", 40, 50),
      cas(1, "b", std::nullopt, 60, 70),  // delete
      read(2, std::nullopt, 80, 90),
      // A failed compare-and-set is recorded as a read of what it found.
      read(3, std::nullopt, 100, 110),
  });
  INFO(r.explanation);
  CHECK(r.ok);

  // Concurrent compare-and-sets order themselves by their expected values,
  // and a read overlapping them may see any step of the chain.
  for (const char* seen : {"a", "b", "c"}) {
    INFO("concurrent read sees " << seen);
    CHECK(check_linearizable({
                                 write(1, "a", 0, 10),
                                 cas(2, "b", "c", 20, 100),
                                 cas(3, "a", "b", 20, 100),
                                 read(4, seen, 30, 90),
                                 read(4, "c", 110, 120),
                             })
              .ok);
  }
}

TEST_CASE("a stale read after an acknowledged compare-and-set is rejected",
          "[linearizability][cas]") {
  const auto r = check_linearizable({
      write(1, "a", 0, 10),
      cas(2, "a", "b", 20, 30),
      read(3, "a", 40, 50),
  });
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation, "the 3 operation(s) below cannot be ordered"));
  CHECK(contains(r.explanation, "client 2 cas \"a\" -> \"b\" [20, 30]\n"));
  CHECK(contains(r.explanation, "client 3 read -> \"a\" [40, 50]  <-"));
  CHECK(contains(r.explanation, "A cas line is a compare-and-set that succeeded"));

  // The same with a plain write acknowledged before the read.
  CHECK_FALSE(
      check_linearizable({write(1, "a", 0, 10), write(1, "b", 20, 30), read(2, "a", 40, 50)}).ok);
}

TEST_CASE("two compare-and-sets cannot both succeed from one expected value",
          "[linearizability][cas]") {
  // The lost update: both found "0" and wrote their increment. Concurrency
  // does not help, since the first to take effect changes the value.
  const auto r = check_linearizable({
      write(1, "0", 0, 10),
      cas(2, "0", "1", 20, 100),
      cas(3, "0", "1'", 20, 100),
  });
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation, "client 2 cas \"0\" -> \"1\" [20, 100]"));
  CHECK(contains(r.explanation, "client 3 cas \"0\" -> \"1'\" [20, 100]"));

  // Even when both write the same value.
  CHECK_FALSE(check_linearizable({
                                     write(1, "0", 0, 10),
                                     cas(2, "0", "1", 20, 100),
                                     cas(3, "0", "1", 20, 100),
                                 })
                  .ok);
  // Unless something set "0" again in between.
  CHECK(check_linearizable({
                               write(1, "0", 0, 10),
                               cas(2, "0", "1", 20, 100),
                               write(4, "0", 20, 100),
                               cas(3, "0", "1", 20, 100),
                           })
            .ok);
}

TEST_CASE("a compare-and-set whose expected value was not current is rejected",
          "[linearizability][cas]") {
  const auto r = check_linearizable({
      write(1, "a", 0, 10),
      write(1, "b", 20, 30),
      cas(2, "a", "c", 40, 50),
  });
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation, "client 2 cas \"a\" -> \"c\" [40, 50]  <-"));

  // Expecting absent while the key holds a value; expecting a value never
  // written.
  CHECK_FALSE(check_linearizable({write(1, "a", 0, 10), cas(2, std::nullopt, "b", 20, 30)}).ok);
  CHECK_FALSE(check_linearizable({cas(2, "zzz", "b", 0, 10)}).ok);
  // What a successful compare-and-set wrote is what later reads see.
  CHECK_FALSE(
      check_linearizable({write(1, "a", 0, 10), cas(2, "a", "b", 20, 30), read(3, "a", 40, 50)})
          .ok);
}

TEST_CASE("a read of a value never written is rejected among compare-and-sets",
          "[linearizability][cas]") {
  const auto r = check_linearizable({
      write(1, "a", 0, 10),
      cas(2, "a", "b", 20, 30),
      cas(3, "b", std::nullopt, 40, 50),
      cas(4, std::nullopt, "a", 60, 70),
      read(5, "zzz", 60, 80),
  });
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  // Shrunk to the read alone: nothing writes "zzz".
  CHECK(contains(r.explanation, "the 1 operation(s) below cannot be ordered"));
  CHECK(contains(r.explanation, "client 5 read -> \"zzz\" [60, 80]  <-"));
}

TEST_CASE("an unknown-outcome compare-and-set may take effect or not", "[linearizability][cas]") {
  // Took effect, possibly long after its call.
  CHECK(check_linearizable({
                               write(1, "a", 0, 10),
                               cas(2, "a", "b", 20, kUnknownReturn),
                               read(3, "a", 30, 40),
                               read(3, "b", 1000, 1010),
                           })
            .ok);
  // Never took effect.
  CHECK(check_linearizable({
                               write(1, "a", 0, 10),
                               cas(2, "a", "b", 20, kUnknownReturn),
                               read(3, "a", 30, 40),
                               read(3, "a", 1000, 1010),
                           })
            .ok);
  // Ran while the register held something else: a no-op, whatever came later.
  CHECK(check_linearizable({
                               write(1, "x", 0, 10),
                               cas(2, "a", "b", 20, kUnknownReturn),
                               read(3, "x", 30, 40),
                               write(1, "c", 50, 60),
                               read(3, "c", 1000, 1010),
                           })
            .ok);

  // But it takes effect only where the register holds its expected value...
  const auto r = check_linearizable({
      write(1, "x", 0, 10),
      cas(2, "a", "b", 20, kUnknownReturn),
      read(3, "b", 30, 40),
  });
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation, "client 2 cas \"a\" -> \"b\" [20, unknown]"));
  // ...not before its call, and at most once.
  CHECK_FALSE(check_linearizable({
                                     write(1, "a", 0, 10),
                                     read(3, "b", 12, 18),
                                     cas(2, "a", "b", 20, kUnknownReturn),
                                 })
                  .ok);
  CHECK_FALSE(check_linearizable({
                                     write(1, "a", 0, 10),
                                     cas(2, "a", "b", 20, kUnknownReturn),
                                     read(3, "b", 30, 40),
                                     write(1, "a", 50, 60),
                                     read(3, "b", 70, 80),
                                 })
                  .ok);
}

TEST_CASE("an expected value on a read or write is a malformed history", "[linearizability][cas]") {
  Operation op = write(1, "b", 0, 10);
  op.expected = "a";
  const auto r = check_linearizable({op});
  CHECK_FALSE(r.ok);
  CHECK(contains(r.explanation, "malformed"));
  CHECK(contains(r.explanation, "not a compare-and-set"));
}

// --- lost acknowledged writes ------------------------------------------------

TEST_CASE("acknowledged writes that survive pass", "[survival]") {
  const std::vector<Operation> h = {
      write(1, "a", 0, 10),
      write(2, "b", 20, 30),
      read(3, "a", 40, 50, "other"),  // reads say nothing about survival
      cas(1, "b", "c", 40, 50),
      write(1, "x", 0, 10, "deleted"),
      write(2, std::nullopt, 20, 30, "deleted"),
  };
  const auto r =
      check_acknowledged_writes(h, {{"k", "c"}, {"deleted", std::nullopt}, {"other", "z"}});
  // "other" holds a value nothing wrote: that alone fails.
  REQUIRE_FALSE(r.ok);
  CHECK(contains(r.explanation, "key \"other\": found \"z\", which no write"));
  CHECK_FALSE(contains(r.explanation, "key \"k\""));
  CHECK_FALSE(contains(r.explanation, "key \"deleted\""));

  const auto ok = check_acknowledged_writes(h, {{"k", "c"}, {"deleted", std::nullopt}});
  INFO(ok.explanation);
  CHECK(ok.ok);
  CHECK(ok.explanation.empty());
  CHECK(check_acknowledged_writes({}, {}).ok);
  CHECK(check_acknowledged_writes({}, {{"never", std::nullopt}}).ok);
}

TEST_CASE("a lost acknowledged write is named", "[survival]") {
  const std::vector<Operation> h = {
      write(1, "a", 0, 10),
      write(2, "b", 20, 30),
  };
  const auto r = check_acknowledged_writes(h, {{"k", "a"}});
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation,
                 "key \"k\": acknowledged client 2 write \"b\" [20, 30] was lost: found \"a\", "
                 "last set by client 1 write \"a\" [0, 10], which returned before"));

  // Absent at the end though nothing deletes it.
  const auto absent = check_acknowledged_writes(h, {{"k", std::nullopt}});
  REQUIRE_FALSE(absent.ok);
  CHECK(contains(absent.explanation, "found absent, the initial value"));

  // An acknowledged compare-and-set is lost the same way.
  const auto lost_cas =
      check_acknowledged_writes({write(1, "a", 0, 10), cas(2, "a", "b", 20, 30)}, {{"k", "a"}});
  REQUIRE_FALSE(lost_cas.ok);
  CHECK(contains(lost_cas.explanation, "acknowledged client 2 cas \"a\" -> \"b\" [20, 30]"));

  // A key written but not given a final value is never assumed absent.
  const auto missing = check_acknowledged_writes(h, {});
  REQUIRE_FALSE(missing.ok);
  CHECK(contains(missing.explanation, "key \"k\": no final value given"));
}

TEST_CASE("concurrent and unknown writes may end either way", "[survival]") {
  // Overlapping acknowledged writes: either may be last.
  for (const char* last : {"a", "b"}) {
    CHECK(check_acknowledged_writes({write(1, "a", 0, 100), write(2, "b", 10, 90)}, {{"k", last}})
              .ok);
  }
  // Touching intervals count as concurrent.
  CHECK(check_acknowledged_writes({write(1, "a", 0, 10), write(2, "b", 10, 20)}, {{"k", "a"}}).ok);
  // An unknown write may land after every acknowledged one, or never.
  const std::vector<Operation> h = {
      write(1, "u", 0, kUnknownReturn),
      write(2, "a", 20, 30),
  };
  CHECK(check_acknowledged_writes(h, {{"k", "u"}}).ok);
  CHECK(check_acknowledged_writes(h, {{"k", "a"}}).ok);
  CHECK(check_acknowledged_writes({cas(1, "a", "u", 40, kUnknownReturn), write(2, "a", 20, 30)},
                                  {{"k", "u"}})
            .ok);
  // But it does not excuse losing an acknowledged write after its own value.
  CHECK_FALSE(check_acknowledged_writes(
                  {write(1, "a", 0, 10), write(3, "u", 0, kUnknownReturn), write(2, "b", 20, 30)},
                  {{"k", "a"}})
                  .ok);
  // With only unknown writes, absent (none landed) is fine too.
  CHECK(check_acknowledged_writes({write(1, "u", 0, kUnknownReturn)}, {{"k", std::nullopt}}).ok);
}

// --- region tiling ----------------------------------------------------------

namespace {

RegionReport region(std::uint64_t store, std::uint64_t id, std::string start, std::string end,
                    std::uint64_t version, std::uint64_t conf_ver = 1) {
  return {store, id, std::move(start), std::move(end), version, conf_ver};
}

}  // namespace

TEST_CASE("valid tilings pass, stale reports included", "[tiling]") {
  // One region, seen by three stores.
  std::vector<RegionReport> one;
  for (std::uint64_t s = 1; s <= 3; ++s) one.push_back(region(s, 1, "", "", 1));
  CHECK(check_tiling(one, true).ok);
  CHECK(check_tiling(one, false).ok);

  // After a split at "m" (both sides at version 2), store 3 still holds the
  // region from before it; and its conf_ver lags too.
  const std::vector<RegionReport> split = {
      region(1, 1, "", "m", 2), region(2, 1, "", "m", 2, 2), region(3, 1, "", "", 1),
      region(1, 2, "m", "", 2), region(2, 2, "m", "", 2),
  };
  auto r = check_tiling(split, true);
  INFO(r.explanation);
  CHECK(r.ok);

  // Then region 2 merges into region 1: the source's PrepareMerge bumped it
  // to 3, the target became max + 1 = 4. Stale reports of every step remain.
  const std::vector<RegionReport> merged = {
      region(1, 1, "", "", 4),  region(2, 1, "", "m", 2), region(3, 1, "", "", 1),
      region(2, 2, "m", "", 3), region(3, 2, "m", "", 2),
  };
  r = check_tiling(merged, true);
  INFO(r.explanation);
  CHECK(r.ok);

  // Mid-run, the right half unreported (its stores down): fine without
  // cover, a gap with it.
  const std::vector<RegionReport> half = {region(1, 1, "", "m", 2), region(3, 1, "", "", 1)};
  CHECK(check_tiling(half, false).ok);
  r = check_tiling(half, true);
  REQUIRE_FALSE(r.ok);
  CHECK(contains(r.explanation, "gap [\"m\", +inf)"));
  // The stale report that still spans the gap is shown, to help the reader.
  CHECK(contains(r.explanation, "stale there: region 1 [\"\", +inf) version 1"));
}

TEST_CASE("gaps break the cover", "[tiling]") {
  auto r = check_tiling({region(1, 1, "", "m", 2), region(1, 3, "p", "", 2)}, true);
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation,
                 "gap [\"m\", \"p\"): no region covers it (after region 1 [\"\", \"m\") version 2 "
                 "conf_ver 1 (store 1)) (before region 3 [\"p\", +inf)"));

  r = check_tiling({region(1, 1, "b", "", 2)}, true);
  REQUIRE_FALSE(r.ok);
  CHECK(contains(r.explanation, "gap [\"\", \"b\"): no region covers it (at the start)"));

  // A region's older state is stale even where nothing newer overlaps it:
  // region 1 took ["", "m") in a merge and split off ["c", "p") at version
  // 4, and that new region is not reported. Region 1's old ["m", "p") at
  // version 2 must not fill the hole.
  r = check_tiling({region(3, 1, "m", "p", 2), region(1, 1, "", "c", 4), region(1, 4, "p", "", 3)},
                   true);
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation, "gap [\"c\", \"p\")"));
  CHECK(contains(r.explanation, "stale there: region 1 [\"m\", \"p\") version 2"));

  r = check_tiling({}, true);
  REQUIRE_FALSE(r.ok);
  CHECK(contains(r.explanation, "gap [\"\", +inf)"));
  CHECK(check_tiling({}, false).ok);
}

TEST_CASE("overlaps at one version are violations", "[tiling]") {
  // Two regions claim ["k", "m") at version 2.
  const std::vector<RegionReport> overlap = {
      region(1, 1, "", "m", 2),
      region(2, 2, "k", "", 2),
  };
  for (const bool cover : {false, true}) {
    const auto r = check_tiling(overlap, cover);
    REQUIRE_FALSE(r.ok);
    INFO(r.explanation);
    CHECK(contains(r.explanation,
                   "overlap at the same version: region 1 [\"\", \"m\") version 2 conf_ver 1 "
                   "(store 1) and region 2 [\"k\", +inf) version 2 conf_ver 1 (store 2)"));
  }

  // One region with two ranges at one version, overlapping or not.
  auto r = check_tiling(
      {region(1, 1, "", "m", 2), region(2, 1, "", "n", 2), region(1, 2, "n", "", 3)}, false);
  REQUIRE_FALSE(r.ok);
  CHECK(contains(r.explanation, "region 1 has two ranges at one version"));
  r = check_tiling({region(1, 1, "a", "b", 2), region(2, 1, "c", "d", 2)}, false);
  REQUIRE_FALSE(r.ok);
  CHECK(contains(r.explanation, "region 1 has two ranges at one version"));

  // A higher version wins over a lower one: no violation.
  CHECK(check_tiling({region(1, 1, "", "m", 2), region(2, 2, "k", "", 3), region(2, 1, "", "k", 3)},
                     true)
            .ok);
  // An empty or inverted range.
  r = check_tiling({region(1, 1, "", "", 1), region(2, 2, "m", "m", 2)}, false);
  REQUIRE_FALSE(r.ok);
  CHECK(contains(r.explanation, "store 2 reports region 2 with an empty or inverted range"));
}

// --- random histories from a true register ------------------------------------

namespace {

struct Generated {
  std::vector<Operation> history;
  std::map<std::string, Value> final_values;
};

// Several clients on a few keys, recorded against a true sequential register
// with compare-and-set: each operation takes effect at one instant inside its
// interval (a random concurrency window). A compare-and-set finds the current
// value most of the time; when it does not, it is recorded as a read of what
// it found, as a client would. Some writes and compare-and-sets time out
// (unknown return): they take effect at a random later instant, or never,
// and an unknown compare-and-set that finds the wrong value is a no-op.
Generated random_history(kvcore::test::Rng& rng) {
  struct Planned {
    Operation op;
    std::int64_t at;  // instant of effect; -1 never
  };
  auto below = [&](std::int64_t n) {
    return static_cast<std::int64_t>(rng.uniform(static_cast<std::uint64_t>(n)));
  };
  const int clients = 2 + static_cast<int>(below(5));
  const int keys = 1 + static_cast<int>(below(3));
  const int per_client = 5 + static_cast<int>(below(35));
  std::vector<Planned> planned;
  for (int c = 0; c < clients; ++c) {
    std::int64_t t = below(20);
    for (int i = 0; i < per_client; ++i) {
      Operation op;
      op.client = static_cast<std::uint64_t>(c);
      op.key = "k" + std::to_string(below(keys));
      const std::uint64_t kind = rng.uniform(20);
      op.kind = kind < 7 ? Kind::kRead : kind < 12 ? Kind::kWrite : Kind::kCas;
      if (op.kind != Kind::kRead && !rng.chance(0.1)) {
        op.value = "c" + std::to_string(c) + "." + std::to_string(i);
      }
      op.call = t + below(10);
      std::int64_t at = op.call + below(30);
      op.ret = at + below(30);
      t = op.ret;
      if (op.kind != Kind::kRead && rng.chance(0.1)) {
        op.ret = kUnknownReturn;
        at = rng.chance(0.5) ? op.call + below(500) : -1;
      }
      planned.push_back({std::move(op), at});
    }
  }

  std::map<std::string, std::vector<Value>> written;  // per key, absent first
  for (int k = 0; k < keys; ++k) written["k" + std::to_string(k)].push_back(std::nullopt);
  auto some_written = [&](const std::string& key) {
    const std::vector<Value>& w = written[key];
    return w[rng.uniform(w.size())];
  };
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < planned.size(); ++i) {
    if (planned[i].at >= 0) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return planned[a].at < planned[b].at; });
  std::map<std::string, Value> reg;
  for (int k = 0; k < keys; ++k) reg["k" + std::to_string(k)] = std::nullopt;
  for (const std::size_t i : order) {
    Operation& op = planned[i].op;
    Value& current = reg[op.key];
    switch (op.kind) {
      case Kind::kRead: op.value = current; break;
      case Kind::kWrite:
        current = op.value;
        written[op.key].push_back(op.value);
        break;
      case Kind::kCas:
        op.expected = rng.chance(0.7) ? current : some_written(op.key);
        if (op.expected == current) {
          current = op.value;
          written[op.key].push_back(op.value);
        } else if (op.ret != kUnknownReturn) {
          op.kind = Kind::kRead;
          op.value = current;
          op.expected.reset();
        }
        break;
    }
  }
  Generated g;
  g.final_values = reg;
  for (auto& p : planned) {
    if (p.op.kind == Kind::kCas && p.at < 0) p.op.expected = some_written(p.op.key);
    g.history.push_back(std::move(p.op));
  }
  // Input order must not matter.
  for (std::size_t i = g.history.size(); i > 1; --i) {
    std::swap(g.history[i - 1], g.history[rng.uniform(i)]);
  }
  return g;
}

}  // namespace

TEST_CASE("histories of a true register with compare-and-set pass; a corrupted read fails",
          "[linearizability][cas][survival]") {
  std::size_t cas_ops = 0;
  std::size_t unknown_cas = 0;
  const std::vector<std::uint64_t> seeds = kvcore::test::test_seeds(1, 300);
  for (const std::uint64_t seed : seeds) {
    INFO(kvcore::test::replay_hint(seed));
    kvcore::test::Rng rng(seed);
    Generated g = random_history(rng);
    for (const Operation& op : g.history) {
      cas_ops += op.kind == Kind::kCas;
      unknown_cas += op.kind == Kind::kCas && op.ret == kUnknownReturn;
    }
    const auto ok = check_linearizable(g.history);
    INFO(ok.explanation);
    REQUIRE(ok.ok);
    const auto survived = check_acknowledged_writes(g.history, g.final_values);
    INFO(survived.explanation);
    REQUIRE(survived.ok);

    std::vector<std::size_t> reads;
    for (std::size_t i = 0; i < g.history.size(); ++i) {
      if (g.history[i].kind == Kind::kRead) reads.push_back(i);
    }
    if (reads.empty()) continue;
    Operation& victim = g.history[reads[rng.uniform(reads.size())]];
    victim.value = "never-written";
    const auto bad = check_linearizable(g.history);
    INFO(bad.explanation);
    REQUIRE_FALSE(bad.ok);
    CHECK(contains(bad.explanation, "key \"" + victim.key + "\""));
    // Shrunk to the one read that cannot be explained.
    CHECK(contains(bad.explanation, "read -> \"never-written\" [" + std::to_string(victim.call) +
                                        ", " + std::to_string(victim.ret) + "]  <-"));
    CHECK(contains(bad.explanation, "the 1 operation(s) below cannot be ordered"));

    // A final value nothing wrote fails the survival check.
    g.final_values[victim.key] = "never-written";
    REQUIRE_FALSE(check_acknowledged_writes(g.history, g.final_values).ok);
  }
  // The generator does exercise compare-and-set, including unknown ones (a
  // replay of one seed need not).
  if (seeds.size() >= 100) {
    CHECK(cas_ops > 10 * seeds.size());
    CHECK(unknown_cas > seeds.size() / 2);
  }
}

// --- random region histories -------------------------------------------------

namespace {

// The region states of a run of splits, merges (some rolled back) and
// membership changes, by kvcore's epoch rules: a split moves the region and
// the regions it creates to version + (number of split keys); PrepareMerge
// and its rollback each bump the source's version; a merge makes the target
// max(source, target) + 1; a membership change bumps conf_ver only.
struct RegionRun {
  std::vector<RegionReport> current;  // sorted by start; tiles the key space
  std::vector<RegionReport> past;     // every state that was current once
};

RegionRun random_region_run(kvcore::test::Rng& rng) {
  RegionRun run;
  run.current.push_back({0, 1, "", "", 1, 1});
  std::uint64_t next_id = 2;
  auto retire = [&](const RegionReport& r) { run.past.push_back(r); };
  const int steps = 10 + static_cast<int>(rng.uniform(50));
  for (int step = 0; step < steps; ++step) {
    const std::size_t i = rng.uniform(run.current.size());
    const std::uint64_t what = rng.uniform(4);
    if (what == 0 || run.current.size() == 1) {
      RegionReport& r = run.current[i];
      std::vector<std::string> keys;
      for (std::uint64_t n = 1 + rng.uniform(2); n > 0; --n) {
        const std::string key = "k" + std::to_string(100 + rng.uniform(900));
        if (key > r.start && (r.end.empty() || key < r.end)) keys.push_back(key);
      }
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      if (keys.empty()) continue;
      retire(r);
      const std::string end = r.end;
      r.end = keys.front();
      r.version += keys.size();
      std::vector<RegionReport> created;
      for (std::size_t k = 0; k < keys.size(); ++k) {
        created.push_back({0, next_id++, keys[k], k + 1 < keys.size() ? keys[k + 1] : end,
                           r.version, r.conf_ver});
      }
      run.current.insert(run.current.begin() + static_cast<std::ptrdiff_t>(i) + 1, created.begin(),
                         created.end());
    } else if (what == 1 && i + 1 < run.current.size()) {
      // Merge neighbours i and i + 1, either one into the other.
      const bool left_into_right = rng.chance(0.5);
      RegionReport source = run.current[left_into_right ? i : i + 1];
      RegionReport target = run.current[left_into_right ? i + 1 : i];
      retire(source);
      retire(target);
      ++source.version;  // PrepareMerge
      retire(source);
      if (rng.chance(0.3)) {
        ++source.version;  // rolled back
        run.current[left_into_right ? i : i + 1] = source;
        continue;
      }
      target.start = run.current[i].start;
      target.end = run.current[i + 1].end;
      target.version = std::max(source.version, target.version) + 1;
      run.current[i] = target;
      run.current.erase(run.current.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    } else {
      retire(run.current[i]);
      ++run.current[i].conf_ver;
    }
  }
  return run;
}

// Every current state from one to three stores, and past ones here and
// there, in a random order.
std::vector<RegionReport> reports_of(const RegionRun& run, kvcore::test::Rng& rng) {
  std::vector<RegionReport> out;
  for (RegionReport r : run.current) {
    const std::uint64_t first = 1 + rng.uniform(3);
    for (std::uint64_t s = 1; s <= 3; ++s) {
      if (s == first || rng.chance(0.5)) {
        r.store = s;
        out.push_back(r);
      }
    }
  }
  for (RegionReport r : run.past) {
    if (!rng.chance(0.3)) continue;
    r.store = 1 + rng.uniform(3);
    out.push_back(r);
  }
  for (std::size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[rng.uniform(i)]);
  return out;
}

std::string range_of(const RegionReport& r) {
  return "[" + kvcore::test::quote_value(r.start) + ", " +
         (r.end.empty() ? std::string("+inf") : kvcore::test::quote_value(r.end)) + ")";
}

}  // namespace

TEST_CASE("region histories of splits and merges tile; a claimed range or a hole fails",
          "[tiling]") {
  for (const std::uint64_t seed : kvcore::test::test_seeds(1, 300)) {
    INFO(kvcore::test::replay_hint(seed));
    kvcore::test::Rng rng(seed);
    const RegionRun run = random_region_run(rng);
    const std::vector<RegionReport> reports = reports_of(run, rng);
    auto r = check_tiling(reports, true);
    INFO(r.explanation);
    REQUIRE(r.ok);

    // Mid-run, any subset: only the same-version rule applies.
    std::vector<RegionReport> some;
    for (const RegionReport& report : reports) {
      if (rng.chance(0.5)) some.push_back(report);
    }
    REQUIRE(check_tiling(some, false).ok);

    // Another region claims a current one's range at its version.
    const RegionReport& victim = run.current[rng.uniform(run.current.size())];
    std::vector<RegionReport> claimed = some;
    claimed.push_back({1, 999, victim.start, victim.end, victim.version, 1});
    claimed.push_back(victim);
    for (const bool cover : {false, true}) {
      r = check_tiling(claimed, cover);
      REQUIRE_FALSE(r.ok);
      CHECK(contains(r.explanation, "overlap at the same version"));
      CHECK(contains(r.explanation, "region 999 " + range_of(victim)));
    }

    // Nobody reports anything over one current region's range.
    std::vector<RegionReport> holed;
    for (const RegionReport& report : reports) {
      const bool overlaps = (victim.end.empty() || report.start < victim.end) &&
                            (report.end.empty() || victim.start < report.end);
      if (!overlaps) holed.push_back(report);
    }
    r = check_tiling(holed, true);
    REQUIRE_FALSE(r.ok);
    CHECK(contains(r.explanation, "gap " + range_of(victim) + ": no region covers it"));
    CHECK(check_tiling(holed, false).ok);
  }
}
