// Three-store clusters on the deterministic runtime: replication, failover,
// snapshots, leases, restarts and determinism.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

#include "kvcore/store.hpp"
#include "local_cluster.hpp"
#include "raftstore/codec.hpp"
#include "seed.hpp"

using namespace std::chrono_literals;
using kvcore::Code;
using kvcore::NotLeaderDetail;
using kvcore::StoreOptions;
using kvcore::SubCode;
using kvcore::test::LocalCluster;
using kvcore::test::LocalClusterOptions;
using kvcore::test::replay_hint;
using kvcore::test::test_seed;

namespace {

std::string key(int i) { return fmt::format("key{:05d}", i); }
std::string val(int i, int round = 0) { return fmt::format("value-{}-{}", i, round); }

kvcore::RegionStatus region_of(kvcore::Store& s) {
  auto r = s.regions();
  REQUIRE(r.size() == 1);
  return r.front();
}

std::uint64_t other_than(const LocalCluster& c, std::uint64_t a, std::uint64_t b = 0) {
  for (auto id : c.store_ids()) {
    if (id != a && id != b) return id;
  }
  return 0;
}

}  // namespace

TEST_CASE("three stores elect a leader and replicate writes to every store") {
  const auto seed = test_seed(11);
  INFO(replay_hint(seed));
  LocalCluster c({.stores = 3, .seed = seed});
  const auto leader = c.wait_leader();
  REQUIRE(leader != 0);
  for (int i = 0; i < 50; ++i) REQUIRE(c.put(leader, key(i), val(i)).is_ok());
  REQUIRE(c.del(leader, key(7)).is_ok());
  c.sim().run_for(2s);

  const auto applied = region_of(c.store(leader)).applied_index;
  for (auto id : c.store_ids()) {
    INFO("store " << id);
    CHECK(region_of(c.store(id)).applied_index == applied);
    CHECK(region_of(c.store(id)).leader_store == leader);
  }
  // Every follower holds the data: stop the others in turn and read it back
  // from each store once it leads.
  for (auto id : c.store_ids()) {
    if (id == leader) continue;
    REQUIRE(c.store(c.leader()).transfer_leader(1, id).is_ok());
    c.sim().run_for(3s);
    REQUIRE(c.leader() == id);
    for (int i = 0; i < 50; ++i) {
      auto got = c.get(id, key(i));
      REQUIRE(got.is_ok());
      if (i == 7) {
        CHECK(!got->has_value());
      } else {
        CHECK(got->value_or("<none>") == val(i));
      }
    }
  }
}

TEST_CASE("a follower answers NotLeader with the leader's store") {
  const auto seed = test_seed(12);
  INFO(replay_hint(seed));
  LocalCluster c({.seed = seed});
  const auto leader = c.wait_leader();
  REQUIRE(leader != 0);
  c.sim().run_for(1s);
  const auto follower = other_than(c, leader);
  auto s = c.put(follower, "k", "v");
  REQUIRE(s.code() == Code::kUnavailable);
  REQUIRE(s.sub_code() == SubCode::kNotLeader);
  REQUIRE(s.detail_as<NotLeaderDetail>() != nullptr);
  CHECK(s.detail_as<NotLeaderDetail>()->leader_store_id == leader);
  auto g = c.get(follower, "k");
  REQUIRE(!g.is_ok());
  CHECK(g.status().sub_code() == SubCode::kNotLeader);
  CHECK(c.store(follower).metric("kvcore_not_leader_total") >= 2);
}

TEST_CASE("raw KV: batches, scans forward and reverse with limits, delete_range") {
  const auto seed = test_seed(13);
  INFO(replay_hint(seed));
  LocalCluster c({.seed = seed});
  const auto l = c.wait_leader();
  REQUIRE(l != 0);
  kvcore::RawBatch b;
  for (int i = 0; i < 20; ++i) b.put(key(i), val(i));
  REQUIRE(c.write(l, std::move(b)).is_ok());

  auto all = c.scan(l, "", "", 0, false);
  REQUIRE(all.is_ok());
  REQUIRE(all->size() == 20);
  CHECK(all->front().key == key(0));
  auto some = c.scan(l, key(5), key(15), 3, false);
  REQUIRE(some.is_ok());
  REQUIRE(some->size() == 3);
  CHECK((*some)[0].key == key(5));
  CHECK((*some)[2].key == key(7));
  auto rev = c.scan(l, key(5), key(15), 4, true);
  REQUIRE(rev.is_ok());
  REQUIRE(rev->size() == 4);
  CHECK((*rev)[0].key == key(14));
  CHECK((*rev)[3].key == key(11));

  kvcore::RawBatch d;
  d.delete_range(key(3), key(17));
  d.put("zz", "last");
  REQUIRE(c.write(l, std::move(d)).is_ok());
  auto after = c.scan(l, "", "", 0, false);
  REQUIRE(after.is_ok());
  CHECK(after->size() == 20 - 14 + 1);
  CHECK(c.get(l, key(3))->has_value() == false);
  CHECK(c.get(l, key(17))->value_or("") == val(17));
  CHECK(c.get(l, "zz")->value_or("") == "last");
}

