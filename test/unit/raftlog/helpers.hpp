// Helpers shared by the raft log engine tests.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "raftlog/engine.hpp"
#include "raftlog/format.hpp"

namespace kvcore::raftlog::testing {

inline raft::Entry entry(raft::Index index, raft::Term term, std::string data) {
  raft::Entry e;
  e.index = index;
  e.term = term;
  e.data = std::move(data);
  return e;
}

// Entries [lo, hi) of `term` whose data names region, index and term.
inline std::vector<raft::Entry> make_entries(std::uint64_t region, raft::Index lo, raft::Index hi,
                                             raft::Term term, std::size_t pad = 0) {
  std::vector<raft::Entry> out;
  for (raft::Index i = lo; i < hi; ++i) {
    out.push_back(entry(i, term,
                        "r" + std::to_string(region) + "i" + std::to_string(i) + "t" +
                            std::to_string(term) + std::string(pad, 'x')));
  }
  return out;
}

inline std::unique_ptr<RaftLogEngine> open_engine(const std::string& dir,
                                                  const RaftLogOptions& opts = {}) {
  auto r = RaftLogEngine::open(dir, opts);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

inline std::vector<raft::Entry> all_entries(const RaftLogEngine& eng, std::uint64_t region) {
  auto first = eng.first_index(region);
  auto last = eng.last_index(region);
  if (!first) return {};
  auto r = eng.entries(region, *first, *last + 1, UINT64_MAX);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return *r;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline std::string segment_path(const std::string& dir, std::uint64_t id) {
  return dir + "/" + segment_file_name(id);
}

// The id of the newest segment file in `dir` (0: none).
inline std::uint64_t newest_segment(const std::string& dir) {
  std::uint64_t newest = 0;
  for (const auto& ent : std::filesystem::directory_iterator(dir)) {
    std::uint64_t id = 0;
    if (parse_segment_file_name(ent.path().filename().string(), &id)) {
      newest = std::max(newest, id);
    }
  }
  return newest;
}

}  // namespace kvcore::raftlog::testing
