// Recovery: a torn or damaged tail of the newest segment is cut away; damage
// anywhere else is Corruption naming the file and offset.
#include <catch2/catch.hpp>

#include <filesystem>

#include "helpers.hpp"
#include "temp_dir.hpp"
#include "util/coding.hpp"

using namespace kvcore;
using namespace kvcore::raftlog;
using namespace kvcore::raftlog::testing;
namespace fs = std::filesystem;

namespace {

// Offsets where the records of a segment file start.
std::vector<std::size_t> record_starts(const std::string& file) {
  std::vector<std::size_t> out;
  std::size_t pos = kSegmentHeaderSize;
  while (pos + kRecordHeaderSize <= file.size()) {
    out.push_back(pos);
    pos += kRecordHeaderSize + util::decode_fixed32(file.data() + pos);
  }
  return out;
}

// Writes `batches` batches, batch k appending entry k+1 of regions 1..3
// and setting a state record; returns the directory's newest segment id.
std::uint64_t write_batches(const std::string& dir, int batches, const RaftLogOptions& opts) {
  auto eng = open_engine(dir, opts);
  for (int k = 0; k < batches; ++k) {
    LogBatch b;
    for (std::uint64_t region = 1; region <= 3; ++region) {
      REQUIRE(b.append(region, make_entries(region, k + 1, k + 2, 1, 10)).is_ok());
      b.put_state(region, "k", std::to_string(k));
    }
    REQUIRE(eng->write(b, true).is_ok());
  }
  return newest_segment(dir);
}

// Checks that exactly the first `n` batches of write_batches() are present.
void check_prefix(const RaftLogEngine& eng, int n) {
  for (std::uint64_t region = 1; region <= 3; ++region) {
    CHECK(all_entries(eng, region) == make_entries(region, 1, n + 1, 1, 10));
    auto k = eng.get_state(region, "k");
    REQUIRE(k.is_ok());
    if (n == 0) {
      CHECK_FALSE(k->has_value());
    } else {
      CHECK(k->value() == std::to_string(n - 1));
    }
  }
}

}  // namespace

TEST_CASE("raftlog: a torn last record is cut at every offset", "[raftlog][recovery]") {
  test::TempDir tmp("raftlog");
  const std::string orig = tmp.sub("orig");
  const int kBatches = 6;
  const std::uint64_t newest = write_batches(orig, kBatches, {});
  const std::string file = read_file(segment_path(orig, newest));
  const auto starts = record_starts(file);
  REQUIRE(starts.size() == kBatches);
  for (std::size_t cut = starts.back(); cut < file.size(); ++cut) {
    INFO("cut at " << cut);
    const std::string dir = tmp.sub("work");
    fs::remove_all(dir);
    fs::copy(orig, dir);
    write_file(segment_path(dir, newest), file.substr(0, cut));
    {
      auto eng = open_engine(dir);
      check_prefix(*eng, kBatches - 1);
      // The engine keeps working on the cut file.
      LogBatch b;
      REQUIRE(b.append(1, make_entries(1, kBatches, kBatches + 1, 1, 10)).is_ok());
      REQUIRE(eng->write(b, true).is_ok());
    }
    auto eng = open_engine(dir);
    CHECK(all_entries(*eng, 1) == make_entries(1, 1, kBatches + 1, 1, 10));
  }
}

TEST_CASE("raftlog: a damaged or zeroed tail of the newest segment is cut", "[raftlog][recovery]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  const std::uint64_t newest = write_batches(dir, 4, {});
  const std::string path = segment_path(dir, newest);
  std::string file = read_file(path);
  SECTION("checksum mismatch in the last record") {
    file[file.size() - 3] ^= 0x40;
    write_file(path, file);
    auto eng = open_engine(dir);
    check_prefix(*eng, 3);
  }
  SECTION("zeros after the last record (file grown, data lost)") {
    write_file(path, file + std::string(100, '\0'));
    auto eng = open_engine(dir);
    check_prefix(*eng, 4);
  }
  SECTION("last record zeroed") {
    const auto starts = record_starts(file);
    write_file(path,
               file.substr(0, starts.back()) + std::string(file.size() - starts.back(), '\0'));
    auto eng = open_engine(dir);
    check_prefix(*eng, 3);
  }
  SECTION("torn header of a freshly created segment") {
    write_file(segment_path(dir, newest + 1), std::string(kSegmentMagic).substr(0, 5));
    {
      auto eng = open_engine(dir);
      check_prefix(*eng, 4);
    }
    auto eng = open_engine(dir);
    check_prefix(*eng, 4);
    CHECK(eng->segments() == 2);
  }
}

