// StoreImpl: the Store of include/kvcore/store.hpp.
//
// Threads: one raft executor (a single worker) owns every Peer and runs the
// rounds described in peer.hpp; requests and frames reach it through an
// inbox that a round drains whole, so whatever arrives while a round is in
// its fsync is batched into the next round (one raft log write, one frame
// per destination store). Reads under a valid lease never enter the inbox:
// they are served on the caller's thread from an engine snapshot.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <variant>
#include <vector>

#include "kvcore/engine/engine.hpp"
#include "kvcore/store.hpp"
#include "raftlog/engine.hpp"
#include "raftstore/peer.hpp"
#include "raftstore/split_check.hpp"
#include "raftstore/store_metrics.hpp"
#include "runtime/runtime.hpp"
#include "util/metrics.hpp"

namespace kvcore::raftstore {

// When a request with `opts` runs out of time.
[[nodiscard]] inline Instant request_deadline(runtime::Clock& clock, const RequestOptions& opts) {
  return clock.now() + std::chrono::duration_cast<runtime::Duration>(opts.timeout);
}

// The options after defaults are filled in; InvalidArgument when invalid.
[[nodiscard]] Result<StoreOptions> resolve_options(const StoreOptions& in);
// Creates the store's directory (options.path) when it is on disk.
[[nodiscard]] Status make_store_dir(const StoreOptions& options);

class StoreImpl final : public Store {
 public:
  [[nodiscard]] static Result<std::unique_ptr<StoreImpl>> open(const StoreOptions& options,
                                                               Transport& transport);
  ~StoreImpl() override;

  Status deliver(std::string_view frame) override;
  void report_unreachable(std::uint64_t store_id) override;

  Result<std::optional<std::string>> get(std::string_view key, const RequestOptions& opts) override;
  Result<std::vector<KvPair>> scan(std::string_view start, std::string_view end, std::size_t limit,
                                   bool reverse, const RequestOptions& opts) override;
  Status put(std::string_view key, std::string_view value, const RequestOptions& opts) override;
  Status del(std::string_view key, const RequestOptions& opts) override;
  Status delete_range(std::string_view start, std::string_view end,
                      const RequestOptions& opts) override;
  Status write(RawBatch batch, const RequestOptions& opts) override;

  void async_get(std::string_view key, const RequestOptions& opts, GetCallback done) override;
  void async_scan(std::string_view start, std::string_view end, std::size_t limit, bool reverse,
                  const RequestOptions& opts, ScanCallback done) override;
  void async_write(RawBatch batch, const RequestOptions& opts, WriteCallback done) override;
  void async_delete_range(std::string_view start, std::string_view end, const RequestOptions& opts,
                          WriteCallback done) override;

  Status transfer_leader(std::uint64_t region_id, std::uint64_t to_store) override;
  Status split_region(std::uint64_t region_id, std::vector<std::string> split_keys,
                      const RequestOptions& opts) override;
  void async_split_region(std::uint64_t region_id, std::vector<std::string> split_keys,
                          const RequestOptions& opts, WriteCallback done) override;

  Status change_peers(std::uint64_t region_id, std::vector<PeerChangeRequest> changes,
                      const RequestOptions& opts) override;
  void async_change_peers(std::uint64_t region_id, std::vector<PeerChangeRequest> changes,
                          const RequestOptions& opts, WriteCallback done) override;
  Status merge_region(std::uint64_t source_region, std::uint64_t target_region,
                      const RequestOptions& opts) override;
  void async_merge_region(std::uint64_t source_region, std::uint64_t target_region,
                          const RequestOptions& opts, WriteCallback done) override;

  std::uint64_t store_id() const override { return options_.store_id; }
  std::vector<RegionStatus> regions() const override;
  std::string metrics_text() const override;
  std::uint64_t metric(std::string_view name) const override;

