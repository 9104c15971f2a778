// Requests queued to a store's raft thread, and the lease state a leader
// shares with the threads that serve local reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kvcore/store.hpp"
#include "raftstore/types.hpp"
#include "runtime/clock.hpp"

namespace kvcore::raftstore {

using runtime::Instant;

struct WriteRequest {
  std::uint64_t region_id = 0;
  // The caller's region epoch (RequestOptions::region_*): checked again when
  // the write is proposed. nullopt: the store routed the keys itself.
  std::optional<RegionEpoch> expect_epoch;
  std::vector<WriteOp> ops;
  // RawBatch::expect(): checked when the write applies. Their keys lie in
  // the region like the ops' keys.
  std::vector<WriteCondition> conditions;
  Instant start;
  Instant deadline;
  WriteCallback done;
};

struct GetArgs {
  std::string key;
};
struct ScanArgs {
  std::string start;
  std::string end;
  std::size_t limit = 0;
  bool reverse = false;
};

// A scan is one part of Store::scan, always within the region it was routed
// to: served by a region that no longer covers it, it fails with
// KeyNotInRegion (the region changed under it) instead of being clipped.
struct ReadRequest {
  std::uint64_t region_id = 0;
  // As in WriteRequest; checked when the read is served.
  std::optional<RegionEpoch> expect_epoch;
  std::variant<GetArgs, ScanArgs> args;
  Instant start;
  Instant deadline;
  // Exactly one is set, matching args.
  GetCallback get_done;
  ScanCallback scan_done;

  // Completes the request with an error.
  void fail(const Status& s);
};

// Runs `req` against `reader` (a kv engine snapshot) and completes it.
void execute_read(const Reader& reader, const RegionMeta& region, ReadRequest& req);

// What a leader tells the local reader. Guarded by `mu`; the raft thread
// writes it, request threads read it.
struct LeaseState {
  mutable std::mutex mu;
  RegionMeta region;
  std::uint64_t peer_id = 0;
  bool leader = false;
  std::uint64_t leader_store = 0;  // hint for NotLeader
  std::uint64_t leader_peer = 0;
  raft::Term term = 0;
  // The leader has applied an entry of its own term: every entry committed
  // before its election is applied, so its engine holds every acknowledged
  // write.
  bool applied_current_term = false;
  // Reads may be served locally until this instant (the store's clock).
  Instant lease_until = Instant::min();
  // Writes routed to the region so far (not guarded by `mu`): the split
  // checker skips regions whose count did not move since their last check.
  std::atomic<std::uint64_t> writes{0};
  // A PrepareMerge was proposed or applied: the region serves no reads and
  // takes no writes (RegionMerging) until it is rolled back or gone.
  bool merging = false;
};

// Status helpers for region errors.
[[nodiscard]] Status not_leader_status(std::uint64_t region, std::uint64_t leader_store,
                                       std::uint64_t leader_peer);
[[nodiscard]] Status key_not_in_region(std::string_view key, const RegionMeta& region);
[[nodiscard]] Status region_not_found(std::uint64_t region);
// EpochNotMatch: the region's epoch is not `expected` (conf_ver 0: not
// checked).
[[nodiscard]] Status epoch_not_match(const RegionMeta& region, const RegionEpoch& expected);
// Whether `region` has the epoch a caller expects (conf_ver 0: any).
[[nodiscard]] inline bool epoch_matches(const RegionMeta& region, const RegionEpoch& expected) {
  return region.epoch.version == expected.version &&
         (expected.conf_ver == 0 || region.epoch.conf_ver == expected.conf_ver);
}
[[nodiscard]] Status region_merging(std::uint64_t region);
// Unavailable/StaleCommand: the proposal at `index` lost its place in the log.
[[nodiscard]] Status stale_command(std::uint64_t region, std::uint64_t index);

}  // namespace kvcore::raftstore
