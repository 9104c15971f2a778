// Region merge on LocalCluster: PrepareMerge on the source, CommitMerge on
// the target (with the catch-up of a lagging source peer), RollbackMerge when
// the target changed, stale source peers, routing and leases around it.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kvcore/store.hpp"
#include "local_cluster.hpp"
#include "raftstore/codec.hpp"
#include "seed.hpp"

using namespace std::chrono_literals;
using kvcore::Code;
using kvcore::Status;
using kvcore::SubCode;
using kvcore::test::LocalCluster;
using kvcore::test::LocalClusterOptions;
using kvcore::test::replay_hint;

namespace {

std::string key(int i) { return fmt::format("key{:05d}", i); }
std::string val(int i, int round = 0) { return fmt::format("value-{}-{}", i, round); }

constexpr const char* kCommitted = "kvcore_region_merges_total{stage=\"committed\"}";
constexpr const char* kPrepared = "kvcore_region_merges_total{stage=\"prepared\"}";
constexpr const char* kRolledBack = "kvcore_region_merges_total{stage=\"rolled_back\"}";

Status run_merge(LocalCluster& c, std::uint64_t store, std::uint64_t source, std::uint64_t target,
                 std::chrono::milliseconds max = 15s) {
  bool done = false;
  Status out;
  c.store(store).async_merge_region(source, target, {}, [&](Status s) {
    out = std::move(s);
    done = true;
  });
  if (!c.sim().run_until([&] { return done; }, max)) return Status::internal("no answer");
  return out;
}

Status run_split(LocalCluster& c, std::uint64_t store, std::uint64_t region,
                 std::vector<std::string> keys) {
  bool done = false;
  Status out;
  c.store(store).async_split_region(region, std::move(keys), {}, [&](Status s) {
    out = std::move(s);
    done = true;
  });
  if (!c.sim().run_until([&] { return done; }, 10s)) return Status::internal("no answer");
  return out;
}

std::optional<kvcore::RegionStatus> region_holding(LocalCluster& c, std::uint64_t store,
                                                   const std::string& k) {
  for (auto& r : c.store(store).regions()) {
    if (k >= r.start_key && (r.end_key.empty() || k < r.end_key)) return r;
  }
  return std::nullopt;
}

std::optional<kvcore::RegionStatus> region_by_id(LocalCluster& c, std::uint64_t store,
                                                 std::uint64_t id) {
  for (auto& r : c.store(store).regions()) {
    if (r.region_id == id) return r;
  }
  return std::nullopt;
}

// Splits region `whole` at `at` on its leader; returns the new right region.
std::uint64_t split_at(LocalCluster& c, std::uint64_t whole, const std::string& at) {
  const auto leader = c.wait_leader(10s, whole);
  REQUIRE(leader != 0);
  REQUIRE(run_split(c, leader, whole, {at}).is_ok());
  c.sim().run_for(2s);
  auto right = region_holding(c, leader, at);
  REQUIRE(right);
  REQUIRE(c.wait_leader(10s, right->region_id) != 0);
  return right->region_id;
}

// Every running store holds exactly one region, `id`, over all keys.
void check_single_region(LocalCluster& c, std::uint64_t id) {
  for (auto s : c.store_ids()) {
    INFO("store " << s);
    auto rs = c.store(s).regions();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].region_id == id);
    CHECK(rs[0].start_key.empty());
    CHECK(rs[0].end_key.empty());
    CHECK(!rs[0].merging);
  }
}

// Drops frames to `to` that carry a raft message or snapshot chunk of
// `region` (decoding them as the store would).
kvcore::MemoryNetwork::FilterId hold_region(LocalCluster& c, std::uint64_t to,
                                            std::uint64_t region) {
  return c.net().add_filter([to, region](std::uint64_t, std::uint64_t dst, std::string_view f) {
    if (dst != to) return true;
    kvcore::raftstore::FrameReject reject{};
    auto frame = kvcore::raftstore::decode_frame(f, {1, to, std::size_t{64} << 20}, &reject);
    if (!frame.is_ok()) return true;
    for (const auto& m : frame->messages) {
      if (m.region_id == region) return false;
    }
    for (const auto& ch : frame->chunks) {
      if (ch.region_id == region) return false;
    }
    return true;
  });
}

}  // namespace