TEST_CASE("raftlog: a damaged middle record of the newest segment is Corruption",
          "[raftlog][recovery]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  const std::uint64_t newest = write_batches(dir, 4, {});
  const std::string path = segment_path(dir, newest);
  std::string file = read_file(path);
  const auto starts = record_starts(file);
  file[starts[1] + kRecordHeaderSize + 2] ^= 1;
  write_file(path, file);
  auto r = RaftLogEngine::open(dir, {});
  REQUIRE(r.status().code() == Code::kCorruption);
  const std::string msg(r.status().message());
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find("offset " + std::to_string(starts[1])) != std::string::npos);
}

TEST_CASE("raftlog: a damaged length in the newest segment is Corruption, not a torn tail",
          "[raftlog][recovery]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  const std::uint64_t newest = write_batches(dir, 4, {});
  const std::string path = segment_path(dir, newest);
  std::string file = read_file(path);
  const auto starts = record_starts(file);
  // The length now claims the record runs past the end of the file.
  file[starts[1] + 3] = static_cast<char>(0x7f);
  write_file(path, file);
  auto r = RaftLogEngine::open(dir, {});
  REQUIRE(r.status().code() == Code::kCorruption);
  CHECK(std::string(r.status().message()).find("offset " + std::to_string(starts[1])) !=
        std::string::npos);
}

TEST_CASE("raftlog: damage in an older segment is Corruption", "[raftlog][recovery]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  RaftLogOptions opts;
  opts.segment_bytes = 400;
  const std::uint64_t newest = write_batches(dir, 12, opts);
  REQUIRE(newest >= 3);

  auto expect_corruption = [&](const std::string& path, std::size_t offset) {
    auto r = RaftLogEngine::open(dir, opts);
    REQUIRE(r.status().code() == Code::kCorruption);
    const std::string msg(r.status().message());
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("offset " + std::to_string(offset)) != std::string::npos);
  };

  SECTION("a flipped byte in an older segment") {
    const std::string path = segment_path(dir, newest - 1);
    std::string file = read_file(path);
    const auto starts = record_starts(file);
    file[file.size() - 1] ^= 1;
    write_file(path, file);
    expect_corruption(path, starts.back());
  }
  SECTION("an older segment cut short") {
    const std::string path = segment_path(dir, 1);
    std::string file = read_file(path);
    const auto starts = record_starts(file);
    write_file(path, file.substr(0, file.size() - 1));
    expect_corruption(path, starts.back());
  }
  SECTION("a bad segment header") {
    const std::string path = segment_path(dir, 2);
    std::string file = read_file(path);
    file[0] = 'X';
    write_file(path, file);
    expect_corruption(path, 0);
  }
}

TEST_CASE("raftlog: segments before a hole are leftovers of a cut purge", "[raftlog][recovery]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  RaftLogOptions opts;
  opts.segment_bytes = 512;
  {
    auto eng = open_engine(dir, opts);
    LogBatch b;
    for (raft::Index i = 1; i <= 40; ++i) {
      REQUIRE(b.append(1, make_entries(1, i, i + 1, 1, 40)).is_ok());
      REQUIRE(eng->write(b, true).is_ok());
    }
    b.compact_to(1, 40);
    b.clean_region(2);
    REQUIRE(eng->write(b, true).is_ok());
    REQUIRE(eng->segments() > 4);
  }
  // As if a purge deleting segments 1..3 had persisted only the last unlink.
  fs::remove(segment_path(dir, 3));
  auto eng = open_engine(dir, opts);
  CHECK_FALSE(fs::exists(segment_path(dir, 1)));
  CHECK_FALSE(fs::exists(segment_path(dir, 2)));
  CHECK(all_entries(*eng, 1) == make_entries(1, 40, 41, 1, 40));
}
