// Peer: this store's member of one region's raft group. It drives a RawNode
// over a PeerStorage, turns requests into proposals and reads, applies
// committed entries to the kv engine, and keeps the lease state the local
// reader uses.
//
// A store's raft thread handles its peers in rounds (store.cpp):
//   1. inputs: step(), tick(), propose(), read(), ...;
//   2. begin_ready(): messages that may leave at once go to the outbox; the
//      entries and hard state to persist go into the round's LogBatch (one
//      raft log write with one fsync for all peers of the round);
//   3. the store writes the LogBatch;
//   4. finish_ready(): messages that needed persistence go to the outbox,
//      committed entries are applied (one kv write), proposers and reads
//      are completed, and the RawNode is advanced.
//
// Thread-safety: every method runs on the store's raft thread, except that
// `lease()` is shared with request threads under its own mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "kvcore/engine/engine.hpp"
#include "kvcore/raft/raw_node.hpp"
#include "kvcore/store.hpp"
#include "raftlog/engine.hpp"
#include "raftstore/peer_storage.hpp"
#include "raftstore/requests.hpp"
#include "raftstore/store_metrics.hpp"
#include "runtime/clock.hpp"

namespace kvcore::raftstore {

// What a round sends: raft messages batched per destination store, and
// snapshot chunks (a frame each).
struct Outbox {
  std::map<std::uint64_t, std::vector<RaftEnvelope>> messages;
  std::vector<std::pair<std::uint64_t, SnapshotChunk>> chunks;
};

class Peer;

// One kv write batch shared by the regions an apply worker finishes in a
// round: Peer::finish_ready() adds to it, the worker writes it once, and
// then calls Peer::post_apply() on each of those regions.
struct ApplyBatch {
  std::unique_ptr<WriteBatch> batch;
  bool sync = false;  // some region needs it synced (its metadata changed)
  // The user writes staged in `batch` so far, command by command in apply
  // order, kept because a WriteBatch cannot be read back: a conditional
  // command later in the batch must see them (apply.cpp). Moved here from
  // the decoded commands, so a write that no condition looks at costs one
  // vector move.
  std::vector<std::vector<WriteOp>> staged_writes;
};

// What a peer borrows from its store.
struct PeerContext {
  std::uint64_t store_id = 0;
  raftlog::RaftLogEngine* raft_engine = nullptr;
  Engine* kv = nullptr;
  runtime::Clock* clock = nullptr;
  StoreMetrics* metrics = nullptr;
  const StoreOptions* options = nullptr;
  // Whether a snapshot of `region` may land: it overlaps no region of this
  // store other than its own id, except ones it shows to be stale (merged
  // away: `commit_stale` set) — when `commit_stale` is true those are
  // destroyed after the round, which the caller asks for only when the
  // snapshot will be restored (it replaces their data and their part of the
  // log). A snapshot is refused when this is false.
  std::function<bool(const RegionMeta& region, bool commit_stale)> range_free;
  // Applying a CommitMerge on a target peer: brings this store's peer of
  // the merge's source up to its PrepareMerge (from its own log and the
  // command's entries), staging into the same kv batch. An error means the
  // source cannot be brought there (merge.cpp).
  std::function<Status(const CommitMergeCmd& merge, ApplyBatch& ab)> catch_up_merge_source;
  // Puts the peer in line for the round (it has mail or new work). Called
  // only from the serial part of a round: see Peer::schedule().
  std::function<void(Peer& peer)> schedule;
};

class Peer {
 public:
  // Loads the peer of `region_id` from the engines (reconciling the raft log
  // with the kv apply state after a crash) and creates its RawNode.
  [[nodiscard]] static Result<std::unique_ptr<Peer>> load(const PeerContext& ctx,
                                                          std::uint64_t region_id,
                                                          std::uint64_t seed);
  // A peer this store learns of from a leader's message before it has any
  // state of the region (a new replica, or a region split elsewhere first):
  // no range, no data, not routed. It becomes initialized by a snapshot,
  // or is replaced by the peer a split here creates.
  [[nodiscard]] static Result<std::unique_ptr<Peer>> create_uninitialized(const PeerContext& ctx,
                                                                          std::uint64_t region_id,
                                                                          const PeerMeta& self,
                                                                          const PeerMeta& leader,
                                                                          std::uint64_t seed);
  ~Peer();
  [[nodiscard]] bool initialized() const noexcept { return initialized_; }
  // True once after the region's range changed by a snapshot (re-route).
  [[nodiscard]] bool take_range_changed() { return std::exchange(range_changed_, false); }

