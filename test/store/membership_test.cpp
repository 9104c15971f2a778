// Membership changes (ChangePeerV2) on LocalCluster: learners on fresh
// stores caught up by snapshot and promoted while writes go on, joint
// changes that move a region, restarts inside a joint state, removed and
// stale peers destroyed, transfer-leader checks, refused changes.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kvcore/engine/registry.hpp"
#include "kvcore/logging.hpp"
#include "kvcore/store.hpp"
#include "local_cluster.hpp"
#include "raftstore/codec.hpp"
#include "raftstore/keys.hpp"
#include "seed.hpp"

using namespace std::chrono_literals;
using kvcore::Code;
using kvcore::PeerChangeRequest;
using kvcore::RegionStatus;
using kvcore::Status;
using kvcore::StoreOptions;
using kvcore::SubCode;
using kvcore::test::LocalCluster;
using kvcore::test::LocalClusterOptions;
using kvcore::test::replay_hint;
using kvcore::test::test_seed;
using kvcore::test::test_seeds;
using Kind = PeerChangeRequest::Kind;

// REQUIRE that a Status is OK, showing it when it is not.
#define REQUIRE_OK(expr)                \
  do {                                  \
    const ::kvcore::Status s_ = (expr); \
    INFO("status: " << s_.to_string()); \
    REQUIRE(s_.is_ok());                \
  } while (false)

namespace {

// KVCORE_TEST_LOG=1 shows the stores' info lines (membership steps).
const bool kVerbose = [] {
  if (std::getenv("KVCORE_TEST_LOG") != nullptr) kvcore::set_log_level(kvcore::LogLevel::kInfo);
  return true;
}();

std::string key(int i) { return fmt::format("key{:05d}", i); }
std::string val(int i) { return fmt::format("value-{}", i); }

// Region 1 as store `id` sees it; nullopt when it has no (initialized) peer.
std::optional<RegionStatus> region1(LocalCluster& c, std::uint64_t id) {
  if (!c.running(id)) return std::nullopt;
  for (auto& r : c.store(id).regions()) {
    if (r.region_id == 1) return r;
  }
  return std::nullopt;
}

std::vector<std::uint64_t> sorted(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Writes that keep coming while a membership change runs: one async put to
// the current leader every `every` of simulated time. Remembers which were
// acknowledged.
class Writer {
 public:
  explicit Writer(LocalCluster& c, int first) : c_(c), next_(first) {}

  // Runs the simulation until `done()` (at most `max`), writing on the way.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds max,
                 std::chrono::milliseconds every = 30ms) {
    const auto end = c_.sim().now() + max;
    while (c_.sim().now() < end) {
      if (done()) return true;
      const auto l = c_.leader();
      if (l != 0) {
        const int i = next_++;
        kvcore::RawBatch b;
        b.put(key(i), val(i));
        c_.store(l).async_write(std::move(b), {5000ms}, [results = results_, i](Status s) {
          (*results)[i] = std::move(s);
        });
      }
      c_.sim().run_until(done, every);
    }
    return done();
  }
  // Lets the outstanding writes finish.
  void drain() { c_.sim().run_for(6s); }
  [[nodiscard]] std::vector<int> acked() const {
    std::vector<int> out;
    for (const auto& [i, s] : *results_) {
      if (s.is_ok()) out.push_back(i);
    }
    return out;
  }
  // Writes refused with an answer that means "certainly not applied"
  // (docs/store.md): they must have no effect.
  [[nodiscard]] std::vector<int> refused() const {
    std::vector<int> out;
    for (const auto& [i, s] : *results_) {
      const auto sub = s.sub_code();
      if (sub == SubCode::kNotLeader || sub == SubCode::kKeyNotInRegion ||
          sub == SubCode::kProposalDropped || sub == SubCode::kStaleCommand) {
        out.push_back(i);
      }
    }
    return out;
  }
  [[nodiscard]] std::size_t issued() const { return results_->size(); }

 private:
  LocalCluster& c_;
  int next_;
  // Shared with the callbacks, which may outlive the Writer.
  std::shared_ptr<std::map<int, Status>> results_ = std::make_shared<std::map<int, Status>>();
};

// Starts change_peers on `id` and returns the slot its result lands in.
std::shared_ptr<std::optional<Status>> start_change(LocalCluster& c, std::uint64_t id,
                                                    std::vector<PeerChangeRequest> changes,
                                                    std::chrono::milliseconds timeout = 20s) {
  auto slot = std::make_shared<std::optional<Status>>();
  c.store(id).async_change_peers(1, std::move(changes), {timeout},
                                 [slot](Status s) { *slot = std::move(s); });
  return slot;
}

// Every key in `keys` reads back from store `id` once it leads (leadership
// is moved there first).
void check_keys_on(LocalCluster& c, std::uint64_t id, const std::vector<int>& keys) {
  INFO("reading back on store " << id);
  // A transfer can be lost on a lossy network: ask again until it is done.
  for (int attempt = 0; attempt < 10 && c.leader() != id; ++attempt) {
    if (c.leader() != 0) (void)c.store(c.leader()).transfer_leader(1, id);
    c.sim().run_until([&] { return c.leader() == id; }, 3s);
  }
  REQUIRE(c.leader() == id);
  for (int i : keys) {
    auto got = c.get(id, key(i));
    REQUIRE(got.is_ok());
    CHECK(got->value_or("<none>") == val(i));
  }
}

// Whether the applied index of `id` has reached the leader's commit index.
bool caught_up(LocalCluster& c, std::uint64_t id) {
  const auto l = c.leader();
  if (l == 0) return false;
  auto lr = region1(c, l);
  auto r = region1(c, id);
  return lr && r && r->applied_index >= lr->commit_index;
}

// Runs until store `id` caught up, and a second more so that the leader
// hears of it.
bool wait_caught_up(LocalCluster& c, std::uint64_t id) {
  if (!c.sim().run_until([&] { return caught_up(c, id); }, 15s)) return false;
  c.sim().run_for(1s);
  return true;
}

// Keys left in the user-data column families of a stopped store, and
// whether its apply state of region 1 is still there.
std::pair<std::size_t, bool> leftover(const StoreOptions& o) {
  const std::string path = o.kv_path.empty() ? o.path + "/kv" : o.kv_path;
  auto kv = kvcore::open_engine(o.engine, path, o.engine_options);
  INFO("open " << path << ": " << kv.status().to_string());
  REQUIRE(kv.is_ok());
  std::size_t n = 0;
  auto it = (*kv)->new_iterator(kvcore::CF::kDefault, {});
  for (it->seek_to_first(); it->valid(); it->next()) ++n;
  auto apply = (*kv)->get(kvcore::CF::kRaft, kvcore::raftstore::apply_state_key(1));
  REQUIRE(apply.is_ok());
  return {n, apply->has_value()};
}

}  // namespace