TEST_CASE("leader crash: every acknowledged write survives and a new leader serves") {
  for (auto seed : kvcore::test::test_seeds(100, 3)) {
    INFO(replay_hint(seed));
    LocalCluster c({.seed = seed});
    const auto leader = c.wait_leader();
    REQUIRE(leader != 0);
    // Writes in flight when the leader dies: some are acknowledged, some
    // are not; every acknowledged one must survive.
    std::map<int, kvcore::Status> acked;
    for (int i = 0; i < 40; ++i) {
      kvcore::RawBatch b;
      b.put(key(i), val(i));
      c.store(leader).async_write(
          std::move(b), {}, [&acked, i](kvcore::Status s) { acked.emplace(i, std::move(s)); });
      if (i % 8 == 0) c.sim().run_for(20ms);
    }
    c.crash(leader);
    const auto next = c.wait_leader(10s);
    REQUIRE(next != 0);
    REQUIRE(next != leader);
    int ok = 0;
    for (auto& [i, s] : acked) {
      if (!s.is_ok()) continue;
      ++ok;
      auto got = c.get_any(key(i));
      REQUIRE(got.is_ok());
      CHECK(got->value_or("<lost>") == val(i));
    }
    CHECK(ok > 0);
    REQUIRE(c.put_any("after", "crash").is_ok());
    // The old leader comes back and catches up.
    REQUIRE(c.restart(leader).is_ok());
    c.sim().run_for(3s);
    CHECK(region_of(c.store(leader)).applied_index == region_of(c.store(c.leader())).applied_index);
  }
}

