// The sorted-run file decoder on damaged input: every truncation and a
// seeded stream of byte flips must give Corruption (or, when a flip lands
// where it changes nothing, the exact original entries), never a crash.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/sorted_file.hpp"
#include "seed.hpp"
#include "temp_dir.hpp"

using kvcore::Code;
using kvcore::engine::scan_sorted_file;
using kvcore::engine::SortedFileWriter;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

using Entries = std::vector<std::pair<std::string, std::string>>;

kvcore::Status scan(const std::string& path, Entries* out) {
  return scan_sorted_file(path, [out](std::string_view k, std::string_view v) {
    out->emplace_back(std::string(k), std::string(v));
    return kvcore::Status();
  });
}

}  // namespace

TEST_CASE("sorted files round-trip and enforce ascending keys", "[sorted_file]") {
  kvcore::test::TempDir dir("sorted");
  auto writer = SortedFileWriter::create(dir.sub("a.sst"));
  REQUIRE(writer.is_ok());
  Entries want = {{std::string("\0", 1), "zero"}, {"a", ""}, {"b", std::string(70000, 'x')},
                  {"\xff\xff", "last"}};
  for (const auto& [k, v] : want) REQUIRE(writer->put(k, v).is_ok());
  CHECK(writer->put("b", "again").code() == Code::kInvalidArgument);
  auto info = writer->finish();
  REQUIRE(info.is_ok());
  CHECK(info->entries == want.size());
  CHECK(info->smallest_key == want.front().first);
  CHECK(info->largest_key == want.back().first);

  Entries got;
  REQUIRE(scan(dir.sub("a.sst"), &got).is_ok());
  CHECK(got == want);

  CHECK(SortedFileWriter::create(dir.sub("a.sst")).status().code() == Code::kAlreadyExists);
  auto empty = SortedFileWriter::create(dir.sub("empty.sst"));
  REQUIRE(empty.is_ok());
  CHECK(empty->finish().status().code() == Code::kInvalidArgument);
  CHECK(scan_sorted_file(dir.sub("missing.sst"), {}).code() == Code::kNotFound);
}

TEST_CASE("damaged sorted files are Corruption, never a crash", "[sorted_file][fuzz]") {
  kvcore::test::TempDir dir("sorted");
  const std::string path = dir.sub("good.sst");
  {
    auto writer = SortedFileWriter::create(path);
    REQUIRE(writer.is_ok());
    for (int i = 0; i < 200; ++i) {
      REQUIRE(writer->put("key" + std::to_string(1000 + i), std::string(i % 17, 'v')).is_ok());
    }
    REQUIRE(writer->finish().is_ok());
  }
  const std::string good = read_all(path);
  Entries want;
  REQUIRE(scan(path, &want).is_ok());

  const std::string bad = dir.sub("bad.sst");
  for (std::size_t cut = 0; cut < good.size(); cut += 7) {
    write_all(bad, good.substr(0, cut));
    INFO("truncated to " << cut);
    CHECK(scan_sorted_file(bad, {}).code() == Code::kCorruption);
  }
  for (auto seed : kvcore::test::test_seeds(1, 500)) {
    INFO(kvcore::test::replay_hint(seed));
    kvcore::test::Rng rng(seed);
    std::string damaged = good;
    const auto flips = 1 + rng.uniform(4);
    for (std::uint64_t i = 0; i < flips; ++i) {
      damaged[rng.uniform(damaged.size())] ^= static_cast<char>(1 + rng.uniform(255));
    }
    write_all(bad, damaged);
    Entries got;
    kvcore::Status s = scan(bad, &got);
    if (s.is_ok()) {
      CHECK(got == want);
    } else {
      CHECK(s.code() == Code::kCorruption);
    }
  }
}
