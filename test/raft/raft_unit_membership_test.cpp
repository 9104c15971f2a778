// White-box tests of membership (confchange validation, joint consensus,
// learners), leader transfer, snapshots and ReadIndex.
#include <catch2/catch.hpp>

#include "raft/confchange.hpp"
#include "raft_unit_cluster.hpp"

namespace kvcore::raft::unit {

namespace {

ConfChangeSingle v(NodeId id) { return {ConfChangeType::kAddNode, id}; }
ConfChangeSingle l(NodeId id) { return {ConfChangeType::kAddLearnerNode, id}; }
ConfChangeSingle r(NodeId id) { return {ConfChangeType::kRemoveNode, id}; }

ConfChangeV2 cc(std::vector<ConfChangeSingle> changes,
                ConfChangeTransition t = ConfChangeTransition::kAuto) {
  ConfChangeV2 c;
  c.transition = t;
  c.changes = std::move(changes);
  return c;
}

ProgressTracker tracker_of(const ConfState& cs) {
  ProgressTracker t(16, 0);
  auto cp = restore_conf_state(cs, t, 10);
  REQUIRE(cp.is_ok());
  t.config = cp->config;
  t.progress = cp->progress;
  return t;
}

// Applies cc to cs through the changer; the resulting ConfState or an error.
Result<ConfState> change(const ConfState& cs, const ConfChangeV2& c) {
  ProgressTracker t = tracker_of(cs);
  auto cp = ConfChanger(t, 10).apply(c);
  if (!cp.is_ok()) return cp.status();
  return cp->config.conf_state();
}

void propose_cc(UnitCluster& c, NodeId leader, const ConfChangeV2& change_) {
  REQUIRE(c.node(leader).propose_conf_change(change_).is_ok());
  c.stabilize();
}

}  // namespace

TEST_CASE("confchange: simple changes", "[raft][confchange]") {
  auto cs = change(voters({1}), cc({v(2)}));
  REQUIRE(cs.is_ok());
  CHECK(cs->equivalent(voters({1, 2})));
  cs = change(voters({1, 2}), cc({l(3)}));
  REQUIRE(cs.is_ok());
  CHECK(cs->equivalent(voters({1, 2}, {3})));
  // Promotion of a learner.
  cs = change(voters({1, 2}, {3}), cc({v(3)}));
  REQUIRE(cs.is_ok());
  CHECK(cs->equivalent(voters({1, 2, 3})));
  // Demotion outside a joint config is a simple change (one voter changes).
  cs = change(voters({1, 2, 3}), cc({l(3)}));
  REQUIRE(cs.is_ok());
  CHECK(cs->equivalent(voters({1, 2}, {3})));
  // Removing an unknown node is a no-op.
  cs = change(voters({1, 2}), cc({r(9)}));
  REQUIRE(cs.is_ok());
  CHECK(cs->equivalent(voters({1, 2})));
}

TEST_CASE("confchange: illegal transitions are rejected", "[raft][confchange]") {
  // Two voters at once needs a joint config.
  ConfChangeV2 two = cc({v(2), v(3)});
  ProgressTracker t = tracker_of(voters({1}));
  CHECK_FALSE(ConfChanger(t, 10).simple(two.changes).is_ok());
  // Removing every voter.
  CHECK(change(voters({1}), cc({r(1)})).status().code() == Code::kInvalidArgument);
  CHECK_FALSE(change(voters({1, 2}), cc({r(1), r(2)})).is_ok());
  // Leaving when not joint.
  CHECK_FALSE(change(voters({1, 2}), cc({})).is_ok());
  // Entering joint while joint.
  ConfState joint = voters({1, 2, 4});
  joint.voters_outgoing = {1, 2, 3};
  CHECK_FALSE(change(joint, cc({v(5)}, ConfChangeTransition::kJointExplicit)).is_ok());
  CHECK_FALSE(change(joint, cc({v(5)})).is_ok());
  // Entering joint from a zero-voter config.
  CHECK_FALSE(change(ConfState{}, cc({v(1)}, ConfChangeTransition::kJointExplicit)).is_ok());
}

TEST_CASE("confchange: joint enter and leave, demotion through learners_next",
          "[raft][confchange]") {
  auto cs = change(voters({1, 2, 3}), cc({v(4), l(3)}, ConfChangeTransition::kJointExplicit));
  REQUIRE(cs.is_ok());
  ConfState want = voters({1, 2, 4});
  want.voters_outgoing = {1, 2, 3};
  want.learners_next = {3};
  CHECK(cs->equivalent(want));
  CHECK_FALSE(cs->auto_leave);
  auto left = change(*cs, cc({}));
  REQUIRE(left.is_ok());
  CHECK(left->equivalent(voters({1, 2, 4}, {3})));
  // Auto transitions with several changes leave automatically.
  auto al = change(voters({1, 2, 3}), cc({v(4), r(1)}));
  REQUIRE(al.is_ok());
  CHECK(al->auto_leave);
  CHECK(al->joint());
  // Replacing a voter by removal in joint: the removed one keeps voting in
  // the outgoing config, and is gone after leaving.
  auto left2 = change(*al, cc({}));
  REQUIRE(left2.is_ok());
  CHECK(left2->equivalent(voters({2, 3, 4})));
}

TEST_CASE("confchange: restore rejects broken conf states", "[raft][confchange]") {
  ProgressTracker t(16, 0);
  CHECK_FALSE(restore_conf_state(voters({1, 2}, {2}), t, 1).is_ok());
  ConfState bad_next = voters({1, 2});
  bad_next.learners_next = {3};
  CHECK_FALSE(restore_conf_state(bad_next, t, 1).is_ok());
  ConfState bad_auto = voters({1, 2});
  bad_auto.auto_leave = true;
  CHECK_FALSE(restore_conf_state(bad_auto, t, 1).is_ok());
  ConfState joint = voters({1, 2, 4});
  joint.voters_outgoing = {1, 2, 3};
  joint.learners_next = {3};
  joint.auto_leave = true;
  auto ok = restore_conf_state(joint, t, 1);
  REQUIRE(ok.is_ok());
  CHECK(ok->config.conf_state().equivalent(joint));
}

TEST_CASE("raft: add a learner, then promote it", "[raft][membership]") {
  UnitCluster c(4, nullptr, {4});
  c.elect(1);
  REQUIRE(c.node(1).propose("a").is_ok());
  c.stabilize();
  CHECK(applied_data(c.nodes.at(4)) == std::vector<std::string>{"a"});
  CHECK(c.node(1).status().progress.at(4).is_learner);
  propose_cc(c, 1, cc({v(4)}));
  CHECK(c.nodes.at(1).conf_state.equivalent(voters({1, 2, 3, 4})));
  CHECK(c.nodes.at(4).conf_state.equivalent(voters({1, 2, 3, 4})));
  CHECK_FALSE(c.node(1).status().progress.at(4).is_learner);
}

TEST_CASE("raft: a second conf change is refused while one is pending", "[raft][membership]") {
  UnitCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).propose_conf_change(cc({l(4)})).is_ok());
  Status st = c.node(1).propose_conf_change(cc({l(5)}));
  CHECK(st.sub_code() == SubCode::kProposalDropped);
  c.stabilize();
  CHECK(c.node(1).propose_conf_change(cc({l(5)})).is_ok());
  // Leaving while not joint is refused at proposal time.
  c.stabilize();
  CHECK(c.node(1).propose_conf_change(cc({})).sub_code() == SubCode::kProposalDropped);
}