TEST_CASE("a follower lagging past log compaction catches up by snapshot") {
  const auto seed = test_seed(14);
  INFO(replay_hint(seed));
  LocalClusterOptions o{.seed = seed};
  o.tune = [](StoreOptions& s) {
    s.raft_log_gc_count_limit = 20;
    s.raft_log_gc_ticks = 2;
    s.snapshot_chunk_bytes = 512;  // many chunks
  };
  LocalCluster c(o);
  const auto leader = c.wait_leader();
  REQUIRE(leader != 0);
  const auto lagging = other_than(c, leader);
  c.net().isolate(lagging);
  for (int i = 0; i < 120; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
  c.sim().run_for(2s);
  const auto lr = region_of(c.store(leader));
  const auto fr = region_of(c.store(lagging));
  REQUIRE(lr.first_log_index > fr.last_log_index + 1);  // its next entry is gone

  c.net().heal();
  c.sim().run_for(5s);
  CHECK(c.store(lagging).metric("kvcore_snapshots_applied_total") >= 1);
  CHECK(c.store(leader).metric("kvcore_snapshot_chunks_sent_total") > 1);
  CHECK(region_of(c.store(lagging)).applied_index == region_of(c.store(leader)).applied_index);

  // The snapshot carried the data: let the caught-up store lead and read.
  REQUIRE(c.store(c.leader()).transfer_leader(1, lagging).is_ok());
  c.sim().run_for(3s);
  REQUIRE(c.leader() == lagging);
  for (int i = 0; i < 120; i += 7) CHECK(c.get(lagging, key(i))->value_or("") == val(i));
  // And it survives a restart of the caught-up store.
  c.crash(lagging);
  REQUIRE(c.restart(lagging).is_ok());
  c.sim().run_for(3s);
  CHECK(c.get_any(key(119))->value_or("") == val(119));
}

TEST_CASE("a partitioned old leader stops lease reads when its lease runs out") {
  const auto seed = test_seed(15);
  INFO(replay_hint(seed));
  LocalCluster c({.seed = seed});
  const auto old = c.wait_leader();
  REQUIRE(old != 0);
  REQUIRE(c.put(old, "x", "1").is_ok());
  // A read right after a commit is a lease read.
  const auto lease_before = c.store(old).metric("kvcore_reads_total");
  REQUIRE(c.get(old, "x")->value_or("") == "1");
  CHECK(c.store(old).metric("kvcore_reads_total") == lease_before + 1);
  CHECK(region_of(c.store(old)).lease_valid);

  c.net().isolate(old);
  // Within its lease the isolated leader still serves reads locally (no
  // other leader can exist yet) ...
  c.sim().run_for(300ms);
  const auto lease_reads = [&] {
    return c.store(old).metric("kvcore_reads_total{path=\"lease\"}");
  };
  const auto before = lease_reads();
  REQUIRE(c.get(old, "x", 50ms)->value_or("") == "1");
  CHECK(lease_reads() == before + 1);
  // ... and stops once the lease (max_lease = 900 ms from the round that
  // proposed the last commit) has run out. The others cannot elect anyone
  // before an election timeout (1 s or more) after they last heard from it,
  // which was after that round.
  c.sim().run_for(650ms);
  const auto reads_before = lease_reads();
  auto late = c.get(old, "x", 100ms);
  CHECK(!late.is_ok());
  CHECK(lease_reads() == reads_before);
  std::uint64_t fresh = 0;
  REQUIRE(c.sim().run_until(
      [&] {
        for (auto id : c.store_ids()) {
          if (id != old && region_of(c.store(id)).is_leader) fresh = id;
        }
        return fresh != 0;
      },
      10s));
  REQUIRE(c.put(fresh, "x", "2").is_ok());
  // The old leader's lease has long run out (its max_lease is below the
  // election timeout the others waited): it must not answer "1".
  CHECK(!region_of(c.store(old)).lease_valid);
  auto stale = c.get(old, "x", 1s);
  CHECK(!stale.is_ok());
  CHECK(c.get(fresh, "x")->value_or("") == "2");
  c.net().heal();
  c.sim().run_for(3s);
  CHECK(c.leader() == fresh);
}

TEST_CASE("lease expiry is measured on the simulated clock") {
  const auto seed = test_seed(16);
  INFO(replay_hint(seed));
  LocalClusterOptions o{.seed = seed};
  o.tune = [](StoreOptions& s) { s.max_lease = std::chrono::milliseconds(500); };
  LocalCluster c(o);
  const auto l = c.wait_leader();
  REQUIRE(l != 0);
  REQUIRE(c.put(l, "k", "v").is_ok());
  CHECK(region_of(c.store(l)).lease_valid);
  const auto lease_reads = [&] { return c.store(l).metric("kvcore_reads_total{path=\"lease\"}"); };
  const auto before = lease_reads();
  REQUIRE(c.get(l, "k")->value_or("") == "v");
  CHECK(lease_reads() == before + 1);
  // With no writes for longer than the lease, a read needs a ReadIndex round
  // (and renews the lease).
  c.sim().run_for(2s);
  REQUIRE(c.get(l, "k")->value_or("") == "v");
  CHECK(lease_reads() == before + 1);
  CHECK(c.store(l).metric("kvcore_reads_total{path=\"read_index\"}") >= 1);
}

TEST_CASE("stores restart from their directories") {
  for (auto engine : kvcore::built_engines()) {
    const auto seed = test_seed(17);
    INFO(replay_hint(seed) << " engine " << kvcore::to_string(engine));
    LocalCluster c({.seed = seed, .engine = engine});
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 30; ++i) REQUIRE(c.put_any(key(i), val(i)).is_ok());
    for (auto id : c.store_ids()) c.stop(id);
    for (auto id : c.store_ids()) REQUIRE(c.restart(id).is_ok());
    REQUIRE(c.wait_leader() != 0);
    for (int i = 0; i < 30; ++i) CHECK(c.get_any(key(i))->value_or("") == val(i));
    REQUIRE(c.put_any("more", "x").is_ok());
  }
}

