// White-box tests of MemoryStorage, the unstable tail and the raft log, the
// ConfChangeV2 encoding (round trip and garbage input), Config::validate and
// the describe() texts.
#include <catch2/catch.hpp>

#include "raft/raft_log.hpp"
#include "raft/unstable.hpp"
#include "raft_unit_cluster.hpp"

namespace kvcore::raft::unit {

using Kind = StorageErrorDetail::Kind;

namespace {

MemoryStorage storage_3_to_5() {
  // Snapshot at 3 (term 3), entries 4 and 5.
  MemoryStorage ms;
  Snapshot s;
  s.metadata.index = 3;
  s.metadata.term = 3;
  REQUIRE(ms.apply_snapshot(s).is_ok());
  REQUIRE(ms.append({entry(4, 4), entry(5, 5)}).is_ok());
  return ms;
}

}  // namespace

TEST_CASE("memory storage: term, entries and bounds", "[raft][storage]") {
  MemoryStorage ms = storage_3_to_5();
  CHECK(*ms.first_index() == 4);
  CHECK(*ms.last_index() == 5);
  CHECK(*ms.term(3) == 3);
  CHECK(*ms.term(5) == 5);
  CHECK(is_storage_error(ms.term(2).status(), Kind::kCompacted));
  CHECK(is_storage_error(ms.term(6).status(), Kind::kUnavailable));
  CHECK(is_storage_error(ms.entries(3, 5, 100).status(), Kind::kCompacted));
  CHECK(is_storage_error(ms.entries(4, 7, 100).status(), Kind::kUnavailable));
  CHECK(ms.entries(4, 6, 1000)->size() == 2);
  // The size limit still returns at least one entry.
  CHECK(ms.entries(4, 6, 0)->size() == 1);
  CHECK(ms.entries(4, 6, entry(4, 4).byte_size())->size() == 1);
  CHECK(ms.entries(4, 6, 2 * entry(4, 4).byte_size())->size() == 2);
  CHECK(ms.entries(5, 5, 0)->empty());
}

TEST_CASE("memory storage: append truncates conflicts and rejects gaps", "[raft][storage]") {
  MemoryStorage ms = storage_3_to_5();
  REQUIRE(ms.append({entry(6, 5), entry(6, 6)}).is_ok());
  CHECK(*ms.term(5) == 6);
  CHECK(*ms.last_index() == 6);
  // Entries below the first index are skipped.
  REQUIRE(ms.append({entry(3, 3), entry(4, 4), entry(6, 5), entry(6, 6), entry(6, 7)}).is_ok());
  CHECK(*ms.last_index() == 7);
  CHECK(*ms.term(4) == 4);
  // Entirely compacted: ignored.
  REQUIRE(ms.append({entry(1, 1), entry(2, 2)}).is_ok());
  CHECK(*ms.last_index() == 7);
  CHECK(ms.append({entry(6, 9)}).code() == Code::kInvalidArgument);
  CHECK(ms.append({entry(6, 8), entry(6, 10)}).code() == Code::kInvalidArgument);
}

TEST_CASE("memory storage: compact, snapshots and their errors", "[raft][storage]") {
  MemoryStorage ms = storage_3_to_5();
  CHECK(is_storage_error(ms.compact(3), Kind::kCompacted));
  CHECK(is_storage_error(ms.compact(6), Kind::kUnavailable));
  REQUIRE(ms.compact(4).is_ok());
  CHECK(*ms.first_index() == 5);
  CHECK(*ms.term(4) == 4);
  CHECK(is_storage_error(ms.term(3).status(), Kind::kCompacted));

  ConfState cs = voters({1, 2});
  auto snap = ms.create_snapshot(5, cs, "data");
  REQUIRE(snap.is_ok());
  CHECK(snap->metadata.index == 5);
  CHECK(snap->metadata.term == 5);
  CHECK(snap->metadata.conf_state == cs);
  CHECK(
      is_storage_error(ms.create_snapshot(5, std::nullopt, "").status(), Kind::kSnapshotOutOfDate));
  CHECK(is_storage_error(ms.create_snapshot(9, std::nullopt, "").status(), Kind::kUnavailable));

  Snapshot old;
  old.metadata.index = 2;
  old.metadata.term = 2;
  CHECK(is_storage_error(ms.apply_snapshot(old), Kind::kSnapshotOutOfDate));
  Snapshot newer;
  newer.metadata.index = 10;
  newer.metadata.term = 7;
  newer.metadata.conf_state = voters({1, 2, 3});
  REQUIRE(ms.apply_snapshot(newer).is_ok());
  CHECK(*ms.first_index() == 11);
  CHECK(*ms.last_index() == 10);
  CHECK(*ms.term(10) == 7);
  CHECK(ms.initial_state()->conf_state == voters({1, 2, 3}));
  CHECK(storage_error(Kind::kCompacted).detail_as<StorageErrorDetail>() != nullptr);
  CHECK_FALSE(is_storage_error(Status::ok(), Kind::kCompacted));
  CHECK_FALSE(is_storage_error(storage_error(Kind::kCompacted), Kind::kUnavailable));
}

TEST_CASE("unstable: stable_to, truncation and snapshots", "[raft][log]") {
  Unstable u(5);
  u.truncate_and_append({entry(1, 5), entry(1, 6), entry(1, 7)});
  CHECK(*u.maybe_last_index() == 7);
  CHECK(*u.maybe_term(6) == 1);
  CHECK_FALSE(u.maybe_term(4));
  // Overwritten entries are not marked stable by an older (index, term).
  u.truncate_and_append({entry(2, 6)});
  CHECK(*u.maybe_last_index() == 6);
  u.stable_to(6, 1);
  CHECK(u.offset() == 5);
  u.stable_to(6, 2);
  CHECK(u.offset() == 7);
  CHECK(u.entries().empty());
  // Truncating below the offset replaces everything.
  u.truncate_and_append({entry(3, 4)});
  CHECK(u.offset() == 4);
  CHECK(*u.maybe_last_index() == 4);
  Snapshot s;
  s.metadata.index = 10;
  s.metadata.term = 4;
  u.restore(s);
  CHECK(*u.maybe_first_index() == 11);
  CHECK(*u.maybe_term(10) == 4);
  u.stable_snap_to(10);
  CHECK_FALSE(u.snapshot());
}

TEST_CASE("raft log: slices span storage and the unstable tail", "[raft][log]") {
  MemoryStorage ms = storage_3_to_5();
  auto log = RaftLog::create(ms, 1 << 20);
  REQUIRE(log.is_ok());
  CHECK(log->first_index() == 4);
  CHECK(log->last_index() == 5);
  CHECK(log->committed() == 3);
  log->append({entry(5, 6), entry(6, 7)});
  CHECK(log->last_index() == 7);
  CHECK(log->last_stable_index() == 5);
  auto all = log->slice(4, 8, 1 << 20);
  REQUIRE(all.is_ok());
  REQUIRE(all->size() == 4);
  CHECK(all->front().index == 4);
  CHECK(all->back().index == 7);
  auto limited = log->slice(4, 8, 2 * entry(1, 1).byte_size());
  REQUIRE(limited.is_ok());
  CHECK(limited->size() == 2);
  CHECK(is_storage_error(log->slice(3, 5, 100).status(), Kind::kCompacted));
  CHECK(is_storage_error(log->slice(4, 9, 100).status(), Kind::kUnavailable));
  CHECK(log->is_up_to_date(7, 6));
  CHECK_FALSE(log->is_up_to_date(8, 5));
  CHECK(log->is_up_to_date(1, 7));
  // Commit only moves forward and never beyond the log.
  log->commit_to(100);
  CHECK(log->committed() == 7);
  log->commit_to(5);
  CHECK(log->committed() == 7);
  CHECK_FALSE(log->maybe_commit(7, 5));
}

TEST_CASE("conf change encoding: round trip", "[raft][codec]") {
  std::uint64_t state = 42;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int i = 0; i < 2000; ++i) {
    ConfChangeV2 cc;
    cc.transition = static_cast<ConfChangeTransition>(next() % 3);
    const auto n = next() % 6;
    for (std::uint64_t j = 0; j < n; ++j) {
      cc.changes.push_back({static_cast<ConfChangeType>(next() % 3), next() >> (next() % 64)});
    }
    cc.context = std::string(next() % 20, static_cast<char>(next()));
    auto back = decode_conf_change(encode_conf_change(cc));
    REQUIRE(back.is_ok());
    CHECK(*back == cc);
  }
}