  // --- mailbox: filled in the serial part of a round (each call puts the
  // peer in line), drained by drain_mailbox() on a raft poller thread.
  void enqueue_message(RaftEnvelope env);
  void enqueue_write(WriteRequest req);
  void enqueue_read(ReadRequest req);
  void enqueue_tick();
  // Steps up to `max` queued messages and requests (and the queued ticks);
  // true when some are left for the next round.
  [[nodiscard]] bool drain_mailbox(std::size_t max);
  [[nodiscard]] bool has_mail() const noexcept {
    return !mail_.empty() || ticks_due_ > 0;
  }
  // Puts the peer in line for the round (see PeerContext::schedule). Every
  // input method below that may be called outside a poller does it.
  void schedule();
  // The store's bookkeeping of its run queue (serial part of rounds only).
  [[nodiscard]] bool scheduled() const noexcept { return scheduled_; }
  void set_scheduled(bool s) noexcept { scheduled_ = s; }

  // --- hibernation ------------------------------------------------------------
  [[nodiscard]] bool hibernating() const noexcept { return hibernating_; }
  // Resumes ticking (a request, a message, or the leader's store fell silent).
  void wake();
  // The store of the leader this peer follows; 0 when unknown.
  [[nodiscard]] std::uint64_t leader_store() const;

  // --- inputs ---------------------------------------------------------------
  void step(RaftEnvelope env);
  // Adds a snapshot chunk to the transfer from its sender; the last one
  // steps the assembled snapshot into raft.
  void add_chunk(SnapshotChunk chunk);
  void tick();
  void propose(WriteRequest req);
  // Proposes a batch split (new region and peer ids already allocated);
  // `done` completes when it is applied here.
  void propose_split(BatchSplitCmd split, Instant deadline, WriteCallback done);
  // Starts an election now (a region just created by a split, on the store
  // whose parent peer led).
  void campaign();
  // A region just created by a split here: no leader of it can have been
  // heard from, so its peer answers the campaign of the parent leader's
  // store at once (see RawNode::forget_leader_contact).
  void forget_leader_contact() { raw_->forget_leader_contact(); }
  // Campaigns at the next tick unless a leader is known by then: the other
  // replicas of a region a split just made apply the split in about the
  // same round and drop a vote for a region they do not have yet.
  void campaign_at_next_tick() {
    forget_leader_contact();
    campaign_at_tick_ = true;
    schedule();
  }

