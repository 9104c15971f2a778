// White-box tests of replication: log matching, conflicts and fast back-off,
// the commit rule (Figure 8), progress states, inflights and size limits.
#include <catch2/catch.hpp>

#include "raft/inflights.hpp"
#include "raft/progress.hpp"
#include "raft/raft_log.hpp"
#include "raft_unit_cluster.hpp"

namespace kvcore::raft::unit {

namespace {

// A follower whose log holds `ents` (term in hard state `term`).
Solo follower_with(NodeId id, std::vector<Entry> ents, Term term) {
  Solo s(id, voters({1, 2, 3}));
  REQUIRE(s.storage.append(ents).is_ok());
  s.storage.set_hard_state({term, 0, 0});
  return s;
}

}  // namespace

// §5.3 log matching: an append is accepted only when the previous entry matches.
TEST_CASE("raft: append is rejected when the previous entry does not match", "[raft][log]") {
  auto s = follower_with(2, {entry(1, 1), entry(1, 2), entry(2, 3)}, 2);
  s.start();
  // prev (3, term 1) does not match our term 2 at index 3.
  REQUIRE(s.step(MessageType::kAppend, 1, 3, [](Message& m) {
             m.index = 3;
             m.log_term = 1;
             m.entries = {entry(3, 4)};
           }).is_ok());
  auto resp = of_type(s.drain(), MessageType::kAppendResponse);
  REQUIRE(resp.size() == 1);
  CHECK(resp[0].reject);
  CHECK(resp[0].index == 3);
  // Hint: the largest index with term <= 1 is 2.
  CHECK(resp[0].reject_hint == 2);
  CHECK(resp[0].log_term == 1);
}

TEST_CASE("raft: a conflicting suffix is truncated and replaced", "[raft][log]") {
  auto s = follower_with(2, {entry(1, 1), entry(1, 2), entry(2, 3), entry(2, 4)}, 2);
  s.start();
  REQUIRE(s.step(MessageType::kAppend, 1, 3, [](Message& m) {
             m.index = 2;
             m.log_term = 1;
             m.entries = {entry(3, 3, "new")};
             m.commit = 3;
           }).is_ok());
  auto resp = of_type(s.drain(), MessageType::kAppendResponse);
  REQUIRE(resp.size() == 1);
  CHECK_FALSE(resp[0].reject);
  CHECK(resp[0].index == 3);
  CHECK(*s.storage.last_index() == 3);
  CHECK(*s.storage.term(3) == 3);
  REQUIRE(s.applied.size() == 3);
  CHECK(s.applied.back().data == "new");
}

TEST_CASE("raft: appends below the commit index are answered with the commit", "[raft][log]") {
  auto s = follower_with(2, {entry(1, 1), entry(1, 2), entry(1, 3)}, 1);
  s.storage.set_hard_state({1, 0, 3});
  s.start();
  REQUIRE(s.step(MessageType::kAppend, 1, 1, [](Message& m) {
             m.index = 1;
             m.log_term = 1;
             m.entries = {entry(1, 2)};
           }).is_ok());
  auto resp = of_type(s.drain(), MessageType::kAppendResponse);
  REQUIRE(resp.size() == 1);
  CHECK_FALSE(resp[0].reject);
  CHECK(resp[0].index == 3);
}

TEST_CASE("raft log: find_conflict_by_term skips whole terms", "[raft][log]") {
  MemoryStorage ms;
  REQUIRE(ms.append({entry(1, 1), entry(2, 2), entry(2, 3), entry(4, 4), entry(4, 5), entry(4, 6)})
              .is_ok());
  auto log = RaftLog::create(ms, 1 << 20);
  REQUIRE(log.is_ok());
  CHECK(log->find_conflict_by_term(6, 3) == std::pair<Index, Term>{3, 2});
  CHECK(log->find_conflict_by_term(6, 4) == std::pair<Index, Term>{6, 4});
  CHECK(log->find_conflict_by_term(6, 1) == std::pair<Index, Term>{1, 1});
  CHECK(log->find_conflict_by_term(10, 1) == std::pair<Index, Term>{10, 0});
  CHECK(log->find_conflict({entry(2, 3), entry(3, 4)}) == 4);
  CHECK(log->find_conflict({entry(2, 3), entry(4, 4), entry(4, 7)}) == 7);
  CHECK(log->find_conflict({entry(1, 1)}) == 0);
}

// The leader uses the hint to jump back a whole term per round trip.
TEST_CASE("raft: fast back-off converges a divergent follower", "[raft][log]") {
  UnitCluster c(3);
  c.elect(1);
  // Isolate 3, then have the old leader append entries nobody else gets.
  c.isolate(1);
  for (int i = 0; i < 20; ++i) REQUIRE(c.node(1).propose("lost" + std::to_string(i)).is_ok());
  c.stabilize();
  c.heal();
  c.isolate(1);
  c.elect(2);
  for (int i = 0; i < 5; ++i) REQUIRE(c.node(2).propose("kept" + std::to_string(i)).is_ok());
  c.stabilize();
  c.heal();
  // The old leader hears from the new one and is brought in line.
  c.tick_all(3);
  c.stabilize();
  const auto want = applied_data(c.nodes.at(2));
  CHECK(want.size() == 5);
  CHECK(applied_data(c.nodes.at(1)) == want);
  CHECK(applied_data(c.nodes.at(3)) == want);
  CHECK(*c.nodes.at(1).storage->last_index() == *c.nodes.at(2).storage->last_index());
}

// Figure 8: a leader never commits an entry of an earlier term by counting
// replicas; only an entry of its own term commits (and everything before it).
TEST_CASE("raft: entries of earlier terms commit only with a current-term entry",
          "[raft][commit]") {
  Solo s(1, voters({1, 2, 3}));
  REQUIRE(s.storage.append({entry(1, 1), entry(2, 2)}).is_ok());
  s.storage.set_hard_state({2, 0, 1});
  s.start();
  REQUIRE(s.node->campaign().is_ok());
  s.drain();
  REQUIRE(s.step(MessageType::kVoteResponse, 2, 3).is_ok());
  s.drain();
  REQUIRE(s.node->role() == StateRole::kLeader);
  CHECK(s.node->term() == 3);
  // Follower 2 acknowledges index 2 (a term-2 entry): 1 and 2 have it, a
  // majority, but it must not commit.
  REQUIRE(s.step(MessageType::kAppendResponse, 2, 3, [](Message& m) { m.index = 2; }).is_ok());
  s.drain();
  CHECK(s.node->status().hard_state.commit == 1);
  // Index 3 is the leader's empty entry of term 3: committing it commits 2.
  REQUIRE(s.step(MessageType::kAppendResponse, 2, 3, [](Message& m) { m.index = 3; }).is_ok());
  s.drain();
  CHECK(s.node->status().hard_state.commit == 3);
}

// Leader completeness: a node missing committed entries cannot win.
TEST_CASE("raft: a stale node cannot be elected over committed entries", "[raft][commit]") {
  UnitCluster c(3);
  c.elect(1);
  c.isolate(3);
  for (int i = 0; i < 3; ++i) REQUIRE(c.node(1).propose("c" + std::to_string(i)).is_ok());
  c.stabilize();
  c.heal();
  c.isolate(1);
  // 3 lacks the committed entries: 2 refuses it.
  REQUIRE(c.node(3).campaign().is_ok());
  c.stabilize();
  CHECK(c.node(3).role() != StateRole::kLeader);
  REQUIRE(c.node(2).campaign().is_ok());
  c.stabilize();
  CHECK(c.node(2).role() == StateRole::kLeader);
  c.stabilize();
  CHECK(applied_data(c.nodes.at(3)).size() == 3);
}

TEST_CASE("progress: state transitions", "[raft][progress]") {
  Progress pr(5, 4, 0, false);
  CHECK(pr.state == ProgressState::kProbe);
  pr.sent_entries(2, 10);
  CHECK(pr.is_paused());
  CHECK(pr.maybe_update(6));
  CHECK_FALSE(pr.is_paused());
  CHECK(pr.match == 6);
  CHECK(pr.next == 7);
  pr.become_replicate();
  CHECK(pr.next == 7);
  for (int i = 0; i < 4; ++i) pr.sent_entries(1, 10);
  CHECK(pr.next == 11);
  CHECK(pr.is_paused());  // window of 4 full
  pr.inflights.free_le(8);
  CHECK_FALSE(pr.is_paused());
  // A stale rejection (at or below match) is ignored; a real one resets next.
  CHECK_FALSE(pr.maybe_decr_to(6, 6));
  CHECK(pr.maybe_decr_to(9, 7));
  CHECK(pr.next == 7);
  pr.become_snapshot(20);
  CHECK(pr.is_paused());
  CHECK(pr.pending_snapshot == 20);
  pr.become_probe();
  CHECK(pr.next == 21);
  CHECK(pr.pending_snapshot == 0);
}

TEST_CASE("progress: probe decrements only on the latest rejection", "[raft][progress]") {
  Progress pr(10, 4, 0, false);
  pr.match = 3;
  CHECK_FALSE(pr.maybe_decr_to(5, 4));  // not the probe we sent (next-1 = 9)
  CHECK(pr.maybe_decr_to(9, 6));
  CHECK(pr.next == 7);
  CHECK(pr.maybe_decr_to(6, 1));
  CHECK(pr.next == 4);  // never below match + 1
}

TEST_CASE("inflights: count and byte limits", "[raft][inflights]") {
  Inflights in(3, 100);
  in.add(1, 10);
  in.add(2, 10);
  CHECK_FALSE(in.full());
  in.add(3, 10);
  CHECK(in.full());
  in.free_le(1);
  CHECK(in.count() == 2);
  CHECK_FALSE(in.full());
  in.add(4, 90);
  CHECK(in.full());  // count 3 and bytes 110
  in.free_le(3);
  CHECK(in.count() == 1);
  CHECK(in.bytes() == 90);
  CHECK_FALSE(in.full());
  in.free_le(100);
  CHECK(in.count() == 0);
  CHECK(in.bytes() == 0);
  Inflights by_bytes(100, 50);
  by_bytes.add(1, 60);
  CHECK(by_bytes.full());
  by_bytes.free_first();
  CHECK_FALSE(by_bytes.full());
}

TEST_CASE("raft: the inflight window bounds unacknowledged appends", "[raft][inflights]") {
  UnitCluster c(2, [](Config& cfg) {
    cfg.max_inflight_msgs = 3;
    cfg.max_size_per_msg = 0;  // one entry per message
  });
  c.elect(1);
  // Hold back everything 1 sends to 2.
  c.cut.insert({1, 2});
  for (int i = 0; i < 10; ++i) REQUIRE(c.node(1).propose("p").is_ok());
  c.process(1);
  std::size_t apps = 0;
  for (const auto& m : c.queue) {
    if (m.type == MessageType::kAppend && m.to == 2) ++apps;
  }
  CHECK(apps == 3);
  CHECK(c.node(1).status().progress.at(2).inflight_count == 3);
  c.queue.clear();
  c.heal();
  // A heartbeat response frees a slot; acknowledgements then drain the rest.
  c.tick_all(3);
  c.stabilize();
  CHECK(applied_data(c.nodes.at(2)).size() == 10);
}

TEST_CASE("raft: max_size_per_msg splits appends", "[raft][inflights]") {
  UnitCluster c(2, [](Config& cfg) { cfg.max_size_per_msg = 100; });
  c.elect(1);
  c.cut.insert({1, 2});
  for (int i = 0; i < 10; ++i) REQUIRE(c.node(1).propose(std::string(40, 'x')).is_ok());
  c.process(1);
  for (const auto& m : c.queue) {
    if (m.type != MessageType::kAppend) continue;
    std::uint64_t bytes = 0;
    for (const auto& e : m.entries) bytes += e.byte_size();
    CHECK((m.entries.size() <= 1 || bytes <= 100));
  }
  c.queue.clear();
  c.heal();
  c.tick_all(2);
  CHECK(applied_data(c.nodes.at(2)).size() == 10);
}

TEST_CASE("raft: proposals between two Readies travel in one append", "[raft][flow]") {
  UnitCluster c(3);
  c.elect(1);
  for (int i = 0; i < 5; ++i) REQUIRE(c.node(1).propose("b" + std::to_string(i)).is_ok());
  Ready rd = c.node(1).ready();
  auto apps = of_type(rd.messages, MessageType::kAppend);
  REQUIRE(apps.size() == 2);
  CHECK(apps[0].entries.size() == 5);
  CHECK(apps[1].entries.size() == 5);
  CHECK(rd.must_sync);
  REQUIRE(c.nodes.at(1).storage->append(rd.entries).is_ok());
  c.node(1).advance(rd);
  // Only the commit index moves in the next leader Ready: no sync needed.
  for (const auto& m : rd.messages) c.deliver(m);
  c.process(2);
  c.process(3);
  c.deliver_all();
  REQUIRE(c.node(1).has_ready());
  Ready commit_rd = c.node(1).ready();
  INFO(describe(commit_rd));
  REQUIRE(commit_rd.hard_state);
  CHECK(commit_rd.hard_state->commit == 6);
  CHECK(commit_rd.entries.empty());
  CHECK_FALSE(commit_rd.must_sync);
  CHECK(commit_rd.committed_entries.size() == 5);
  // One commit-only append per follower, not one per acknowledgement.
  CHECK(of_type(commit_rd.messages, MessageType::kAppend).size() == 2);
  c.node(1).advance(commit_rd);
}

TEST_CASE("raft: the uncommitted size cap rejects proposals", "[raft][flow]") {
  UnitCluster c(3, [](Config& cfg) { cfg.max_uncommitted_entries_size = 100; });
  c.elect(1);
  c.isolate(1);
  REQUIRE(c.node(1).propose(std::string(60, 'a')).is_ok());
  REQUIRE(c.node(1).propose(std::string(40, 'b')).is_ok());
  Status st = c.node(1).propose("c");
  CHECK(st.code() == Code::kResourceExhausted);
  c.heal();
  c.stabilize();
  c.tick_all(2);
  // Once applied the budget is free again.
  CHECK(c.node(1).propose(std::string(60, 'd')).is_ok());
  c.stabilize();
  CHECK(applied_data(c.nodes.at(3)).size() == 3);
}

TEST_CASE("raft: a follower that lost its appends is probed again", "[raft][progress]") {
  UnitCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).status().progress.at(2).state == ProgressState::kReplicate);
  c.node(1).report_unreachable(2);
  CHECK(c.node(1).status().progress.at(2).state == ProgressState::kProbe);
  REQUIRE(c.node(1).propose("x").is_ok());
  c.stabilize();
  CHECK(c.node(1).status().progress.at(2).state == ProgressState::kReplicate);
  CHECK(applied_data(c.nodes.at(2)).size() == 1);
}