TEST_CASE("conf change encoding: garbage is Corruption, never a crash", "[raft][codec]") {
  CHECK(decode_conf_change("").status().code() == Code::kCorruption);
  CHECK(decode_conf_change("\x01").status().code() == Code::kCorruption);
  ConfChangeV2 cc;
  cc.changes = {{ConfChangeType::kAddNode, 300}};
  cc.context = "ctx";
  const std::string good = encode_conf_change(cc);
  // Every truncation and every single-byte trailing addition fails.
  for (std::size_t n = 0; n < good.size(); ++n) {
    CHECK_FALSE(decode_conf_change(good.substr(0, n)).is_ok());
  }
  CHECK_FALSE(decode_conf_change(good + "x").is_ok());
  // A huge change count cannot make it allocate or read out of bounds.
  std::string huge = "\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\x7f";
  CHECK_FALSE(decode_conf_change(huge).is_ok());
  std::uint64_t state = 7;
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    const int len = static_cast<int>(state % 24);
    for (int j = 0; j < len; ++j) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      bytes.push_back(static_cast<char>(state >> 56));
    }
    if (i % 3 == 0 && !bytes.empty()) bytes[0] = '\x01';
    auto r = decode_conf_change(bytes);
    if (r.is_ok()) {
      ++ok;
      CHECK(encode_conf_change(*r) == bytes);  // the encoding is canonical
    } else {
      CHECK(r.status().code() == Code::kCorruption);
    }
  }
  CHECK(ok >= 0);
}

