// White-box unit tests of the raft core: elections and the §5 rules of the
// Raft paper, driven through RawNode on a deterministic in-memory cluster.
#include <catch2/catch.hpp>

#include "raft_unit_cluster.hpp"

namespace kvcore::raft::unit {

TEST_CASE("raft: a campaign elects a leader and commits its empty entry", "[raft]") {
  UnitCluster c(3);
  c.elect(1);
  CHECK(c.node(1).term() == 1);
  for (NodeId id = 2; id <= 3; ++id) {
    CHECK(c.node(id).role() == StateRole::kFollower);
    CHECK(c.node(id).leader_id() == 1);
  }
  for (auto& [id, u] : c.nodes) {
    REQUIRE(u.applied.size() == 1);
    CHECK(u.applied[0].index == 1);
    CHECK(u.applied[0].term == 1);
  }
}

TEST_CASE("raft: proposals replicate and apply on every node in order", "[raft]") {
  UnitCluster c(3);
  c.elect(1);
  for (int i = 0; i < 10; ++i) REQUIRE(c.node(1).propose("p" + std::to_string(i)).is_ok());
  c.stabilize();
  REQUIRE(c.node(2).propose("from2").is_ok());  // forwarded
  c.stabilize();
  for (auto& [id, u] : c.nodes) {
    auto data = applied_data(u);
    REQUIRE(data.size() == 11);
    CHECK(data[0] == "p0");
    CHECK(data[10] == "from2");
  }
}

TEST_CASE("raft: single node cluster elects itself and commits", "[raft]") {
  UnitCluster c(1);
  c.elect(1);
  REQUIRE(c.node(1).propose("x").is_ok());
  c.stabilize();
  CHECK(applied_data(c.nodes.at(1)) == std::vector<std::string>{"x"});
}

}  // namespace kvcore::raft::unit

namespace kvcore::raft::unit {

// §5.2: a node votes at most once per term, first come first served.
TEST_CASE("raft: one vote per term", "[raft][election]") {
  Solo s(1, voters({1, 2, 3}));
  s.start();
  REQUIRE(s.step(MessageType::kVote, 2, 1).is_ok());
  auto out = s.drain();
  auto resp = of_type(out, MessageType::kVoteResponse);
  REQUIRE(resp.size() == 1);
  CHECK_FALSE(resp[0].reject);
  CHECK(s.storage.hard_state().vote == 2);
  // Another candidate in the same term is refused; the same one again is granted.
  REQUIRE(s.step(MessageType::kVote, 3, 1).is_ok());
  REQUIRE(s.step(MessageType::kVote, 2, 1).is_ok());
  out = s.drain();
  resp = of_type(out, MessageType::kVoteResponse);
  REQUIRE(resp.size() == 2);
  CHECK(resp[0].to == 3);
  CHECK(resp[0].reject);
  CHECK(resp[1].to == 2);
  CHECK_FALSE(resp[1].reject);
}

// §5.4.1: votes only for candidates whose log is at least as up to date.
TEST_CASE("raft: election restriction on log up-to-dateness", "[raft][election]") {
  Solo s(1, voters({1, 2, 3}));
  REQUIRE(s.storage.append({entry(1, 1), entry(2, 2)}).is_ok());
  s.storage.set_hard_state({2, 0, 0});
  s.start();
  struct Case {
    Term log_term;
    Index index;
    bool granted;
  };
  const Case cases[] = {{1, 5, false}, {2, 1, false}, {2, 2, true}, {2, 3, true}, {3, 1, true}};
  Term term = 3;
  for (const auto& c : cases) {
    REQUIRE(s.step(MessageType::kVote, 2, term, [&](Message& m) {
               m.log_term = c.log_term;
               m.index = c.index;
             }).is_ok());
    auto resp = of_type(s.drain(), MessageType::kVoteResponse);
    REQUIRE(resp.size() == 1);
    INFO("log_term " << c.log_term << " index " << c.index);
    CHECK(resp[0].reject == !c.granted);
    ++term;  // a new term for each request so the single vote is free
  }
}

TEST_CASE("raft: a node with a higher term makes a leader step down", "[raft][election]") {
  UnitCluster c(3);
  c.elect(1);
  REQUIRE(c.node(2).campaign().is_ok());
  c.stabilize();
  CHECK(c.node(1).role() != StateRole::kLeader);
  CHECK(c.node(1).term() == 2);
  CHECK(c.node(2).role() == StateRole::kLeader);
}

TEST_CASE("raft: at most one leader per term under split votes", "[raft][election]") {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    INFO("seed " << seed);
    UnitCluster c(5, [&](Config& cfg) { cfg.seed = seed * 100 + cfg.id; });
    std::map<Term, std::set<NodeId>> leaders;
    for (int step = 0; step < 200; ++step) {
      for (auto& [id, u] : c.nodes) u.node->tick();
      for (auto& [id, u] : c.nodes) c.process(id);
      // Deliver in a scrambled but deterministic order.
      std::vector<Message> msgs(c.queue.begin(), c.queue.end());
      c.queue.clear();
      std::reverse(msgs.begin(), msgs.end());
      for (std::size_t i = 0; i < msgs.size(); ++i) {
        if ((seed + i + static_cast<std::uint64_t>(step)) % 7 == 0) continue;  // drop some
        c.deliver(msgs[i]);
      }
      for (auto& [id, u] : c.nodes) {
        if (u.node->role() == StateRole::kLeader) leaders[u.node->term()].insert(id);
      }
    }
    for (const auto& [term, ids] : leaders) CHECK(ids.size() == 1);
    CHECK_FALSE(leaders.empty());
  }
}

