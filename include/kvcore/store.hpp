// kvcore::Store: one member of a replicated kvcore cluster, inside the
// application's process.
//
// A cluster is a set of stores (normally one per machine), each with its own
// directories. Keys are split into regions; each region is a raft group with
// one peer on each of several stores. A store keeps user data in the engine
// chosen at build time (`<path>/kv`) and raft logs, raft state and region
// metadata in a detached raft log engine (`<path>/raft`).
//
// Lifecycle:
//   1. Store::bootstrap(options, initial_stores) once on each initial store,
//      before its first open: writes the first region (all keys) with one
//      peer on each initial store.
//   2. Store::open(options, transport) on every start; the store recovers
//      from its directories (every acknowledged write survives a crash).
//   3. The application calls deliver() with each frame that arrives for it.
//   4. Destroying the Store stops it; requests still pending complete with
//      Unavailable before the destructor returns.
//
// Requests. Raw key-value reads and writes are served by the leader of the
// region holding the key. On a store whose peer is not the leader they fail
// at once with Unavailable/NotLeader, carrying the leader's store id when
// known (NotLeaderDetail): send the request there. A request whose region
// changed under it (a split between routing and proposing, applying or
// serving it) fails with Unavailable and EpochNotMatch, KeyNotInRegion or
// RegionNotFound, carrying an EpochNotMatchDetail with the regions that hold
// its keys now: it had no effect; route it again. Reads are
// linearizable: a leader holding a valid lease serves them on the caller's
// thread from an engine snapshot; otherwise it confirms its leadership with
// a ReadIndex round first.
//
// Every request has a sync form (blocks until done) and an async form (its
// callback runs once, on a store thread, on the caller's thread, or on the
// thread of a sync call that was running the store's round). A
// callback must not block and must not call a sync method of any Store.
// Sync forms must not be called on a store thread or, in a simulation, on
// the simulation's thread.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/engine/registry.hpp"
#include "kvcore/engine/types.hpp"
#include "kvcore/status.hpp"
#include "kvcore/transport.hpp"
#include "kvcore/unique_function.hpp"

namespace kvcore {

namespace runtime {
class Runtime;
}  // namespace runtime

struct StoreOptions {
  // Identifies the cluster; frames from another cluster are dropped. Non-zero.
  std::uint64_t cluster_id = 0;
  // This store's id, unique in the cluster. Non-zero.
  std::uint64_t store_id = 0;
  // The store's directory: user data in `<path>/kv`, the raft log engine in
  // `<path>/raft`. Created when missing.
  std::string path;
  // Overrides of the two locations (tests put the memory engine's data at a
  // "mem:" path while the raft log stays on disk). Empty: derived from path.
  std::string kv_path;
  std::string raft_path;
  // The engine holding user data.
  EngineKind engine = default_engine;
  EngineOptions engine_options;

  // Time, timers, threads and randomness. nullptr: the store runs its own
  // real runtime. A simulation passes one SimView per store. Borrowed:
  // REQUIRES it outlives the store.
  runtime::Runtime* runtime = nullptr;

  // One raft tick. Elections, heartbeats and leases are counted in ticks.
  std::chrono::milliseconds tick_interval{100};
  // Ticks without a leader before a follower campaigns (randomized up to 2x).
  int election_ticks = 10;
  // Ticks between a leader's heartbeats. Less than election_ticks.
  int heartbeat_ticks = 2;
  // How long a leader may serve reads from its lease after a quorum
  // acknowledged it. Must be below election_ticks * tick_interval; the gap is
  // the margin for clock drift between machines. Zero disables lease reads
  // (every read takes a ReadIndex round).
  std::chrono::milliseconds max_lease{900};

  // Sync the raft log before acknowledging (the only synced write on the
  // write path). Turning it off trades durability on machine crash for speed.
  bool sync_log = true;

  // Raft log compaction: checked every raft_log_gc_ticks; the log is
  // compacted to the applied index once it holds more than
  // raft_log_gc_count_limit entries or raft_log_gc_size_limit bytes, keeping
  // entries a follower still needs unless it is behind by more than those
  // limits (it then catches up by snapshot).
  int raft_log_gc_ticks = 10;
  std::uint64_t raft_log_gc_count_limit = 10'000;
  std::uint64_t raft_log_gc_size_limit = std::uint64_t{64} << 20;