TEST_CASE("two adjacent regions merge under concurrent writes; acknowledged writes survive") {
  for (auto seed : kvcore::test::test_seeds(900, 3)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 100; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    const auto right = split_at(c, 1, key(50));
    const auto src_leader = c.leader(right);

    // Writes to both halves while the merge goes on.
    std::map<int, Status> during;
    for (int i = 0; i < 60; ++i) {
      const int k = i % 2 == 0 ? 100 + i : i;  // even: the source (right), odd: the target
      const auto region = k >= 50 ? right : 1;
      const auto to = c.leader(region);
      REQUIRE(to != 0);
      kvcore::RawBatch b;
      b.put(key(k), val(k, 1));
      c.store(to).async_write(std::move(b), {},
                              [&during, k](Status s) { during.emplace(k, std::move(s)); });
    }
    bool merged = false;
    Status ms;
    c.store(src_leader).async_merge_region(right, 1, {}, [&](Status s) {
      ms = std::move(s);
      merged = true;
    });
    REQUIRE(c.sim().run_until([&] { return merged && during.size() == 60; }, 15s));
    INFO("merge: " << ms.to_string());
    REQUIRE(ms.is_ok());
    c.sim().run_for(2s);

    check_single_region(c, 1);
    for (auto s : c.store_ids()) {
      INFO("store " << s);
      // Split: both at 2; PrepareMerge: the source at 3; the target takes
      // max(3, 2) + 1.
      CHECK(c.store(s).regions()[0].version == 4);
      CHECK(c.store(s).metric(kPrepared) == 1);
      CHECK(c.store(s).metric(kCommitted) == 1);
      CHECK(c.store(s).metric(kRolledBack) == 0);
    }
    // Acknowledged writes read back; refused ones had no effect.
    int acknowledged = 0;
    for (auto& [k, s] : during) {
      INFO("key " << k << ": " << s.to_string());
      auto got = c.get_any(key(k));
      REQUIRE(got.is_ok());
      if (s.is_ok()) {
        ++acknowledged;
        CHECK(got->value_or("<none>") == val(k, 1));
      } else {
        CHECK((s.sub_code() == SubCode::kRegionMerging || s.sub_code() == SubCode::kEpochNotMatch ||
               s.sub_code() == SubCode::kRegionNotFound || s.sub_code() == SubCode::kNotLeader ||
               s.sub_code() == SubCode::kStaleCommand));
        CHECK(got->value_or(k < 100 ? val(k) : "<none>") == (k < 100 ? val(k) : "<none>"));
      }
    }
    CHECK(acknowledged > 0);
    for (int i = 0; i < 100; i += 3) {
      if (during.count(i) && during[i].is_ok()) continue;
      CHECK(c.get_any(key(i))->value_or("<none>") == val(i));
    }
    // The merged range takes writes on both sides of the old boundary.
    REQUIRE(c.put_any(key(75), "after").is_ok());
    REQUIRE(c.put_any(key(25), "after").is_ok());
    CHECK(c.get_any(key(75))->value_or("") == "after");
    auto scan = c.scan_any(key(0), key(100));
    REQUIRE(scan.is_ok());
    CHECK(scan->size() == 100);
  }
}

