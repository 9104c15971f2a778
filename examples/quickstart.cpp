// kvcore quickstart: opens every engine this build has, writes and reads
// through the engine traits, and prints a short report.
//
// (The replicated in-process cluster joins this example when the Store API
// lands; for now it shows the storage layer every later layer stands on.)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "kvcore/engine/registry.hpp"

namespace {

struct Report {
  std::size_t written = 0;
  std::size_t scanned = 0;
  std::uint64_t approx_keys = 0;
  double write_ms = 0;
};

kvcore::Result<Report> exercise(kvcore::Engine& engine) {
  using Clock = std::chrono::steady_clock;
  Report r;
  const auto start = Clock::now();
  auto batch = engine.new_write_batch();
  for (int i = 0; i < 10000; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "user%06d", i);
    batch->put(kvcore::CF::kDefault, key, "value-" + std::to_string(i));
    if (batch->count() == 1000) {
      KVCORE_RETURN_IF_ERROR(engine.write(*batch, {.sync = true}));
      r.written += batch->count();
      batch->clear();
    }
  }
  r.write_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();

  auto value = engine.get(kvcore::CF::kDefault, "user004242");
  if (!value.is_ok()) return value.status();
  if (!value->has_value() || **value != "value-4242") {
    return kvcore::Status::internal("read back the wrong value");
  }
  auto snap = engine.snapshot();
  auto it = snap->new_iterator(kvcore::CF::kDefault,
                               {.lower_bound = "user001000", .upper_bound = "user002000"});
  for (it->seek_to_first(); it->valid(); it->next()) ++r.scanned;
  KVCORE_RETURN_IF_ERROR(it->status());
  KVCORE_ASSIGN_OR_RETURN(r.approx_keys,
                          engine.approximate_keys(kvcore::CF::kDefault, {"user", "uses"}));
  return r;
}

}  // namespace

int main() {
  const auto base = std::filesystem::temp_directory_path() /
                    ("kvcore-quickstart-" + std::to_string(::getpid()));
  std::printf("kvcore quickstart (default engine: %s)\n\n", KVCORE_DEFAULT_ENGINE_NAME);
  std::printf("%-8s %9s %10s %12s %10s\n", "engine", "written", "write ms", "scanned 1k", "~keys");
  int failures = 0;
  for (auto kind : kvcore::built_engines()) {
    const std::string name(kvcore::to_string(kind));
    auto engine = kvcore::open_engine(kind, (base / name).string());
    if (!engine.is_ok()) {
      std::printf("%-8s open failed: %s\n", name.c_str(), engine.status().to_string().c_str());
      ++failures;
      continue;
    }
    auto report = exercise(**engine);
    if (!report.is_ok()) {
      std::printf("%-8s failed: %s\n", name.c_str(), report.status().to_string().c_str());
      ++failures;
      continue;
    }
    std::printf("%-8s %9zu %10.1f %12zu %10llu\n", name.c_str(), report->written, report->write_ms,
                report->scanned, static_cast<unsigned long long>(report->approx_keys));
  }
  std::error_code ec;
  std::filesystem::remove_all(base, ec);
  std::printf("\n%s\n", failures == 0 ? "all engines OK" : "some engines FAILED");
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