TEST_CASE("a learner on a fresh store catches up by snapshot and is promoted while writes go on") {
  for (auto seed : test_seeds(600, 2)) {
    INFO(replay_hint(seed));
    LocalCluster c({.stores = 4, .bootstrapped = 3, .seed = seed});
    const auto l = c.wait_leader();
    REQUIRE(l != 0);
    for (int i = 0; i < 100; ++i) REQUIRE_OK(c.put_any(key(i), val(i)));
    CHECK(c.store(4).regions().empty());
    const auto conf_ver = region1(c, l)->conf_ver;

    Writer w(c, 1000);
    auto add = start_change(c, l, {{Kind::kAddLearner, 4}});
    REQUIRE(w.run_until([&] { return add->has_value(); }, 15s));
    REQUIRE_OK(add->value());
    REQUIRE(w.run_until([&] { return caught_up(c, 4); }, 15s));
    w.run_until([] { return false; }, 1s);  // the leader hears of it
    CHECK(c.store(c.leader()).metric("kvcore_bad_frames_total{reason=\"unknown_store\"}") == 0);
    auto r4 = region1(c, 4);
    REQUIRE(r4);
    CHECK(r4->learner_stores == std::vector<std::uint64_t>{4});
    CHECK(r4->conf_ver == conf_ver + 1);
    CHECK(c.store(4).metric("kvcore_snapshots_applied_total") >= 1);
    CHECK(c.store(4).metric("kvcore_peers_created_total") == 1);

    // A learner cannot lead.
    const auto to_learner = c.store(c.leader()).transfer_leader(1, 4);
    CHECK(to_learner.code() == Code::kInvalidArgument);

    auto promote = start_change(c, c.leader(), {{Kind::kAddVoter, 4}});
    REQUIRE(w.run_until([&] { return promote->has_value(); }, 15s));
    REQUIRE_OK(promote->value());
    w.run_until([] { return false; }, 2s);
    w.drain();
    INFO("writes issued " << w.issued() << ", acknowledged " << w.acked().size());
    CHECK(w.acked().size() >= w.issued() * 9 / 10);
    for (auto id : c.store_ids()) {
      INFO("store " << id);
      auto r = region1(c, id);
      REQUIRE(r);
      CHECK(sorted(r->voter_stores) == std::vector<std::uint64_t>{1, 2, 3, 4});
      CHECK(r->learner_stores.empty());
      CHECK(r->conf_ver == conf_ver + 2);
      CHECK(!r->joint);
    }
    CHECK(c.store(l).metric("kvcore_conf_changes_total{result=\"applied\"}") == 2);
    std::vector<int> keys = w.acked();
    for (int i = 0; i < 100; ++i) keys.push_back(i);
    check_keys_on(c, 4, keys);
  }
}