TEST_CASE("repeated split and merge cycles with crashes in between") {
  for (auto seed : kvcore::test::test_seeds(910, 2)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    REQUIRE(c.wait_leader() != 0);
    std::uint64_t whole = 1;
    std::map<int, std::string> want;
    for (int cycle = 0; cycle < 4; ++cycle) {
      INFO("cycle " << cycle);
      for (int i = 0; i < 100; i += 4) {
        REQUIRE(c.put_any(key(i + cycle % 4), val(i, cycle)).is_ok());
        want[i + cycle % 4] = val(i, cycle);
      }
      const auto right = split_at(c, whole, key(50));
      // A crash between the split and the merge.
      const std::uint64_t crashed = 1 + (cycle % c.size());
      c.crash(crashed);
      REQUIRE(c.restart(crashed).is_ok());
      c.sim().run_for(3s);
      for (int i = 1; i < 100; i += 10) {
        REQUIRE(c.put_any(key(i), val(i, cycle)).is_ok());
        want[i] = val(i, cycle);
      }
      // Even cycles merge the right half into the left, odd ones the left
      // into the right.
      const std::uint64_t source = cycle % 2 == 0 ? right : whole;
      const std::uint64_t target = cycle % 2 == 0 ? whole : right;
      const auto leader = c.wait_leader(10s, source);
      REQUIRE(leader != 0);
      Status s = run_merge(c, leader, source, target);
      REQUIRE(s.is_ok());
      whole = target;
      c.sim().run_for(2s);
      check_single_region(c, whole);
      // And a crash after it: of one store, or of all of them.
      if (cycle == 2) {
        for (auto id : c.store_ids()) c.crash(id);
        for (auto id : c.store_ids()) REQUIRE(c.restart(id).is_ok());
      } else {
        c.crash(crashed);
        REQUIRE(c.restart(crashed).is_ok());
      }
      c.sim().run_for(3s);
      check_single_region(c, whole);
      REQUIRE(c.wait_leader(10s, whole) != 0);
      for (const auto& [k, v] : want) CHECK(c.get_any(key(k))->value_or("<none>") == v);
    }
  }
}

TEST_CASE("merges that cannot be done are refused") {
  const auto seed = kvcore::test::test_seed(920);
  INFO(replay_hint(seed));
  LocalCluster c(LocalClusterOptions{.seed = seed});
  REQUIRE(c.wait_leader() != 0);
  const auto mid = split_at(c, 1, key(50));
  const auto right = split_at(c, mid, key(75));
  const auto leader = c.wait_leader(10s, mid);
  REQUIRE(leader != 0);

  CHECK(run_merge(c, leader, mid, mid).code() == Code::kInvalidArgument);
  CHECK(run_merge(c, leader, mid, 4242).sub_code() == SubCode::kRegionNotFound);
  // Not adjacent: [.., 50) and [75, ..).
  const auto l1 = c.wait_leader(10s, 1);
  CHECK(run_merge(c, l1, 1, right).code() == Code::kInvalidArgument);
  // Not on the source's leader.
  for (auto id : c.store_ids()) {
    if (id != leader) CHECK(run_merge(c, id, mid, 1).sub_code() == SubCode::kNotLeader);
  }

  // A peer further behind than merge_max_log_gap.
  std::uint64_t lagging = 0;
  for (auto id : c.store_ids()) {
    if (id != leader) lagging = id;
  }
  c.net().isolate(lagging);
  for (int i = 0; i < 140; ++i) REQUIRE(c.put(leader, key(50 + i % 25), val(i)).is_ok());
  Status s = run_merge(c, leader, mid, 1);
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK(c.store(leader).metric(kPrepared) == 0);
  // Nothing changed: the region still serves.
  REQUIRE(c.put(leader, key(60), "still").is_ok());

  // Once the peer has caught up, the same merge goes through.
  c.net().heal();
  c.sim().run_for(3s);
  const auto now_leader = c.wait_leader(10s, mid);
  REQUIRE(run_merge(c, now_leader, mid, 1).is_ok());
  c.sim().run_for(2s);
  CHECK(c.get_any(key(60))->value_or("") == "still");
}

TEST_CASE("a merge is refused while a membership change is pending on the source") {
  for (auto seed : kvcore::test::test_seeds(925, 3)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 100; i += 10) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    const auto target = split_at(c, 1, key(50));
    const auto leader = c.wait_leader(10s, 1);
    REQUIRE(leader != 0);
    // The followers hear nothing, so the change stays proposed, uncommitted.
    std::vector<std::uint64_t> followers;
    for (auto id : c.store_ids()) {
      if (id != leader) followers.push_back(id);
    }
    for (auto f : followers) c.net().isolate(f);
    bool change_done = false;
    Status change;
    c.store(leader).async_change_peers(
        1, {{kvcore::PeerChangeRequest::Kind::kDemoteVoter, followers[0]}}, {},
        [&](Status s) {
          change = std::move(s);
          change_done = true;
        });
    c.sim().run_for(50ms);
    REQUIRE_FALSE(change_done);
    const Status s = run_merge(c, leader, 1, target, 2s);
    INFO(s.to_string());
    CHECK(s.code() == Code::kFailedPrecondition);
    CHECK(c.store(leader).metric(kPrepared) == 0);

    // The change then completes, and the source still serves.
    c.net().heal();
    REQUIRE(c.sim().run_until([&] { return change_done; }, 15s));
    CHECK(change.is_ok());
    REQUIRE(c.put_any(key(7), "after").is_ok());
    CHECK(c.get_any(key(7))->value_or("") == "after");
    CHECK(c.get_any(key(10))->value_or("") == val(10));
  }
}

