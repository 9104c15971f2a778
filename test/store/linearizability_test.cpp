// A register history under partitions, crashes and leader transfers, checked
// for linearizability. Clients issue reads and writes of a few keys to the
// store they believe leads (following NotLeader hints); a fault injector
// partitions, isolates, crashes and restarts stores, and moves leadership.
//
// Outcomes: a write acknowledged OK took effect between its call and its
// return; a write refused before it was proposed (NotLeader, KeyNotInRegion)
// or superseded in the log (StaleCommand) never takes effect and is left
// out; any other failure (timeout, a stopping store, a snapshot replacing
// the log) is of unknown outcome and may take effect at any later time.
// Failed reads are left out.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kvcore/store.hpp"
#include "linearizability.hpp"
#include "local_cluster.hpp"
#include "seed.hpp"

using namespace std::chrono_literals;
using kvcore::Code;
using kvcore::Status;
using kvcore::SubCode;
using kvcore::test::LocalCluster;
using kvcore::test::LocalClusterOptions;
using kvcore::test::Operation;

namespace {

struct Workload {
  LocalCluster& c;
  kvcore::test::Rng rng;
  std::vector<Operation> history;
  std::vector<std::uint64_t> guess;  // per client: the store it asks
  bool stopped = false;
  int writes_ok = 0;
  int reads_ok = 0;
  int unknown = 0;
  std::map<std::string, int> failures;  // by status, for the report

  std::int64_t now() const { return c.sim().now().time_since_epoch().count(); }

  std::uint64_t pick_store(std::size_t client) {
    std::uint64_t id = guess[client];
    if (id == 0 || !c.running(id)) {
      id = 1 + rng.next() % c.size();
      guess[client] = id;
    }
    return id;
  }

  void follow_hint(std::size_t client, const Status& s) {
    const auto* d = s.detail_as<kvcore::NotLeaderDetail>();
    guess[client] =
        (d != nullptr && d->leader_store_id != 0) ? d->leader_store_id : 1 + rng.next() % c.size();
  }

  void schedule(std::size_t client) {
    if (stopped) return;
    const auto think = std::chrono::milliseconds(1 + rng.next() % 15);
    (void)c.sim().timers().schedule_after(think, [this, client] { issue(client); });
  }

  void issue(std::size_t client) {
    if (stopped) return;
    const std::uint64_t id = pick_store(client);
    if (!c.running(id)) {
      schedule(client);
      return;
    }
    const std::string key = fmt::format("reg{}", rng.next() % 3);
    const kvcore::RequestOptions opts{std::chrono::milliseconds(300 + rng.next() % 900)};
    const std::size_t slot = history.size();
    Operation op;
    op.client = client;
    op.key = key;
    op.call = now();
    if (rng.chance(0.5)) {
      op.kind = Operation::Kind::kWrite;
      op.value = fmt::format("c{}-{}", client, slot);
      kvcore::RawBatch b;
      if (rng.chance(0.1)) {
        op.value.reset();
        b.del(key);
      } else {
        b.put(key, *op.value);
      }
      history.push_back(op);
      c.store(id).async_write(std::move(b), opts,
                              [this, client, slot](Status s) { finish_write(client, slot, s); });
    } else {
      op.kind = Operation::Kind::kRead;
      history.push_back(op);
      c.store(id).async_get(key, opts,
                            [this, client, slot](kvcore::Result<std::optional<std::string>> r) {
                              finish_read(client, slot, std::move(r));
                            });
    }
  }

  void finish_write(std::size_t client, std::size_t slot, const Status& s) {
    Operation& op = history[slot];
    if (!s.is_ok())
      ++failures[fmt::format("write {}/{}", kvcore::to_string(s.code()),
                             kvcore::to_string(s.sub_code()))];
    if (s.is_ok()) {
      op.ret = now();
      ++writes_ok;
    } else if (s.sub_code() == SubCode::kNotLeader || s.sub_code() == SubCode::kKeyNotInRegion ||
               s.sub_code() == SubCode::kStaleCommand || s.sub_code() == SubCode::kRegionNotFound ||
               s.sub_code() == SubCode::kEpochNotMatch ||
               s.sub_code() == SubCode::kProposalDropped || s.code() == Code::kInvalidArgument) {
      op.key.clear();  // no effect: dropped from the history
      follow_hint(client, s);
    } else {
      op.ret = kvcore::test::kUnknownReturn;
      ++unknown;
      follow_hint(client, s);
    }
    schedule(client);
  }

