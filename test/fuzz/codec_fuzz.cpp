// libFuzzer target of the raftstore codec (lib/raftstore/codec.hpp): every
// decoder takes the input as untrusted bytes. Beyond "never crash", whatever
// a decoder accepts must re-encode to bytes it accepts again, with the same
// canonical encoding (decode . encode is the identity on decoded values).
//
// Frames and snapshot data carry a CRC-32C that random bytes almost never
// match, so each is also fed the input with a valid checksum appended: that
// reaches the parser and the checks behind the checksum.
//
// Build: CXX=clang++ meson setup DIR -Dfuzz=true -Db_lundef=false ...;
// run: DIR/test/fuzz/codec_fuzz [corpus dir] -max_total_time=60.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "raftstore/codec.hpp"
#include "util/coding.hpp"
#include "util/crc32c.hpp"

namespace {

using namespace kvcore::raftstore;

[[noreturn]] void violation(const char* what) {
  std::fprintf(stderr, "codec invariant broken: %s\n", what);
  std::abort();
}

std::string with_crc(std::string_view body) {
  std::string out(body);
  kvcore::util::put_fixed32(out, kvcore::util::crc32c(out));
  return out;
}

// A decoder's refusal must be Corruption with a message.
void expect_corruption(const kvcore::Status& s, const char* what) {
  if (s.code() != kvcore::Code::kCorruption || s.message().empty()) violation(what);
}

template <class Decode, class Encode>
void round_trip(std::string_view in, Decode decode, Encode encode, const char* what) {
  auto r = decode(in);
  if (!r.is_ok()) {
    expect_corruption(r.status(), what);
    return;
  }
  const std::string once = encode(*r);
  auto again = decode(once);
  if (!again.is_ok() || encode(*again) != once) violation(what);
}

void fuzz_frame(std::string_view in) {
  const FrameCheck check{1, 1, std::size_t{1} << 20};
  FrameReject reject = FrameReject::kNone;
  auto r = decode_frame(in, check, &reject);
  if (!r.is_ok()) {
    const bool decode = reject == FrameReject::kDecode;
    if (reject == FrameReject::kNone ||
        r.status().code() !=
            (decode ? kvcore::Code::kCorruption : kvcore::Code::kInvalidArgument) ||
        to_string(reject).empty()) {
      violation("frame refusal without a matching reason");
    }
    return;
  }
  if (reject != FrameReject::kNone) violation("accepted frame with a reject reason");
  std::size_t parts = encode_frame(Frame{r->cluster_id, r->from_store, r->to_store, {}, {}}).size();
  for (const auto& m : r->messages) parts += encoded_size(m);
  const std::string once = encode_frame(*r);
  if (r->chunks.empty() && parts != once.size()) violation("encoded_size disagrees with frame");
  auto again = decode_frame(once, check, &reject);
  if (!again.is_ok() || encode_frame(*again) != once) violation("frame round trip");
}

void fuzz_snapshot(std::string_view in) {
  auto r = SnapshotDataReader::open(in);
  if (!r.is_ok()) {
    expect_corruption(r.status(), "snapshot data refusal");
    return;
  }
  // Its contents rebuild into data that opens again with the same state.
  SnapshotDataBuilder b(r->state());
  kvcore::CF cf{};
  std::string_view key;
  std::string_view value;
  while (r->next(&cf, &key, &value)) b.add(cf, key, value);
  const std::string rebuilt = b.finish();
  auto reread = SnapshotDataReader::open(rebuilt);
  if (!reread.is_ok() || !(reread->state() == r->state())) violation("snapshot data rebuild");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz_frame(in);
  fuzz_frame(with_crc(in));
  round_trip(
      in, [](std::string_view b) { return decode_cmd(b); },
      [](const RaftCmd& c) { return encode_cmd(c); }, "command");
  round_trip(
      in, [](std::string_view b) { return decode_apply_state(b); },
      [](const ApplyState& s) { return encode_apply_state(s); }, "apply state");
  round_trip(
      in, [](std::string_view b) { return decode_region_state(b); },
      [](const RegionLocalState& s) { return encode_region_state(s); }, "region state");
  round_trip(
      in, [](std::string_view b) { return decode_store_ident(b); },
      [](const StoreIdent& s) { return encode_store_ident(s); }, "store ident");
  fuzz_snapshot(in);
  fuzz_snapshot(with_crc(in));
  return 0;
}