TEST_CASE("a merge whose target changed rolls back, and the source serves again") {
  for (auto seed : kvcore::test::test_seeds(930, 2)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 100; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    const auto target = split_at(c, 1, key(50));
    const std::uint64_t source = 1;
    // The source led on A, the target on B != A.
    const auto a = c.leader(source);
    std::uint64_t b = a == 1 ? 2 : 1;
    const auto tl = c.leader(target);
    REQUIRE(c.store(tl).transfer_leader(target, b).is_ok());
    REQUIRE(c.sim().run_until([&] { return c.leader(target) == b; }, 5s));
    // B never hears of the source's PrepareMerge, so no store proposes the
    // CommitMerge (only B leads the target).
    auto held = hold_region(c, b, source);

    bool done = false;
    Status ms;
    c.store(a).async_merge_region(source, target, {}, [&](Status s) {
      ms = std::move(s);
      done = true;
    });
    REQUIRE(c.sim().run_until(
        [&] {
          auto r = region_by_id(c, a, source);
          return r && r->merging;
        },
        5s));
    // From PrepareMerge on the source serves nothing.
    auto read = c.get(a, key(10));
    REQUIRE(!read.is_ok());
    CHECK(read.status().sub_code() == SubCode::kRegionMerging);
    CHECK(c.put(a, key(10), "x").sub_code() == SubCode::kRegionMerging);
    CHECK(!region_by_id(c, a, source)->lease_valid);

    // The target changes: a split.
    REQUIRE(run_split(c, b, target, {key(80)}).is_ok());
    REQUIRE(c.sim().run_until([&] { return done; }, 10s));
    CHECK(ms.code() == Code::kAborted);
    c.net().remove_filter(held);
    c.sim().run_for(3s);

    for (auto id : c.store_ids()) {
      INFO("store " << id);
      auto r = region_by_id(c, id, source);
      REQUIRE(r);
      CHECK(!r->merging);
      CHECK(r->end_key == key(50));
      CHECK(r->version == 4);  // 2 after the split, 3 prepared, 4 rolled back
      CHECK(c.store(id).metric(kRolledBack) == 1);
      CHECK(c.store(id).metric(kCommitted) == 0);
      CHECK(c.store(id).regions().size() == 3);
    }
    // The source serves again: writes, and reads under its lease.
    const auto l = c.wait_leader(10s, source);
    REQUIRE(l != 0);
    REQUIRE(c.put(l, key(10), "back").is_ok());
    const auto lease_before = c.store(l).metric("kvcore_reads_total{path=\"lease\"}");
    auto got = c.get(l, key(10));
    REQUIRE(got.is_ok());
    CHECK(got->value_or("") == "back");
    CHECK(c.store(l).metric("kvcore_reads_total{path=\"lease\"}") == lease_before + 1);
    for (int i = 0; i < 50; i += 7) CHECK(c.get_any(key(i))->value_or("") == val(i));
  }
}