TEST_CASE("config: validate explains what is wrong", "[raft][config]") {
  Config c;
  CHECK(c.validate().code() == Code::kInvalidArgument);  // id 0
  c.id = 1;
  CHECK(c.validate().is_ok());
  Config e = c;
  e.election_tick = 1;
  CHECK(e.validate().code() == Code::kInvalidArgument);
  Config h = c;
  h.heartbeat_tick = 0;
  CHECK(h.validate().code() == Code::kInvalidArgument);
  Config i = c;
  i.max_inflight_msgs = 0;
  CHECK(i.validate().code() == Code::kInvalidArgument);
  Config l = c;
  l.read_only_option = ReadOnlyOption::kLeaseBased;
  Status st = l.validate();
  CHECK(st.code() == Code::kInvalidArgument);
  CHECK(st.message().find("check_quorum") != std::string_view::npos);
  l.check_quorum = true;
  CHECK(l.validate().is_ok());
  MemoryStorage ms;
  CHECK(RawNode::create(e, ms).status().code() == Code::kInvalidArgument);
}

TEST_CASE("raw node: local message types cannot be stepped", "[raft]") {
  Solo s(1, voters({1, 2, 3}));
  s.start();
  for (MessageType t : {MessageType::kHup, MessageType::kBeat, MessageType::kCheckQuorum,
                        MessageType::kUnreachable, MessageType::kSnapshotStatus}) {
    CHECK(s.step(t, 2, 1).code() == Code::kInvalidArgument);
  }
  CHECK(s.step(MessageType::kHeartbeat, 2, 0).code() == Code::kInvalidArgument);
  CHECK(s.step(MessageType::kHeartbeat, 1, 1).code() == Code::kInvalidArgument);
  CHECK(s.node->term() == 0);
}

TEST_CASE("describe: stable texts", "[raft][describe]") {
  CHECK(describe(entry(1, 2, "ab")) == "1/2 EntryNormal \"ab\"");
  Entry ce = entry(2, 3);
  ce.type = EntryType::kConfChange;
  ConfChangeV2 cc;
  cc.changes = {{ConfChangeType::kAddNode, 2},
                {ConfChangeType::kAddLearnerNode, 3},
                {ConfChangeType::kRemoveNode, 4}};
  ce.data = encode_conf_change(cc);
  CHECK(describe(ce) == "2/3 EntryConfChangeV2 v2 l3 r4");
  CHECK(describe(ConfChangeV2{}) == "leave");
  Message m;
  m.type = MessageType::kAppend;
  m.from = 1;
  m.to = 2;
  m.term = 3;
  m.log_term = 2;
  m.index = 5;
  m.commit = 4;
  m.entries = {entry(3, 6, "x")};
  CHECK(describe(m) == "1->2 MsgApp Term:3 Log:2/5 Commit:4 Entries:[3/6 EntryNormal \"x\"]");
  Message rj;
  rj.type = MessageType::kAppendResponse;
  rj.from = 2;
  rj.to = 1;
  rj.term = 3;
  rj.index = 5;
  rj.reject = true;
  rj.reject_hint = 3;
  CHECK(describe(rj) == "2->1 MsgAppResp Term:3 Log:0/5 Rejected (Hint: 3)");
  CHECK(describe(HardState{1, 2, 3}) == "Term:1 Vote:2 Commit:3");
  CHECK(describe(SoftState{1, StateRole::kLeader}) == "Lead:1 State:StateLeader");
  ConfState cs = voters({1, 2});
  cs.voters_outgoing = {1, 2, 3};
  cs.learners_next = {3};
  cs.auto_leave = true;
  CHECK(describe(cs) == "Voters:[1 2] VotersOutgoing:[1 2 3] LearnersNext:[3] AutoLeave:true");
  CHECK(cs.equivalent(ConfState{{2, 1}, {}, {3, 2, 1}, {3}, true}));
  CHECK_FALSE(cs.equivalent(voters({1, 2})));
  Message a = m;
  CHECK(a == m);
  a.snapshot = std::make_shared<const Snapshot>();
  CHECK_FALSE(a == m);
}

}  // namespace kvcore::raft::unit