TEST_CASE("a joint change moves a region from stores {1,2,3} to {1,4,5}") {
  for (auto seed : test_seeds(700, 4)) {
    // Odd seeds run on a lossy network that delays and reorders frames.
    const bool faulty = seed % 2 == 1;
    INFO(replay_hint(seed) << (faulty ? " (lossy network)" : ""));
    LocalCluster c({.stores = 5, .bootstrapped = 3, .seed = seed});
    if (faulty) {
      c.net().set_drop_rate(0.03);
      c.net().set_delay(1ms, 15ms);
    }
    REQUIRE(c.wait_leader() != 0);
    // Store 1 keeps its replica and leads; 2 and 3 leave.
    if (c.leader() != 1) {
      REQUIRE_OK(c.store(c.leader()).transfer_leader(1, 1));
      REQUIRE(c.sim().run_until([&] { return c.leader() == 1; }, 10s));
    }
    for (int i = 0; i < 60; ++i) REQUIRE_OK(c.put_any(key(i), val(i)));
    const auto conf_ver = region1(c, 1)->conf_ver;

    Writer w(c, 1000);
    // Two learners at once (a joint step of its own), then one joint step
    // that promotes them and demotes 2 and 3.
    auto learners = start_change(c, 1, {{Kind::kAddLearner, 4}, {Kind::kAddLearner, 5}});
    REQUIRE(w.run_until([&] { return learners->has_value(); }, 15s));
    REQUIRE_OK(learners->value());
    CHECK(!region1(c, 1)->joint);
    REQUIRE(w.run_until([&] { return caught_up(c, 4) && caught_up(c, 5); }, 15s));
    w.run_until([] { return false; }, 1s);  // the leader hears of it

    bool saw_joint = false;
    auto move = start_change(c, 1,
                             {{Kind::kAddVoter, 4},
                              {Kind::kAddVoter, 5},
                              {Kind::kDemoteVoter, 2},
                              {Kind::kDemoteVoter, 3}});
    REQUIRE(w.run_until(
        [&] {
          if (auto r = region1(c, 1); r && r->joint) saw_joint = true;
          return move->has_value();
        },
        15s, 10ms));
    REQUIRE_OK(move->value());
    CHECK(saw_joint);
    {
      auto r = region1(c, 1);
      REQUIRE(r);
      CHECK(!r->joint);  // done means the joint state was left
      CHECK(sorted(r->voter_stores) == std::vector<std::uint64_t>{1, 4, 5});
      CHECK(sorted(r->learner_stores) == std::vector<std::uint64_t>{2, 3});
      CHECK(r->conf_ver == conf_ver + 4);  // two steps, each entered and left
    }
    // Changing again while joint is over works; the demoted learners go.
    auto remove = start_change(c, 1, {{Kind::kRemove, 2}, {Kind::kRemove, 3}});
    REQUIRE(w.run_until([&] { return remove->has_value(); }, 15s));
    REQUIRE_OK(remove->value());
    REQUIRE(w.run_until([&] { return !region1(c, 2) && !region1(c, 3); }, 10s));
    w.drain();
    for (auto id : {2, 3}) {
      INFO("store " << id);
      CHECK(c.store(id).metric("kvcore_peers_destroyed_total") == 1);
    }
    for (auto id : {1, 4, 5}) {
      INFO("store " << id);
      auto r = region1(c, id);
      REQUIRE(r);
      CHECK(sorted(r->voter_stores) == std::vector<std::uint64_t>{1, 4, 5});
      CHECK(r->learner_stores.empty());
    }
    // The region serves on its new stores alone.
    c.stop(2);
    c.stop(3);
    REQUIRE_OK(c.put_any("after", "move"));
    std::vector<int> keys = w.acked();
    for (int i = 0; i < 60; ++i) keys.push_back(i);
    CHECK(w.acked().size() >= w.issued() * 9 / 10);
    check_keys_on(c, 5, keys);
    CHECK(c.get_any("after")->value_or("") == "move");
  }
}

