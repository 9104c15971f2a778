#include "raftlog/format.hpp"

#include <fmt/format.h>

#include <charconv>

#include "util/coding.hpp"
#include "util/crc32c.hpp"

namespace kvcore::raftlog {

std::string segment_file_name(std::uint64_t id) { return fmt::format("{:016}.rlog", id); }

bool parse_segment_file_name(std::string_view name, std::uint64_t* id) {
  constexpr std::string_view kSuffix = ".rlog";
  if (name.size() != 16 + kSuffix.size() || !name.ends_with(kSuffix)) return false;
  const char* begin = name.data();
  const char* end = begin + 16;
  for (const char* p = begin; p != end; ++p) {
    if (*p < '0' || *p > '9') return false;
  }
  auto [ptr, ec] = std::from_chars(begin, end, *id);
  return ec == std::errc() && ptr == end;
}

std::string encode_segment_header(std::uint64_t id) {
  std::string out(kSegmentMagic);
  util::put_fixed64(out, id);
  return out;
}

std::uint32_t record_crc(RecordType type, std::string_view payload) {
  const auto t = static_cast<char>(type);
  return util::crc32c_extend(util::crc32c_extend(0, &t, 1), payload.data(), payload.size());
}

std::string encode_record_header(RecordType type, std::string_view payload) {
  std::string out;
  out.reserve(kRecordHeaderSize);
  util::put_fixed32(out, static_cast<std::uint32_t>(payload.size()));
  util::put_fixed32(out, record_crc(type, payload));
  out.push_back(static_cast<char>(type));
  util::put_fixed32(out, util::crc32c(out));
  return out;
}

bool decode_record_header(std::string_view bytes, RecordHeader* out) {
  if (util::crc32c(bytes.substr(0, 9)) != util::decode_fixed32(bytes.data() + 9)) return false;
  out->length = util::decode_fixed32(bytes.data());
  out->crc = util::decode_fixed32(bytes.data() + 4);
  out->type = static_cast<RecordType>(static_cast<std::uint8_t>(bytes[8]));
  return true;
}

void encode_entry(std::string& out, const raft::Entry& e) {
  util::put_varint64(out, e.term);
  out.push_back(static_cast<char>(e.type));
  util::put_length_prefixed(out, e.data);
}

namespace {

bool decode_entry_fields(std::string_view& in, raft::Term* term, raft::EntryType* type,
                         std::string_view* data) {
  std::uint64_t t = 0;
  if (!util::get_varint64(in, t) || in.empty()) return false;
  const auto ty = static_cast<std::uint8_t>(in.front());
  if (ty > static_cast<std::uint8_t>(raft::EntryType::kConfChange)) return false;
  in.remove_prefix(1);
  if (!util::get_length_prefixed(in, *data)) return false;
  *term = t;
  *type = static_cast<raft::EntryType>(ty);
  return true;
}

}  // namespace

Result<raft::Entry> decode_entry(std::string_view bytes, raft::Index index) {
  raft::Entry e;
  e.index = index;
  std::string_view data;
  if (!decode_entry_fields(bytes, &e.term, &e.type, &data) || !bytes.empty()) {
    return Status::corruption(fmt::format("raft log: malformed entry {}", index));
  }
  e.data.assign(data);
  return e;
}

Result<std::vector<Op>> decode_batch(std::string_view payload) {
  std::vector<Op> ops;
  std::string_view in = payload;
  while (!in.empty()) {
    const std::size_t at = payload.size() - in.size();
    auto bad = [&](std::string_view what) {
      return Status::corruption(
          fmt::format("malformed {} operation at payload offset {}", what, at));
    };
    Op op;
    const auto type = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    if (!util::get_varint64(in, op.region)) return bad("batch");
    switch (type) {
      case static_cast<std::uint8_t>(OpType::kAppend):
      case static_cast<std::uint8_t>(OpType::kRewriteEntries): {
        op.type = static_cast<OpType>(type);
        std::uint64_t count = 0;
        if (!util::get_varint64(in, op.index) || !util::get_varint64(in, count) ||
            count > in.size() || op.index == 0 || op.index + count < op.index) {
          return bad("append");
        }
        op.entries.reserve(count);
        for (std::uint64_t i = 0; i < count; ++i) {
          EntryRef ref;
          ref.offset = static_cast<std::uint32_t>(payload.size() - in.size());
          raft::EntryType et{};
          std::string_view data;
          if (!decode_entry_fields(in, &ref.term, &et, &data)) return bad("append");
          ref.length = static_cast<std::uint32_t>(payload.size() - in.size() - ref.offset);
          op.entries.push_back(ref);
        }
        break;
      }
      case static_cast<std::uint8_t>(OpType::kHardState):
        op.type = OpType::kHardState;
        if (!util::get_varint64(in, op.hard_state.term) ||
            !util::get_varint64(in, op.hard_state.vote) ||
            !util::get_varint64(in, op.hard_state.commit)) {
          return bad("hard state");
        }
        break;
      case static_cast<std::uint8_t>(OpType::kPutState):
        op.type = OpType::kPutState;
        if (!util::get_length_prefixed(in, op.key) || !util::get_length_prefixed(in, op.value)) {
          return bad("put state");
        }
        break;
      case static_cast<std::uint8_t>(OpType::kDeleteState):
        op.type = OpType::kDeleteState;
        if (!util::get_length_prefixed(in, op.key)) return bad("delete state");
        break;
      case static_cast<std::uint8_t>(OpType::kCompact):
        op.type = OpType::kCompact;
        if (!util::get_varint64(in, op.index)) return bad("compact");
        break;
      case static_cast<std::uint8_t>(OpType::kClean): op.type = OpType::kClean; break;
      default: return bad(fmt::format("unknown ({})", type));
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

}  // namespace kvcore::raftlog
