// The simulator's clients and history recorder.
//
// Each client loops: think a few milliseconds, then send one request to the
// store it believes leads (following NotLeader hints, else a random running
// store) and wait for its answer. Requests: get, put, delete, an atomic batch
// of puts, a conditional batch (compare-and-set on each of its keys, the
// expected values being what the client last saw), delete_range and scans
// (forward and reverse, with and without a limit), over a small key space.
//
// Every request is recorded per key as the linearizability checker wants it
// (test::Operation): invoked at its call, completed at its answer. Outcomes:
// - OK: the operation took effect between call and answer;
// - refused before it could take effect (NotLeader, routing and epoch errors,
//   a dropped or superseded proposal, a busy store, a merging region): left
//   out of the history;
// - a failed condition: recorded as reads of the values the store reported;
// - anything else (a timeout, a stopping or crashed store, a destroyed peer):
//   a write of unknown outcome (it may take effect at any later time); a read
//   tells nothing and is left out.
// A write never answered by the end is of unknown outcome too.
//
// Thread-safety: none; everything runs on the simulation's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kvcore/status.hpp"
#include "linearizability.hpp"
#include "local_cluster.hpp"
#include "seed.hpp"

namespace kvcore::sim {

struct WorkloadOptions {
  std::size_t clients = 6;
  std::vector<std::string> keys;  // ascending
  std::chrono::milliseconds min_timeout{300};
  std::chrono::milliseconds max_timeout{1500};
  std::chrono::milliseconds max_think{15};
};

struct WorkloadStats {
  std::uint64_t issued = 0;
  std::uint64_t writes_ok = 0;
  std::uint64_t cas_ok = 0;
  std::uint64_t cas_failed = 0;
  std::uint64_t reads_ok = 0;
  std::uint64_t scans_ok = 0;
  std::uint64_t unknown = 0;
  std::uint64_t refused = 0;
  std::map<std::string, std::uint64_t> failures;  // "write Unavailable/NotLeader" -> count
};

// How a failed write is recorded.
enum class WriteOutcome { kNoEffect, kUnknown };
[[nodiscard]] WriteOutcome classify_write_failure(const Status& s);

class Workload {
 public:
  // The cluster is borrowed: REQUIRES it outlives the workload, and every
  // request still pending is answered (the cluster stopped) before the
  // workload is destroyed.
  Workload(test::LocalCluster& cluster, std::uint64_t seed, WorkloadOptions options);

  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // Every client sends its first request after a think time.
  void start();
  // No client sends anything new; answers still arriving are recorded.
  void stop() { stopped_ = true; }
  // Requests sent and not yet answered.
  [[nodiscard]] std::size_t outstanding() const noexcept { return outstanding_; }

  // The history so far: completed operations, writes still pending as of
  // unknown outcome, pending reads left out.
  [[nodiscard]] std::vector<test::Operation> history() const;
  // Adds a read of `key` that returned `value` at [call, ret] (the final
  // reads after the run).
  void record_read(const std::string& key, std::optional<std::string> value, std::int64_t call,
                   std::int64_t ret);
  [[nodiscard]] const WorkloadStats& stats() const noexcept { return stats_; }

 private:
  struct Client {
    std::uint64_t store = 0;  // where it sends next; 0: pick one
    // What it last saw or wrote of each key (the expected values of its
    // conditional batches).
    std::map<std::string, std::optional<std::string>> seen;
  };

  [[nodiscard]] std::int64_t now() const;
  std::uint64_t pick_store(Client& cl);
  void follow_hint(Client& cl, const Status& s);
  void schedule(std::size_t client);
  void issue(std::size_t client);
  RequestOptions request_options();
  // Starts one write op per (key, value) at `call`; returns their slots.
  std::vector<std::size_t> begin_writes(
      std::size_t client, const std::vector<std::pair<std::string, std::optional<std::string>>>& kv,
      const std::vector<std::optional<std::string>>* expected);
  void finish_write(std::size_t client, const std::vector<std::size_t>& slots, const Status& s);
  void finish_get(std::size_t client, std::size_t slot,
                  const Result<std::optional<std::string>>& r);
  void finish_scan(std::size_t client, std::int64_t call, const std::string& start,
                   const std::string& end, std::size_t limit, bool reverse,
                   const Result<std::vector<KvPair>>& r);
  void count_failure(const char* what, const Status& s);
  std::string fresh_value(std::size_t client);

  test::LocalCluster& c_;
  test::Rng rng_;
  WorkloadOptions o_;
  std::vector<Client> clients_;
  std::vector<test::Operation> ops_;  // ret == 0: pending
  std::vector<bool> dead_;            // ops_ left out (refused, failed reads)
  std::size_t outstanding_ = 0;
  std::uint64_t next_value_ = 0;
  bool stopped_ = false;
  WorkloadStats stats_;
};

}  // namespace kvcore::sim