TEST_CASE("restarts inside a joint state: the joint state is left and the data is intact") {
  // Which stores crash the moment store 1 has entered the joint state.
  const std::vector<std::pair<const char*, std::vector<std::uint64_t>>> cases = {
      {"the leader's store", {1}},
      {"a demoted and a promoted store", {2, 4}},
      {"every store", {1, 2, 3, 4, 5}},
  };
  for (const auto& [what, crashed] : cases) {
    for (auto seed : test_seeds(800, 2)) {
      // Odd seeds run on a lossy network that delays and reorders frames.
      const bool faulty = seed % 2 == 1;
      INFO(replay_hint(seed) << "; crashing " << what << (faulty ? " (lossy network)" : ""));
      LocalCluster c({.stores = 5, .bootstrapped = 3, .seed = seed});
      if (faulty) {
        c.net().set_drop_rate(0.03);
        c.net().set_delay(1ms, 15ms);
      }
      REQUIRE(c.wait_leader() != 0);
      if (c.leader() != 1) {
        REQUIRE_OK(c.store(c.leader()).transfer_leader(1, 1));
        REQUIRE(c.sim().run_until([&] { return c.leader() == 1; }, 10s));
      }
      for (int i = 0; i < 40; ++i) REQUIRE_OK(c.put_any(key(i), val(i)));
      REQUIRE_OK(c.change_peers(1, 1, {{Kind::kAddLearner, 4}, {Kind::kAddLearner, 5}}));
      REQUIRE(wait_caught_up(c, 4));
      REQUIRE(wait_caught_up(c, 5));

      auto move = start_change(c, 1,
                               {{Kind::kAddVoter, 4},
                                {Kind::kAddVoter, 5},
                                {Kind::kDemoteVoter, 2},
                                {Kind::kDemoteVoter, 3}});
      REQUIRE(c.sim().run_until(
          [&] {
            auto r = region1(c, 1);
            return r && r->joint;
          },
          10s));
      for (auto id : crashed) c.crash(id);
      // The caller of a crashed leader learns nothing certain.
      if (std::find(crashed.begin(), crashed.end(), 1) != crashed.end()) {
        REQUIRE(move->has_value());
        CHECK(move->value().code() == Code::kUnavailable);
      }
      c.sim().run_for(1s);
      for (auto id : crashed) REQUIRE_OK(c.restart(id));
      REQUIRE(c.sim().run_until(
          [&] {
            for (auto id : c.store_ids()) {
              auto r = region1(c, id);
              if (!r || r->joint || r->conf_ver != region1(c, 1)->conf_ver) return false;
            }
            return !region1(c, 1)->joint && region1(c, 1)->learner_stores.size() == 2;
          },
          20s));
      for (auto id : c.store_ids()) {
        INFO("store " << id);
        auto r = region1(c, id);
        CHECK(sorted(r->voter_stores) == std::vector<std::uint64_t>{1, 4, 5});
        CHECK(sorted(r->learner_stores) == std::vector<std::uint64_t>{2, 3});
      }
      if (std::find(crashed.begin(), crashed.end(), 1) == crashed.end()) {
        REQUIRE(move->has_value());
        CHECK(move->value().is_ok());
      }
      REQUIRE_OK(c.put_any("later", "x"));
      std::vector<int> keys;
      for (int i = 0; i < 40; ++i) keys.push_back(i);
      check_keys_on(c, 4, keys);
      // A new change is accepted once the joint state is left.
      REQUIRE_OK(c.change_peers(c.leader(), 1, {{Kind::kRemove, 3}}));
    }
  }
}

TEST_CASE("a removed peer is destroyed with its data and stays gone after a restart") {
  const auto seed = test_seed(900);
  INFO(replay_hint(seed));
  LocalCluster c({.stores = 3, .seed = seed});
  const auto l = c.wait_leader();
  REQUIRE(l != 0);
  for (int i = 0; i < 30; ++i) REQUIRE_OK(c.put_any(key(i), val(i)));
  const std::uint64_t gone = l == 3 ? 2 : 3;
  c.sim().run_for(1s);

  // A voter is removed in two steps.
  auto direct = c.change_peers(l, 1, {{Kind::kRemove, gone}});
  CHECK(direct.code() == Code::kFailedPrecondition);
  REQUIRE_OK(c.change_peers(l, 1, {{Kind::kDemoteVoter, gone}}));
  REQUIRE(c.sim().run_until(
      [&] { return region1(c, gone) && !region1(c, gone)->learner_stores.empty(); }, 5s));
  REQUIRE_OK(c.change_peers(l, 1, {{Kind::kRemove, gone}}));
  REQUIRE(c.sim().run_until([&] { return !region1(c, gone); }, 5s));
  CHECK(c.store(gone).regions().empty());
  CHECK(c.store(gone).metric("kvcore_peers_destroyed_total") == 1);
  // Requests there find no region.
  CHECK(c.put(gone, key(1), "x").sub_code() == SubCode::kRegionNotFound);

  // The rest serve with two voters.
  REQUIRE_OK(c.put_any("two", "voters"));
  auto r = region1(c, l);
  REQUIRE(r);
  CHECK(r->voter_stores.size() == 2);
  CHECK(r->learner_stores.empty());

  // Its data and apply state are gone, and a restart does not bring it back.
  c.stop(gone);
  auto [keys_left, apply_left] = leftover(c.options(gone));
  CHECK(keys_left == 0);
  CHECK(!apply_left);
  REQUIRE_OK(c.restart(gone));
  c.sim().run_for(3s);
  CHECK(c.store(gone).regions().empty());
  CHECK(c.get_any("two")->value_or("") == "voters");
}