 private:
  struct TickInput {};
  struct FrameInput {
    Frame frame;
  };
  struct WriteInput {
    WriteRequest req;
  };
  struct ReadInput {
    ReadRequest req;
  };
  struct UnreachableInput {
    std::uint64_t store = 0;
  };
  struct TransferInput {
    std::uint64_t region = 0;
    std::uint64_t to_store = 0;
    RegionEpoch epoch;  // as the request saw the region
  };
  struct SplitInput {
    std::uint64_t region = 0;
    std::vector<std::string> keys;
    Instant deadline;
    WriteCallback done;
  };
  // A split check's answer: split keys (none: no split) found for the
  // region at `epoch`.
  struct SplitCheckDone {
    std::uint64_t region = 0;
    RegionEpoch epoch;
    std::vector<std::string> keys;
  };
  struct MergeInput {
    std::uint64_t source = 0;
    std::uint64_t target = 0;
    Instant deadline;
    WriteCallback done;
  };
  struct ChangePeersInput {
    std::uint64_t region = 0;
    std::vector<PeerChangeRequest> changes;
    Instant deadline;
    WriteCallback done;
  };
  using Input = std::variant<TickInput, FrameInput, WriteInput, ReadInput, UnreachableInput,
                             TransferInput, SplitInput, SplitCheckDone, MergeInput,
                             ChangePeersInput>;
  // A merge_region() call waiting for its outcome on this store.
  struct MergeWaiter {
    Instant deadline;
    WriteCallback done;
  };

  // The split checker's view of one region (raft thread).
  struct SplitCheckState {
    bool checked = false;           // checked at least once since it was seen
    std::uint64_t writes_seen = 0;  // LeaseState::writes at the last check
    bool in_flight = false;
  };

  // Marks the running round on this thread (region errors raised inside it
  // are answered once it ends, when the routes hold its splits) and answers
  // them when it ends, whichever way the round returns.
  class RoundScope {
   public:
    explicit RoundScope(StoreImpl& store);
    ~RoundScope();
    RoundScope(const RoundScope&) = delete;
    RoundScope& operator=(const RoundScope&) = delete;

   private:
    StoreImpl& store_;
    const StoreImpl* outer_;
  };
  // Marks a lane of the running round on a pool thread: region errors raised
  // there join the round's deferred answers too.
  class LaneMark {
   public:
    explicit LaneMark(const StoreImpl& store);
    ~LaneMark();
    LaneMark(const LaneMark&) = delete;
    LaneMark& operator=(const LaneMark&) = delete;

   private:
    const StoreImpl* outer_;
  };

  // Keys a request touches: [start, end), an empty end meaning "to the last
  // key".
  struct KeySpan {
    std::string start;
    std::string end;
    [[nodiscard]] static KeySpan point(std::string_view key) {
      std::string end(key);
      end.push_back('\0');
      return {std::string(key), std::move(end)};
    }
  };

  // Outlives the store in timer callbacks: they check `store` under `mu`.
  struct Anchor {
    std::mutex mu;
    StoreImpl* store = nullptr;
  };

  StoreImpl(const StoreOptions& options, Transport& transport);
  [[nodiscard]] Status start();

  // Queues `in` and makes sure a round will take it. With `run_here`, when
  // no round is running or queued, the round runs on this thread instead of
  // waking the raft thread (the sync write path: one thread hop less each
  // way, as RocksDB's writers lead their own group commit).
  void enqueue(Input in, bool run_here = false);
  void schedule_tick();
  void run_round();
  // Posts a round to the raft thread unless one is due already.
  void schedule_round();
  // After a failed write: fails every pending request; the store serves no
  // more (failed_). REQUIRES: round_mu_ held.
  void stop_on_error(const Status& s);
  // REQUIRES: round_mu_ held.
  void run_round_locked();
  void async_write_impl(RawBatch batch, const RequestOptions& opts, WriteCallback done,
                        bool run_here);
  void handle(Input& in);
  void send_outbox(Outbox& out);
  // One pass of the round over `work`: steps each peer's mailbox (first pass
  // only), begins its Ready, writes the raft log once, then finishes and
  // applies (finish_all). *readied gets the peers that had a Ready. False
  // (and the store failed) on an error.
  [[nodiscard]] bool run_pass(std::vector<Peer*>& work, bool first, Instant start,
                              std::vector<Peer*>* readied, std::uint64_t* fsyncs);
  // finish_ready() and post_apply() of each peer on the apply lanes, one kv
  // write per lane; peers the apply budget leaves over go to unfinished_.
  // False (and the store failed) on an error.
  [[nodiscard]] bool finish_all(std::vector<Peer*>& readied, Outbox& out);
  // Puts `peer` in the run queue of the next round (serial part only).
  void schedule_peer(Peer& peer);
  // Removes `it` from peers_ and from the run queues.
  void erase_peer(std::map<std::uint64_t, std::unique_ptr<Peer>>::iterator it);
  // The tick of the store: ticks awake peers, expires requests, wakes
  // followers whose leader's store fell silent, sends store heartbeats.
  void on_tick();
  void send_frame(std::uint64_t to, Frame& frame);
  // regions() from every peer, or from the peers given (the rest keep their
  // last status). REQUIRES: round_mu_ held (or not yet started).
  void refresh_status();
  void refresh_status(const std::vector<Peer*>& peers);
  // After a round: routes regions whose range a snapshot changed, and opens
  // the peers of regions that splits created. True when regions were added.
  bool update_regions();
  // An uninitialized peer of `region` (see Peer::create_uninitialized);
  // peers_.end() when it cannot be made.
  std::map<std::uint64_t, std::unique_ptr<Peer>>::iterator create_peer(std::uint64_t region,
                                                                       const PeerMeta& self,
                                                                       const PeerMeta& from);
  // No initialized region here but r.id overlaps r's range.
  [[nodiscard]] bool range_free(const RegionMeta& r) const;
  // Routes the peer's range afresh (its range changed).
  void reroute(Peer& peer);
  // Adds `peer` to peers_ and the routing tables.
  void add_peer(std::unique_ptr<Peer> peer);
  // A cluster-unique id for a new region or peer: a counter of this store
  // (reserved in blocks, persisted before use) shifted above the store id.
  [[nodiscard]] Result<std::uint64_t> alloc_id();
  void fail_input(Input& in, const Status& s);
  // Removes this store's peer of `region_id`: fails its pending requests,
  // records a tombstone (its last region, PeerState::kTombstone) in the raft
  // log engine in place of its raft log, and deletes its apply state and,
  // with `clear_data`, its keys from the kv engine. Frames for the region
  // addressed to a peer id no newer than the tombstone's are dropped after
  // (a late message cannot recreate it). REQUIRES: round_mu_ held.
  [[nodiscard]] Status destroy_peer(std::uint64_t region_id, bool clear_data);
  // Whether a message of `region` sent with `epoch` is for a peer this
  // store destroyed (its epoch is not newer than the tombstone's).
  [[nodiscard]] bool is_tombstoned(std::uint64_t region, const RegionEpoch& epoch) const;