TEST_CASE("raft: randomized election timeout lies in [et, 2et)", "[raft][election]") {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    Solo s(1, voters({1, 2, 3}), [&](Config& c) { c.seed = seed; });
    s.start();
    int ticks = 0;
    while (s.node->role() == StateRole::kFollower && ticks < 100) {
      s.node->tick();
      ++ticks;
    }
    CHECK(ticks >= 10);
    CHECK(ticks < 20);
  }
}

TEST_CASE("raft: pre-vote does not bump the term until a quorum agrees", "[raft][prevote]") {
  Solo s(1, voters({1, 2, 3}), [](Config& c) { c.pre_vote = true; });
  s.start();
  REQUIRE(s.node->campaign().is_ok());
  auto out = s.drain();
  CHECK(s.node->role() == StateRole::kPreCandidate);
  CHECK(s.node->term() == 0);
  auto pre = of_type(out, MessageType::kPreVote);
  REQUIRE(pre.size() == 2);
  CHECK(pre[0].term == 1);
  // One grant (plus our own) is a quorum of 3: now a real campaign at term 1.
  REQUIRE(s.step(MessageType::kPreVoteResponse, 2, 1).is_ok());
  out = s.drain();
  CHECK(s.node->role() == StateRole::kCandidate);
  CHECK(s.node->term() == 1);
  CHECK(of_type(out, MessageType::kVote).size() == 2);
}

TEST_CASE("raft: a rejected pre-vote leaves the term alone", "[raft][prevote]") {
  Solo s(1, voters({1, 2, 3}), [](Config& c) { c.pre_vote = true; });
  s.start();
  REQUIRE(s.node->campaign().is_ok());
  s.drain();
  REQUIRE(s.step(MessageType::kPreVoteResponse, 2, 0, [](Message& m) { m.reject = true; }).is_ok());
  REQUIRE(s.step(MessageType::kPreVoteResponse, 3, 0, [](Message& m) { m.reject = true; }).is_ok());
  s.drain();
  CHECK(s.node->role() == StateRole::kFollower);
  CHECK(s.node->term() == 0);
}

TEST_CASE("raft: a partitioned pre-vote node does not disrupt the leader", "[raft][prevote]") {
  UnitCluster c(3, [](Config& cfg) {
    cfg.pre_vote = true;
    cfg.check_quorum = true;
  });
  c.elect(1);
  const Term t = c.node(1).term();
  c.isolate(3);
  for (int i = 0; i < 50; ++i) {
    c.node(3).tick();
    c.tick_all(0);
    c.node(1).tick();
    c.node(2).tick();
    c.stabilize();
  }
  CHECK(c.node(3).term() == t);  // pre-votes never reached a quorum
  c.heal();
  c.tick_all(5);
  CHECK(c.node(1).role() == StateRole::kLeader);
  CHECK(c.node(1).term() == t);
}

TEST_CASE("raft: check-quorum makes an isolated leader step down", "[raft][checkquorum]") {
  UnitCluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
  c.elect(1);
  c.isolate(1);
  for (int i = 0; i < 25; ++i) {
    c.node(1).tick();
    c.stabilize();
  }
  CHECK(c.node(1).role() == StateRole::kFollower);
}

