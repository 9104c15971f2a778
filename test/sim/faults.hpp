// The fault schedule of one simulated run: drawn in full from the seed before
// the run starts, so it can be printed, and replayed with some faults left
// out (the runner's shrinking). Each fault starts at `at` (simulated time
// from the start of the workload) and, when it lasts, is undone `duration`
// later; faults may overlap.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kvcore::sim {

enum class FaultKind : std::uint8_t {
  // Network, for `duration`.
  kDrop,       // frames dropped with probability `rate`
  kDelay,      // frames delayed 1 ms .. `amount` (so reordered)
  kDuplicate,  // frames delivered twice with probability `rate`
  kPartition,  // two sides, `group` and the rest, cannot talk
  kOneWay,     // frames from `store` to `other` are lost, the reverse pass
  kIsolate,    // `store` can talk to no one
  // Stores.
  kCrash,      // `store` crashes (losing every unsynced write), restarts after `duration`
  kPause,      // `store`'s threads stall for `duration` (a stopped process, a GC pause)
  kClockJump,  // `store`'s clock jumps forward by `amount`
  kSlowDisk,   // every sync of `store` stalls it for `amount`, for `duration`
  // Operations issued while the workload runs.
  kTransferLeader,  // the region holding `key` moves its leader to another voter
  kSplit,           // the region holding `key` splits there (and at `key2` when set)
  kMerge,           // the region holding `key` merges into a neighbour
  kMembership,      // the region holding `key` takes its next membership step
};

[[nodiscard]] const char* to_string(FaultKind kind);

struct Fault {
  std::size_t index = 0;  // position in the schedule, for --skip-faults
  FaultKind kind = FaultKind::kDrop;
  std::chrono::milliseconds at{0};
  std::chrono::milliseconds duration{0};  // 0: instantaneous
  std::uint64_t store = 0;
  std::uint64_t other = 0;
  std::vector<std::uint64_t> group;
  double rate = 0;
  std::chrono::milliseconds amount{0};
  std::string key;
  std::string key2;

  // One line: "#3 at 1.250s for 0.400s: crash store 2".
  [[nodiscard]] std::string describe() const;
};

struct ScheduleOptions {
  std::size_t stores = 3;
  std::vector<std::string> keys;         // the workload's key space, ascending
  std::chrono::milliseconds length{0};   // faults start within [0, length)
  std::size_t faults = 0;                // how many to draw
  // Clock jumps are at least this far apart, so that no two stores' clocks
  // jump within one election timeout of each other (leases tolerate one
  // store's clock misbehaving, not a quorum's).
  std::chrono::milliseconds min_jump_gap{3000};
};

// Draws a schedule from `seed`, sorted by start time and numbered.
[[nodiscard]] std::vector<Fault> draw_schedule(std::uint64_t seed, const ScheduleOptions& options);

}  // namespace kvcore::sim