  // --- split checks (split_check.cpp) ---
  // On a tick: every split_check_ticks, queues a check of each led region
  // that took writes since its last check.
  void maybe_split_check();
  // The check task, on split_exec_.
  void run_split_check(const RegionMeta& region, const SplitCheckConfig& cfg);
  // Back on the raft thread: proposes the split if the region is unchanged.
  void on_split_check_done(SplitCheckDone& done);

  // --- routing across regions and region errors (store_routing.cpp) ---
  // The regions here overlapping `span`, ascending (for EpochNotMatchDetail).
  [[nodiscard]] std::vector<RegionInfo> regions_overlapping(const KeySpan& span) const;
  // `s` (a region error of a request routed to `region` for `span`) with an
  // EpochNotMatchDetail; `moved` recodes it as Unavailable (the region
  // changed under the request: re-route and retry).
  [[nodiscard]] Status region_error(const Status& s, std::uint64_t region, const KeySpan& span,
                                    bool moved) const;
  // Answers a region error raised after routing: now, with its detail, or,
  // inside a round of this store, when the round ends.
  void answer_region_error(Status s, std::uint64_t region, KeySpan span,
                           UniqueFunction<void(Status)> answer);
  // Wraps a request's callback so that a region error raised after routing
  // comes back with its detail (answered at the end of the round when raised
  // inside one: only then do the routes show the round's splits).
  template <class Arg>
  [[nodiscard]] UniqueFunction<void(Arg)> guard_region_errors(UniqueFunction<void(Arg)> done,
                                                              std::uint64_t region, KeySpan span);
  // The lease state of the region a caller named (RequestOptions::region_*),
  // checked against its epoch and `span`; or the error to answer.
  [[nodiscard]] Result<std::shared_ptr<LeaseState>> route_context(const RequestOptions& opts,
                                                                  const KeySpan& span) const;
  // The region holding the keys just below `end` (empty: the last region).
  [[nodiscard]] std::shared_ptr<LeaseState> route_before(std::string_view end) const;
  // Serves or queues a read for the region of `lease` (routed already).
  void read_routed(ReadRequest req, const std::shared_ptr<LeaseState>& lease);
  // Proposes `req` (ops all in `lease`'s region) after the leader check.
  void write_routed(WriteRequest req, const std::shared_ptr<LeaseState>& lease, bool run_here);
  class ScanWalk;

