// The Ready contract under crashes: `messages` leave as soon as ready()
// returns, before anything is persisted, and a node may crash before its
// Ready is persisted (losing it). Raft's safety must still hold: at most one
// leader per term, every node applies the same entry at each index, and a
// (safe) ReadIndex answer is never below a commit index known when it was asked.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kvcore/raft/raw_node.hpp"
#include "kvcore/raft/storage.hpp"
#include "seed.hpp"

namespace kvcore::raft::unit {
namespace {

struct SplitNode {
  NodeId id = 0;
  Config config;
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> raw;
  Index applied = 0;
};

class SplitCluster {
 public:
  SplitCluster(std::uint64_t seed, std::size_t n) : rng_{seed} {
    ConfState cs;
    for (NodeId id = 1; id <= n; ++id) cs.voters.push_back(id);
    const bool pre_vote = rng_.chance(0.50);
    const bool check_quorum = rng_.chance(0.50);
    for (NodeId id = 1; id <= n; ++id) {
      SplitNode& node = nodes_[id];
      node.id = id;
      node.config.id = id;
      node.config.election_tick = 5;
      node.config.heartbeat_tick = 1;
      node.config.pre_vote = pre_vote;
      node.config.check_quorum = check_quorum;
      node.config.seed = seed * 31 + id;
      node.storage = std::make_unique<MemoryStorage>(MemoryStorage::with_conf_state(cs));
      start(node);
    }
  }

  void start(SplitNode& n) {
    Config c = n.config;
    c.applied = n.applied;
    auto r = RawNode::create(c, *n.storage);
    REQUIRE(r.is_ok());
    n.raw = std::move(r).value();
  }

  void step_once() {
    const auto action = rng_.uniform(100);
    SplitNode& n = nodes_[1 + rng_.uniform(nodes_.size())];
    if (action < 25) {
      n.raw->tick();
    } else if (action < 60) {
      deliver_some();
    } else if (action < 72) {
      (void)n.raw->propose("p" + std::to_string(++proposals_));
    } else if (action < 75) {
      // A read must see at least everything committed anywhere by now.
      Index commit = 0;
      for (auto& [id, node] : nodes_) {
        commit = std::max(commit, node.raw->status().hard_state.commit);
      }
      const std::string ctx = "r" + std::to_string(++reads_);
      read_floor_[ctx] = commit;
      n.raw->read_index(ctx);
    } else {
      process(n);
    }
    for (auto& [id, node] : nodes_) {
      if (node.raw->role() != StateRole::kLeader) continue;
      auto [it, fresh] = leaders_.emplace(node.raw->term(), id);
      if (!fresh && it->second != id) {
        FAIL("two leaders in term " << node.raw->term() << ": " << it->second << " and " << id);
      }
    }
  }

  void deliver_some() {
    if (network_.empty()) return;
    const std::size_t i = rng_.uniform(network_.size());
    Message m = network_[i];
    if (!rng_.chance(0.10)) network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(i));
    if (rng_.chance(0.10)) return;  // dropped
    (void)nodes_.at(m.to).raw->step(std::move(m));
  }

  void process(SplitNode& n) {
    if (!n.raw->has_ready()) return;
    Ready rd = n.raw->ready();
    for (const auto& m : rd.messages) network_.push_back(m);
    if (rng_.chance(0.15)) {
      // Crash before persisting: the Ready is lost, storage keeps what it had.
      ++crashes_;
      n.raw.reset();
      start(n);
      return;
    }
    if (!rd.snapshot.empty()) REQUIRE(n.storage->apply_snapshot(rd.snapshot).is_ok());
    REQUIRE(n.storage->append(rd.entries).is_ok());
    if (rd.hard_state) n.storage->set_hard_state(*rd.hard_state);
    for (const auto& m : rd.persisted_messages) network_.push_back(m);
    for (const auto& e : rd.committed_entries) {
      REQUIRE(e.index == n.applied + 1);
      auto [it, fresh] = canon_.emplace(e.index, e);
      if (!fresh && !(it->second == e)) {
        FAIL("node " << n.id << " applies " << describe(e) << " but " << describe(it->second)
                     << " was applied at that index before");
      }
      n.applied = e.index;
    }
    for (const auto& rs : rd.read_states) {
      auto it = read_floor_.find(rs.request_ctx);
      REQUIRE(it != read_floor_.end());
      if (rs.index < it->second) {
        FAIL("stale read " << rs.request_ctx << " on node " << n.id << ": index " << rs.index
                           << " < commit " << it->second << " when asked");
      }
      ++reads_served_;
    }
    n.raw->advance(rd);
  }

  std::size_t committed() const { return canon_.size(); }
  std::size_t crashes() const { return crashes_; }
  std::size_t reads_served() const { return reads_served_; }

 private:
  test::Rng rng_;
  std::map<NodeId, SplitNode> nodes_;
  std::vector<Message> network_;
  std::map<Term, NodeId> leaders_;
  std::map<Index, Entry> canon_;
  std::uint64_t proposals_ = 0;
  std::uint64_t reads_ = 0;
  std::size_t reads_served_ = 0;
  std::map<std::string, Index> read_floor_;
  std::size_t crashes_ = 0;
};

}  // namespace

TEST_CASE("raft: safety holds when messages leave before persistence", "[raft][ready]") {
  std::size_t committed = 0;
  std::size_t crashes = 0;
  std::size_t reads = 0;
  const auto seeds = test::test_seeds(1, 150);
  for (std::uint64_t seed : seeds) {
    INFO("seed " << seed << " (" << test::replay_hint(seed) << ")");
    SplitCluster c(seed, seed % 2 == 0 ? 3 : 5);
    for (int i = 0; i < 3000; ++i) c.step_once();
    committed += c.committed();
    crashes += c.crashes();
    reads += c.reads_served();
  }
  if (seeds.size() > 1) {  // a single replayed seed may legitimately do neither
    CHECK(committed > 0);
    CHECK(crashes > 0);
  }
  WARN("committed " << committed << " entries, " << crashes << " crashes, " << reads
                    << " reads served");
}

}  // namespace kvcore::raft::unit
