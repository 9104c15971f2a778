// The raftstore codec (lib/raftstore/codec.hpp): round trips of every type
// and every refusal of decode_frame.
#include "codec_test_util.hpp"

namespace kvcore::raftstore {
using namespace codec_testing;
using raft::MessageType;
using test::Rng;

// --- Round trips --------------------------------------------------------------------

TEST_CASE("region local state, apply state and store ident round-trip", "[codec]") {
  RegionLocalState fixed;
  fixed.state = PeerState::kTombstone;
  fixed.region = {9, std::string("a\0b", 3), "z", {3, 4}, {{1, 1, false}, {2, 2, true}}};
  auto rs = decode_region_state(encode_region_state(fixed));
  REQUIRE(rs.is_ok());
  CHECK(*rs == fixed);
  CHECK(*decode_region_state(encode_region_state({})) == RegionLocalState{});
  CHECK(*decode_apply_state(encode_apply_state({})) == ApplyState{});
  CHECK(*decode_store_ident(encode_store_ident({7, kU64Max})) == StoreIdent{7, kU64Max});

  for (auto seed : test::test_seeds(1, 200)) {
    INFO(test::replay_hint(seed));
    Rng rng(seed);
    RegionLocalState region{rng.chance(0.5) ? PeerState::kNormal : PeerState::kTombstone,
                            some_region(rng), std::nullopt};
    auto r = decode_region_state(encode_region_state(region));
    REQUIRE(r.is_ok());
    CHECK(*r == region);

    const ApplyState apply = some_apply_state(rng);
    auto a = decode_apply_state(encode_apply_state(apply));
    REQUIRE(a.is_ok());
    CHECK(*a == apply);

    const StoreIdent ident{some_u64(rng), some_u64(rng)};
    auto i = decode_store_ident(encode_store_ident(ident));
    REQUIRE(i.is_ok());
    CHECK(*i == ident);
  }
}

TEST_CASE("apply state keeps a joint conf state field by field", "[codec]") {
  ApplyState s;
  s.conf_state.voters = {1, 2, 3};
  s.conf_state.learners = {9};
  s.conf_state.voters_outgoing = {1, 2, 4};
  s.conf_state.learners_next = {4};
  s.conf_state.auto_leave = true;
  auto r = decode_apply_state(encode_apply_state(s));
  REQUIRE(r.is_ok());
  CHECK(r->conf_state == s.conf_state);
  CHECK(r->conf_state.joint());
}

TEST_CASE("merge states round-trip in apply and region states", "[codec]") {
  ApplyState s;
  CHECK(decode_apply_state(encode_apply_state(s))->merge_state == std::nullopt);
  s.merge_state = MergeState{0, RegionMeta{}, 0};  // present even when all zero
  auto a = decode_apply_state(encode_apply_state(s));
  REQUIRE(a.is_ok());
  CHECK(*a == s);
  RegionLocalState rs;
  rs.state = PeerState::kMerging;
  rs.merge_state = MergeState{7, RegionMeta{4, "b", "", {2, 3}, {{5, 1, false}}}, 9};
  auto r = decode_region_state(encode_region_state(rs));
  REQUIRE(r.is_ok());
  CHECK(*r == rs);
}

TEST_CASE("commands round-trip every write kind, column family and compact log", "[codec]") {
  RaftCmd writes;
  writes.header = {5, 6, {7, 8}};
  for (auto kind : {WriteOpKind::kPut, WriteOpKind::kDelete, WriteOpKind::kDeleteRange}) {
    for (auto cf : kAllCFs) {
      writes.writes.push_back(
          {kind, cf, std::string("k\0", 2), kind == WriteOpKind::kDelete ? "" : "v"});
    }
  }
  auto w = decode_cmd(encode_cmd(writes));
  REQUIRE(w.is_ok());
  CHECK(*w == writes);

  // A conditional write: an expected empty value is not an expected absence.
  RaftCmd cas = writes;
  cas.conditions = {{std::string("k\0", 2), std::string("old")},
                    {"created", std::nullopt},
                    {"empty", std::string()},
                    {"", std::string("\xff\x00", 2)}};
  auto cw = decode_cmd(encode_cmd(cas));
  REQUIRE(cw.is_ok());
  CHECK(*cw == cas);
  REQUIRE(cw->conditions.size() == 4);
  CHECK(!cw->conditions[1].expected.has_value());
  REQUIRE(cw->conditions[2].expected.has_value());
  CHECK(cw->conditions[2].expected->empty());
  CHECK(decode_cmd(encode_cmd(writes))->conditions.empty());
  CHECK(!is_commit_merge_cmd(encode_cmd(cas)));

  RaftCmd compact;
  compact.header = {5, 6, {7, 8}};
  compact.compact_log = CompactLogCmd{0, 0};  // present even when all zero
  auto c = decode_cmd(encode_cmd(compact));
  REQUIRE(c.is_ok());
  CHECK(*c == compact);
  CHECK(c->compact_log.has_value());

  RaftCmd split;
  split.header = {1, 2, {3, 4}};
  split.batch_split =
      BatchSplitCmd{{"b", std::string("m\0", 2)}, {{10, {11, 12, 13}}, {20, {21, 22, 23}}}};
  auto sp = decode_cmd(encode_cmd(split));
  REQUIRE(sp.is_ok());
  CHECK(*sp == split);

  RegionMeta target{9, "a", "z", {3, 4}, {{91, 1, false}, {92, 2, true}}};
  RaftCmd change;
  change.header = {1, 2, {3, 4}};
  change.change_peer = ChangePeerCmd{{{raft::ConfChangeType::kAddLearnerNode, {40, 4, true}},
                                      {raft::ConfChangeType::kRemoveNode, {30, 3, false}},
                                      {raft::ConfChangeType::kAddNode, {50, 5, false}}}};
  RaftCmd leave;
  leave.header = {1, 2, {3, 4}};
  leave.change_peer = ChangePeerCmd{};  // present with no changes: leave the joint state
  RaftCmd prepare;
  prepare.header = {1, 2, {3, 4}};
  prepare.prepare_merge = PrepareMergeCmd{17, target};
  RaftCmd commit;
  commit.header = {9, 91, {3, 4}};
  commit.commit_merge = CommitMergeCmd{
      target, 21, {{5, 18, raft::EntryType::kNormal, "x"}, {5, 19, raft::EntryType::kConfChange, ""}}};
  RaftCmd rollback;
  rollback.header = {1, 2, {3, 4}};
  rollback.rollback_merge = RollbackMergeCmd{0};
  for (const RaftCmd* cmd : {&change, &leave, &prepare, &commit, &rollback}) {
    auto r = decode_cmd(encode_cmd(*cmd));
    REQUIRE(r.is_ok());
    CHECK(*r == *cmd);
  }

  for (auto seed : test::test_seeds(1, 200)) {
    INFO(test::replay_hint(seed));
    Rng rng(seed);
    const RaftCmd cmd = some_cmd(rng);
    auto r = decode_cmd(encode_cmd(cmd));
    REQUIRE(r.is_ok());
    CHECK(*r == cmd);
    CHECK(is_commit_merge_cmd(encode_cmd(cmd)) == cmd.commit_merge.has_value());
  }
  CHECK(is_commit_merge_cmd(encode_cmd(commit)));
  for (const RaftCmd* cmd : {&writes, &compact, &split, &change, &prepare, &rollback}) {
    CHECK(!is_commit_merge_cmd(encode_cmd(*cmd)));
  }
  // Cut or damaged bytes never read past the end.
  const std::string enc = encode_cmd(writes);
  for (std::size_t n = 0; n < enc.size(); ++n) (void)is_commit_merge_cmd(enc.substr(0, n));
  CHECK(!is_commit_merge_cmd(std::string("\xff\xff\xff", 3)));
}

TEST_CASE("frames round-trip every message type that travels between stores", "[codec]") {
  Rng rng(test::test_seed(7));
  INFO(test::replay_hint(test::test_seed(7)));
  Frame f;
  f.cluster_id = kCluster;
  f.from_store = kPeer;
  f.to_store = kSelf;
  for (auto type : kEnvelopeTypes) {
    auto env = some_envelope(rng, type);
    env.message.entries = {some_entry(rng), some_entry(rng)};
    env.message.entries[0].type = raft::EntryType::kNormal;
    env.message.entries[1].type = raft::EntryType::kConfChange;
    f.messages.push_back(std::move(env));
  }
  f.chunks.push_back(some_chunk(rng));
  check_same(round_trip(f), f);

  const Frame empty{kCluster, kPeer, kSelf, {}, {}};
  check_same(round_trip(empty), empty);
}

TEST_CASE("chunks carry the snapshot metadata with a joint conf state", "[codec]") {
  Rng rng(test::test_seed(8));
  Frame f = one_chunk_frame(rng);
  auto snap = std::make_shared<raft::Snapshot>();
  snap->metadata.index = 10;
  snap->metadata.term = 3;
  snap->metadata.conf_state = {{1, 2}, {3}, {1, 4}, {4}, true};
  f.chunks[0].message.snapshot = snap;
  f.chunks[0].offset = 0;
  f.chunks[0].total_bytes = f.chunks[0].data.size();
  const Frame got = round_trip(f);
  check_same(got, f);
  REQUIRE(got.chunks[0].message.snapshot);
  CHECK(got.chunks[0].message.snapshot->data.empty());
  CHECK(got.chunks[0].message.snapshot->metadata == snap->metadata);
}

TEST_CASE("random frames round-trip", "[codec]") {
  for (auto seed : test::test_seeds(1, 200)) {
    INFO(test::replay_hint(seed));
    Rng rng(seed);
    const Frame f = some_frame(rng);
    check_same(round_trip(f), f);
  }
}

TEST_CASE("encoded_size is what an envelope adds to its frame", "[codec]") {
  for (auto seed : test::test_seeds(1, 100)) {
    INFO(test::replay_hint(seed));
    Rng rng(seed);
    Frame f = some_frame(rng);
    f.cluster_id = some_u64(rng);
    f.from_store = some_u64(rng);
    f.to_store = some_u64(rng);
    f.messages.resize(rng.uniform(20));
    for (auto& m : f.messages) {
      m = some_envelope(rng, kEnvelopeTypes[rng.uniform(kEnvelopeTypes.size())]);
      if (rng.chance(0.1))
        m.message.entries.push_back({1, 2, raft::EntryType::kNormal, rng.bytes(300)});
    }
    Frame head = f;
    head.messages.clear();
    std::size_t sum = encode_frame(head).size();
    for (const auto& m : f.messages) sum += encoded_size(m);
    CHECK(encode_frame(f).size() == sum);
  }
  // The frame header (three varints, their tags and the checksum) is bounded.
  const Frame max_head{kU64Max, kU64Max, kU64Max, {}, {}};
  CHECK(encode_frame(max_head).size() <= 3 * 11 + 4);
}

TEST_CASE("frame reject reasons have names", "[codec]") {
  CHECK(to_string(FrameReject::kNone) == "none");
  CHECK(to_string(FrameReject::kOversized) == "oversized");
  CHECK(to_string(FrameReject::kDecode) == "decode");
  CHECK(to_string(FrameReject::kClusterId) == "cluster_id");
  CHECK(to_string(FrameReject::kWrongStore) == "wrong_store");
  CHECK(to_string(FrameReject::kBadMessage) == "bad_message");
}

// --- decode_frame refusals -------------------------------------------------------------

TEST_CASE("decode_frame refuses frames by size, parse, cluster and store", "[codec]") {
  Rng rng(test::test_seed(11));
  INFO(test::replay_hint(test::test_seed(11)));
  const Frame good = some_frame(rng);
  const std::string bytes = encode_frame(good);

  SECTION("oversized, checked before anything else") {
    FrameCheck c = check();
    c.max_frame_bytes = bytes.size();
    FrameReject reject = FrameReject::kDecode;
    CHECK(decode_frame(bytes, c, &reject).is_ok());
    CHECK(reject == FrameReject::kNone);
    c.max_frame_bytes = bytes.size() - 1;
    refused(bytes, FrameReject::kOversized, c);
    c.cluster_id = kCluster + 1;  // would be kClusterId if it were parsed
    refused(bytes, FrameReject::kOversized, c);
    refused(std::string(100, '\xff'), FrameReject::kOversized, FrameCheck{kCluster, kSelf, 99});
  }
  SECTION("does not parse") {
    refused("", FrameReject::kDecode);
    refused("abc", FrameReject::kDecode);
    refused(with_crc("\xff\xff\xff"), FrameReject::kDecode);
    refused(with_crc(std::string(1, '\x0a')), FrameReject::kDecode);  // length missing
    const std::string s = refused(bytes.substr(0, bytes.size() - 1), FrameReject::kDecode);
    CHECK(s.find("checksum") != std::string_view::npos);
  }
  SECTION("another cluster's") {
    Frame f = good;
    f.cluster_id = kCluster + 1;
    refused(encode_frame(f), FrameReject::kClusterId);
    f.cluster_id = 0;
    refused(encode_frame(f), FrameReject::kClusterId);
  }
  SECTION("not addressed from another store to this one") {
    Frame f = good;
    f.to_store = kSelf + 5;
    refused(encode_frame(f), FrameReject::kWrongStore);
    f = good;
    f.from_store = 0;
    refused(encode_frame(f), FrameReject::kWrongStore);
    f = good;
    f.from_store = kSelf;
    refused(encode_frame(f), FrameReject::kWrongStore);
  }
  SECTION("a null reject pointer is allowed") {
    CHECK(decode_frame(bytes, check(), nullptr).is_ok());
    CHECK_FALSE(decode_frame("", check(), nullptr).is_ok());
  }
}

TEST_CASE("decode_frame refuses messages with bad routing", "[codec]") {
  Rng rng(test::test_seed(12));
  INFO(test::replay_hint(test::test_seed(12)));
  const Frame good = one_message_frame(rng, MessageType::kAppend);
  round_trip(good);
  auto bad = [&](auto&& mutate) {
    Frame f = good;
    mutate(f.messages[0]);
    return refused(encode_frame(f), FrameReject::kBadMessage);
  };
  bad([](RaftEnvelope& m) { m.region_id = 0; });
  bad([](RaftEnvelope& m) {
    m.from_peer.id = 0;
    m.message.from = 0;
  });
  bad([](RaftEnvelope& m) {
    m.to_peer.id = 0;
    m.message.to = 0;
  });
  bad([](RaftEnvelope& m) { m.to_peer.store_id = kSelf + 1; });
  bad([](RaftEnvelope& m) { m.to_peer.store_id = kPeer; });
  bad([](RaftEnvelope& m) { m.from_peer.store_id = kPeer + 1; });
  bad([](RaftEnvelope& m) { m.from_peer.store_id = kSelf; });
  bad([](RaftEnvelope& m) { m.message.to += 1; });
  bad([](RaftEnvelope& m) { m.message.from += 1; });
  const std::string s = bad([](RaftEnvelope& m) { m.message.type = MessageType::kSnapshot; });
  CHECK(s.find("outside a chunk") != std::string_view::npos);
  // Membership messages carry no raft payload.
  const std::string e = bad([](RaftEnvelope& m) {
    m.extra = ExtraMessage::kGcPeer;
    m.message.entries.push_back({});
  });
  CHECK(e.find("extra message") != std::string_view::npos);

  // One bad message refuses the whole frame, wherever it is.
  Frame f = good;
  f.messages.push_back(f.messages[0]);
  f.messages.push_back(f.messages[0]);
  f.messages[2].region_id = 0;
  refused(encode_frame(f), FrameReject::kBadMessage);
}

TEST_CASE("decode_frame refuses local message types and proposals", "[codec]") {
  Rng rng(test::test_seed(13));
  INFO(test::replay_hint(test::test_seed(13)));
  std::size_t allowed = 0;
  for (auto type : kAllMessageTypes) {
    INFO("type " << static_cast<int>(type));
    const Frame f = one_message_frame(rng, type);
    const bool never_sent =
        std::find(kNeverSentTypes.begin(), kNeverSentTypes.end(), type) != kNeverSentTypes.end();
    if (never_sent || type == MessageType::kSnapshot) {
      refused(encode_frame(f), FrameReject::kBadMessage);
    } else {
      check_same(round_trip(f), f);
      ++allowed;
    }
  }
  CHECK(allowed == kEnvelopeTypes.size());
}

TEST_CASE("decode_frame refuses enums out of range", "[codec]") {
  const std::string entry_ok = WireWriter{}.u(1, 1).u(2, 5).u(3, 1).b(4, "cc").out;
  const auto msg = [](std::uint64_t type, const std::string& entry) {
    WireWriter w;
    w.u(1, type).u(2, 1).u(3, 2);
    if (!entry.empty()) w.b(7, entry);
    return w.out;
  };
  // The hand-built frame is right apart from the value under test.
  FrameReject reject = FrameReject::kDecode;
  auto ok = decode_frame(frame_with_raw_message(msg(4, entry_ok)), check(), &reject);
  INFO(ok.status().to_string());
  REQUIRE(ok.is_ok());
  REQUIRE(ok->messages.size() == 1);
  CHECK(ok->messages[0].message.type == MessageType::kAppend);
  CHECK(ok->messages[0].message.entries.at(0).type == raft::EntryType::kConfChange);

  std::string s = refused(frame_with_raw_message(msg(99, "")), FrameReject::kBadMessage);
  CHECK(s.find("message type 99") != std::string_view::npos);
  refused(frame_with_raw_message(msg(0, "")), FrameReject::kBadMessage);        // no type at all
  refused(frame_with_raw_message(msg(kU64Max, "")), FrameReject::kBadMessage);  // -1
  const std::string entry_bad = WireWriter{}.u(1, 1).u(2, 5).u(3, 2).b(4, "x").out;
  s = refused(frame_with_raw_message(msg(4, entry_bad)), FrameReject::kBadMessage);
  CHECK(s.find("entry type 2") != std::string_view::npos);
}

TEST_CASE("decode_frame refuses bad chunks", "[codec]") {
  Rng rng(test::test_seed(14));
  INFO(test::replay_hint(test::test_seed(14)));
  const Frame good = one_chunk_frame(rng);
  round_trip(good);
  auto bad = [&](auto&& mutate) {
    Frame f = good;
    mutate(f.chunks[0]);
    return refused(encode_frame(f), FrameReject::kBadMessage);
  };
  for (auto type : kAllMessageTypes) {
    if (type == MessageType::kSnapshot) continue;
    INFO("type " << static_cast<int>(type));
    bad([type](SnapshotChunk& c) { c.message.type = type; });
  }
  bad([](SnapshotChunk& c) { c.message.snapshot = nullptr; });
  bad([](SnapshotChunk& c) {
    auto s = std::make_shared<raft::Snapshot>(*c.message.snapshot);
    s->metadata.index = 0;
    c.message.snapshot = s;
  });
  bad([](SnapshotChunk& c) {
    c.total_bytes = c.offset + c.data.size() - 1;
    c.data += "x";
  });
  bad([](SnapshotChunk& c) {
    c.data = "ab";
    c.offset = 9;
    c.total_bytes = 10;
  });
  bad([](SnapshotChunk& c) {
    c.data = "";
    c.offset = 11;
    c.total_bytes = 10;
  });
  bad([](SnapshotChunk& c) {
    c.data = "ab";
    c.offset = kU64Max;
    c.total_bytes = kU64Max;
  });
  bad([](SnapshotChunk& c) { c.region_id = 0; });
  bad([](SnapshotChunk& c) { c.to_peer.store_id = kPeer; });
  bad([](SnapshotChunk& c) { c.message.from += 1; });

  // The edges that are fine.
  Frame f = good;
  f.chunks[0].data = "ab";
  f.chunks[0].offset = 8;
  f.chunks[0].total_bytes = 10;
  round_trip(f);
  f.chunks[0].data = "";
  f.chunks[0].offset = 10;
  round_trip(f);
}

}  // namespace kvcore::raftstore