  // --- merge (merge.cpp); all REQUIRE round_mu_ -------------------------------
  // Checks a merge_region() request against this store's view of both
  // regions and proposes PrepareMerge on the source's peer here.
  void handle_merge(MergeInput& in);
  // On ticks: drives every merging source peer here. Proposes CommitMerge
  // on the target's peer here when it leads and still has the epoch the
  // source recorded; proposes RollbackMerge (source leader) once the target
  // here is newer or gone; destroys a source a newer region here covers.
  void check_merges();
  // After a round: destroys the sources that targets among `worked` (the
  // peers the round worked on) took in, and the stale peers found covered;
  // answers merge_region() callers. True when regions went away.
  bool finish_merges(const std::vector<Peer*>& worked);
  // PeerContext::range_free: initialized peers here that the snapshot's
  // region covers with a newer version (stale: merged away) do not block it;
  // with `commit_stale` they are noted for finish_merges() to destroy.
  [[nodiscard]] bool snapshot_range_ok(const RegionMeta& r, bool commit_stale);
  // PeerContext::catch_up_merge_source.
  [[nodiscard]] Status catch_up_merge_source(const CommitMergeCmd& merge, ApplyBatch& ab);
  // At open: destroys peers whose range a newer region here covers (a
  // crash after a CommitMerge was applied, before its source was destroyed).
  [[nodiscard]] Status drop_covered_peers();
  void complete_merge(std::uint64_t source, const Status& s);
  void expire_merges(Instant now);

  // --- membership (change_peer.cpp, stale_peer.cpp) ---------------------------
  void handle_change_peers(ChangePeersInput& in);
  // After a round: destroys peers that were removed (applied their removal
  // or were told of it) and recomputes known_stores_ when regions' peers
  // changed. True when anything changed. REQUIRES: round_mu_ held.
  bool update_members(const std::vector<std::uint64_t>& worked);
  // Adds the stores of every region here (peers and tombstones) to
  // known_stores_.
  void refresh_known_stores();
  // At open: a region whose applied membership no longer has a peer here
  // (the store stopped between applying its removal and destroying the
  // peer) is destroyed now, data included. OK when it is not such a region.
  [[nodiscard]] Status clean_removed_region(std::uint64_t region_id);
  // Every peer's membership_tick(), and sends what they queued.
  void membership_tick_all();
  // Handles a membership message (kGcPeer, kCheckStalePeer) and screens a
  // raft message from a peer its region does not list: true when `env` is
  // consumed and must not be stepped.
  bool screen_envelope(const RaftEnvelope& env);
  void send_gc_peer(const RegionMeta& region, const PeerMeta& self, const PeerMeta& stale);
  // Whether `peer_id` is this store's peer in the tombstone of `region_id`.
  [[nodiscard]] bool is_destroyed_peer(std::uint64_t region_id, std::uint64_t peer_id) const;
  // Whether a frame from a store that hosts no peer of a region here holds
  // only what such a store may send: a leader's append or heartbeat to a
  // member it adds (and snapshot chunks), or a stale check.
  [[nodiscard]] bool unknown_store_frame_ok(const Frame& frame) const;

  // The lease state of the region holding `key`; nullptr when none.
  [[nodiscard]] std::shared_ptr<LeaseState> route(std::string_view key) const;
  // A point get answered on this thread: under the lease, or refused
  // (NotLeader, RegionNotFound). nullopt when it must go through the raft
  // thread (no lease, nothing applied in its term yet); *region_id then
  // names the region to queue it for.
  [[nodiscard]] std::optional<Result<std::optional<std::string>>> lease_get(
      std::string_view key, std::uint64_t* region_id);
  // Queues a point get for a ReadIndex round of `region_id`.
  void queue_get(std::string_view key, std::uint64_t region_id, const RequestOptions& opts,
                 GetCallback done);
  // NotLeader with the lease's leader hint, counted. REQUIRES: lease.mu held.
  [[nodiscard]] Status refuse_not_leader(const LeaseState& lease);
  // The lease lets this store's leader serve reads now.
  [[nodiscard]] bool lease_holds(const LeaseState& lease) const;

  StoreOptions options_;
  Transport& transport_;
  std::unique_ptr<runtime::Runtime> own_runtime_;
  runtime::Runtime* rt_ = nullptr;
  metrics::Registry registry_;
  StoreMetrics metrics_{registry_};
  std::unique_ptr<raftlog::RaftLogEngine> raft_engine_;
  std::unique_ptr<Engine> kv_;
  std::shared_ptr<Anchor> anchor_ = std::make_shared<Anchor>();

