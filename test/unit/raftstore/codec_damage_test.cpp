// The raftstore codec on damaged input: truncated, bit-flipped and
// hand-built bytes for every decoder, and snapshot data.
#include "codec_test_util.hpp"

namespace kvcore::raftstore {
using namespace codec_testing;
using test::Rng;

TEST_CASE("damaged states and commands are refused as corruption or decode", "[codec]") {
  SECTION("region state") {
    damage_each_seed(
        100,
        [](Rng& rng) {
          return encode_region_state({PeerState::kTombstone, some_region(rng), std::nullopt});
        },
        [](const std::string& b) { return decode_region_state(b); });
  }
  SECTION("apply state") {
    damage_each_seed(
        200, [](Rng& rng) { return encode_apply_state(some_apply_state(rng)); },
        [](const std::string& b) { return decode_apply_state(b); });
  }
  SECTION("store ident") {
    damage_each_seed(
        300,
        [](Rng& rng) {
          return encode_store_ident({some_u64(rng), some_u64(rng)});
        },
        [](const std::string& b) { return decode_store_ident(b); });
  }
  SECTION("command") {
    damage_each_seed(
        400, [](Rng& rng) { return encode_cmd(some_cmd(rng)); },
        [](const std::string& b) { return decode_cmd(b); });
  }
}

TEST_CASE("state and command enums out of range are corruption", "[codec]") {
  auto r = decode_region_state(WireWriter{}.u(1, 7).out);
  REQUIRE(refused_cleanly(r));
  CHECK(r.status().message().find("peer state 7") != std::string_view::npos);
  CHECK(decode_region_state(WireWriter{}.u(1, 1).out)->state == PeerState::kTombstone);

  const auto cmd_with = [](std::uint64_t kind, std::uint64_t cf) {
    return WireWriter{}.b(2, WireWriter{}.u(1, kind).u(2, cf).b(3, "k").out).out;
  };
  auto ok = decode_cmd(cmd_with(2, 3));
  REQUIRE(ok.is_ok());
  CHECK(ok->writes.at(0).kind == WriteOpKind::kDeleteRange);
  CHECK(ok->writes.at(0).cf == CF::kRaft);
  auto kind = decode_cmd(cmd_with(3, 0));
  REQUIRE(refused_cleanly(kind));
  CHECK(kind.status().message().find("write op kind 3") != std::string_view::npos);
  auto cf = decode_cmd(cmd_with(0, 4));
  REQUIRE(refused_cleanly(cf));
  CHECK(cf.status().message().find("column family 4") != std::string_view::npos);
  REQUIRE(refused_cleanly(decode_cmd(cmd_with(kU64Max, 0))));
}

TEST_CASE("values outside their C++ enum encode to bytes that are refused", "[codec]") {
  RegionLocalState state;
  state.state = static_cast<PeerState>(5);
  CHECK(refused_cleanly(decode_region_state(encode_region_state(state))));

  RaftCmd cmd;
  cmd.writes.push_back({static_cast<WriteOpKind>(9), CF::kDefault, "k", "v"});
  CHECK(refused_cleanly(decode_cmd(encode_cmd(cmd))));
  cmd.writes[0] = {WriteOpKind::kPut, static_cast<CF>(9), "k", "v"};
  CHECK(refused_cleanly(decode_cmd(encode_cmd(cmd))));

  SnapshotDataBuilder b(ApplyState{});
  b.add(static_cast<CF>(9), "k", "v");
  CHECK(refused_cleanly(SnapshotDataReader::open(b.finish())));

  Rng rng(test::test_seed(21));
  INFO(test::replay_hint(test::test_seed(21)));
  Frame f = one_message_frame(rng, raft::MessageType::kAppend);
  f.messages[0].message.type = static_cast<raft::MessageType>(77);
  refused(encode_frame(f), FrameReject::kBadMessage);
  f = one_message_frame(rng, raft::MessageType::kAppend);
  f.messages[0].message.entries = {{1, 1, static_cast<raft::EntryType>(9), "x"}};
  refused(encode_frame(f), FrameReject::kBadMessage);
}

TEST_CASE("damaged frames are refused", "[codec]") {
  std::size_t reparsed_refusals = 0;
  for (auto seed : test::test_seeds(500, 100)) {
    INFO(test::replay_hint(seed));
    Rng rng(seed);
    const std::string good = encode_frame(some_frame(rng));
    for (int i = 0; i < 50; ++i) {
      // The checksum catches damage in transit...
      const std::string bad = damage(rng, good);
      if (bad != good) refused(bad, FrameReject::kDecode);
      // ...and behind a valid checksum the parser and the checks hold.
      std::string body = damage(rng, good.substr(0, good.size() - 4));
      FrameReject reject = FrameReject::kDecode;
      auto r = decode_frame(with_crc(body), check(), &reject);
      if (r.is_ok()) {
        CHECK(reject == FrameReject::kNone);
      } else {
        ++reparsed_refusals;
        INFO(to_string(reject) << ": " << r.status().to_string());
        CHECK(reject != FrameReject::kNone);
        CHECK(r.status().code() ==
              (reject == FrameReject::kDecode ? Code::kCorruption : Code::kInvalidArgument));
      }
    }
  }
  CHECK(reparsed_refusals > 0);
}

// --- Snapshot data ----------------------------------------------------------------------

namespace {

struct Record {
  CF cf;
  std::string key;
  std::string value;
  friend bool operator==(const Record&, const Record&) = default;
};

std::vector<Record> read_all(SnapshotDataReader& r) {
  std::vector<Record> out;
  CF cf{};
  std::string_view k;
  std::string_view v;
  while (r.next(&cf, &k, &v)) out.push_back({cf, std::string(k), std::string(v)});
  return out;
}

// Snapshot data with its checksum recomputed, so later checks are reached.
std::string reseal(std::string data) {
  data.resize(data.size() < 4 ? 0 : data.size() - 4);
  return with_crc(std::move(data));
}

}  // namespace

TEST_CASE("snapshot data round-trips its state and records", "[codec][snapshot]") {
  for (auto seed : test::test_seeds(600, 50)) {
    INFO(test::replay_hint(seed));
    Rng rng(seed);
    const ApplyState state = some_apply_state(rng);
    SnapshotDataBuilder b(state);
    std::vector<Record> records(rng.uniform(50));
    for (auto& rec : records) {
      rec = {kAllCFs[rng.uniform(kNumCFs)], some_bytes(rng),
             some_bytes(rng, rng.chance(0.1) ? 5000 : 50)};
      b.add(rec.cf, rec.key, rec.value);
    }
    CHECK(b.records() == records.size());
    const std::string data = b.finish();
    auto r = SnapshotDataReader::open(data);
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    CHECK(r->state() == state);
    CHECK(read_all(*r) == records);
    CF cf{};
    std::string_view k;
    std::string_view v;
    CHECK_FALSE(r->next(&cf, &k, &v));
  }
}

TEST_CASE("snapshot data with a flipped byte or cut short is corruption", "[codec][snapshot]") {
  for (auto seed : test::test_seeds(700, 20)) {
    INFO(test::replay_hint(seed));
    Rng rng(seed);
    SnapshotDataBuilder b(some_apply_state(rng));
    for (auto n = rng.uniform(10); n > 0; --n)
      b.add(kAllCFs[rng.uniform(kNumCFs)], some_bytes(rng), some_bytes(rng));
    const std::string data = b.finish();
    for (std::size_t i = 0; i < data.size(); ++i) {
      std::string bad = data;
      bad[i] ^= static_cast<char>(1u << rng.uniform(8));
      if (!refused_cleanly(SnapshotDataReader::open(bad))) FAIL_CHECK("flip at byte " << i);
    }
    for (std::size_t n = 0; n < data.size(); ++n) {
      if (!refused_cleanly(SnapshotDataReader::open(std::string_view(data).substr(0, n)))) {
        FAIL_CHECK("cut to " << n << " bytes");
      }
    }
    for (int i = 0; i < 20; ++i) {
      refused_cleanly(SnapshotDataReader::open(damage(rng, data)));
      refused_cleanly(SnapshotDataReader::open(reseal(damage(rng, data))));
    }
  }
}

TEST_CASE("snapshot data behind a valid checksum is still checked", "[codec][snapshot]") {
  const ApplyState state{5, 2, 3, 1, {}, {}, std::nullopt};
  const std::string empty = SnapshotDataBuilder(state).finish();
  const std::size_t header = empty.size() - 12;  // trailer: fixed64 count, fixed32 crc
  {
    auto r = SnapshotDataReader::open(empty);
    REQUIRE(r.is_ok());
    CHECK(read_all(*r).empty());
  }
  SnapshotDataBuilder b(state);
  b.add(CF::kWrite, "key", "value");
  const std::string data = b.finish();

  std::string bad_cf = data;
  bad_cf[header] = 9;
  auto r = SnapshotDataReader::open(reseal(bad_cf));
  REQUIRE(refused_cleanly(r));
  CHECK(r.status().message().find("record 0") != std::string_view::npos);

  std::string bad_len = data;
  bad_len[header + 1] = 0x7f;  // the key's length runs past the records
  REQUIRE(refused_cleanly(SnapshotDataReader::open(reseal(bad_len))));

  std::string bad_count = data;
  bad_count[data.size() - 12] = 2;
  r = SnapshotDataReader::open(reseal(bad_count));
  REQUIRE(refused_cleanly(r));
  CHECK(r.status().message().find("trailer") != std::string_view::npos);

  std::string bad_magic = data;
  bad_magic[0] ^= 1;
  REQUIRE(refused_cleanly(SnapshotDataReader::open(reseal(bad_magic))));
  std::string bad_version = data;
  bad_version[4] = 2;
  REQUIRE(refused_cleanly(SnapshotDataReader::open(reseal(bad_version))));
  std::string bad_state_len = data;
  bad_state_len[5] = 0x7f;
  REQUIRE(refused_cleanly(SnapshotDataReader::open(reseal(bad_state_len))));

  CHECK(refused_cleanly(SnapshotDataReader::open("")));
  CHECK(refused_cleanly(SnapshotDataReader::open(with_crc(std::string(20, '\0')))));
}

}  // namespace kvcore::raftstore