TEST_CASE("raft: commits reach followers through heartbeats", "[raft][commit]") {
  UnitCluster c(3);
  c.elect(1);
  REQUIRE(c.node(1).propose("x").is_ok());
  // Deliver appends and acks, but drop the leader's follow-up appends that
  // carry the new commit index.
  c.process(1);
  c.deliver_all();
  c.process(2);
  c.process(3);
  c.deliver_all();
  c.process(1);
  c.queue.clear();
  CHECK(applied_data(c.nodes.at(1)).size() == 1);
  CHECK(applied_data(c.nodes.at(2)).empty());
  c.node(1).tick();
  c.stabilize();
  CHECK(applied_data(c.nodes.at(2)).size() == 1);
}

}  // namespace kvcore::raft::unit

namespace kvcore::raft::unit {

TEST_CASE("raft: committed entries per Ready are bounded by bytes", "[raft][flow]") {
  UnitCluster c(1, [](Config& cfg) { cfg.max_committed_size_per_ready = 100; });
  c.elect(1);
  for (int i = 0; i < 10; ++i) REQUIRE(c.node(1).propose(std::string(30, 'x')).is_ok());
  std::size_t readies = 0;
  std::size_t applied = 0;
  auto& u = c.nodes.at(1);
  while (u.node->has_ready()) {
    Ready rd = u.node->ready();
    REQUIRE(u.storage->append(rd.entries).is_ok());
    if (rd.hard_state) u.storage->set_hard_state(*rd.hard_state);
    std::uint64_t bytes = 0;
    for (const auto& e : rd.committed_entries) bytes += e.byte_size();
    CHECK((rd.committed_entries.size() <= 1 || bytes <= 100));
    applied += rd.committed_entries.size();
    ++readies;
    u.node->advance(rd);
  }
  CHECK(applied == 10);
  CHECK(readies >= 4);
}

TEST_CASE("raft: a restarted node resumes from its applied index", "[raft][restart]") {
  UnitCluster c(3);
  c.elect(1);
  for (int i = 0; i < 5; ++i) REQUIRE(c.node(1).propose("r" + std::to_string(i)).is_ok());
  c.stabilize();
  const auto before = c.nodes.at(2).applied.size();
  c.restart(2);
  // Nothing already applied is handed out again.
  CHECK_FALSE(c.node(2).has_ready());
  CHECK(c.node(2).term() == c.node(1).term());
  REQUIRE(c.node(1).propose("after-restart").is_ok());
  c.stabilize();
  CHECK(c.nodes.at(2).applied.size() == before + 1);
  CHECK(applied_data(c.nodes.at(2)).back() == "after-restart");
}

TEST_CASE("raft: a restarted leader keeps its vote and cannot vote twice", "[raft][restart]") {
  UnitCluster c(3);
  c.elect(1);
  c.restart(1);
  CHECK(c.node(1).role() == StateRole::kFollower);
  CHECK(c.nodes.at(1).storage->hard_state().vote == 1);
  Message v;
  v.type = MessageType::kVote;
  v.from = 2;
  v.to = 1;
  v.term = c.node(1).term();
  v.index = 100;
  v.log_term = 100;
  REQUIRE(c.node(1).step(v).is_ok());
  Ready rd = c.node(1).ready();
  auto resp = of_type(rd.persisted_messages, MessageType::kVoteResponse);
  REQUIRE(resp.size() == 1);
  CHECK(resp[0].reject);
  c.node(1).advance(rd);
}

}  // namespace kvcore::raft::unit