TEST_CASE("raft: joint consensus with auto-leave", "[raft][membership]") {
  UnitCluster c(3);
  c.elect(1);
  Config cfg4 = c.nodes.at(1).config;
  cfg4.id = 4;
  cfg4.seed = 1004;
  // A joining node starts from the group's initial membership.
  c.add(4, cfg4, voters({1, 2, 3}));
  propose_cc(c, 1, cc({v(4), r(3)}));
  c.tick_all(3);
  for (NodeId id : {1, 2, 4}) {
    INFO("node " << id);
    CHECK(c.nodes.at(id).conf_state.equivalent(voters({1, 2, 4})));
  }
  REQUIRE(c.node(1).propose("after").is_ok());
  c.stabilize();
  CHECK(applied_data(c.nodes.at(4)).back() == "after");
}

TEST_CASE("raft: explicit joint config stays until an empty change", "[raft][membership]") {
  UnitCluster c(3);
  c.elect(1);
  propose_cc(c, 1, cc({l(3)}, ConfChangeTransition::kJointExplicit));
  c.tick_all(3);
  ConfState joint = voters({1, 2});
  joint.voters_outgoing = {1, 2, 3};
  joint.learners_next = {3};
  CHECK(c.nodes.at(1).conf_state.equivalent(joint));
  CHECK(c.node(1).propose_conf_change(cc({v(4)})).sub_code() == SubCode::kProposalDropped);
  propose_cc(c, 1, cc({}));
  CHECK(c.nodes.at(1).conf_state.equivalent(voters({1, 2}, {3})));
  CHECK(c.nodes.at(3).conf_state.equivalent(voters({1, 2}, {3})));
}