  // Snapshots travel in chunks of this many bytes, one frame each.
  std::size_t snapshot_chunk_bytes = std::size_t{1} << 20;
  // Frames larger than this are rejected on receipt (and never built).
  std::size_t max_frame_bytes = std::size_t{64} << 20;
  // Bytes of raft entries in one append message.
  std::uint64_t max_entry_bytes_per_msg = std::uint64_t{1} << 20;
  // Append messages in flight to one follower.
  std::size_t max_inflight_msgs = 256;

  // A merge is refused unless every peer of the source has matched the
  // leader's log to within this many entries: the CommitMerge command
  // carries those entries to a lagging peer, so the gap bounds its size.
  std::uint64_t merge_max_log_gap = 128;

  // Rounds (see docs/store.md, "How it works"). A round takes the
  // regions with work, steps them on raft_pollers threads, writes all their
  // raft log appends in one write with one sync, then applies their
  // committed entries on apply_pollers threads (one kv write per thread).
  // Threads that step regions, the round's own thread included; 1 steps
  // every region on the round's thread. A simulation always uses one.
  std::size_t raft_pollers = 2;
  // Threads that apply committed entries, the round's own thread included.
  std::size_t apply_pollers = 2;
  // A round steps at most this many queued messages and requests of one
  // region; the rest wait for the next round, so a hot region cannot
  // starve the others.
  std::size_t max_messages_per_region_round = 256;
  // A round takes at most this many regions with work; the others are first
  // in line for the next round.
  std::size_t max_regions_per_round = 4096;
  // An apply thread takes no new region once it has applied for this long in
  // a round; the regions left over are applied first in the next round.
  // Zero: one region per apply thread per round.
  std::chrono::microseconds apply_round_budget{5'000};

  // Hibernation: a region with no traffic for hibernate_idle_ticks, whose
  // followers are all up to date, stops ticking and heartbeating on every
  // store (its leader says so in a last heartbeat). It wakes on the next
  // request or message, and followers wake when the leader's store falls
  // silent for an election timeout (every store sends each other store at
  // least one frame per tick). So a store holds many idle regions cheaply.
  bool hibernate_regions = true;
  int hibernate_idle_ticks = 20;

  // Split checks. Every split_check_ticks ticks, the leader of each region
  // that took writes since its last check (and of each region it has not
  // checked yet, e.g. one a split just made) asks the engine for the
  // region's approximate size and key count. When either is over its max, or
  // the region holds keys of two split_prefix prefixes, the region is scanned
  // (off the raft thread, on an engine snapshot) for split keys and split in
  // one batch split. A check proposes at most 32 split keys; what is left
  // over is split by the next check. Must be positive.
  int split_check_ticks = 10;
  // A region above this many bytes (CF default + lock + write) is split into
  // parts of about region_split_bytes. 0 disables the size check. Bigger
  // regions mean fewer raft groups, but slower snapshots and scans that
  // hold more of one leader. REQUIRES: region_split_bytes <= region_max_bytes
  // and region_split_bytes > 0 when the check is on.
  std::uint64_t region_max_bytes = std::uint64_t{144} << 20;
  std::uint64_t region_split_bytes = std::uint64_t{96} << 20;
  // The same by key count (the larger of CF default's and CF write's
  // approximate counts). 0 disables the key-count check.
  std::uint64_t region_max_keys = 1'440'000;
  std::uint64_t region_split_keys = 960'000;
  // A key-prefix rule (say, a table prefix): a region never keeps keys of
  // two different prefixes; a check splits it at each prefix boundary it
  // finds. Called off the raft thread, possibly from several threads at once:
  // it must be thread-safe and must not call the Store. It returns the prefix
  // of `key`, a prefix of the key itself (otherwise the key is used as the
  // boundary). Empty function: no rule.
  std::function<std::string(std::string_view key)> split_prefix;
};

// Options of one request.
struct RequestOptions {
  // The request fails with DeadlineExceeded when not done in this time. Its
  // effect may still happen later (a write already proposed may commit).
  std::chrono::milliseconds timeout{10'000};

  // Routing as a caller's region cache knows it (TiKV's request context).
  // region_id 0 (the default): the store routes each key itself. Otherwise
  // the request is for that region at that epoch: every key (a scan's or a
  // delete_range's whole range) must lie in it, and the store's region must
  // still have region_version (and region_conf_ver, when non-zero); the
  // epoch is checked when the request is routed, again when a write is
  // proposed, and when a read is served. Failures are RegionNotFound,
  // EpochNotMatch and KeyNotInRegion, with an EpochNotMatchDetail naming the
  // regions that hold the keys now.
  std::uint64_t region_id = 0;
  std::uint64_t region_version = 0;
  std::uint64_t region_conf_ver = 0;
};

// An atomic group of writes to user data, applied all or nothing, and
// optionally conditional (compare-and-set, see expect()).
//
// Thread-safety: a RawBatch is a plain value; use one from one thread at a
// time.
class RawBatch {
 public:
  enum class OpKind : std::uint8_t { kPut, kDelete, kDeleteRange };
  struct Op {
    OpKind kind = OpKind::kPut;
    std::string key;    // kDeleteRange: the start of the range
    std::string value;  // kDeleteRange: the end of the range (exclusive)
  };
  // One expect() call: `key` must hold `expected` (nullopt: be absent).
  struct Condition {
    std::string key;
    std::optional<std::string> expected;
  };

