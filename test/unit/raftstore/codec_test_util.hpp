// Helpers of the raftstore codec tests: seeded random values of every type,
// comparisons, and protobuf bytes built by hand.
//
// WireWriter and frame_with_raw_message name field numbers of
// lib/proto/raftstore.proto, to reach checks an encoder never trips.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "raftstore/codec.hpp"
#include "seed.hpp"
#include "util/coding.hpp"
#include "util/crc32c.hpp"

namespace kvcore::raftstore::codec_testing {

using raft::MessageType;
using test::Rng;

inline constexpr std::uint64_t kCluster = 42;
inline constexpr std::uint64_t kSelf = 1;  // the receiving store
inline constexpr std::uint64_t kPeer = 2;  // the sending store
inline constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

inline constexpr std::array kAllMessageTypes = {
    MessageType::kHup,
    MessageType::kBeat,
    MessageType::kPropose,
    MessageType::kAppend,
    MessageType::kAppendResponse,
    MessageType::kVote,
    MessageType::kVoteResponse,
    MessageType::kPreVote,
    MessageType::kPreVoteResponse,
    MessageType::kSnapshot,
    MessageType::kHeartbeat,
    MessageType::kHeartbeatResponse,
    MessageType::kUnreachable,
    MessageType::kSnapshotStatus,
    MessageType::kCheckQuorum,
    MessageType::kTransferLeader,
    MessageType::kTimeoutNow,
    MessageType::kReadIndex,
    MessageType::kReadIndexResponse,
};
// What an envelope may carry: neither local types, proposals nor snapshots.
inline constexpr std::array kEnvelopeTypes = {
    MessageType::kAppend,       MessageType::kAppendResponse,    MessageType::kVote,
    MessageType::kVoteResponse, MessageType::kPreVote,           MessageType::kPreVoteResponse,
    MessageType::kHeartbeat,    MessageType::kHeartbeatResponse, MessageType::kTransferLeader,
    MessageType::kTimeoutNow,   MessageType::kReadIndex,         MessageType::kReadIndexResponse,
};
inline constexpr std::array kNeverSentTypes = {
    MessageType::kHup,         MessageType::kBeat,           MessageType::kPropose,
    MessageType::kUnreachable, MessageType::kSnapshotStatus, MessageType::kCheckQuorum,
};

inline FrameCheck check() { return FrameCheck{kCluster, kSelf, std::size_t{64} << 20}; }

// --- Random values ------------------------------------------------------------

inline std::uint64_t some_u64(Rng& rng) {
  switch (rng.uniform(4)) {
    case 0: return 0;
    case 1: return kU64Max;
    case 2: return rng.uniform(1000);
    default: return rng.next();
  }
}
inline std::string some_bytes(Rng& rng, std::size_t max_len = 40) {
  return rng.bytes(rng.uniform(max_len + 1));
}
inline std::vector<raft::NodeId> some_ids(Rng& rng, std::size_t max_n = 5) {
  std::vector<raft::NodeId> ids(rng.uniform(max_n + 1));
  for (auto& id : ids) id = 1 + rng.uniform(1000);
  return ids;
}

inline raft::ConfState some_conf_state(Rng& rng) {
  raft::ConfState c;
  c.voters = some_ids(rng);
  c.learners = some_ids(rng);
  if (rng.chance(0.5)) {
    c.voters_outgoing = some_ids(rng);
    c.voters_outgoing.push_back(7);
    c.learners_next = some_ids(rng);
    c.auto_leave = rng.chance(0.5);
  }
  return c;
}

inline RegionMeta some_region(Rng& rng) {
  RegionMeta r;
  r.id = some_u64(rng);
  r.start_key = some_bytes(rng);
  r.end_key = some_bytes(rng);
  r.epoch = {some_u64(rng), some_u64(rng)};
  r.peers.resize(rng.uniform(6));
  for (auto& p : r.peers) p = {some_u64(rng), some_u64(rng), rng.chance(0.3)};
  return r;
}

inline ApplyState some_apply_state(Rng& rng) {
  ApplyState s;
  s.applied_index = some_u64(rng);
  s.applied_term = some_u64(rng);
  s.truncated_index = some_u64(rng);
  s.truncated_term = some_u64(rng);
  s.region = some_region(rng);
  s.conf_state = some_conf_state(rng);
  return s;
}

inline RaftCmd some_cmd(Rng& rng) {
  RaftCmd cmd;
  cmd.header = {some_u64(rng), some_u64(rng), {some_u64(rng), some_u64(rng)}};
  if (rng.chance(0.3)) {
    cmd.compact_log = CompactLogCmd{some_u64(rng), some_u64(rng)};
    return cmd;
  }
  cmd.writes.resize(1 + rng.uniform(5));
  for (auto& w : cmd.writes) {
    w.kind = static_cast<WriteOpKind>(rng.uniform(3));
    w.cf = kAllCFs[rng.uniform(kNumCFs)];
    w.key = some_bytes(rng);
    w.value = some_bytes(rng, 200);
  }
  // Conditional writes: expected values and expected absence (nullopt),
  // which must stay apart from an expected empty value.
  cmd.conditions.resize(rng.chance(0.5) ? rng.uniform(4) : 0);
  for (auto& c : cmd.conditions) {
    c.key = some_bytes(rng);
    if (rng.chance(0.7)) c.expected = some_bytes(rng, 50);
  }
  return cmd;
}

inline raft::Entry some_entry(Rng& rng) {
  raft::Entry e;
  e.term = some_u64(rng);
  e.index = some_u64(rng);
  e.type = rng.chance(0.5) ? raft::EntryType::kNormal : raft::EntryType::kConfChange;
  e.data = some_bytes(rng, 100);
  return e;
}

inline raft::Message some_message(Rng& rng, MessageType type, raft::NodeId from, raft::NodeId to) {
  raft::Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = some_u64(rng);
  m.log_term = some_u64(rng);
  m.index = some_u64(rng);
  m.entries.resize(rng.uniform(4));
  for (auto& e : m.entries) e = some_entry(rng);
  m.commit = some_u64(rng);
  m.reject = rng.chance(0.5);
  m.reject_hint = some_u64(rng);
  m.context = some_bytes(rng);
  m.lease_stamp = some_u64(rng);
  return m;
}

inline RaftEnvelope some_envelope(Rng& rng, MessageType type) {
  RaftEnvelope env;
  env.region_id = 1 + rng.uniform(100);
  env.from_peer = {1 + rng.uniform(1000), kPeer, rng.chance(0.2)};
  env.to_peer = {1 + rng.uniform(1000), kSelf, rng.chance(0.2)};
  env.epoch = {some_u64(rng), some_u64(rng)};
  env.message = some_message(rng, type, env.from_peer.id, env.to_peer.id);
  env.hibernate = type == MessageType::kHeartbeat && rng.chance(0.5);
  if (env.message.entries.empty() && !env.message.snapshot && rng.chance(0.2)) {
    env.extra = rng.chance(0.5) ? ExtraMessage::kGcPeer : ExtraMessage::kCheckStalePeer;
  }
  return env;
}

inline SnapshotChunk some_chunk(Rng& rng) {
  SnapshotChunk c;
  c.region_id = 1 + rng.uniform(100);
  c.from_peer = {1 + rng.uniform(1000), kPeer, false};
  c.to_peer = {1 + rng.uniform(1000), kSelf, rng.chance(0.5)};
  c.epoch = {some_u64(rng), some_u64(rng)};
  c.message = some_message(rng, MessageType::kSnapshot, c.from_peer.id, c.to_peer.id);
  c.message.entries.clear();
  auto snap = std::make_shared<raft::Snapshot>();
  snap->metadata = {some_conf_state(rng), 1 + rng.uniform(kU64Max - 1), some_u64(rng)};
  c.message.snapshot = std::move(snap);
  c.data = some_bytes(rng, 300);
  c.total_bytes = c.data.size() + rng.uniform(1000);
  c.offset = rng.uniform(c.total_bytes - c.data.size() + 1);
  return c;
}

inline Frame some_frame(Rng& rng) {
  Frame f;
  f.cluster_id = kCluster;
  f.from_store = kPeer;
  f.to_store = kSelf;
  f.messages.resize(rng.uniform(6));
  for (auto& m : f.messages)
    m = some_envelope(rng, kEnvelopeTypes[rng.uniform(kEnvelopeTypes.size())]);
  f.chunks.resize(rng.uniform(3));
  for (auto& c : f.chunks) c = some_chunk(rng);
  return f;
}

// --- Comparisons (the frame structs have no operator==) ---------------------------

inline void check_same(const RaftEnvelope& a, const RaftEnvelope& b) {
  CHECK(a.region_id == b.region_id);
  CHECK(a.from_peer == b.from_peer);
  CHECK(a.to_peer == b.to_peer);
  CHECK(a.epoch == b.epoch);
  CHECK(a.message == b.message);
  CHECK(a.hibernate == b.hibernate);
  CHECK(a.extra == b.extra);
}
inline void check_same(const SnapshotChunk& a, const SnapshotChunk& b) {
  CHECK(a.region_id == b.region_id);
  CHECK(a.from_peer == b.from_peer);
  CHECK(a.to_peer == b.to_peer);
  CHECK(a.epoch == b.epoch);
  CHECK(a.message == b.message);
  CHECK(a.offset == b.offset);
  CHECK(a.total_bytes == b.total_bytes);
  CHECK(a.data == b.data);
}
inline void check_same(const Frame& a, const Frame& b) {
  CHECK(a.cluster_id == b.cluster_id);
  CHECK(a.from_store == b.from_store);
  CHECK(a.to_store == b.to_store);
  REQUIRE(a.messages.size() == b.messages.size());
  for (std::size_t i = 0; i < a.messages.size(); ++i) check_same(a.messages[i], b.messages[i]);
  REQUIRE(a.chunks.size() == b.chunks.size());
  for (std::size_t i = 0; i < a.chunks.size(); ++i) check_same(a.chunks[i], b.chunks[i]);
}

inline Frame round_trip(const Frame& f) {
  FrameReject reject = FrameReject::kDecode;
  auto r = decode_frame(encode_frame(f), check(), &reject);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  CHECK(reject == FrameReject::kNone);
  return std::move(r).value();
}

// Decodes a frame that must be refused for `want`; returns the status message.
inline std::string refused(std::string_view bytes, FrameReject want,
                           const FrameCheck& c = check()) {
  FrameReject reject = FrameReject::kNone;
  auto r = decode_frame(bytes, c, &reject);
  INFO("want " << to_string(want) << ", got " << to_string(reject) << ": "
               << r.status().to_string());
  REQUIRE_FALSE(r.is_ok());
  CHECK(reject == want);
  CHECK(r.status().code() ==
        (want == FrameReject::kDecode ? Code::kCorruption : Code::kInvalidArgument));
  CHECK_FALSE(r.status().message().empty());
  return std::string(r.status().message());
}

inline Frame one_message_frame(Rng& rng, MessageType type) {
  Frame f;
  f.cluster_id = kCluster;
  f.from_store = kPeer;
  f.to_store = kSelf;
  f.messages.push_back(some_envelope(rng, type));
  return f;
}
inline Frame one_chunk_frame(Rng& rng) {
  Frame f;
  f.cluster_id = kCluster;
  f.from_store = kPeer;
  f.to_store = kSelf;
  f.chunks.push_back(some_chunk(rng));
  return f;
}

// Protobuf wire bytes by hand, for values no encoder writes.
struct WireWriter {
  std::string out;
  WireWriter& u(std::uint32_t field, std::uint64_t v) {
    util::put_varint64(out, std::uint64_t{field} << 3);
    util::put_varint64(out, v);
    return *this;
  }
  WireWriter& b(std::uint32_t field, std::string_view s) {
    util::put_varint64(out, (std::uint64_t{field} << 3) | 2);
    util::put_length_prefixed(out, s);
    return *this;
  }
};
inline std::string with_crc(std::string body) {
  util::put_fixed32(body, util::crc32c(body));
  return body;
}
// A frame from store kPeer (peer 2) to kSelf (peer 1) of region 7 holding
// one envelope with the raw message `msg`.
inline std::string frame_with_raw_message(const std::string& msg) {
  const std::string from = WireWriter{}.u(1, 2).u(2, kPeer).out;
  const std::string to = WireWriter{}.u(1, 1).u(2, kSelf).out;
  const std::string env = WireWriter{}.u(1, 7).b(2, from).b(3, to).b(5, msg).out;
  return with_crc(WireWriter{}.u(1, kCluster).u(2, kPeer).u(3, kSelf).b(4, env).out);
}

// --- Damaged input -------------------------------------------------------------

// One damaged copy of `good`: cut short, bits flipped, bytes overwritten,
// inserted or dropped.
inline std::string damage(Rng& rng, const std::string& good) {
  std::string bad = good;
  switch (rng.uniform(5)) {
    case 0: bad.resize(rng.uniform(bad.size() + 1)); break;
    case 1:
      if (bad.empty()) break;
      for (auto n = 1 + rng.uniform(3); n > 0; --n) {
        bad[rng.uniform(bad.size())] ^= static_cast<char>(1u << rng.uniform(8));
      }
      break;
    case 2:
      if (bad.empty()) break;
      bad[rng.uniform(bad.size())] = static_cast<char>(rng.next());
      break;
    case 3: bad.insert(rng.uniform(bad.size() + 1), rng.bytes(1 + rng.uniform(4))); break;
    default:
      if (bad.empty()) break;
      bad.erase(rng.uniform(bad.size()), 1 + rng.uniform(4));
      break;
  }
  return bad;
}

// A decoder may accept damaged bytes that still parse, but must otherwise
// say Corruption with a message. Returns whether it refused.
template <class R>
bool refused_cleanly(const R& r) {
  if (r.is_ok()) return false;
  INFO(r.status().to_string());
  CHECK(r.status().code() == Code::kCorruption);
  CHECK_FALSE(r.status().message().empty());
  return true;
}

template <class Encode, class Decode>
void damage_each_seed(std::uint64_t first_seed, Encode&& encode, Decode&& decode) {
  std::size_t refusals = 0;
  std::size_t tries = 0;
  for (auto seed : test::test_seeds(first_seed, 100)) {
    INFO(test::replay_hint(seed));
    Rng rng(seed);
    const std::string good = encode(rng);
    for (int i = 0; i < 50; ++i, ++tries) {
      if (refused_cleanly(decode(damage(rng, good)))) ++refusals;
    }
    for (int i = 0; i < 5; ++i, ++tries) {
      if (refused_cleanly(decode(rng.bytes(rng.uniform(64))))) ++refusals;
    }
  }
  // Not every damage is detectable without a checksum, but many are.
  CHECK(refusals > tries / 10);
}

}  // namespace kvcore::raftstore::codec_testing