TEST_CASE("a peer whose store stopped right after applying its removal is destroyed at open") {
  const auto seed = test_seed(950);
  INFO(replay_hint(seed));
  LocalCluster c({.stores = 3, .seed = seed});
  const auto l = c.wait_leader();
  REQUIRE(l != 0);
  for (int i = 0; i < 20; ++i) REQUIRE_OK(c.put_any(key(i), val(i)));
  const std::uint64_t victim = l == 3 ? 2 : 3;
  c.sim().run_for(1s);
  c.stop(victim);
  {
    // The kv engine as that crash leaves it: the removal applied (the
    // region without this store), the peer not yet destroyed.
    const StoreOptions& o = c.options(victim);
    auto kv = kvcore::open_engine(o.engine, o.kv_path, o.engine_options);
    REQUIRE(kv.is_ok());
    const auto k = kvcore::raftstore::apply_state_key(1);
    auto raw = (*kv)->get(kvcore::CF::kRaft, k);
    REQUIRE(raw.is_ok());
    REQUIRE(raw->has_value());
    auto st = kvcore::raftstore::decode_apply_state(**raw);
    REQUIRE(st.is_ok());
    auto& peers = st->region.peers;
    peers.erase(std::remove_if(peers.begin(), peers.end(),
                               [&](const auto& p) { return p.store_id == victim; }),
                peers.end());
    ++st->region.epoch.conf_ver;
    auto b = (*kv)->new_write_batch();
    b->put(kvcore::CF::kRaft, k, kvcore::raftstore::encode_apply_state(*st));
    kvcore::WriteOptions wo;
    wo.sync = true;
    REQUIRE_OK((*kv)->write(*b, wo));
  }
  REQUIRE_OK(c.restart(victim));
  CHECK(c.store(victim).regions().empty());
  CHECK(c.store(victim).metric("kvcore_peers_destroyed_total") == 1);
  c.sim().run_for(2s);
  c.stop(victim);
  auto [keys_left, apply_left] = leftover(c.options(victim));
  CHECK(keys_left == 0);
  CHECK(!apply_left);
  REQUIRE_OK(c.restart(victim));
  CHECK(c.store(victim).regions().empty());
  CHECK(c.store(victim).metric("kvcore_peers_destroyed_total") == 0);
}

TEST_CASE("a stale peer that missed its removal is destroyed once it hears from the cluster") {
  // A voter partitioned before its demotion (it campaigns) and a learner
  // partitioned after it (it sends nothing on its own).
  for (bool saw_demotion : {false, true}) {
    const auto seed = test_seed(1000);
    INFO(replay_hint(seed) << "; saw its demotion: " << saw_demotion);
    LocalCluster c({.stores = 3, .seed = seed});
    const auto l = c.wait_leader();
    REQUIRE(l != 0);
    for (int i = 0; i < 30; ++i) REQUIRE_OK(c.put_any(key(i), val(i)));
    const std::uint64_t stale = l == 3 ? 2 : 3;
    c.sim().run_for(1s);

    if (saw_demotion) {
      REQUIRE_OK(c.change_peers(l, 1, {{Kind::kDemoteVoter, stale}}));
      REQUIRE(c.sim().run_until(
          [&] { return region1(c, stale) && !region1(c, stale)->learner_stores.empty(); }, 5s));
      c.net().isolate(stale);
    } else {
      c.net().isolate(stale);
      REQUIRE_OK(c.change_peers(l, 1, {{Kind::kDemoteVoter, stale}}));
    }
    REQUIRE_OK(c.change_peers(l, 1, {{Kind::kRemove, stale}}));
    for (int i = 30; i < 60; ++i) REQUIRE_OK(c.put_any(key(i), val(i)));
    c.sim().run_for(5s);
    REQUIRE(region1(c, stale));  // it does not know yet
    CHECK(c.store(stale).metric("kvcore_peers_destroyed_total") == 0);

    c.net().heal();
    REQUIRE(c.sim().run_until([&] { return !region1(c, stale); }, 15s));
    CHECK(c.store(stale).metric("kvcore_peers_destroyed_total") == 1);
    CHECK(c.store(stale).metric("kvcore_stale_peer_messages_total{kind=\"gc_accepted\"}") == 1);
    // It disturbed nothing: the leader kept leading through the heal.
    CHECK(c.leader() == l);
    c.stop(stale);
    auto [keys_left, apply_left] = leftover(c.options(stale));
    CHECK(keys_left == 0);
    CHECK(!apply_left);
    REQUIRE_OK(c.restart(stale));
    c.sim().run_for(3s);
    CHECK(c.store(stale).regions().empty());
    CHECK(c.get_any(key(59))->value_or("") == val(59));
  }
}