TEST_CASE("raft: a node in lease ignores votes unless forced by a transfer",
          "[raft][checkquorum]") {
  Solo s(1, voters({1, 2, 3}), [](Config& c) { c.check_quorum = true; });
  s.start();
  REQUIRE(s.step(MessageType::kHeartbeat, 2, 1).is_ok());
  s.drain();
  CHECK(s.node->leader_id() == 2);
  REQUIRE(s.step(MessageType::kVote, 3, 2).is_ok());
  REQUIRE(s.step(MessageType::kPreVote, 3, 2).is_ok());
  CHECK(of_type(s.drain(), MessageType::kVoteResponse).empty());
  CHECK(s.node->term() == 1);
  REQUIRE(s.step(MessageType::kVote, 3, 2, [](Message& m) { m.context = "transfer"; }).is_ok());
  auto resp = of_type(s.drain(), MessageType::kVoteResponse);
  REQUIRE(resp.size() == 1);
  CHECK_FALSE(resp[0].reject);
  CHECK(s.node->term() == 2);
}

TEST_CASE("raft: after the election timeout votes are answered again", "[raft][checkquorum]") {
  Solo s(1, voters({1, 2, 3}), [](Config& c) { c.check_quorum = true; });
  s.start();
  REQUIRE(s.step(MessageType::kHeartbeat, 2, 1).is_ok());
  s.drain();
  for (int i = 0; i < 10; ++i) s.node->tick();
  s.drain();
  REQUIRE(s.step(MessageType::kVote, 3, 2).is_ok());
  auto resp = of_type(s.drain(), MessageType::kVoteResponse);
  REQUIRE(resp.size() == 1);
  CHECK_FALSE(resp[0].reject);
}

TEST_CASE("raft: learners never campaign but do answer votes", "[raft][learner]") {
  Solo s(3, voters({1, 2}, {3}));
  s.start();
  for (int i = 0; i < 100; ++i) s.node->tick();
  REQUIRE(s.node->campaign().is_ok());
  auto out = s.drain();
  CHECK(s.node->role() == StateRole::kFollower);
  CHECK(of_type(out, MessageType::kVote).empty());
  CHECK(s.node->term() == 0);
  REQUIRE(s.step(MessageType::kVote, 1, 1).is_ok());
  auto resp = of_type(s.drain(), MessageType::kVoteResponse);
  REQUIRE(resp.size() == 1);
  CHECK_FALSE(resp[0].reject);
  CHECK(s.node->propose("x").sub_code() == SubCode::kProposalDropped);
}

TEST_CASE("raft: proposals without a leader are dropped with a clear status", "[raft]") {
  Solo s(1, voters({1, 2, 3}));
  s.start();
  Status st = s.node->propose("x");
  CHECK(st.code() == Code::kUnavailable);
  CHECK(st.sub_code() == SubCode::kProposalDropped);
  Solo f(1, voters({1, 2, 3}), [](Config& c) { c.disable_proposal_forwarding = true; });
  f.start();
  REQUIRE(f.step(MessageType::kHeartbeat, 2, 1).is_ok());
  f.drain();
  CHECK(f.node->propose("x").sub_code() == SubCode::kProposalDropped);
}

TEST_CASE("raft: a candidate's own vote counts only after it is persisted", "[raft][ready]") {
  Solo s(1, voters({1}));
  s.start();
  REQUIRE(s.node->campaign().is_ok());
  CHECK(s.node->role() == StateRole::kCandidate);
  Ready rd = s.node->ready();
  REQUIRE(rd.hard_state);
  CHECK(rd.hard_state->vote == 1);
  CHECK(rd.must_sync);
  s.storage.set_hard_state(*rd.hard_state);
  s.node->advance(rd);
  CHECK(s.node->role() == StateRole::kLeader);
}

TEST_CASE("raft: vote responses wait for persistence, leader appends do not", "[raft][ready]") {
  Solo s(2, voters({1, 2, 3}));
  s.start();
  REQUIRE(s.step(MessageType::kVote, 1, 1).is_ok());
  Ready rd = s.node->ready();
  CHECK(rd.messages.empty());
  REQUIRE(rd.persisted_messages.size() == 1);
  CHECK(rd.persisted_messages[0].type == MessageType::kVoteResponse);
  s.node->advance(rd);

  UnitCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).propose("x").is_ok());
  Ready lr = c.node(1).ready();
  CHECK(lr.entries.size() == 1);
  CHECK(of_type(lr.messages, MessageType::kAppend).size() == 2);
  CHECK(lr.persisted_messages.empty());
  c.node(1).advance(lr);
}

}  // namespace kvcore::raft::unit