  void put(std::string_view key, std::string_view value) {
    ops_.push_back({OpKind::kPut, std::string(key), std::string(value)});
  }
  void del(std::string_view key) { ops_.push_back({OpKind::kDelete, std::string(key), {}}); }
  // Deletes [start, end); an empty end means "to the last key".
  void delete_range(std::string_view start, std::string_view end) {
    ops_.push_back({OpKind::kDeleteRange, std::string(start), std::string(end)});
  }

  // Makes the batch conditional: when it applies, `key` must hold
  // `expected` (nullopt: be absent), for every expect() of the batch, or
  // nothing of it applies. Checked at apply time in log order, against the
  // data as every earlier write of the region left it, so a conditional
  // batch is an atomic compare-and-set over its keys (a key may be both
  // expected and written; expect(k, nullopt) + put(k, v) creates k only if
  // absent). When a condition does not hold, the write fails with
  // FailedPrecondition/ConditionFailed and a ConditionFailedDetail giving the
  // value of every expected key at that point, in the order of the expect()
  // calls. The expected keys count as keys of the batch: they must lie in
  // the same region as its ops (Store::write). A batch needs at least one op;
  // conditions alone are refused as an empty batch.
  void expect(std::string_view key, std::optional<std::string_view> expected) {
    conditions_.push_back(
        {std::string(key), expected ? std::optional<std::string>(*expected) : std::nullopt});
  }

  [[nodiscard]] const std::vector<Op>& ops() const noexcept { return ops_; }
  [[nodiscard]] const std::vector<Condition>& conditions() const noexcept { return conditions_; }
  // True when the batch has no ops (whatever its conditions).
  [[nodiscard]] bool empty() const noexcept { return ops_.empty(); }
  // Drops the ops and the conditions.
  void clear() noexcept {
    ops_.clear();
    conditions_.clear();
  }

 private:
  std::vector<Op> ops_;
  std::vector<Condition> conditions_;
};

struct KvPair {
  std::string key;
  std::string value;
  friend bool operator==(const KvPair&, const KvPair&) = default;
};

// What a store knows of one region it has a peer of (for tools and tests).
struct RegionStatus {
  std::uint64_t region_id = 0;
  std::string start_key;  // inclusive
  std::string end_key;    // exclusive; empty means "to the last key"
  std::uint64_t conf_ver = 0;
  std::uint64_t version = 0;
  std::uint64_t peer_id = 0;
  std::vector<std::uint64_t> voter_stores;
  std::vector<std::uint64_t> learner_stores;
  // In a joint configuration (between the two steps of a change_peers()
  // with several changes): voter_stores are the incoming voters.
  bool joint = false;
  // Between a merge's PrepareMerge and its commit or rollback: the region
  // takes no writes.
  bool merging = false;
  bool is_leader = false;
  std::uint64_t leader_store = 0;  // 0 when unknown
  std::uint64_t term = 0;
  std::uint64_t commit_index = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t first_log_index = 0;
  std::uint64_t last_log_index = 0;
  bool lease_valid = false;
};

// One membership change of Store::change_peers().
struct PeerChangeRequest {
  enum class Kind : std::uint8_t {
    kAddLearner,   // a new learner on store_id; it catches up by snapshot
    kAddVoter,     // promote the learner on store_id (or add a new voter)
    kDemoteVoter,  // the voter on store_id becomes a learner
    kRemove,       // remove the peer on store_id (a voter: demote it first)
  };
  Kind kind = Kind::kAddLearner;
  std::uint64_t store_id = 0;
};

using WriteCallback = UniqueFunction<void(Status)>;
using GetCallback = UniqueFunction<void(Result<std::optional<std::string>>)>;
using ScanCallback = UniqueFunction<void(Result<std::vector<KvPair>>)>;

class Store {
 public:
  // Writes the first region of a new cluster into this store's directories:
  // region 1, all keys, one voter on each of `initial_stores` (which must
  // include options.store_id). Run it on every initial store, with the same
  // list, before their first open. Idempotent for the same list;
  // AlreadyExists when the store holds another cluster or region layout.
  [[nodiscard]] static Status bootstrap(const StoreOptions& options,
                                        std::span<const std::uint64_t> initial_stores);