TEST_CASE("bad frames are refused and counted while the cluster keeps serving") {
  const auto seed = test_seed(18);
  INFO(replay_hint(seed));
  LocalCluster c({.seed = seed});
  const auto l = c.wait_leader();
  REQUIRE(l != 0);
  REQUIRE(c.put(l, "a", "1").is_ok());
  kvcore::Store& s = c.store(l);

  // Capture a real frame to mutate.
  std::string sample;
  auto fid = c.net().add_filter([&](std::uint64_t, std::uint64_t to, std::string_view f) {
    if (to == l && sample.empty()) sample = std::string(f);
    return true;
  });
  c.sim().run_for(1s);
  c.net().remove_filter(fid);
  REQUIRE(!sample.empty());

  kvcore::test::Rng rng(seed);
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    if (!s.deliver(rng.bytes(1 + rng.next() % 300)).is_ok()) ++refused;
  }
  CHECK(refused == 200);
  for (std::size_t n = 1; n < sample.size(); n += 3) {
    (void)s.deliver(std::string_view(sample).substr(0, n));
  }
  for (int i = 0; i < 200; ++i) {
    std::string m = sample;
    m[rng.next() % m.size()] ^= static_cast<char>(1 + rng.next() % 255);
    (void)s.deliver(m);  // may or may not parse; must not crash or corrupt
  }
  CHECK(!s.deliver(std::string(c.options(l).max_frame_bytes + 1, 'x')).is_ok());
  const auto bad_total = s.metric("kvcore_bad_frames_total");
  CHECK(bad_total >= 200);
  const std::string text = s.metrics_text();
  CHECK(text.find("kvcore_bad_frames_total{reason=\"oversized\"} 1") != std::string::npos);
  CHECK(text.find("kvcore_bad_frames_total{reason=\"decode\"}") != std::string::npos);

  // Well-formed frames that are not for this store, or not from a member.
  const auto other = other_than(c, l);
  const auto frame_bytes =
      [&](std::uint64_t cluster, std::uint64_t from, std::uint64_t to, std::uint64_t region,
          kvcore::raft::MessageType type = kvcore::raft::MessageType::kHeartbeat,
          std::uint64_t term = 1) {
        kvcore::raftstore::Frame f;
        f.cluster_id = cluster;
        f.from_store = from;
        f.to_store = to;
        kvcore::raftstore::RaftEnvelope env;
        env.region_id = region;
        env.from_peer = {from, from, false};
        env.to_peer = {to, to, false};
        env.message.type = type;
        env.message.from = from;
        env.message.to = to;
        env.message.term = term;
        f.messages.push_back(env);
        return kvcore::raftstore::encode_frame(f);
      };
  CHECK(s.deliver(frame_bytes(2, other, l, 1)).code() == Code::kInvalidArgument);
  CHECK(s.deliver(frame_bytes(1, other, l + 100, 1)).code() == Code::kInvalidArgument);
  // A store hosting no peer here may only send what a leader sends a new
  // member (append, heartbeat, snapshot) or a stale-peer check.
  CHECK(s.deliver(frame_bytes(1, 77, l, 1, kvcore::raft::MessageType::kVote)).code() ==
        Code::kInvalidArgument);
  CHECK(s.deliver(frame_bytes(1, other, l, 0)).code() == Code::kInvalidArgument);
  const std::string text2 = s.metrics_text();
  for (const char* reason : {"cluster_id", "wrong_store", "unknown_store", "bad_message"}) {
    INFO(reason);
    CHECK(text2.find(fmt::format("kvcore_bad_frames_total{{reason=\"{}\"}} 0\n", reason)) ==
          std::string::npos);
  }
  // Such a heartbeat passes the frame checks, but a peer its region does not
  // list is never stepped, however high its term: the leader stays.
  const auto dropped = s.metric("kvcore_raft_messages_dropped_total{reason=\"peer\"}");
  const auto term = c.store(l).regions().front().term;
  CHECK(s.deliver(frame_bytes(1, 77, l, 1, kvcore::raft::MessageType::kHeartbeat, term + 100))
            .is_ok());
  c.sim().run_for(1s);
  CHECK(s.metric("kvcore_raft_messages_dropped_total{reason=\"peer\"}") == dropped + 1);
  CHECK(c.leader() == l);
  CHECK(c.store(l).regions().front().term == term);
  REQUIRE(c.put_any("b", "2").is_ok());
  CHECK(c.get_any("a")->value_or("") == "1");
  CHECK(c.get_any("b")->value_or("") == "2");
}

TEST_CASE("the same seed gives the same history") {
  const auto seed = test_seed(19);
  INFO(replay_hint(seed));
  const auto run = [&] {
    LocalClusterOptions o{.seed = seed};
    LocalCluster c(o);
    c.net().set_drop_rate(0.05);
    c.net().set_delay(1ms, 20ms);
    std::vector<std::string> trace;
    for (int i = 0; i < 30; ++i) {
      auto s = c.put_any(key(i), val(i), 5s);
      trace.push_back(fmt::format("{} {} {}", i, s.to_string(), c.leader()));
      if (i == 15) c.crash(c.leader() == 0 ? 1 : c.leader());
      if (i == 20) {
        for (auto id : c.store_ids()) {
          if (!c.running(id)) (void)c.restart(id);
        }
      }
    }
    c.sim().run_for(2s);
    for (auto id : c.store_ids()) {
      auto r = region_of(c.store(id));
      trace.push_back(fmt::format("store {} term {} applied {} leader {}", id, r.term,
                                  r.applied_index, r.leader_store));
    }
    trace.push_back(fmt::format("now {}", c.sim().now().time_since_epoch().count()));
    return trace;
  };
  CHECK(run() == run());
}