TEST_CASE("a source peer that missed the merge catches up from the CommitMerge's entries") {
  for (auto seed : kvcore::test::test_seeds(940, 2)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    REQUIRE(c.wait_leader() != 0);
    const auto source = split_at(c, 1, key(50));
    const auto leader = c.leader(source);
    std::uint64_t lagging = leader == 3 ? 2 : 3;
    // The lagging store hears nothing of the source from here on: it misses
    // the last writes and the PrepareMerge, and learns them only from the
    // CommitMerge the target replicates.
    auto held = hold_region(c, lagging, source);
    for (int i = 50; i < 60; ++i) REQUIRE(c.put(leader, key(i), val(i, 7)).is_ok());
    if (c.leader(1) == lagging) {
      REQUIRE(c.store(lagging).transfer_leader(1, leader).is_ok());
      REQUIRE(c.sim().run_until([&] { return c.leader(1) == leader; }, 5s));
    }
    REQUIRE(run_merge(c, leader, source, 1).is_ok());
    c.sim().run_for(2s);
    CHECK(c.store(lagging).metric("kvcore_merge_catch_ups_total") == 1);
    c.net().remove_filter(held);
    check_single_region(c, 1);
    // The lagging store serves the merged range with the source's last
    // writes once it leads.
    REQUIRE(c.store(c.leader(1)).transfer_leader(1, lagging).is_ok());
    REQUIRE(c.sim().run_until([&] { return c.leader(1) == lagging; }, 5s));
    for (int i = 50; i < 60; ++i) CHECK(c.get(lagging, key(i))->value_or("") == val(i, 7));
  }
}

TEST_CASE("a source peer down during the merge ends as a tombstone after restart") {
  for (auto seed : kvcore::test::test_seeds(950, 2)) {
    INFO(replay_hint(seed));
    LocalClusterOptions o{.seed = seed};
    o.tune = [](kvcore::StoreOptions& s) {
      s.raft_log_gc_count_limit = 20;
      s.raft_log_gc_ticks = 2;
    };
    LocalCluster c(o);
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 100; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    const auto source = split_at(c, 1, key(50));
    const auto leader = c.leader(source);
    const std::uint64_t down = leader == 3 ? 2 : 3;
    c.stop(down);
    c.sim().run_for(1s);
    REQUIRE(c.wait_leader(10s, 1) != 0);
    REQUIRE(run_merge(c, c.wait_leader(10s, source), source, 1).is_ok());
    // Enough writes that the merged region's log is compacted past the
    // CommitMerge: the restarted store gets the merged region by snapshot,
    // which finds the old source peer stale.
    for (int i = 0; i < 60; ++i) REQUIRE(c.put_any(key(i), val(i, 9)).is_ok());
    c.sim().run_for(2s);
    REQUIRE(c.restart(down).is_ok());
    c.sim().run_for(8s);
    check_single_region(c, 1);
    CHECK(c.store(down).metric("kvcore_peers_destroyed_total") == 1);
    // It got there by the merged region's snapshot, which found the old
    // source peer covered, not by replaying the CommitMerge.
    CHECK(c.store(down).metric("kvcore_snapshots_applied_total") >= 1);
    CHECK(c.store(down).metric("kvcore_merge_catch_ups_total") == 0);
    REQUIRE(c.store(c.leader(1)).transfer_leader(1, down).is_ok());
    REQUIRE(c.sim().run_until([&] { return c.leader(1) == down; }, 5s));
    for (int i = 0; i < 100; i += 9) {
      CHECK(c.get(down, key(i))->value_or("") == (i < 60 ? val(i, 9) : val(i)));
    }
    // Late messages for the merged source are dropped, and it stays gone
    // across another restart.
    c.crash(down);
    REQUIRE(c.restart(down).is_ok());
    c.sim().run_for(3s);
    check_single_region(c, 1);
  }
}

TEST_CASE("requests routed to a merged region get a routing error, then succeed re-routed") {
  const auto seed = kvcore::test::test_seed(960);
  INFO(replay_hint(seed));
  LocalCluster c(LocalClusterOptions{.seed = seed});
  REQUIRE(c.wait_leader() != 0);
  const auto source = split_at(c, 1, key(50));
  const auto leader = c.leader(source);
  if (c.leader(1) != leader) {
    REQUIRE(c.store(c.leader(1)).transfer_leader(1, leader).is_ok());
    REQUIRE(c.sim().run_until([&] { return c.leader(1) == leader; }, 5s));
  }
  // A write proposed to the source before its PrepareMerge applies gets an
  // epoch error (or is refused as merging), never applied.
  std::optional<Status> early;
  kvcore::RawBatch b;
  b.put(key(70), "early");
  bool merged = false;
  c.store(leader).async_merge_region(source, 1, {}, [&](Status) { merged = true; });
  c.store(leader).async_write(std::move(b), {}, [&](Status s) { early = std::move(s); });
  REQUIRE(c.sim().run_until([&] { return merged && early.has_value(); }, 10s));
  if (!early->is_ok()) {
    CHECK((early->sub_code() == SubCode::kEpochNotMatch ||
           early->sub_code() == SubCode::kRegionMerging));
  }
  c.sim().run_for(1s);
  // The merged region now serves the key; requests route to it.
  REQUIRE(c.put(leader, key(70), "late").is_ok());
  CHECK(c.get(leader, key(70))->value_or("") == "late");
  // Asking for the merged-away region by id: RegionNotFound.
  CHECK(run_merge(c, leader, source, 1).sub_code() == SubCode::kRegionNotFound);
  CHECK(c.store(leader).transfer_leader(source, 1).sub_code() == SubCode::kRegionNotFound);
}