  // --- merge (merge.cpp) ----------------------------------------------------
  // Proposes PrepareMerge into `target` after the checks that need raft's
  // view: leader, no merge or conf change pending, every peer's log within
  // merge_max_log_gap of the leader's and no conf change or epoch-changing
  // command in the entries past the lowest match. Suspends the lease at once.
  void propose_prepare_merge(const RegionMeta& target, Instant deadline, WriteCallback done);
  // The CommitMerge this source peer (kMerging) asks its target to apply:
  // its region, the PrepareMerge index, and its log entries after min_index.
  [[nodiscard]] Result<CommitMergeCmd> build_commit_merge() const;
  // On the target's leader: proposes `merge` with `expected` (the target's
  // epoch the source recorded) as the command's epoch.
  [[nodiscard]] Status propose_commit_merge(CommitMergeCmd merge, const RegionEpoch& expected);
  // On the source's leader (kMerging): proposes RollbackMerge.
  [[nodiscard]] Status propose_rollback_merge();
  // On the source (CommitMerge being applied by the target on this store):
  // applies this peer's committed entries up to merge.commit, taking those
  // it lacks from merge.entries. OK when it then holds that PrepareMerge.
  [[nodiscard]] Status catch_up_merge(const CommitMergeCmd& merge, ApplyBatch& ab);
  // PrepareMerge proposed and not yet resolved, or applied (kMerging).
  [[nodiscard]] bool merging() const noexcept;
  // The Ready begun and not yet finished commits a CommitMerge: applying it
  // touches the source peer on this store too, so the round applies it on
  // one thread with every other region (the one ordering between regions).
  [[nodiscard]] bool commit_merge_pending() const;
  [[nodiscard]] const std::optional<MergeState>& merge_state() const noexcept {
    return apply_state_.merge_state;
  }
  // Sources this target took in by CommitMerge since the last call (their
  // peers here are to be destroyed, keeping their data).
  [[nodiscard]] std::vector<std::uint64_t> take_merged_sources() {
    return std::move(merged_sources_);
  }
  // True once after a RollbackMerge was applied here.
  [[nodiscard]] bool take_rolled_back() { return std::exchange(rolled_back_, false); }
  // Ticks since this peer last asked for a CommitMerge or RollbackMerge
  // (the store retries every few ticks).
  int& merge_retry_ticks() noexcept { return merge_retry_ticks_; }
  void read(ReadRequest req);
  [[nodiscard]] Status transfer_leader(std::uint64_t to_store);
  void report_unreachable(std::uint64_t store_id);
  void report_snapshot(std::uint64_t peer_id, bool failed);
  // Fails every request past its deadline.
  void expire(Instant now);
  // Fails everything pending (the store is stopping).
  // `proposals` answers the commands already proposed (default: `s`); they
  // may still commit through other peers, so it must not claim "no effect".
  void fail_all(const Status& s, const Status* proposals = nullptr);
  // Removes the peer's state from both engines (destroy.cpp): a tombstone
  // replaces its raft log and region record; its apply state goes and, with
  // `clear_data`, its keys. Its lease ends. The store then drops the Peer.
  [[nodiscard]] Status destroy(bool clear_data);

  // --- the round --------------------------------------------------------------
  // False while a Ready is begun and not finished (finish_ready() was
  // deferred by the apply budget).
  [[nodiscard]] bool has_ready() const;
  [[nodiscard]] bool finish_pending() const noexcept { return pending_ready_.has_value(); }
  // REQUIRES: has_ready(). Sets *sync when the batch must be synced.
  [[nodiscard]] Status begin_ready(Instant round_start, raftlog::LogBatch& batch, Outbox& out,
                                   bool* sync);
  // REQUIRES: begin_ready() succeeded and its batch is written. Sends what
  // needed persistence and stages the committed entries into `ab`.
  [[nodiscard]] Status finish_ready(Outbox& out, ApplyBatch& ab);
  // After `ab` was written (with `write_status`): completes proposers and
  // waiting reads, writes metadata that follows applied entries (log
  // compaction, region state, new regions of a split), renews the lease.
  // Call it after every finish_ready(), also when the write failed.
  [[nodiscard]] Status post_apply(const Status& write_status);

  // --- state --------------------------------------------------------------------
  [[nodiscard]] std::uint64_t region_id() const noexcept { return region_.id; }
  [[nodiscard]] const RegionMeta& region() const noexcept { return region_; }
  [[nodiscard]] const std::shared_ptr<LeaseState>& lease() const noexcept { return lease_; }
  [[nodiscard]] RegionStatus status() const;
  [[nodiscard]] bool is_leader() const;
  [[nodiscard]] const ApplyState& apply_state() const noexcept { return apply_state_; }
  // Regions created by splits applied since the last call (their state is
  // written; the store creates their peers).
  [[nodiscard]] std::vector<RegionMeta> take_split_results() { return std::move(split_results_); }

  // --- membership (change_peer.cpp, stale_peer.cpp) ---------------------------
  [[nodiscard]] std::uint64_t peer_id() const noexcept { return self_peer_; }
  // Proposes the membership change `changes` as one raft conf change
  // (ChangePeerV2); new peers get ids from `alloc_id`. `done` completes when
  // the change is applied here and the joint state it enters (several
  // changes) is left. Refused with FailedPrecondition while a change is in
  // flight, the region is joint or merging, or the change would demote the
  // leader, remove a voter, or promote a learner that has not caught up;
  // InvalidArgument for a request that does not fit the region.
  void propose_change_peers(const std::vector<PeerChangeRequest>& changes,
                            const std::function<Result<std::uint64_t>()>& alloc_id,
                            Instant deadline, WriteCallback done);
  // Once per tick: expires the pending change, proposes the leave of a
  // joint state (leader), and after stale_check_ticks() without hearing
  // from a leader queues kCheckStalePeer to the region's other peers.
  void membership_tick(Instant now, Outbox& out);
  // Ticks without a leader's message after which a peer asks whether it is
  // still a member.
  [[nodiscard]] int stale_check_ticks() const noexcept;
  // Told (or shown) that a newer epoch of the region no longer has this
  // peer: it is stale, and the store destroys it at the end of the round.
  void mark_removed();
  // The peer applied its own removal, or was told of it: the store
  // destroys it at the end of the round.
  [[nodiscard]] bool removed() const noexcept { return removed_; }
  // True once after the region's peers changed (conf change or snapshot).
  [[nodiscard]] bool take_members_changed() { return std::exchange(members_changed_, false); }