TEST_CASE("raft: a removed leader steps down", "[raft][membership]") {
  UnitCluster c(3);
  c.elect(1);
  propose_cc(c, 1, cc({r(1)}));
  CHECK(c.node(1).role() == StateRole::kFollower);
  c.tick_all(30);
  const bool new_leader =
      c.node(2).role() == StateRole::kLeader || c.node(3).role() == StateRole::kLeader;
  CHECK(new_leader);
  CHECK(c.node(1).role() != StateRole::kLeader);
}

TEST_CASE("raft: replacing the leader through a joint config", "[raft][membership]") {
  UnitCluster c(3);
  c.elect(1);
  Config cfg4 = c.nodes.at(1).config;
  cfg4.id = 4;
  c.add(4, cfg4, voters({1, 2, 3}));
  propose_cc(c, 1, cc({v(4), r(1)}));
  // While joint, 1 still leads (it is an outgoing voter); auto-leave removes it.
  c.tick_all(3);
  CHECK(c.nodes.at(2).conf_state.equivalent(voters({2, 3, 4})));
  CHECK(c.node(1).role() != StateRole::kLeader);
  c.tick_all(30);
  int leaders = 0;
  for (NodeId id : {2, 3, 4}) leaders += c.node(id).role() == StateRole::kLeader ? 1 : 0;
  CHECK(leaders == 1);
}

TEST_CASE("raft: membership is rebuilt from storage on restart", "[raft][membership]") {
  UnitCluster c(3);
  c.elect(1);
  propose_cc(c, 1, cc({l(3)}, ConfChangeTransition::kJointExplicit));
  c.restart(2);
  ConfState joint = voters({1, 2});
  joint.voters_outgoing = {1, 2, 3};
  joint.learners_next = {3};
  CHECK(c.node(2).status().conf_state.equivalent(joint));
  c.restart(1);
  c.tick_all(40);
  // Whoever leads now can leave the joint config.
  NodeId leader = kNoNode;
  for (NodeId id : {1, 2, 3}) {
    if (c.node(id).role() == StateRole::kLeader) leader = id;
  }
  REQUIRE(leader != kNoNode);
  propose_cc(c, leader, cc({}));
  CHECK(c.node(leader).status().conf_state.equivalent(voters({1, 2}, {3})));
}