TEST_CASE("merge and restart on every engine") {
  for (auto engine : kvcore::built_engines()) {
    const auto seed = kvcore::test::test_seed(970);
    INFO(replay_hint(seed) << " engine " << kvcore::to_string(engine));
    LocalCluster c({.seed = seed, .engine = engine});
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 60; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    const auto right = split_at(c, 1, key(30));
    REQUIRE(run_merge(c, c.wait_leader(10s, 1), 1, right).is_ok());
    c.sim().run_for(2s);
    check_single_region(c, right);
    for (auto id : c.store_ids()) c.crash(id);
    for (auto id : c.store_ids()) REQUIRE(c.restart(id).is_ok());
    c.sim().run_for(3s);
    check_single_region(c, right);
    for (int i = 0; i < 60; i += 5) CHECK(c.get_any(key(i))->value_or("") == val(i));
    REQUIRE(c.put_any(key(3), "x").is_ok());
  }
}

TEST_CASE("a merge is refused while a split is not yet on every peer") {
  const auto seed = kvcore::test::test_seed(980);
  INFO(replay_hint(seed));
  LocalCluster c(LocalClusterOptions{.seed = seed});
  REQUIRE(c.wait_leader() != 0);
  const auto source = split_at(c, 1, key(50));
  const auto leader = c.leader(source);
  std::uint64_t lagging = leader == 3 ? 2 : 3;
  c.net().isolate(lagging);
  // The split commits on two stores; the third has not got it.
  REQUIRE(run_split(c, leader, source, {key(70)}).is_ok());
  Status s = run_merge(c, leader, source, 1);
  INFO(s.to_string());
  CHECK(s.code() == Code::kFailedPrecondition);
  CHECK(c.store(leader).metric(kPrepared) == 0);
  c.net().heal();
  c.sim().run_for(3s);
  REQUIRE(run_merge(c, c.wait_leader(10s, source), source, 1).is_ok());
  c.sim().run_for(2s);
  for (auto id : c.store_ids()) {
    INFO("store " << id);
    CHECK(c.store(id).regions().size() == 2);
    CHECK(region_by_id(c, id, 1)->end_key == key(70));
  }
}

TEST_CASE("a source peer that restarts in kMerging learns the merge from its target") {
  for (auto seed : kvcore::test::test_seeds(990, 3)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 100; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    const auto source = split_at(c, 1, key(50));
    const auto leader = c.leader(source);
    const std::uint64_t behind = leader == 3 ? 2 : 3;
    if (c.leader(1) == behind) {
      REQUIRE(c.store(behind).transfer_leader(1, leader).is_ok());
      REQUIRE(c.sim().run_until([&] { return c.leader(1) == leader; }, 5s));
    }
    // The target hears nothing from its leader's store for a while, so the
    // CommitMerge cannot commit before `behind` has applied the PrepareMerge
    // and gone down.
    const std::uint64_t third = 6 - leader - behind;
    auto held = hold_region(c, behind, 1);
    auto held3 = hold_region(c, third, 1);
    bool done = false;
    Status ms;
    c.store(leader).async_merge_region(source, 1, {}, [&](Status s) {
      ms = std::move(s);
      done = true;
    });
    REQUIRE(c.sim().run_until(
        [&] {
          auto r = region_by_id(c, behind, source);
          return r && r->merging;
        },
        5s));
    CHECK(!done);
    c.crash(behind);
    c.net().remove_filter(held3);
    REQUIRE(c.sim().run_until([&] { return done; }, 10s));
    REQUIRE(ms.is_ok());
    c.net().remove_filter(held);
    REQUIRE(c.restart(behind).is_ok());
    // It restarts with its source peer still merging.
    auto r = region_by_id(c, behind, source);
    REQUIRE(r);
    CHECK(r->merging);
    c.sim().run_for(3s);
    check_single_region(c, 1);
    // The target's log brought it the CommitMerge; its source peer already
    // held the PrepareMerge.
    CHECK(c.store(behind).metric(kCommitted) == 1);
    CHECK(c.store(behind).metric("kvcore_merge_catch_ups_total") == 0);
    REQUIRE(c.store(c.leader(1)).transfer_leader(1, behind).is_ok());
    REQUIRE(c.sim().run_until([&] { return c.leader(1) == behind; }, 5s));
    for (int i = 0; i < 100; i += 7) CHECK(c.get(behind, key(i))->value_or("") == val(i));
  }
}