  void finish_read(std::size_t client, std::size_t slot,
                   kvcore::Result<std::optional<std::string>> r) {
    Operation& op = history[slot];
    if (r.is_ok()) {
      op.value = *r;
      op.ret = now();
      ++reads_ok;
    } else {
      ++failures[fmt::format("read {}/{}", kvcore::to_string(r.status().code()),
                             kvcore::to_string(r.status().sub_code()))];
      op.key.clear();
      follow_hint(client, r.status());
    }
    schedule(client);
  }
};

void inject_fault(LocalCluster& c, kvcore::test::Rng& rng) {
  const auto ids = c.store_ids();
  const std::uint64_t victim = ids[rng.next() % ids.size()];
  switch (rng.next() % 7) {
    case 6: {
      // Split the region holding "reg1" or "reg2" there, if not split yet.
      const std::string at = rng.chance(0.5) ? "reg1" : "reg2";
      for (auto id : ids) {
        if (!c.running(id)) continue;
        for (const auto& r : c.store(id).regions()) {
          if (r.is_leader && r.start_key < at && (r.end_key.empty() || at < r.end_key)) {
            c.store(id).async_split_region(r.region_id, {at}, {}, [](kvcore::Status) {});
            return;
          }
        }
      }
      break;
    }
    case 0: c.net().isolate(c.leader() != 0 ? c.leader() : victim); break;
    case 1: {
      std::vector<std::uint64_t> rest;
      for (auto id : ids) {
        if (id != victim) rest.push_back(id);
      }
      c.net().partition({{victim}, rest});
      break;
    }
    case 2:
      if (c.running(victim)) c.crash(victim);
      break;
    case 3: {
      const auto l = c.leader();
      if (l != 0) (void)c.store(l).transfer_leader(1, victim);
      break;
    }
    default:
      c.net().heal();
      for (auto id : ids) {
        if (!c.running(id)) (void)c.restart(id);
      }
      break;
  }
}

}  // namespace

TEST_CASE("a register history under partitions, crashes and transfers is linearizable") {
  int unknown_outcomes = 0;
  for (auto seed : kvcore::test::test_seeds(300, 4)) {
    INFO(kvcore::test::replay_hint(seed));
    LocalClusterOptions o{.stores = 3, .seed = seed};
    o.tune = [](kvcore::StoreOptions& s) {
      s.raft_log_gc_count_limit = 64;  // snapshots happen too
      s.raft_log_gc_ticks = 3;
    };
    // Clocks drift against each other (well within the lease margin).
    o.clock_skews = {{std::chrono::milliseconds(0), 200},
                     {std::chrono::milliseconds(5), -200},
                     {std::chrono::milliseconds(-3), 0}};
    LocalCluster c(o);
    c.net().set_delay(1ms, 8ms);
    c.net().set_drop_rate(0.02);
    REQUIRE(c.wait_leader() != 0);

    Workload w{
        c, kvcore::test::Rng(seed ^ 0x5eed), {}, std::vector<std::uint64_t>(5, 0), false, 0, 0, 0,
        {}};
    for (std::size_t client = 0; client < w.guess.size(); ++client) w.schedule(client);
    kvcore::test::Rng faults(seed ^ 0xfa17);
    for (int step = 0; step < 20; ++step) {
      c.sim().run_for(std::chrono::milliseconds(500 + faults.next() % 1500));
      inject_fault(c, faults);
    }
    c.net().heal();
    for (auto id : c.store_ids()) {
      if (!c.running(id)) REQUIRE(c.restart(id).is_ok());
    }
    c.sim().run_for(3s);
    w.stopped = true;
    c.sim().run_for(3s);  // every request still out completes or times out

    std::vector<Operation> history;
    for (auto& op : w.history) {
      if (op.key.empty()) continue;
      if (op.kind == Operation::Kind::kRead && op.ret == 0) continue;  // never answered
      if (op.kind == Operation::Kind::kWrite && op.ret == 0) {
        op.ret = kvcore::test::kUnknownReturn;  // never answered
      }
      history.push_back(op);
    }
    INFO("ops " << history.size() << " writes ok " << w.writes_ok << " reads ok " << w.reads_ok
                << " unknown " << w.unknown);
    std::string failures;
    for (const auto& [what, n] : w.failures) failures += fmt::format("{}: {}; ", what, n);
    INFO("failures: " << failures);
    std::uint64_t term = 0;
    for (auto id : c.store_ids()) term = std::max(term, c.store(id).regions().front().term);
    INFO("final term " << term << " frames dropped " << c.net().dropped());
    CHECK(w.writes_ok > 50);
    CHECK(w.reads_ok > 50);
    auto result = kvcore::test::check_linearizable(history);
    INFO(result.explanation);
    CHECK(result.ok);
    unknown_outcomes += w.unknown;
  }
  // The faults must bite: some writes end with their outcome unknown.
  CHECK(unknown_outcomes > 0);
}