TEST_CASE("raft: leader transfer to an up-to-date and to a lagging follower", "[raft][transfer]") {
  UnitCluster c(3);
  c.elect(1);
  c.node(1).transfer_leader(2);
  c.stabilize();
  CHECK(c.node(2).role() == StateRole::kLeader);
  CHECK(c.node(1).role() == StateRole::kFollower);
  // Lagging: 3 misses entries, the leader catches it up before TimeoutNow.
  c.isolate(3);
  for (int i = 0; i < 5; ++i) REQUIRE(c.node(2).propose("x").is_ok());
  c.stabilize();
  c.heal();
  c.node(2).transfer_leader(3);
  CHECK(c.node(2).propose("during").sub_code() == SubCode::kProposalDropped);
  c.stabilize();
  CHECK(c.node(3).role() == StateRole::kLeader);
  CHECK(applied_data(c.nodes.at(3)).size() == 5);
}

TEST_CASE("raft: a transfer asked at a follower is forwarded to the leader", "[raft][transfer]") {
  UnitCluster c(3);
  c.elect(1);
  c.node(2).transfer_leader(3);
  c.stabilize();
  CHECK(c.node(3).role() == StateRole::kLeader);
  CHECK(c.node(1).role() == StateRole::kFollower);
}

TEST_CASE("raft: leader transfer to a learner is ignored, a stuck one times out",
          "[raft][transfer]") {
  UnitCluster c(4, nullptr, {4});
  c.elect(1);
  c.node(1).transfer_leader(4);
  c.stabilize();
  CHECK(c.node(1).role() == StateRole::kLeader);
  CHECK(c.node(1).status().lead_transferee == kNoNode);
  c.isolate(3);
  c.node(1).transfer_leader(3);
  c.stabilize();
  CHECK(c.node(1).status().lead_transferee == 3);
  for (int i = 0; i < 10; ++i) {
    c.node(1).tick();
    c.stabilize();
  }
  CHECK(c.node(1).status().lead_transferee == kNoNode);
  CHECK(c.node(1).role() == StateRole::kLeader);
  CHECK(c.node(1).propose("ok").is_ok());
}

TEST_CASE("raft: a transfer is aborted when the target is removed", "[raft][transfer]") {
  UnitCluster c(3);
  c.elect(1);
  c.isolate(3);
  c.node(1).transfer_leader(3);
  c.stabilize();
  REQUIRE(c.node(1).status().lead_transferee == 3);
  // The removal is applied while the transfer is pending: proposals are
  // dropped during a transfer, so apply the change directly.
  c.node(1).apply_conf_change(cc({r(3)}));
  CHECK(c.node(1).status().lead_transferee == kNoNode);
}

TEST_CASE("raft: a transfer is aborted when the target is being demoted", "[raft][transfer]") {
  UnitCluster c(3);
  c.elect(1);
  c.isolate(3);
  c.node(1).transfer_leader(3);
  c.stabilize();
  REQUIRE(c.node(1).status().lead_transferee == 3);
  Status err;
  ConfState cs =
      c.node(1).apply_conf_change(cc({l(3)}, ConfChangeTransition::kJointExplicit), &err);
  REQUIRE(err.is_ok());
  CHECK(cs.learners_next == std::vector<NodeId>{3});
  CHECK(c.node(1).status().lead_transferee == kNoNode);
  // Illegal changes leave the config alone and say why.
  ConfState same = c.node(1).apply_conf_change(cc({v(4)}), &err);
  CHECK(err.code() == Code::kInvalidArgument);
  CHECK(same.equivalent(cs));
}

