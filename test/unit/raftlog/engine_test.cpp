// RaftLogEngine basics: many regions, the conflict rule, compaction, purge
// with rewrite, clean_region, reopen.
#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "kvcore/raft/storage.hpp"
#include "temp_dir.hpp"

using namespace kvcore;
using namespace kvcore::raftlog;
using namespace kvcore::raftlog::testing;
using Kind = raft::StorageErrorDetail::Kind;

TEST_CASE("raftlog: append and read across many regions, then reopen", "[raftlog]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  RaftLogOptions opts;
  opts.segment_bytes = 4096;  // force rotation
  {
    auto eng = open_engine(dir, opts);
    for (raft::Index round = 0; round < 10; ++round) {
      LogBatch b;
      for (std::uint64_t region = 1; region <= 40; ++region) {
        auto ents = make_entries(region, round * 5 + 1, round * 5 + 6, 1);
        REQUIRE(b.append(region, ents).is_ok());
        b.set_hard_state(region, raft::HardState{1, 2, round * 5});
        b.put_state(region, "meta", "m" + std::to_string(region));
      }
      REQUIRE_FALSE(b.empty());
      REQUIRE(eng->write(b, round % 2 == 0).is_ok());
      REQUIRE(b.empty());
    }
    CHECK(eng->segments() > 2);
    CHECK(eng->live_entries() == 40 * 50);
  }
  auto eng = open_engine(dir, opts);
  REQUIRE(eng->regions().size() == 40);
  for (std::uint64_t region = 1; region <= 40; ++region) {
    CHECK(all_entries(*eng, region) == make_entries(region, 1, 51, 1));
    CHECK(eng->first_index(region) == 1u);
    CHECK(eng->last_index(region) == 50u);
    CHECK(eng->hard_state(region) == raft::HardState{1, 2, 45});
    CHECK(eng->get_state(region, "meta")->value() == "m" + std::to_string(region));
    CHECK_FALSE(eng->get_state(region, "absent")->has_value());
    CHECK(eng->term(region, 7).value() == 1u);
  }
  CHECK(eng->regions().front() == 1u);
  CHECK_FALSE(eng->first_index(99).has_value());
  CHECK_FALSE(eng->hard_state(99).has_value());
}

TEST_CASE("raftlog: entries() follows the raft::Storage contract", "[raftlog]") {
  test::TempDir tmp("raftlog");
  auto eng = open_engine(tmp.sub("log"));
  LogBatch b;
  REQUIRE(b.append(7, make_entries(7, 5, 15, 2, 100)).is_ok());
  REQUIRE(eng->write(b, false).is_ok());

  CHECK(raft::is_storage_error(eng->entries(7, 4, 6, UINT64_MAX).status(), Kind::kCompacted));
  CHECK(raft::is_storage_error(eng->entries(7, 5, 16, UINT64_MAX).status(), Kind::kUnavailable));
  CHECK(raft::is_storage_error(eng->entries(8, 1, 2, UINT64_MAX).status(), Kind::kUnavailable));
  CHECK(raft::is_storage_error(eng->term(7, 4).status(), Kind::kCompacted));
  CHECK(raft::is_storage_error(eng->term(7, 15).status(), Kind::kUnavailable));
  CHECK(eng->entries(7, 6, 6, 0)->empty());
  // max_bytes: at least one entry, then as many as fit.
  CHECK(eng->entries(7, 5, 15, 0)->size() == 1);
  const auto one = make_entries(7, 5, 6, 2, 100)[0].byte_size();
  CHECK(eng->entries(7, 5, 15, one * 3)->size() == 3);
  CHECK(eng->entries(7, 5, 15, one * 3 - 1)->size() == 2);
  CHECK(*eng->entries(7, 8, 12, UINT64_MAX) == make_entries(7, 8, 12, 2, 100));

  LogBatch bad;
  std::vector<raft::Entry> gap = {entry(1, 1, "a"), entry(3, 1, "b")};
  CHECK(bad.append(1, gap).code() == Code::kInvalidArgument);
  CHECK(bad.empty());
}