TEST_CASE("transfer leader: refused to a learner or a missing peer, done to a voter") {
  const auto seed = test_seed(1100);
  INFO(replay_hint(seed));
  LocalCluster c({.stores = 4, .bootstrapped = 3, .seed = seed});
  const auto l = c.wait_leader();
  REQUIRE(l != 0);
  REQUIRE_OK(c.put_any("k", "v"));

  auto none = c.store(l).transfer_leader(1, 4);  // no peer there yet
  CHECK(none.code() == Code::kInvalidArgument);
  REQUIRE_OK(c.change_peers(l, 1, {{Kind::kAddLearner, 4}}));
  REQUIRE(wait_caught_up(c, 4));
  const auto refused_before = c.store(l).metric("kvcore_transfer_leader_refused_total");
  auto learner = c.store(l).transfer_leader(1, 4);
  CHECK(learner.code() == Code::kInvalidArgument);
  CHECK(c.store(l).metric("kvcore_transfer_leader_refused_total") == refused_before + 1);
  CHECK(c.store(l).transfer_leader(7, 2).sub_code() == SubCode::kRegionNotFound);

  std::uint64_t follower = 0;
  for (std::uint64_t id : {1, 2, 3}) {
    if (id != l) follower = id;
  }
  auto from_follower = c.store(follower).transfer_leader(1, follower);
  CHECK(from_follower.sub_code() == SubCode::kNotLeader);

  c.sim().run_for(2s);
  REQUIRE_OK(c.store(l).transfer_leader(1, follower));
  REQUIRE(c.sim().run_until([&] { return c.leader() == follower; }, 5s));
  CHECK(c.get(follower, "k")->value_or("") == "v");
}

TEST_CASE("membership changes are refused while another is in flight or when invalid") {
  const auto seed = test_seed(1200);
  INFO(replay_hint(seed));
  LocalCluster c({.stores = 5, .bootstrapped = 3, .seed = seed});
  const auto l = c.wait_leader();
  REQUIRE(l != 0);
  REQUIRE_OK(c.put_any("k", "v"));
  c.sim().run_for(1s);
  const auto conf_ver = region1(c, l)->conf_ver;

  // Two changes in the same round: the second finds the first in flight.
  auto first = start_change(c, l, {{Kind::kAddLearner, 4}});
  auto second = start_change(c, l, {{Kind::kAddLearner, 5}});
  REQUIRE(c.sim().run_until([&] { return first->has_value() && second->has_value(); }, 10s));
  CHECK(first->value().is_ok());
  CHECK(second->value().code() == Code::kFailedPrecondition);
  CHECK(region1(c, l)->conf_ver == conf_ver + 1);
  CHECK(c.store(l).metric("kvcore_conf_changes_total{result=\"refused\"}") >= 1);

  std::uint64_t follower = 0;
  for (std::uint64_t id : {1, 2, 3}) {
    if (id != l) follower = id;
  }
  // Invalid requests.
  CHECK(c.change_peers(l, 1, {}).code() == Code::kInvalidArgument);
  CHECK(c.change_peers(l, 1, {{Kind::kAddLearner, 4}}).code() == Code::kInvalidArgument);
  CHECK(c.change_peers(l, 1, {{Kind::kAddVoter, follower}}).code() == Code::kInvalidArgument);
  CHECK(c.change_peers(l, 1, {{Kind::kRemove, 5}}).code() == Code::kInvalidArgument);
  CHECK(c.change_peers(l, 1, {{Kind::kAddLearner, 5}, {Kind::kRemove, 5}}).code() ==
        Code::kInvalidArgument);
  CHECK(c.change_peers(l, 1, {{Kind::kAddLearner, 0}}).code() == Code::kInvalidArgument);
  // Preconditions: the leader is not demoted, a voter is not removed at once.
  CHECK(c.change_peers(l, 1, {{Kind::kDemoteVoter, l}}).code() == Code::kFailedPrecondition);
  CHECK(c.change_peers(l, 1, {{Kind::kRemove, follower}}).code() == Code::kFailedPrecondition);
  // Only the leader proposes; an unknown region is not found.
  CHECK(c.change_peers(follower, 1, {{Kind::kAddLearner, 5}}).sub_code() == SubCode::kNotLeader);
  CHECK(c.change_peers(l, 9, {{Kind::kAddLearner, 5}}).sub_code() == SubCode::kRegionNotFound);

  // A learner that cannot catch up is not promoted.
  c.net().isolate(5);
  REQUIRE_OK(c.change_peers(l, 1, {{Kind::kAddLearner, 5}}));
  c.sim().run_for(2s);
  CHECK(c.change_peers(l, 1, {{Kind::kAddVoter, 5}}).code() == Code::kFailedPrecondition);
  c.net().heal();
  REQUIRE(wait_caught_up(c, 5));
  REQUIRE_OK(c.change_peers(l, 1, {{Kind::kAddVoter, 5}}));
  // Nothing refused changed the region: three applied changes in all.
  CHECK(region1(c, l)->conf_ver == conf_ver + 3);
  CHECK(c.store(l).metric("kvcore_conf_changes_total{result=\"rejected\"}") == 0);
}

