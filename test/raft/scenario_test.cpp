// Runs every text scenario in $KVCORE_RAFT_TESTDATA/*.txt and compares its
// output with the checked-in expectation. KVCORE_REWRITE=1 rewrites the
// expected output in place instead: the only way expected output changes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "raft_scenario.hpp"

namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> scenario_files() {
  const char* dir = std::getenv("KVCORE_RAFT_TESTDATA");
#ifdef KVCORE_RAFT_TESTDATA_DIR
  // Built in by meson, so the binary also runs outside `meson test`.
  if (dir == nullptr) dir = KVCORE_RAFT_TESTDATA_DIR;
#endif
  std::vector<fs::path> files;
  if (dir == nullptr) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool rewriting() {
  const char* v = std::getenv("KVCORE_REWRITE");
  return v != nullptr && std::string(v) == "1";
}

}  // namespace

TEST_CASE("raft scenarios", "[raft][scenario]") {
  auto files = scenario_files();
  REQUIRE_FALSE(files.empty());
  for (const auto& path : files) {
    DYNAMIC_SECTION(path.filename().string()) {
      auto text = read_all(path);
      auto res = kvcore::raft::scenario::run_file(text);
      INFO(path.string());
      if (!res.is_ok()) {
        FAIL_CHECK(res.status().to_string());
        continue;
      }
      if (rewriting()) {
        if (res->rewritten != text) {
          std::ofstream out(path, std::ios::binary | std::ios::trunc);
          out << res->rewritten;
          WARN("rewrote " << path.string());
        }
        continue;
      }
      for (const auto& m : res->mismatches) FAIL_CHECK(m);
      CHECK(res->mismatches.empty());
    }
  }
}

TEST_CASE("scenario command parsing", "[raft][scenario]") {
  using kvcore::raft::scenario::parse_command;
  auto c = parse_command("add-nodes 3 voters=(1,2, 3) index=2 pre-vote");
  REQUIRE(c.is_ok());
  CHECK(c->name == "add-nodes");
  CHECK(c->positional == std::vector<std::string>{"3", "pre-vote"});
  CHECK(c->args.at("voters") == std::vector<std::string>{"1", "2", "3"});
  CHECK(c->args.at("index") == std::vector<std::string>{"2"});
  CHECK_FALSE(parse_command("x y=(1,2").is_ok());

  auto blocks =
      kvcore::raft::scenario::parse("# c\nlog-level info\n----\nok\n\nraft-state\n----\n");
  REQUIRE(blocks.is_ok());
  REQUIRE(blocks->size() == 2);
  CHECK((*blocks)[0].expected == "ok");
  CHECK((*blocks)[1].expected.empty());
}