TEST_CASE("raftlog: appending over existing entries truncates the suffix", "[raftlog]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  {
    auto eng = open_engine(dir);
    LogBatch b;
    REQUIRE(b.append(1, make_entries(1, 1, 11, 1)).is_ok());
    REQUIRE(eng->write(b, true).is_ok());
    REQUIRE(b.append(1, make_entries(1, 6, 8, 2)).is_ok());
    REQUIRE(eng->write(b, true).is_ok());
    auto want = make_entries(1, 1, 6, 1);
    for (auto& e : make_entries(1, 6, 8, 2)) want.push_back(e);
    CHECK(all_entries(*eng, 1) == want);
    CHECK(eng->last_index(1) == 7u);
    // Two appends in one batch apply in order.
    REQUIRE(b.append(1, make_entries(1, 8, 12, 2)).is_ok());
    REQUIRE(b.append(1, make_entries(1, 3, 4, 3)).is_ok());
    REQUIRE(eng->write(b, true).is_ok());
    CHECK(eng->last_index(1) == 3u);
    CHECK(eng->live_entries() == 3);
    // A gap restarts the log at the new index.
    REQUIRE(b.append(1, make_entries(1, 20, 22, 3)).is_ok());
    REQUIRE(eng->write(b, true).is_ok());
    CHECK(eng->first_index(1) == 20u);
    CHECK(eng->live_entries() == 2);
  }
  auto eng = open_engine(dir);
  CHECK(all_entries(*eng, 1) == make_entries(1, 20, 22, 3));
}

TEST_CASE("raftlog: compaction and purge delete segments, rewriting state records", "[raftlog]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  RaftLogOptions opts;
  opts.segment_bytes = 2048;
  opts.rewrite_region_bytes = 0;  // only state records move; logs must be compacted
  {
    auto eng = open_engine(dir, opts);
    LogBatch b;
    // Region 100 writes state once, in the first segment, and never again.
    b.put_state(100, "region", "meta-100");
    b.set_hard_state(100, raft::HardState{5, 1, 3});
    REQUIRE(eng->write(b, true).is_ok());
    for (raft::Index i = 1; i <= 200; ++i) {
      REQUIRE(b.append(1, make_entries(1, i, i + 1, 1, 50)).is_ok());
      REQUIRE(eng->write(b, false).is_ok());
    }
    const std::size_t before = eng->segments();
    const std::uint64_t before_bytes = eng->bytes();
    REQUIRE(before > 5);
    // Nothing is dead yet: region 1's log starts in the first segment.
    REQUIRE(eng->purge().is_ok());
    CHECK(eng->segments() == before);

    b.compact_to(1, 190);
    REQUIRE(eng->write(b, true).is_ok());
    CHECK(eng->first_index(1) == 190u);
    CHECK(eng->live_entries() == 11);
    REQUIRE(eng->purge().is_ok());
    CHECK(eng->segments() <= 2);
    CHECK(eng->bytes() < before_bytes / 2);
    CHECK(eng->get_state(100, "region")->value() == "meta-100");
    CHECK(all_entries(*eng, 1) == make_entries(1, 190, 201, 1, 50));
  }
  auto eng = open_engine(dir, opts);
  CHECK(eng->segments() <= 2);
  CHECK(eng->get_state(100, "region")->value() == "meta-100");
  CHECK(eng->hard_state(100) == raft::HardState{5, 1, 3});
  CHECK(all_entries(*eng, 1) == make_entries(1, 190, 201, 1, 50));
  CHECK(raft::is_storage_error(eng->entries(1, 189, 191, UINT64_MAX).status(), Kind::kCompacted));
}

TEST_CASE("raftlog: purge rewrites small logs out of old segments", "[raftlog]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  RaftLogOptions opts;
  opts.segment_bytes = 2048;
  {
    auto eng = open_engine(dir, opts);
    LogBatch b;
    REQUIRE(b.append(2, make_entries(2, 1, 4, 1)).is_ok());  // idle region, small log
    REQUIRE(eng->write(b, true).is_ok());
    for (raft::Index i = 1; i <= 100; ++i) {
      REQUIRE(b.append(1, make_entries(1, i, i + 1, 1, 50)).is_ok());
      b.compact_to(1, i);
      REQUIRE(eng->write(b, false).is_ok());
    }
    REQUIRE(eng->segments() > 3);
    REQUIRE(eng->purge().is_ok());
    CHECK(eng->segments() == 1);
    CHECK(all_entries(*eng, 2) == make_entries(2, 1, 4, 1));
    // The rewritten log still follows the conflict rule.
    REQUIRE(b.append(2, make_entries(2, 3, 5, 2)).is_ok());
    REQUIRE(eng->write(b, true).is_ok());
  }
  auto eng = open_engine(dir, opts);
  auto want = make_entries(2, 1, 3, 1);
  for (auto& e : make_entries(2, 3, 5, 2)) want.push_back(e);
  CHECK(all_entries(*eng, 2) == want);
  CHECK(all_entries(*eng, 1) == make_entries(1, 100, 101, 1, 50));
}