TEST_CASE("the store leading the target proposes the CommitMerge when the source leads elsewhere") {
  for (auto seed : kvcore::test::test_seeds(1000, 2)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 100; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    const auto target = split_at(c, 1, key(50));
    const auto a = c.leader(1);
    const std::uint64_t b = a == 1 ? 2 : 1;
    if (c.leader(target) != b) {
      REQUIRE(c.store(c.leader(target)).transfer_leader(target, b).is_ok());
      REQUIRE(c.sim().run_until([&] { return c.leader(target) == b; }, 5s));
    }
    REQUIRE(c.leader(1) == a);
    REQUIRE(run_merge(c, a, 1, target).is_ok());
    c.sim().run_for(2s);
    check_single_region(c, target);
    for (int i = 0; i < 100; i += 6) CHECK(c.get_any(key(i))->value_or("") == val(i));
  }
}

TEST_CASE("a pending merge is rolled back by the source's next leader after a crash") {
  for (auto seed : kvcore::test::test_seeds(1010, 2)) {
    INFO(replay_hint(seed));
    LocalCluster c(LocalClusterOptions{.seed = seed});
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 100; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    const auto target = split_at(c, 1, key(50));
    const std::uint64_t source = 1;
    const auto a = c.leader(source);
    const std::uint64_t b = a == 1 ? 2 : 1;
    if (c.leader(target) != b) {
      REQUIRE(c.store(c.leader(target)).transfer_leader(target, b).is_ok());
      REQUIRE(c.sim().run_until([&] { return c.leader(target) == b; }, 5s));
    }
    auto held = hold_region(c, b, source);
    bool done = false;
    c.store(a).async_merge_region(source, target, {}, [&](Status) { done = true; });
    REQUIRE(c.sim().run_until(
        [&] {
          auto r = region_by_id(c, a, source);
          return r && r->merging;
        },
        5s));
    // The target changes everywhere but on A, which then goes down with its
    // merge pending.
    c.net().isolate(a);
    REQUIRE(run_split(c, b, target, {key(80)}).is_ok());
    c.sim().run_for(1s);
    c.crash(a);
    CHECK(done);  // the caller was answered (Unavailable) when A stopped
    c.net().heal();
    c.net().remove_filter(held);
    // B or C leads the source next, sees the target moved on, rolls back.
    REQUIRE(c.sim().run_until(
        [&] {
          for (auto id : c.store_ids()) {
            if (!c.running(id)) continue;
            auto r = region_by_id(c, id, source);
            if (!r || r->merging) return false;
          }
          return true;
        },
        10s));
    REQUIRE(c.restart(a).is_ok());
    c.sim().run_for(3s);
    for (auto id : c.store_ids()) {
      INFO("store " << id);
      auto r = region_by_id(c, id, source);
      REQUIRE(r);
      CHECK(!r->merging);
      CHECK(r->version == 4);
      CHECK(c.store(id).regions().size() == 3);
    }
    REQUIRE(c.put_any(key(5), "again").is_ok());
    CHECK(c.get_any(key(5))->value_or("") == "again");
  }
}