 private:
  struct Proposal {
    raft::Index index = 0;
    raft::Term term = 0;
    Instant start;
    Instant deadline;
    WriteCallback done;  // empty once completed (timeout) or for admin commands
  };
  // Queues the proposal just made (at the log's last index, in the current
  // term). Proposals queued at that index or above were made in an earlier
  // term and their entries since cut from this leader's log (it was a
  // follower in between): they can never commit, and are answered with
  // StaleCommand here, so the queue stays in index order for
  // complete_proposals().
  void track_proposal(Instant start, Instant deadline, WriteCallback done);
  struct ReadBatch {
    Instant start;
    raft::Term term = 0;
    std::vector<ReadRequest> reads;
  };
  struct WaitingRead {
    raft::Index index = 0;
    ReadRequest req;
  };
  // What apply_entries() staged for post_apply().
  struct Staged {
    struct Applied {
      raft::Index index = 0;
      raft::Term term = 0;
      Status status;
    };
    std::vector<Applied> results;
    std::optional<CompactLogCmd> compact;
    Instant lease_base = Instant::min();
    bool meta_changed = false;  // the region state must be written
  };
  struct Assembly {
    std::uint64_t from_peer = 0;
    raft::Term msg_term = 0;
    raft::Index snap_index = 0;
    raft::Term snap_term = 0;
    std::uint64_t total = 0;
    std::string data;
  };

  Peer(const PeerContext& ctx, RegionMeta region, ApplyState apply, std::uint64_t self_peer);

  // A change_peers() waiting for its entry (and then for the leave).
  struct ConfChangeWait {
    raft::Index index = 0;
    raft::Term term = 0;
    bool in_joint = false;  // its entry applied and entered a joint state
    Instant deadline;
    WriteCallback done;
  };
  // A conf-change entry apply_entries() staged for post_apply().
  struct StagedConfChange {
    raft::Index index = 0;
    raft::Term term = 0;
    Status result;
    bool entered_joint = false;
  };
  // Applies one kConfChange entry to region_ and raft (change_peer.cpp).
  [[nodiscard]] Status apply_change_peer(const raft::Entry& e);
  // Completes conf_wait_ from what was applied (post_apply).
  void finish_conf_changes();
  void fail_conf_change(const Status& s);
  // Proposes the empty ChangePeerCmd that leaves a joint state (leader).
  void propose_leave_joint();
  // Learns the store of a peer that talks to it but is not in region_ (TiKV's
  // peer cache): a peer that lags behind a membership change, or an
  // uninitialized one that knows only the peer that made it, must still be
  // able to answer a new leader until it applies the change or a snapshot.
  void remember_sender(const PeerMeta& from);

