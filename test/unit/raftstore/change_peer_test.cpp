// Membership changes as pure functions (lib/raftstore/change_peer.hpp):
// planning a change_peers() request and applying a ChangePeerCmd to a
// region's peer list.
#include <catch2/catch.hpp>

#include <vector>

#include "raftstore/change_peer.hpp"

namespace kvcore::raftstore {
namespace {

using Kind = PeerChangeRequest::Kind;
using raft::ConfChangeType;

// Region 1 with voters on stores 1, 2, 3 (peer id = store id) and a learner
// on store 4 (peer 40).
RegionMeta region() {
  RegionMeta r;
  r.id = 1;
  r.epoch = {5, 2};
  r.peers = {{1, 1, false}, {2, 2, false}, {3, 3, false}, {40, 4, true}};
  return r;
}

struct Ids {
  std::uint64_t next = 100;
  int calls = 0;
  std::function<Result<std::uint64_t>()> fn() {
    return [this]() -> Result<std::uint64_t> {
      ++calls;
      return next++;
    };
  }
};

Result<ChangePeerCmd> plan(std::vector<PeerChangeRequest> reqs, Ids& ids,
                           std::uint64_t leader = 1) {
  return plan_change_peers(region(), leader, reqs, ids.fn());
}

}  // namespace

TEST_CASE("plan_change_peers turns requests into raft changes", "[change_peer]") {
  Ids ids;
  auto cmd = plan({{Kind::kAddLearner, 5}, {Kind::kAddVoter, 4}, {Kind::kDemoteVoter, 3}}, ids);
  REQUIRE(cmd.is_ok());
  REQUIRE(cmd->changes.size() == 3);
  CHECK(cmd->changes[0] == PeerChange{ConfChangeType::kAddLearnerNode, {100, 5, true}});
  CHECK(cmd->changes[1] == PeerChange{ConfChangeType::kAddNode, {40, 4, false}});
  CHECK(cmd->changes[2] == PeerChange{ConfChangeType::kAddLearnerNode, {3, 3, true}});
  CHECK(ids.calls == 1);

  auto cc = to_conf_change(*cmd, "ctx");
  CHECK(cc.transition == raft::ConfChangeTransition::kJointExplicit);
  CHECK(cc.context == "ctx");
  CHECK(same_changes(cc, *cmd));
  cc.changes[1].node_id = 41;
  CHECK(!same_changes(cc, *cmd));

  auto one = plan({{Kind::kRemove, 4}}, ids);
  REQUIRE(one.is_ok());
  CHECK(one->changes[0] == PeerChange{ConfChangeType::kRemoveNode, {40, 4, true}});
  CHECK(to_conf_change(*one, "").transition == raft::ConfChangeTransition::kAuto);
  // A new voter straight away (no learner first) is allowed.
  auto voter = plan({{Kind::kAddVoter, 6}}, ids);
  REQUIRE(voter.is_ok());
  CHECK(voter->changes[0] == PeerChange{ConfChangeType::kAddNode, {101, 6, false}});
  CHECK(to_conf_change(ChangePeerCmd{}, "").leave_joint());
}

TEST_CASE("plan_change_peers refuses what does not fit the region", "[change_peer]") {
  Ids ids;
  const auto code = [&](std::vector<PeerChangeRequest> reqs, std::uint64_t leader = 1) {
    return plan(std::move(reqs), ids, leader).status().code();
  };
  CHECK(code({}) == Code::kInvalidArgument);
  CHECK(code({{Kind::kAddLearner, 0}}) == Code::kInvalidArgument);
  CHECK(code({{Kind::kAddLearner, 5}, {Kind::kAddVoter, 5}}) == Code::kInvalidArgument);
  CHECK(code({{Kind::kAddLearner, 2}}) == Code::kInvalidArgument);
  CHECK(code({{Kind::kAddLearner, 4}}) == Code::kInvalidArgument);
  CHECK(code({{Kind::kAddVoter, 2}}) == Code::kInvalidArgument);
  CHECK(code({{Kind::kDemoteVoter, 4}}) == Code::kInvalidArgument);
  CHECK(code({{Kind::kDemoteVoter, 9}}) == Code::kInvalidArgument);
  CHECK(code({{Kind::kRemove, 9}}) == Code::kInvalidArgument);
  CHECK(code({{Kind::kRemove, 2}}) == Code::kFailedPrecondition);       // demote first
  CHECK(code({{Kind::kDemoteVoter, 1}}) == Code::kFailedPrecondition);  // the leader
  CHECK(code({{Kind::kDemoteVoter, 1}}, 2) == Code::kOk);
  // Nothing was allocated for the refused plans.
  CHECK(ids.calls == 0);
}

TEST_CASE("apply_peer_changes applies a ChangePeerCmd to the peer list", "[change_peer]") {
  ChangePeerCmd cmd;
  cmd.changes = {{ConfChangeType::kAddNode, {40, 4, false}},
                 {ConfChangeType::kAddLearnerNode, {2, 2, true}},
                 {ConfChangeType::kAddLearnerNode, {50, 5, true}}};
  auto next = apply_peer_changes(region(), cmd);
  REQUIRE(next.is_ok());
  CHECK(next->epoch == region().epoch);  // the caller bumps conf_ver
  CHECK(next->peers ==
        std::vector<PeerMeta>{
            {1, 1, false}, {2, 2, true}, {3, 3, false}, {40, 4, false}, {50, 5, true}});

  ChangePeerCmd rm;
  rm.changes = {{ConfChangeType::kRemoveNode, {40, 4, true}}};
  auto removed = apply_peer_changes(region(), rm);
  REQUIRE(removed.is_ok());
  CHECK(removed->peers.size() == 3);
  CHECK(removed->peer_on_store(4) == nullptr);

  // The leave of a joint state changes no peer.
  auto leave = apply_peer_changes(region(), ChangePeerCmd{});
  REQUIRE(leave.is_ok());
  CHECK(*leave == region());

  const auto bad = [](std::vector<PeerChange> changes) {
    ChangePeerCmd c;
    c.changes = std::move(changes);
    return apply_peer_changes(region(), c).status().code();
  };
  CHECK(bad({{ConfChangeType::kRemoveNode, {77, 7, true}}}) == Code::kInvalidArgument);
  CHECK(bad({{ConfChangeType::kAddNode, {2, 5, false}}}) == Code::kInvalidArgument);
  CHECK(bad({{ConfChangeType::kAddNode, {60, 2, false}}}) == Code::kInvalidArgument);
  CHECK(bad({{ConfChangeType::kAddNode, {0, 6, false}}}) == Code::kInvalidArgument);
  CHECK(bad({{ConfChangeType::kAddLearnerNode, {1, 1, true}},
             {ConfChangeType::kAddLearnerNode, {2, 2, true}},
             {ConfChangeType::kAddLearnerNode, {3, 3, true}}}) == Code::kInvalidArgument);
}

}  // namespace kvcore::raftstore