TEST_CASE("membership changes on every built engine") {
  for (auto engine : kvcore::built_engines()) {
    const auto seed = test_seed(1300);
    INFO(replay_hint(seed) << " engine " << kvcore::to_string(engine));
    LocalCluster c({.stores = 4, .bootstrapped = 3, .seed = seed, .engine = engine});
    REQUIRE(c.wait_leader() != 0);
    if (c.leader() != 1) {
      REQUIRE_OK(c.store(c.leader()).transfer_leader(1, 1));
      REQUIRE(c.sim().run_until([&] { return c.leader() == 1; }, 10s));
    }
    for (int i = 0; i < 40; ++i) REQUIRE_OK(c.put_any(key(i), val(i)));
    REQUIRE_OK(c.change_peers(1, 1, {{Kind::kAddLearner, 4}}));
    REQUIRE(wait_caught_up(c, 4));
    REQUIRE_OK(c.change_peers(1, 1, {{Kind::kAddVoter, 4}, {Kind::kDemoteVoter, 3}}));
    REQUIRE_OK(c.change_peers(1, 1, {{Kind::kRemove, 3}}));
    REQUIRE(c.sim().run_until([&] { return !region1(c, 3); }, 10s));
    for (auto id : c.store_ids()) c.stop(id);
    for (auto id : c.store_ids()) REQUIRE_OK(c.restart(id));
    REQUIRE(c.wait_leader() != 0);
    c.sim().run_for(1s);
    CHECK(c.store(3).regions().empty());
    auto r = region1(c, c.leader());
    REQUIRE(r);
    CHECK(sorted(r->voter_stores) == std::vector<std::uint64_t>{1, 2, 4});
    std::vector<int> keys;
    for (int i = 0; i < 40; ++i) keys.push_back(i);
    check_keys_on(c, 4, keys);
    c.stop(3);
    auto [keys_left, apply_left] = leftover(c.options(3));
    CHECK(keys_left == 0);
    CHECK(!apply_left);
  }
}

namespace {

// Region 1 on every store, for failure messages.
std::string dump(LocalCluster& c) {
  std::string out;
  for (auto id : c.store_ids()) {
    auto r = region1(c, id);
    out += fmt::format("\n  store {}: ", id);
    if (!c.running(id)) {
      out += "down";
    } else if (!r) {
      auto& st = c.store(id);
      out += fmt::format(
          "no region (created {} destroyed {} dropped: region {} peer {}; bad frames {})",
          st.metric("kvcore_peers_created_total"), st.metric("kvcore_peers_destroyed_total"),
          st.metric("kvcore_raft_messages_dropped_total{reason=\"region\"}"),
          st.metric("kvcore_raft_messages_dropped_total{reason=\"peer\"}"),
          st.metric("kvcore_bad_frames_total"));
    } else {
      out += fmt::format(
          "voters {} learners {} joint {} conf_ver {} leader {} term {} applied {} "
          "commit {}",
          fmt::join(r->voter_stores, ","), fmt::join(r->learner_stores, ","), r->joint, r->conf_ver,
          r->leader_store, r->term, r->applied_index, r->commit_index);
    }
  }
  return out;
}

// Drives region 1 towards having exactly the voters `want` (and no
// learners), one safe step at a time, reading the region afresh before each
// step: learners first, then a joint step that promotes and demotes, then
// removals. Any answer (a refusal, a timeout, a lost leader) just leads to
// the next look. True when the region has reached `want`.
bool converge(LocalCluster& c, const std::vector<std::uint64_t>& want,
              std::chrono::milliseconds max, const std::function<void()>& between = {}) {
  const auto wanted = [&](std::uint64_t s) {
    return std::find(want.begin(), want.end(), s) != want.end();
  };
  const auto end = c.sim().now() + max;
  while (c.sim().now() < end) {
    if (between) between();
    const auto l = c.leader();
    auto r = l != 0 ? region1(c, l) : std::nullopt;
    if (!r || r->joint) {
      c.sim().run_for(200ms);
      continue;
    }
    std::vector<PeerChangeRequest> step;
    std::vector<std::uint64_t> promote;
    for (auto s : want) {
      const bool voter =
          std::find(r->voter_stores.begin(), r->voter_stores.end(), s) != r->voter_stores.end();
      const bool learner = std::find(r->learner_stores.begin(), r->learner_stores.end(), s) !=
                           r->learner_stores.end();
      if (!voter && !learner) step.push_back({Kind::kAddLearner, s});
      if (learner && caught_up(c, s)) promote.push_back(s);
    }
    if (step.empty() && !promote.empty()) {
      for (auto s : promote) step.push_back({Kind::kAddVoter, s});
      for (auto s : r->voter_stores) {
        if (!wanted(s) && s != l) step.push_back({Kind::kDemoteVoter, s});
      }
    }
    if (step.empty()) {
      for (auto s : r->voter_stores) {
        if (wanted(s)) continue;
        if (s == l) {
          (void)c.store(l).transfer_leader(1, want.front());
        } else {
          step.push_back({Kind::kDemoteVoter, s});
        }
        break;
      }
    }
    if (step.empty()) {
      for (auto s : r->learner_stores) {
        if (!wanted(s)) step.push_back({Kind::kRemove, s});
      }
    }
    if (step.empty()) {
      if (sorted(r->voter_stores) == sorted(want) && r->learner_stores.empty()) return true;
      c.sim().run_for(200ms);  // waiting for a learner to catch up
      continue;
    }
    (void)c.change_peers(l, 1, step, 5s);
  }
  return false;
}

}  // namespace