namespace kvcore::raft::unit {

// A node isolated without pre-vote keeps bumping its term; on rejoining, the
// leader (in lease, it ignores the votes) learns the higher term from the
// answer to its heartbeat, steps down, and the cluster elects again.
TEST_CASE("raft: a stuck high-term candidate is freed with check-quorum", "[raft][checkquorum]") {
  UnitCluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
  c.elect(1);
  c.isolate(3);
  for (int i = 0; i < 60; ++i) {
    c.node(3).tick();
    c.stabilize();
  }
  REQUIRE(c.node(3).term() > c.node(1).term());
  c.heal();
  c.node(1).tick();
  c.stabilize();
  CHECK(c.node(1).role() == StateRole::kFollower);
  CHECK(c.node(1).term() == c.node(3).term());
  c.tick_all(40);
  int leaders = 0;
  for (NodeId id : {1, 2, 3}) leaders += c.node(id).role() == StateRole::kLeader ? 1 : 0;
  CHECK(leaders == 1);
}

TEST_CASE("raft: a candidate's vote requests wait for its persisted term", "[raft][ready]") {
  Solo s(1, voters({1, 2, 3}));
  s.start();
  REQUIRE(s.node->campaign().is_ok());
  Ready rd = s.node->ready();
  CHECK(rd.messages.empty());
  CHECK(of_type(rd.persisted_messages, MessageType::kVote).size() == 2);
  CHECK(rd.must_sync);
  s.storage.set_hard_state(*rd.hard_state);
  s.node->advance(rd);
  // Heartbeat answers of a follower whose term is persisted leave at once.
  Solo f(2, voters({1, 2, 3}));
  f.start();
  REQUIRE(f.step(MessageType::kHeartbeat, 1, 1).is_ok());
  Ready frd = f.node->ready();
  // The term moved with this very heartbeat: the answer waits for it.
  CHECK(of_type(frd.persisted_messages, MessageType::kHeartbeatResponse).size() == 1);
  f.storage.set_hard_state(*frd.hard_state);
  f.node->advance(frd);
  REQUIRE(f.step(MessageType::kHeartbeat, 1, 1).is_ok());
  Ready frd2 = f.node->ready();
  CHECK(of_type(frd2.messages, MessageType::kHeartbeatResponse).size() == 1);
  f.node->advance(frd2);
}

TEST_CASE("raft: a stale leader's appends are answered so it steps down", "[raft][election]") {
  Solo s(2, voters({1, 2, 3}), [](Config& c) { c.pre_vote = true; });
  s.storage.set_hard_state({5, 0, 0});
  s.start();
  REQUIRE(s.step(MessageType::kAppend, 1, 3).is_ok());
  auto resp = of_type(s.drain(), MessageType::kAppendResponse);
  REQUIRE(resp.size() == 1);
  CHECK(resp[0].term == 5);
  CHECK(resp[0].to == 1);
}

}  // namespace kvcore::raft::unit

namespace kvcore::raft::unit {

// A restarted voter forgot that it heard from the leader: with check-quorum
// it refuses votes for one election timeout, so the leader's lease holds.
TEST_CASE("raft: a restarted voter honours the lease it may have granted", "[raft][checkquorum]") {
  UnitCluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
  c.elect(1);
  c.restart(2);
  Message v;
  v.type = MessageType::kVote;
  v.from = 3;
  v.to = 2;
  v.term = c.node(2).term() + 1;
  v.index = 100;
  v.log_term = 100;
  REQUIRE(c.node(2).step(v).is_ok());
  CHECK(c.node(2).term() == v.term - 1);
  c.process(2);
  for (const auto& m : c.queue) CHECK(m.type != MessageType::kVoteResponse);
  c.queue.clear();
  for (int i = 0; i < 10; ++i) c.node(2).tick();
  c.queue.clear();
  REQUIRE(c.node(2).step(v).is_ok());
  CHECK(c.node(2).term() == v.term);
  // A fresh node (term 0) has no lease to honour.
  Solo fresh(1, voters({1, 2, 3}), [](Config& cfg) { cfg.check_quorum = true; });
  fresh.start();
  REQUIRE(fresh.step(MessageType::kVote, 2, 1).is_ok());
  CHECK(of_type(fresh.drain(), MessageType::kVoteResponse).size() == 1);
}

}  // namespace kvcore::raft::unit

namespace kvcore::raft::unit {

// Campaigning clears the known leader, but not the fact that this node heard
// from it: it keeps refusing votes for the rest of the election timeout.
TEST_CASE("raft: manual campaigns cannot break a leader's lease", "[raft][checkquorum]") {
  UnitCluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
  c.elect(1);
  c.tick_all(1);
  REQUIRE(c.node(1).has_valid_lease());
  REQUIRE(c.node(3).campaign().is_ok());
  c.stabilize();
  REQUIRE(c.node(2).campaign().is_ok());
  c.stabilize();
  REQUIRE(c.node(2).campaign().is_ok());
  c.stabilize();
  CHECK(c.node(2).role() != StateRole::kLeader);
  CHECK(c.node(3).role() != StateRole::kLeader);
  CHECK(c.node(1).role() == StateRole::kLeader);
}

}  // namespace kvcore::raft::unit
