// The on-disk format of the raft log engine: segment headers, the record
// frame, and the operations inside a batch record. Pure codec, no I/O.
//
// A segment file `%016u.rlog` starts with a 16-byte header (kSegmentMagic,
// then the segment id as fixed64) and holds records back to back:
//
//   fixed32 payload length | fixed32 crc32c(type byte + payload) | u8 type |
//   fixed32 crc32c(the nine bytes before) | payload
//
// The header has its own checksum so a damaged length is told apart from a
// record torn by a crash: only a record with a sound header may claim to run
// past the end of the file.
//
// One LogBatch is one record, so a batch is applied whole or not at all.
// A kBatch payload is a sequence of operations, each `u8 op, varint region`
// followed by its fields (see OpType). Entries are stored as
// `varint term, u8 entry type, length-prefixed data`; their index is implied
// by the operation's first index, and the index keeps each entry's file
// offset and length so it can be read back alone with pread.
//
// Thread-safety: free functions over values; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/raft/types.hpp"
#include "kvcore/status.hpp"

namespace kvcore::raftlog {

inline constexpr std::string_view kSegmentMagic = "KVRLOG1\n";
inline constexpr std::size_t kSegmentHeaderSize = 16;
inline constexpr std::size_t kRecordHeaderSize = 13;

enum class RecordType : std::uint8_t {
  kBatch = 1,
};

enum class OpType : std::uint8_t {
  // varint first index, varint count, count entries. Appending at index i
  // removes the region's entries >= i first (raft's conflict rule); when i is
  // not contiguous with what remains, the old entries are all dropped.
  kAppend = 1,
  // varint term, varint vote, varint commit.
  kHardState = 2,
  // length-prefixed key, length-prefixed value.
  kPutState = 3,
  // length-prefixed key.
  kDeleteState = 4,
  // varint index: drops the region's entries below it.
  kCompact = 5,
  // no fields: drops everything the region holds.
  kClean = 6,
  // Like kAppend, but replaces the region's whole entry log (purge moves a
  // live log out of old segments with it).
  kRewriteEntries = 7,
};

// One entry of a decoded kAppend/kRewriteEntries: where its encoding sits
// inside the payload.
struct EntryRef {
  raft::Term term = 0;
  std::uint32_t offset = 0;  // from the start of the payload
  std::uint32_t length = 0;
};

// One decoded operation. Views point into the payload it was decoded from.
struct Op {
  OpType type = OpType::kClean;
  std::uint64_t region = 0;
  raft::Index index = 0;  // kAppend/kRewriteEntries: first index; kCompact: the index
  std::vector<EntryRef> entries;
  raft::HardState hard_state;
  std::string_view key;
  std::string_view value;
};

// The segment file name of `id`: sixteen decimal digits and ".rlog".
[[nodiscard]] std::string segment_file_name(std::uint64_t id);
// The id of a segment file name; false when `name` is not one.
[[nodiscard]] bool parse_segment_file_name(std::string_view name, std::uint64_t* id);

[[nodiscard]] std::string encode_segment_header(std::uint64_t id);

// The record header for `payload` of type `type`.
[[nodiscard]] std::string encode_record_header(RecordType type, std::string_view payload);
// The payload checksum stored in a record header.
[[nodiscard]] std::uint32_t record_crc(RecordType type, std::string_view payload);

// A record header read back, when its own checksum holds.
struct RecordHeader {
  std::uint32_t length = 0;
  std::uint32_t crc = 0;
  RecordType type = RecordType::kBatch;
};
// REQUIRES: bytes.size() >= kRecordHeaderSize. False when the header's
// checksum does not match.
[[nodiscard]] bool decode_record_header(std::string_view bytes, RecordHeader* out);

// Appends the encoding of one entry (without its index) to `out`.
void encode_entry(std::string& out, const raft::Entry& e);
// Decodes one entry encoded by encode_entry, giving it index `index`.
// Corruption when the bytes are not exactly one entry.
[[nodiscard]] Result<raft::Entry> decode_entry(std::string_view bytes, raft::Index index);

// Decodes a kBatch payload. Corruption (naming the operation's offset) when
// it is malformed.
[[nodiscard]] Result<std::vector<Op>> decode_batch(std::string_view payload);

}  // namespace kvcore::raftlog