TEST_CASE("a region moves around five stores under crashes and partitions without losing writes") {
  for (auto seed : test_seeds(1400, 2)) {
    INFO(replay_hint(seed));
    LocalCluster c({.stores = 5, .bootstrapped = 3, .seed = seed});
    c.net().set_drop_rate(0.02);
    c.net().set_delay(1ms, 10ms);
    REQUIRE(c.wait_leader() != 0);
    kvcore::test::Rng rng(seed ^ 0x3e3b);
    Writer w(c, 0);
    std::vector<std::uint64_t> want = {1, 2, 3};
    for (int round = 0; round < 6; ++round) {
      // The next home: three stores at random.
      std::vector<std::uint64_t> all = {1, 2, 3, 4, 5};
      for (std::size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[rng.uniform(i)]);
      want.assign(all.begin(), all.begin() + 3);
      INFO("round " << round << ": to " << want[0] << want[1] << want[2]);
      // One fault while the region moves: a crash and restart, or a store
      // cut off for a while.
      const std::uint64_t victim = 1 + rng.uniform(5);
      const bool crash = rng.chance(0.5);
      const auto fault_at = c.sim().now() + std::chrono::milliseconds(rng.uniform(3000));
      const auto heal_at = fault_at + 3s;
      bool faulted = false;
      bool healed = false;
      const auto between = [&] {
        // Writes keep coming all along.
        w.run_until([] { return false; }, 60ms);
        const auto now = c.sim().now();
        if (!faulted && now >= fault_at) {
          faulted = true;
          if (crash) {
            c.crash(victim);
          } else {
            c.net().isolate(victim);
          }
        }
        if (faulted && !healed && now >= heal_at) {
          healed = true;
          c.net().heal();
          c.net().set_drop_rate(0.02);
          c.net().set_delay(1ms, 10ms);
          if (!c.running(victim)) REQUIRE_OK(c.restart(victim));
        }
      };
      const bool done = converge(c, want, 60s, between);
      INFO(dump(c));
      REQUIRE(done);
      while (!healed) between();
    }
    w.drain();
    // Every store outside the final home destroys its peer, stale or not.
    REQUIRE(c.sim().run_until(
        [&] {
          for (auto id : c.store_ids()) {
            const bool member = std::find(want.begin(), want.end(), id) != want.end();
            if (member != region1(c, id).has_value()) return false;
          }
          return true;
        },
        20s));
    for (auto id : want) {
      INFO("store " << id);
      auto r = region1(c, id);
      REQUIRE(r);
      CHECK(sorted(r->voter_stores) == sorted(want));
      CHECK(r->learner_stores.empty());
      CHECK(!r->joint);
    }
    INFO("writes issued " << w.issued() << ", acknowledged " << w.acked().size());
    CHECK(w.acked().size() > w.issued() / 2);
    for (int i : w.acked()) {
      auto got = c.get_any(key(i));
      REQUIRE(got.is_ok());
      CHECK(got->value_or("<none>") == val(i));
    }
    INFO("refused " << w.refused().size());
    for (int i : w.refused()) {
      auto got = c.get_any(key(i));
      REQUIRE(got.is_ok());
      CHECK(!got->has_value());
    }
  }
}