TEST_CASE("raft: a lagging follower catches up by snapshot", "[raft][snapshot]") {
  UnitCluster c(3);
  c.elect(1);
  c.isolate(3);
  for (int i = 0; i < 10; ++i) REQUIRE(c.node(1).propose("s" + std::to_string(i)).is_ok());
  c.stabilize();
  auto& l = c.nodes.at(1);
  const Index applied = l.applied.back().index;
  REQUIRE(l.storage->create_snapshot(applied, l.conf_state, "state").is_ok());
  REQUIRE(l.storage->compact(applied).is_ok());
  c.heal();
  // Run until the leader decides on a snapshot, holding the snapshot back.
  std::vector<Message> snaps;
  for (int i = 0; i < 10 && snaps.empty(); ++i) {
    c.node(1).tick();
    for (auto& [id, u] : c.nodes) c.process(id);
    auto msgs = std::move(c.queue);
    c.queue.clear();
    for (auto& m : msgs) {
      if (m.type == MessageType::kSnapshot) {
        snaps.push_back(m);
      } else {
        c.deliver(m);
      }
    }
  }
  REQUIRE(snaps.size() == 1);
  CHECK(snaps[0].to == 3);
  CHECK(snaps[0].snapshot->metadata.index == applied);
  auto pr = c.node(1).status().progress.at(3);
  CHECK(pr.state == ProgressState::kSnapshot);
  CHECK(pr.pending_snapshot == applied);
  SECTION("delivered") {
    c.deliver(snaps[0]);
    c.stabilize();
    CHECK(c.nodes.at(3).storage->snapshot()->metadata.index == applied);
    c.node(1).report_snapshot(3, false);
    c.tick_all(2);
    CHECK(c.node(1).status().progress.at(3).state == ProgressState::kReplicate);
    REQUIRE(c.node(1).propose("after").is_ok());
    c.stabilize();
    CHECK(applied_data(c.nodes.at(3)) == std::vector<std::string>{"after"});
    CHECK(c.nodes.at(3).applied.back().index == applied + 1);
  }
  SECTION("failed and retried") {
    c.node(1).report_snapshot(3, true);
    CHECK(c.node(1).status().progress.at(3).state == ProgressState::kProbe);
    CHECK(c.node(1).status().progress.at(3).pending_snapshot == 0);
    c.tick_all(3);
    CHECK(c.nodes.at(3).storage->snapshot()->metadata.index == applied);
    CHECK(c.node(1).status().progress.at(3).match >= applied);
  }
}

TEST_CASE("raft: safe ReadIndex waits for a heartbeat quorum", "[raft][read]") {
  UnitCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).propose("x").is_ok());
  c.stabilize();
  c.isolate(1);
  c.node(1).read_index("r1");
  c.stabilize();
  CHECK(c.nodes.at(1).read_states.empty());
  c.heal();
  c.node(1).read_index("r2");
  c.stabilize();
  // The quorum that confirms r2 also confirms the earlier r1.
  REQUIRE(c.nodes.at(1).read_states.size() == 2);
  CHECK(c.nodes.at(1).read_states[0].request_ctx == "r1");
  CHECK(c.nodes.at(1).read_states[1].request_ctx == "r2");
  CHECK(c.nodes.at(1).read_states[1].index == 2);
  // From a follower: forwarded, answered with the leader's commit.
  c.node(2).read_index("f1");
  c.stabilize();
  REQUIRE(c.nodes.at(2).read_states.size() == 1);
  CHECK(c.nodes.at(2).read_states[0].index == 2);
}

TEST_CASE("raft: lease ReadIndex needs check-quorum and a valid lease", "[raft][read]") {
  Config bad;
  bad.id = 1;
  bad.read_only_option = ReadOnlyOption::kLeaseBased;
  CHECK(bad.validate().code() == Code::kInvalidArgument);

  UnitCluster c(3, [](Config& cfg) {
    cfg.check_quorum = true;
    cfg.read_only_option = ReadOnlyOption::kLeaseBased;
  });
  c.elect(1);
  // The acknowledged first append of the term already grants the lease.
  CHECK(c.node(1).has_valid_lease());
  c.tick_all(1);
  CHECK(c.node(1).has_valid_lease());
  c.node(1).read_index("lease");
  c.process(1);
  REQUIRE(c.nodes.at(1).read_states.size() == 1);
  CHECK(c.nodes.at(1).read_states[0].index == 1);
  // Once a transfer starts the lease is void and lease reads are refused.
  c.isolate(3);
  c.node(1).transfer_leader(3);
  CHECK_FALSE(c.node(1).has_valid_lease());
  c.node(1).read_index("after-transfer");
  c.stabilize();
  CHECK(c.nodes.at(1).read_states.size() == 1);
}

