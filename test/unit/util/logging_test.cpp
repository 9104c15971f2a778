#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "util/log.hpp"

TEST_CASE("log lines reach the installed sink, filtered by level", "[logging]") {
  std::vector<std::string> lines;
  kvcore::set_log_sink([&](kvcore::LogLevel level, std::string_view, int, std::string_view msg) {
    lines.push_back(std::string(kvcore::to_string(level)) + " " + std::string(msg));
  });
  kvcore::set_log_level(kvcore::LogLevel::kInfo);
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  KVCORE_LOG_DEBUG("hidden {}", count());
  KVCORE_LOG_INFO("shown {}", 1);
  KVCORE_LOG_ERROR("bad {}", "thing");
  CHECK(evaluated == 0);  // filtered lines do not evaluate their arguments
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "INFO shown 1");
  CHECK(lines[1] == "ERROR bad thing");

  kvcore::set_log_sink({});
  kvcore::set_log_level(kvcore::LogLevel::kWarn);
  CHECK(kvcore::log_level() == kvcore::LogLevel::kWarn);
}