TEST_CASE("raftlog: a big log pins its segments until compacted", "[raftlog]") {
  test::TempDir tmp("raftlog");
  RaftLogOptions opts;
  opts.segment_bytes = 2048;
  opts.rewrite_region_bytes = 1024;
  auto eng = open_engine(tmp.sub("log"), opts);
  LogBatch b;
  for (raft::Index i = 1; i <= 100; ++i) {
    REQUIRE(b.append(1, make_entries(1, i, i + 1, 1, 50)).is_ok());
    REQUIRE(eng->write(b, false).is_ok());
  }
  const std::size_t before = eng->segments();
  REQUIRE(eng->purge().is_ok());
  CHECK(eng->segments() == before);
  b.compact_to(1, 95);
  REQUIRE(eng->write(b, false).is_ok());
  REQUIRE(eng->purge().is_ok());
  CHECK(eng->segments() == 1);
  CHECK(all_entries(*eng, 1) == make_entries(1, 95, 101, 1, 50));
}

TEST_CASE("raftlog: clean_region drops everything of a region", "[raftlog]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  RaftLogOptions opts;
  opts.segment_bytes = 1024;
  {
    auto eng = open_engine(dir, opts);
    LogBatch b;
    for (std::uint64_t region = 1; region <= 3; ++region) {
      REQUIRE(b.append(region, make_entries(region, 1, 30, 1, 20)).is_ok());
      b.set_hard_state(region, raft::HardState{1, 0, 29});
      b.put_state(region, "apply", "29");
    }
    REQUIRE(eng->write(b, true).is_ok());
    b.clean_region(2);
    REQUIRE(eng->write(b, true).is_ok());
    CHECK(eng->regions() == std::vector<std::uint64_t>{1, 3});
    CHECK(eng->entry_count(2) == 0);
    CHECK_FALSE(eng->hard_state(2).has_value());
    CHECK_FALSE(eng->get_state(2, "apply")->has_value());
    // Purge after cleaning everything else must not bring region 2 back.
    b.clean_region(1);
    b.clean_region(3);
    REQUIRE(eng->write(b, true).is_ok());
    REQUIRE(b.append(4, make_entries(4, 1, 2, 1, 2000)).is_ok());
    REQUIRE(eng->write(b, true).is_ok());
    REQUIRE(eng->purge().is_ok());
    CHECK(eng->regions() == std::vector<std::uint64_t>{4});
  }
  auto eng = open_engine(dir, opts);
  CHECK(eng->regions() == std::vector<std::uint64_t>{4});
  CHECK(eng->live_entries() == 1);
}

TEST_CASE("raftlog: a directory is opened by one engine at a time", "[raftlog]") {
  test::TempDir tmp("raftlog");
  auto eng = open_engine(tmp.sub("log"));
  auto again = RaftLogEngine::open(tmp.sub("log"), {});
  CHECK(again.status().code() == Code::kFailedPrecondition);
  RaftLogOptions no_create;
  no_create.create_if_missing = false;
  CHECK(RaftLogEngine::open(tmp.sub("missing"), no_create).status().code() == Code::kNotFound);
}

TEST_CASE("raftlog: state records are put, overwritten and deleted", "[raftlog]") {
  test::TempDir tmp("raftlog");
  const std::string dir = tmp.sub("log");
  {
    auto eng = open_engine(dir);
    LogBatch b;
    b.put_state(1, "a", "1");
    b.put_state(1, "b", "2");
    b.put_state(1, "a", "3");
    REQUIRE(eng->write(b, true).is_ok());
    b.delete_state(1, "b");
    b.delete_state(9, "x");
    REQUIRE(eng->write(b, true).is_ok());
  }
  auto eng = open_engine(dir);
  CHECK(eng->get_state(1, "a")->value() == "3");
  CHECK_FALSE(eng->get_state(1, "b")->has_value());
  CHECK(eng->regions() == std::vector<std::uint64_t>{1});
}