  // Raft thread only.
  std::map<std::uint64_t, std::unique_ptr<Peer>> peers_;
  // Destroyed peers: region id -> the region as it last was (round_mu_).
  std::map<std::uint64_t, RegionMeta> tombstones_;
  // merge_region() calls by source region (round_mu_).
  std::map<std::uint64_t, MergeWaiter> merge_waiters_;
  // Peers found stale by an incoming snapshot (round_mu_).
  std::vector<std::uint64_t> stale_overlaps_;
  // Peers with work for the next round, in order (round_mu_; the flag is
  // Peer::scheduled()).
  std::vector<Peer*> run_queue_;
  // Peers whose Ready is begun and written but not finished: the apply
  // budget ran out (round_mu_). They are finished first in the next pass.
  std::vector<Peer*> unfinished_;
  // Every peer the current round stepped or finished, for update_regions
  // (round_mu_).
  std::vector<Peer*> round_peers_;
  // The peers the current round finished a Ready of: their status is
  // refreshed when it ends (round_mu_).
  std::vector<Peer*> status_dirty_;
  // Stores a frame went to since the last tick (round_mu_).
  std::set<std::uint64_t> sent_since_tick_;
  // When each store was last heard from (any frame), by this store's clock.
  mutable std::mutex heard_mu_;
  std::map<std::uint64_t, Instant> last_heard_;  // guarded by heard_mu_
  Instant opened_at_;

  // Routing for request threads.
  mutable std::shared_mutex routes_mu_;
  std::map<std::string, std::shared_ptr<LeaseState>, std::less<>>
      by_start_key_;                                                // guarded by routes_mu_
  std::map<std::uint64_t, std::shared_ptr<LeaseState>> by_region_;  // guarded by routes_mu_
  std::set<std::uint64_t> known_stores_;                            // guarded by routes_mu_

  // Held while a round runs, on the raft thread or on a sync writer's
  // thread: rounds never overlap, and everything only rounds touch (peers_,
  // failed_) is guarded by it.
  std::mutex round_mu_;
  std::mutex inbox_mu_;
  std::vector<Input> inbox_;      // guarded by inbox_mu_
  bool round_scheduled_ = false;  // guarded by inbox_mu_
  bool stopping_ = false;         // guarded by inbox_mu_

  mutable std::mutex status_mu_;
  std::map<std::uint64_t, RegionStatus> status_;  // guarded by status_mu_

  runtime::TimerId tick_timer_;    // guarded by anchor_->mu
  bool failed_ = false;            // raft thread: a write failed; the store serves nothing
  PeerContext peer_ctx_;           // set by start()
  runtime::Random peer_seeds_{0};  // round_mu_: seeds of peers opened later
  std::uint64_t next_id_ = 0;      // round_mu_: the next counter value to hand out
  std::uint64_t id_limit_ = 0;     // round_mu_: counter values below it are reserved

  // The lanes of a round beyond the round's own thread (nullptr in a
  // simulation, or with one poller): only rounds post to them.
  std::unique_ptr<runtime::Executor> raft_pool_;
  std::unique_ptr<runtime::Executor> apply_pool_;

  SplitCheckMetrics split_metrics_{registry_};
  std::map<std::uint64_t, SplitCheckState> split_checks_;  // round_mu_
  int ticks_since_split_check_ = 0;                        // round_mu_
  // Region errors raised inside a round, answered when it ends.
  std::mutex deferred_mu_;
  std::vector<UniqueFunction<void()>> deferred_;  // guarded by deferred_mu_

  // Declared last: destroyed first, while everything its tasks touch lives.
  std::unique_ptr<runtime::Executor> raft_exec_;
  // Split checks (approximate figures, scans) off the raft thread. Shut down
  // first by the destructor.
  std::unique_ptr<runtime::Executor> split_exec_;
};

// Region errors a request gets when its region changed under it.
[[nodiscard]] inline bool is_region_change(const Status& s) {
  return s.sub_code() == SubCode::kEpochNotMatch || s.sub_code() == SubCode::kKeyNotInRegion ||
         s.sub_code() == SubCode::kRegionNotFound;
}

template <class Arg>
UniqueFunction<void(Arg)> StoreImpl::guard_region_errors(UniqueFunction<void(Arg)> done,
                                                         std::uint64_t region, KeySpan span) {
  return UniqueFunction<void(Arg)>([this, done = std::move(done), region,
                                    span = std::move(span)](Arg r) mutable {
    Status s = kvcore::detail::status_of(r);
    if (s.is_ok() || !is_region_change(s) || s.template detail_as<EpochNotMatchDetail>()) {
      done(std::move(r));
      return;
    }
    answer_region_error(std::move(s), region, std::move(span),
                        [done = std::move(done)](Status st) mutable { done(Arg(std::move(st))); });
  });
}

}  // namespace kvcore::raftstore
