// kvcore::sim: whole clusters simulated from one seed.
//
// run_simulation() builds a cluster of 3 or 5 stores on one SimRuntime
// (memory kv engine, simulated disk, in-memory network), runs the workload
// of workload.hpp against it while the fault schedule of faults.hpp is
// applied, heals every fault, lets the cluster settle, reads every key once
// more, and checks:
// - the history is linearizable per key (test::check_linearizable);
// - every acknowledged write survives: the final value of each key was
//   written by a write no acknowledged write followed (check_acknowledged_writes);
// - the regions tile the key space: no two regions reported by any stores
//   overlap at the same epoch version, sampled throughout the run, and at the
//   end the freshest regions cover every key exactly once (check_tiling);
// - the cluster recovers: once every fault is healed, every key can be read
//   within a bound, and no store stopped itself on an internal error;
// - the run ends: past SimOptions::max_tasks simulated steps it fails as a
//   livelock.
//
// Everything the run does is a function of SimOptions: the same options
// replay the same run, event for event. The run takes simulated time only;
// its wall-clock cost is CPU.
//
// Thread-safety: run_simulation may run on any thread, one run per thread
// at a time (each run owns its SimRuntime; the memory engine's disks are a
// process-wide table keyed by fresh temporary paths).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "faults.hpp"
#include "workload.hpp"

namespace kvcore::sim {

struct SimOptions {
  std::uint64_t seed = 1;
  // 3 or 5 stores; 0: drawn from the seed (a fifth of runs get 5). With 5,
  // regions start on stores 1..3 and membership steps move them around.
  std::size_t stores = 0;
  // Simulated time the workload runs while faults are drawn; then faults
  // heal and the cluster settles for `settle`.
  std::chrono::milliseconds workload{8'000};
  std::chrono::milliseconds settle{3'000};
  // Faults in the schedule; 0: drawn from the seed (6..16).
  std::size_t faults = 0;
  std::size_t clients = 6;
  std::size_t keys = 8;
  // Faults of the schedule (by index) left out: replays a shrunk schedule.
  std::set<std::size_t> skip_faults;
  // Prints every fault as it is applied and the run's progress to stderr.
  bool trace = false;
  // States the linearizability search may explore (past it: a failure
  // saying the check was inconclusive).
  std::size_t max_check_states = 5'000'000;
  // Simulated tasks (steps of the SimRuntime) a run may take; past it the
  // run fails as a livelock.
  std::uint64_t max_tasks = 1'000'000;
};

struct SimReport {
  SimOptions options;  // as run (stores filled in)
  std::size_t stores = 0;
  bool ok = false;
  // One entry per failed check, human readable (the linearizability one
  // carries the shortest failing window of the key's history).
  std::vector<std::string> failures;
  std::vector<Fault> schedule;        // the whole drawn schedule
  std::set<std::size_t> skipped;      // left out of it in this run
  std::vector<std::string> fault_log;  // what each applied fault did, with times
  std::vector<std::string> final_state;  // each store's regions at the end (failed runs)
  WorkloadStats stats;
  std::size_t history_ops = 0;
  std::size_t check_states = 0;
  std::size_t tiling_samples = 0;
  std::uint64_t max_regions = 0;
  std::uint64_t final_regions = 0;
  std::uint64_t frames_dropped = 0;
  std::uint64_t tasks = 0;  // simulated tasks run
  double sim_seconds = 0;   // simulated time the run covered

  // One line: seed, verdict and counts.
  [[nodiscard]] std::string summary() const;
  // Everything a person replaying the seed wants: schedule, fault log,
  // failures, the replay command.
  [[nodiscard]] std::string details() const;
  // "kvcore-sim --seed N [--stores S] [--skip-faults a,b]".
  [[nodiscard]] std::string replay_command() const;
};

[[nodiscard]] SimReport run_simulation(const SimOptions& options);

// Looks for a smaller fault schedule that still fails: drops faults one at
// a time (latest first), keeping each drop after which the run still fails,
// in at most `max_runs` further runs. Returns the smallest failing run found
// (`failing` itself when no drop keeps it failing).
[[nodiscard]] SimReport shrink_faults(const SimOptions& options, const SimReport& failing,
                                      int max_runs);

}  // namespace kvcore::sim