  // Opens the store and starts it. InvalidArgument for bad options, or when
  // the directories belong to another store or cluster; FailedPrecondition
  // when another Store has them open; Corruption when they are damaged.
  // `transport` is borrowed: REQUIRES it outlives the store.
  [[nodiscard]] static Result<std::unique_ptr<Store>> open(const StoreOptions& options,
                                                           Transport& transport);

  virtual ~Store() = default;

  // Hands the store one frame received from the transport. The frame is
  // checked before use (decoding, cluster id, store ids, sizes, message
  // sanity): a bad one is dropped, counted, and reported as InvalidArgument
  // (Corruption when it does not decode); nothing of it is trusted. OK means
  // it was queued for the raft thread.
  virtual Status deliver(std::string_view frame) = 0;
  // The transport's word that `store_id` cannot be reached now (raft then
  // probes it gently instead of streaming to it).
  virtual void report_unreachable(std::uint64_t store_id) = 0;

  // Raw key-value requests; see the class comment for routing and errors.
  [[nodiscard]] virtual Result<std::optional<std::string>> get(std::string_view key,
                                                               const RequestOptions& opts = {}) = 0;
  // Keys in [start, end) (empty end: to the last key), at most `limit`
  // (0: no limit), ascending, or descending from the end with `reverse`.
  // A range over several regions is read one region after the other, in
  // key order (from the end with `reverse`), until the limit: each part is a
  // linearizable read of its region, but the whole is not one snapshot (as
  // TiKV's raw scan). This store must lead every region read; a part that
  // fails fails the scan.
  [[nodiscard]] virtual Result<std::vector<KvPair>> scan(std::string_view start,
                                                         std::string_view end, std::size_t limit,
                                                         bool reverse = false,
                                                         const RequestOptions& opts = {}) = 0;
  [[nodiscard]] virtual Status put(std::string_view key, std::string_view value,
                                   const RequestOptions& opts = {}) = 0;
  [[nodiscard]] virtual Status del(std::string_view key, const RequestOptions& opts = {}) = 0;
  // Deletes [start, end) (empty end: to the last key). A range over several
  // regions becomes one write per region, proposed together: each is atomic,
  // the whole is not (when one fails, others may have been applied; the
  // first failure is returned). This store must lead every region of the
  // range (NotLeader otherwise, checked before anything is proposed).
  [[nodiscard]] virtual Status delete_range(std::string_view start, std::string_view end,
                                            const RequestOptions& opts = {}) = 0;
  // All keys of a batch, its expected keys included, must lie in one region
  // (InvalidArgument/KeyNotInRegion otherwise, with an EpochNotMatchDetail
  // naming the regions). A conditional batch whose conditions do not hold
  // when it applies fails with FailedPrecondition/ConditionFailed and a
  // ConditionFailedDetail, having written nothing (RawBatch::expect). Its
  // other outcomes are those of any write: a DeadlineExceeded or Unavailable
  // one may still apply later, so a retry of the same conditional batch
  // that fails with ConditionFailed may be seeing its own first attempt.
  [[nodiscard]] virtual Status write(RawBatch batch, const RequestOptions& opts = {}) = 0;

  virtual void async_get(std::string_view key, const RequestOptions& opts, GetCallback done) = 0;
  virtual void async_scan(std::string_view start, std::string_view end, std::size_t limit,
                          bool reverse, const RequestOptions& opts, ScanCallback done) = 0;
  virtual void async_write(RawBatch batch, const RequestOptions& opts, WriteCallback done) = 0;
  virtual void async_delete_range(std::string_view start, std::string_view end,
                                  const RequestOptions& opts, WriteCallback done) = 0;