  void step_snapshot(SnapshotChunk header, std::string data);
  void send(const raft::Message& m, Outbox& out);
  void send_snapshot(const raft::Message& m, Outbox& out);
  void on_soft_state(const raft::SoftState& ss);
  [[nodiscard]] Status apply_snapshot(const raft::Snapshot& snap, raftlog::LogBatch& batch);
  // Stages `entries` into ab (data and the new apply state); post_apply()
  // finishes them.
  [[nodiscard]] Status apply_entries(const std::vector<raft::Entry>& entries, ApplyBatch& ab);
  // Applies a split to region_ and adds the new regions' apply states to
  // `batch`; their raft state is written once the batch is.
  [[nodiscard]] Status apply_split(const BatchSplitCmd& split, WriteBatch& batch);
  // Applies a merge command (merge.cpp) of the entry at `index`: its
  // outcome in *result (an error: no effect); a returned error stops the
  // store (a CommitMerge whose source cannot be brought up to date here).
  [[nodiscard]] Status apply_merge(const RaftCmd& cmd, raft::Index index, ApplyBatch& ab,
                                   Status* result);
  // Why a PrepareMerge cannot be proposed now; OK when it can. *min_index
  // is the lowest match of any peer.
  [[nodiscard]] Status check_prepare_merge(raft::Index* min_index) const;
  // Completes the proposals up to `index`: the one at (index, term) with
  // `result` (its latency observed at `now`), older ones as superseded.
  void complete_proposals(raft::Index index, raft::Term term, const Status& result, Instant now);
  void serve_waiting_reads();
  // On a tick: counts idle ticks and decides whether the leader sleeps.
  void check_hibernation();
  [[nodiscard]] bool idle_leader() const;
  void renew_lease(Instant base);
  void publish_lease();
  void maybe_compact_log();
  void fail_reads(const Status& s);
  [[nodiscard]] Status not_leader() const;
  [[nodiscard]] const PeerMeta* peer_meta(std::uint64_t peer_id) const;

  PeerContext ctx_;
  RegionMeta region_;
  ApplyState apply_state_;
  std::uint64_t self_peer_ = 0;
  std::unique_ptr<PeerStorage> storage_;
  std::unique_ptr<raft::RawNode> raw_;
  std::shared_ptr<LeaseState> lease_ = std::make_shared<LeaseState>();

  std::optional<raft::Ready> pending_ready_;
  raft::HardState persisted_hs_;  // the last hard state put into a raft log batch
  raft::SoftState soft_;
  std::deque<Proposal> proposals_;
  // Entries appended by this peer as leader, with the start of the round
  // that proposed them: a lower bound of when any follower received them.
  std::deque<std::pair<raft::Index, Instant>> append_times_;
  Instant lease_until_ = Instant::min();
  std::uint64_t next_read_ctx_ = 1;
  std::map<std::string, ReadBatch> read_batches_;
  std::vector<ReadRequest> unbatched_reads_;  // this round's, before read_index()
  std::deque<WaitingRead> waiting_reads_;
  std::map<std::uint64_t, Assembly> assemblies_;  // by sending peer
  std::vector<std::pair<std::uint64_t, bool>> snapshot_reports_;
  int ticks_since_gc_ = 0;
  raft::Index compact_proposed_ = 0;
  // Bytes of entries appended since the last compaction (an estimate of the
  // log's size for the size limit).
  std::uint64_t log_bytes_ = 0;
  bool initialized_ = true;
  bool range_changed_ = false;
  std::vector<RegionMeta> pending_splits_;  // applied into the kv batch being built
  std::vector<RegionMeta> split_results_;   // written; for the store to open
  // The index of a PrepareMerge this peer proposed as leader (0: none).
  raft::Index prepare_merge_proposed_ = 0;
  std::vector<std::uint64_t> merged_sources_;  // for the store to destroy
  bool rolled_back_ = false;
  int merge_retry_ticks_ = 0;
  Staged staged_;

  // The mailbox: queued inputs, in arrival order.
  using Mail = std::variant<RaftEnvelope, WriteRequest, ReadRequest>;
  std::deque<Mail> mail_;
  int ticks_due_ = 0;
  bool scheduled_ = false;
  bool campaign_at_tick_ = false;
  // Hibernation.
  bool hibernating_ = false;
  bool going_to_sleep_ = false;  // the next heartbeats say so, then sleep
  bool sleep_heartbeat_sent_ = false;
  int idle_ticks_ = 0;
  bool active_since_tick_ = false;  // a proposal, read or non-heartbeat message
  // Membership.
  std::optional<ConfChangeWait> conf_wait_;
  std::vector<StagedConfChange> staged_conf_;
  bool removed_ = false;
  bool members_changed_ = false;
  // Ticks since a leader's message (followers).
  int ticks_without_leader_ = 0;
  // Senders region_ does not list (remember_sender).
  std::map<std::uint64_t, PeerMeta> peer_cache_;
};

}  // namespace kvcore::raftstore