TEST_CASE("raft: after a TimeoutNow the lease stays void for the term", "[raft][read]") {
  UnitCluster c(3, [](Config& cfg) {
    cfg.check_quorum = true;
    cfg.read_only_option = ReadOnlyOption::kLeaseBased;
  });
  c.elect(1);
  c.tick_all(1);
  REQUIRE(c.node(1).has_valid_lease());
  // 3 is up to date, so TimeoutNow leaves at once; it is lost on the way.
  c.cut.insert({1, 3});
  c.node(1).transfer_leader(3);
  c.stabilize();
  for (int i = 0; i < 10; ++i) {
    c.node(1).tick();
    c.stabilize();
  }
  REQUIRE(c.node(1).status().lead_transferee == kNoNode);
  REQUIRE(c.node(1).role() == StateRole::kLeader);
  // A delayed TimeoutNow could still start an election: no lease reads, but
  // reads are still served the safe way (a heartbeat round with 2).
  CHECK_FALSE(c.node(1).has_valid_lease());
  c.node(1).read_index("safe");
  c.process(1);
  CHECK(c.nodes.at(1).read_states.empty());
  c.stabilize();
  REQUIRE(c.nodes.at(1).read_states.size() == 1);
  CHECK(c.nodes.at(1).read_states[0].request_ctx == "safe");
}

TEST_CASE("raft: the lease runs from the send time of acknowledged messages", "[raft][read]") {
  UnitCluster c(3, [](Config& cfg) {
    cfg.check_quorum = true;
    cfg.read_only_option = ReadOnlyOption::kLeaseBased;
  });
  c.elect(1);
  // One heartbeat round, its acknowledgements held back for a while.
  c.node(1).tick();
  c.process(1);
  c.deliver_all();
  c.process(2);
  c.process(3);
  auto acks = std::move(c.queue);
  c.queue.clear();
  c.isolate(1);
  for (int i = 0; i < 5; ++i) {
    c.node(1).tick();
    c.stabilize();
  }
  c.heal();
  for (auto& m : acks) c.deliver(m);
  c.isolate(1);
  REQUIRE(c.node(1).role() == StateRole::kLeader);
  CHECK(c.node(1).has_valid_lease());
  // Late acknowledgements renew nothing beyond send time + election timeout:
  // 10 ticks after the heartbeat it is gone, even though they arrived after
  // the last quorum check.
  int valid_ticks = 0;
  while (c.node(1).has_valid_lease() && valid_ticks < 20) {
    c.node(1).tick();
    c.stabilize();
    ++valid_ticks;
  }
  CHECK(valid_ticks + 6 == 11);
}

TEST_CASE("raft: ReadIndex before the first commit of the term is postponed", "[raft][read]") {
  UnitCluster c(3);
  REQUIRE(c.node(1).campaign().is_ok());
  // Let the election finish but hold back the leader's first append.
  for (int i = 0; i < 3; ++i) {
    for (auto& [id, u] : c.nodes) c.process(id);
    auto msgs = std::move(c.queue);
    c.queue.clear();
    for (auto& m : msgs) {
      if (m.type != MessageType::kAppend) c.deliver(m);
    }
  }
  REQUIRE(c.node(1).role() == StateRole::kLeader);
  c.node(1).read_index("early");
  c.process(1);
  CHECK(c.nodes.at(1).read_states.empty());
  c.tick_all(2);
  c.stabilize();
  REQUIRE(c.nodes.at(1).read_states.size() == 1);
  CHECK(c.nodes.at(1).read_states[0].index >= 1);
}

}  // namespace kvcore::raft::unit
