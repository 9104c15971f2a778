// Wire and disk forms of the raftstore's data (types.hpp): protobuf messages
// of lib/proto/raftstore.proto, hidden behind these functions so no other
// file includes a generated header.
//
// Every decoder takes untrusted bytes: it never crashes, never allocates
// beyond what the input's size justifies, and returns Corruption (bytes that
// do not parse, or values out of range such as an unknown enum) with a
// message saying what was wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kvcore/status.hpp"
#include "raftstore/types.hpp"

namespace kvcore::raftstore {

[[nodiscard]] std::string encode_region_state(const RegionLocalState& s);
[[nodiscard]] Result<RegionLocalState> decode_region_state(std::string_view in);
[[nodiscard]] std::string encode_apply_state(const ApplyState& s);
[[nodiscard]] Result<ApplyState> decode_apply_state(std::string_view in);
[[nodiscard]] std::string encode_store_ident(const StoreIdent& s);
[[nodiscard]] Result<StoreIdent> decode_store_ident(std::string_view in);
[[nodiscard]] std::string encode_cmd(const RaftCmd& cmd);
[[nodiscard]] Result<RaftCmd> decode_cmd(std::string_view in);
// Whether `in` (a command's encoding) holds a CommitMerge, found by walking
// the top-level fields only (no decoding): cheap enough to ask of every
// committed entry before applying. False for bytes that do not parse.
[[nodiscard]] bool is_commit_merge_cmd(std::string_view in) noexcept;

// Frames ---------------------------------------------------------------------

[[nodiscard]] std::string encode_frame(const Frame& frame);
// The bytes encode_frame would produce, without building them.
[[nodiscard]] std::size_t encoded_size(const RaftEnvelope& m);

// Why a frame was refused: one label of the bad-frame counter each.
enum class FrameReject : std::uint8_t {
  kNone,
  kOversized,   // larger than FrameCheck::max_frame_bytes
  kDecode,      // does not parse
  kClusterId,   // another cluster's
  kWrongStore,  // to_store is not this store, or from_store is 0 or this store
  kBadMessage,  // a message or chunk fails the checks of decode_frame
};
[[nodiscard]] std::string_view to_string(FrameReject r) noexcept;

struct FrameCheck {
  std::uint64_t cluster_id = 0;
  std::uint64_t self_store = 0;
  std::size_t max_frame_bytes = std::size_t{64} << 20;
};

// Decodes and checks one frame. Refuses (InvalidArgument, or Corruption for
// kDecode, and sets *reject) a frame that is oversized (checked before
// parsing), does not parse, is of another cluster, is not addressed
// from another store to check.self_store, or holds a message that:
//   - has region_id 0, a peer id 0, to_peer not on self_store, or from_peer
//     not on from_store;
//   - has message.to != to_peer.id or message.from != from_peer.id;
//   - is a local raft message type (hup, beat, unreachable, snapshot
//     status, check quorum) or a proposal, or a kSnapshot outside a chunk;
//   - has an entry type out of range;
// or a chunk whose message is not kSnapshot, whose snapshot metadata index
// is 0, or whose offset + size exceeds total_bytes.
[[nodiscard]] Result<Frame> decode_frame(std::string_view bytes, const FrameCheck& check,
                                         FrameReject* reject);

// The one-byte code of a column family in snapshot data records (its proto
// ColumnFamily number); nullopt for an unknown code.
[[nodiscard]] std::uint8_t cf_wire_code(CF cf) noexcept;
[[nodiscard]] std::optional<CF> cf_from_wire_code(std::uint8_t code) noexcept;

// Snapshot data: everything a region holds in the kv engine at one applied
// index, as one byte string, built by appending records and checked by a
// checksum as a whole. Layout is private to codec.cpp.
class SnapshotDataBuilder {
 public:
  explicit SnapshotDataBuilder(const ApplyState& state);
  void add(CF cf, std::string_view key, std::string_view value);
  [[nodiscard]] std::size_t records() const noexcept { return records_; }
  // The whole data; the builder is left empty.
  [[nodiscard]] std::string finish();

 private:
  std::string buf_;
  std::size_t records_ = 0;
};

// Reads snapshot data built by SnapshotDataBuilder. Corruption when the
// checksum, a length or a column family is wrong.
class SnapshotDataReader {
 public:
  [[nodiscard]] static Result<SnapshotDataReader> open(std::string_view data);
  [[nodiscard]] const ApplyState& state() const noexcept { return state_; }
  // The next record; false at the end.
  [[nodiscard]] bool next(CF* cf, std::string_view* key, std::string_view* value);

 private:
  SnapshotDataReader() = default;
  ApplyState state_;
  std::string_view rest_;
};

}  // namespace kvcore::raftstore