  // Asks the leader of `region_id` (this store's peer) to hand leadership to
  // the peer on `to_store`. Returns once asked; watch regions() for the
  // outcome. InvalidArgument when `to_store` has no voter of the region (no
  // peer, or a learner); Unavailable/NotLeader when this store does not lead
  // it; Unavailable/RegionNotFound when the region has no peer here. OK and
  // nothing asked when `to_store` is this store.
  [[nodiscard]] virtual Status transfer_leader(std::uint64_t region_id, std::uint64_t to_store) = 0;

  // Splits region `region_id` (this store's peer must lead it) at
  // `split_keys` (ascending, strictly inside the region) into
  // split_keys.size() + 1 regions in one raft command: the region keeps the
  // keys below the first split key. Done when applied on this store; the new
  // regions then elect leaders of their own. Requests routed with the old
  // range fail with EpochNotMatch or KeyNotInRegion: route them again.
  [[nodiscard]] virtual Status split_region(std::uint64_t region_id,
                                            std::vector<std::string> split_keys,
                                            const RequestOptions& opts = {}) = 0;
  virtual void async_split_region(std::uint64_t region_id, std::vector<std::string> split_keys,
                                  const RequestOptions& opts, WriteCallback done) = 0;

  // Changes the peers of region `region_id` (this store's peer must lead
  // it) in one raft configuration change (ChangePeerV2). One change of a
  // voter applies directly; several changes enter a joint configuration,
  // which the leader then leaves on its own (retrying until it is left).
  // Done when the change is applied on this store and any joint state is
  // left. A voter is added by adding a learner, letting it catch up, then
  // promoting it; it is removed by demoting it, then removing the learner.
  // FailedPrecondition while another change or a merge is in flight, in a
  // joint state, for a voter removed directly, for the leader demoted
  // (transfer leadership first), and for a learner promoted before it caught
  // up; InvalidArgument when a change does not fit the region (a learner
  // added where the store has a peer, a removal where it has none, two
  // changes for one store, ...). Unavailable/StaleCommand when a leader
  // change replaced the proposal (check regions()); DeadlineExceeded when
  // not done in time (the change may still happen).
  [[nodiscard]] virtual Status change_peers(std::uint64_t region_id,
                                            std::vector<PeerChangeRequest> changes,
                                            const RequestOptions& opts = {}) = 0;
  virtual void async_change_peers(std::uint64_t region_id, std::vector<PeerChangeRequest> changes,
                                  const RequestOptions& opts, WriteCallback done) = 0;

  // Merges region `source_region` into the adjacent `target_region` (this
  // store's peer must lead the source; both must have peers on the same
  // stores, with the same roles). The source stops serving at once: from
  // here on its reads and writes fail with Unavailable/RegionMerging (retry
  // shortly, then route again). The store leading the target, whichever it
  // is, then has the target take the source in. Done when the target has
  // taken the source's range on this store; the source is then gone
  // (RegionNotFound). Aborted (and the source serves again) when the target
  // changed before the merge committed. Refused with InvalidArgument (not
  // adjacent), RegionNotFound (either region unknown here), NotLeader, or
  // FailedPrecondition: a source peer's log more than
  // StoreOptions::merge_max_log_gap entries behind, a conf change, split or
  // merge not yet on every source peer, or either region joint or merging.
  [[nodiscard]] virtual Status merge_region(std::uint64_t source_region,
                                            std::uint64_t target_region,
                                            const RequestOptions& opts = {}) = 0;
  virtual void async_merge_region(std::uint64_t source_region, std::uint64_t target_region,
                                  const RequestOptions& opts, WriteCallback done) = 0;

  [[nodiscard]] virtual std::uint64_t store_id() const = 0;
  [[nodiscard]] virtual std::vector<RegionStatus> regions() const = 0;
  // Counters and histograms in the Prometheus text exposition format.
  [[nodiscard]] virtual std::string metrics_text() const = 0;
  // One metric's current value (a counter, or a histogram's count), for
  // tests and tools; 0 when unknown. `name` alone sums every label set;
  // `name{labels}` (as in metrics_text()) reads one.
  [[nodiscard]] virtual std::uint64_t metric(std::string_view name) const = 0;
};

}  // namespace kvcore
