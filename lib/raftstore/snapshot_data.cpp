// Snapshot data: everything a region holds in the kv engine at one applied
// index, as one checksummed byte string (codec.hpp).
//
// Snapshot data layout (all integers little-endian):
//   fixed32 magic "KVSD" | byte version (1) | varint length + ApplyState proto
//   records: byte column family (proto ColumnFamily number)
//            | varint length + key | varint length + value
//   fixed64 record count | fixed32 CRC-32C of every byte before it
#include <string>
#include <utility>

#include "raftstore/codec.hpp"
#include "util/coding.hpp"
#include "util/crc32c.hpp"

namespace kvcore::raftstore {

namespace {

constexpr std::size_t kCrcBytes = 4;
constexpr std::uint32_t kSnapshotMagic = 0x4453564B;  // "KVSD" in file order
constexpr std::uint8_t kSnapshotVersion = 1;
constexpr std::size_t kSnapshotTrailerBytes = 8 + kCrcBytes;

std::string num(std::uint64_t v) { return std::to_string(v); }

}  // namespace

SnapshotDataBuilder::SnapshotDataBuilder(const ApplyState& state) {
  util::put_fixed32(buf_, kSnapshotMagic);
  buf_.push_back(static_cast<char>(kSnapshotVersion));
  util::put_length_prefixed(buf_, encode_apply_state(state));
}

void SnapshotDataBuilder::add(CF cf, std::string_view key, std::string_view value) {
  buf_.push_back(static_cast<char>(cf_wire_code(cf)));
  util::put_length_prefixed(buf_, key);
  util::put_length_prefixed(buf_, value);
  ++records_;
}

std::string SnapshotDataBuilder::finish() {
  util::put_fixed64(buf_, records_);
  util::put_fixed32(buf_, util::crc32c(buf_));
  std::string out = std::move(buf_);
  buf_.clear();
  return out;
}

namespace {

// Consumes one record from the front of `in`; false when it is cut short or
// names an unknown column family.
bool take_record(std::string_view& in, CF* cf, std::string_view* key, std::string_view* value) {
  if (in.empty()) return false;
  const auto code = cf_from_wire_code(static_cast<std::uint8_t>(in[0]));
  if (!code) return false;
  std::string_view rest = in.substr(1);
  std::string_view k;
  std::string_view v;
  if (!util::get_length_prefixed(rest, k) || !util::get_length_prefixed(rest, v)) return false;
  *cf = *code;
  *key = k;
  *value = v;
  in = rest;
  return true;
}

}  // namespace

Result<SnapshotDataReader> SnapshotDataReader::open(std::string_view data) {
  constexpr std::size_t kMinBytes = 4 + 1 + 1 + kSnapshotTrailerBytes;
  if (data.size() < kMinBytes) {
    return Status::corruption("snapshot data: " + num(data.size()) + " bytes, too short");
  }
  const std::string_view covered = data.substr(0, data.size() - kCrcBytes);
  if (util::crc32c(covered) != util::decode_fixed32(data.data() + covered.size())) {
    return Status::corruption("snapshot data: checksum mismatch");
  }
  std::string_view in = data.substr(0, data.size() - kSnapshotTrailerBytes);
  const std::uint64_t count = util::decode_fixed64(data.data() + in.size());
  std::uint32_t magic = 0;
  if (!util::get_fixed32(in, magic) || magic != kSnapshotMagic) {
    return Status::corruption("snapshot data: bad magic");
  }
  const auto version = static_cast<std::uint8_t>(in[0]);
  in.remove_prefix(1);
  if (version != kSnapshotVersion) {
    return Status::corruption("snapshot data: unknown version " + num(version));
  }
  std::string_view state_bytes;
  if (!util::get_length_prefixed(in, state_bytes)) {
    return Status::corruption("snapshot data: apply state length out of range");
  }
  auto state = decode_apply_state(state_bytes);
  if (!state.is_ok()) return state.status().with_context("snapshot data");

  // next() cannot report errors, so every record is checked here, once.
  std::string_view walk = in;
  std::uint64_t seen = 0;
  while (!walk.empty()) {
    CF cf{};
    std::string_view k;
    std::string_view v;
    if (!take_record(walk, &cf, &k, &v)) {
      return Status::corruption("snapshot data: record " + num(seen) +
                                ": bad column family or length");
    }
    ++seen;
  }
  if (seen != count) {
    return Status::corruption("snapshot data: " + num(seen) + " records, the trailer says " +
                              num(count));
  }
  SnapshotDataReader r;
  r.state_ = std::move(state).value();
  r.rest_ = in;
  return r;
}

bool SnapshotDataReader::next(CF* cf, std::string_view* key, std::string_view* value) {
  return take_record(rest_, cf, key, value);
}

}  // namespace kvcore::raftstore
