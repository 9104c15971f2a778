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
#include "raftstore/store_metrics.hpp"
#include "runtime/runtime.hpp"
#include "util/metrics.hpp"

namespace kvcore::raftstore {

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
  struct ChangePeersInput {
    std::uint64_t region = 0;
    std::vector<PeerChangeRequest> changes;
    Instant deadline;
    WriteCallback done;
  };
  using Input = std::variant<TickInput, FrameInput, WriteInput, ReadInput, UnreachableInput,
                             TransferInput, SplitInput, ChangePeersInput>;

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
  // finish_ready() of each peer; false (and the store failed) on an error.
  [[nodiscard]] bool finish_all(const std::vector<Peer*>& readied, Outbox& out);
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

  // --- membership (change_peer.cpp, stale_peer.cpp) ---------------------------
  void handle_change_peers(ChangePeersInput& in);
  // After a round: destroys peers that were removed (applied their removal
  // or were told of it) and recomputes known_stores_ when regions' peers
  // changed. True when anything changed. REQUIRES: round_mu_ held.
  bool update_members();
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
  // Serves `req` locally when the lease allows; otherwise queues it.
  void read(ReadRequest req, std::string_view route_key);

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

  // Declared last: destroyed first, while everything its tasks touch lives.
  std::unique_ptr<runtime::Executor> raft_exec_;
};

}  // namespace kvcore::raftstore
