#include "raftstore/store_metrics.hpp"

#include <fmt/format.h>

namespace kvcore::raftstore {

namespace {
std::vector<double> latency_buckets() { return metrics::exponential_buckets(50e-6, 2, 18); }
constexpr std::string_view kMergeHelp =
    "Region merge steps applied: PrepareMerge and RollbackMerge on source peers, CommitMerge on "
    "target peers";
}  // namespace

StoreMetrics::StoreMetrics(metrics::Registry& r)
    : registry(r),
      proposals(r.counter("kvcore_raft_proposals_total", "Commands proposed to raft by leaders")),
      proposals_dropped(r.counter("kvcore_raft_proposals_dropped_total",
                                  "Proposals raft refused (no leader, transfer, full log)")),
      committed_entries(
          r.counter("kvcore_raft_committed_entries_total", "Raft entries seen committed")),
      applied_entries(r.counter("kvcore_apply_entries_total", "Raft entries applied")),
      applied_bad_cmds(r.counter("kvcore_apply_bad_commands_total",
                                 "Committed entries whose command did not decode (skipped)")),
      rounds(r.counter("kvcore_raft_rounds_total", "Rounds of the raft thread")),
      raftlog_writes(r.counter("kvcore_raftlog_writes_total", "Writes to the raft log engine")),
      fsyncs_per_round(
          r.histogram("kvcore_raft_round_fsyncs", "Raft log fsyncs per raft round", {0, 1, 2, 4})),
      regions_per_raftlog_write(r.histogram("kvcore_raftlog_write_regions",
                                            "Regions written by one raft log write",
                                            metrics::exponential_buckets(1, 2, 10))),
      frames_sent(r.counter("kvcore_frames_sent_total", "Frames handed to the transport")),
      frames_received(r.counter("kvcore_frames_received_total", "Frames accepted by deliver()")),
      frame_bytes_sent(r.histogram("kvcore_frame_bytes", "Size of frames sent",
                                   metrics::exponential_buckets(64, 4, 12))),
      frame_bytes_received(
          r.counter("kvcore_frame_bytes_received_total", "Bytes of frames accepted")),
      messages_sent(r.counter("kvcore_raft_messages_sent_total", "Raft messages sent")),
      messages_received(r.counter("kvcore_raft_messages_received_total", "Raft messages received")),
      messages_unknown_region(r.counter("kvcore_raft_messages_dropped_total",
                                        "Raft messages dropped on receipt", "reason=\"region\"")),
      messages_stale_peer(r.counter("kvcore_raft_messages_dropped_total",
                                    "Raft messages dropped on receipt", "reason=\"peer\"")),
      lease_reads(r.counter("kvcore_reads_total", "Reads served", "path=\"lease\"")),
      read_index_reads(r.counter("kvcore_reads_total", "Reads served", "path=\"read_index\"")),
      not_leader(r.counter("kvcore_not_leader_total", "Requests refused: not the leader")),
      timeouts(r.counter("kvcore_request_timeouts_total", "Requests that ran out of time")),
      snapshots_generated(
          r.counter("kvcore_snapshots_generated_total", "Region snapshots generated")),
      snapshots_sent(r.counter("kvcore_snapshots_sent_total", "Snapshots sent")),
      snapshot_chunks_sent(r.counter("kvcore_snapshot_chunks_sent_total", "Snapshot chunks sent")),
      snapshot_chunks_received(
          r.counter("kvcore_snapshot_chunks_received_total", "Snapshot chunks received")),
      snapshot_chunks_dropped(r.counter("kvcore_snapshot_chunks_dropped_total",
                                        "Snapshot chunks dropped (out of order, stale, bad)")),
      snapshots_applied(r.counter("kvcore_snapshots_applied_total", "Snapshots applied")),
      log_compactions(r.counter("kvcore_raft_log_compactions_total", "Raft log compactions")),
      splits(r.counter("kvcore_region_splits_total", "Batch splits applied")),
      merges_prepared(r.counter("kvcore_region_merges_total", kMergeHelp, "stage=\"prepared\"")),
      merges_committed(r.counter("kvcore_region_merges_total", kMergeHelp, "stage=\"committed\"")),
      merges_rolled_back(
          r.counter("kvcore_region_merges_total", kMergeHelp, "stage=\"rolled_back\"")),
      merge_catch_ups(r.counter("kvcore_merge_catch_ups_total",
                                "Source peers brought up to date by a CommitMerge's entries")),
      peers_created(r.counter("kvcore_peers_created_total",
                              "Uninitialized peers made from a leader's message")),
      peers_destroyed(r.counter("kvcore_peers_destroyed_total",
                                "Peers destroyed (removed from their region or merged away)")),
      region_hibernations(r.counter("kvcore_region_hibernations_total",
                                    "Times a peer stopped ticking (its region idle)")),
      region_wakeups(r.counter("kvcore_region_wakeups_total",
                               "Times a hibernating peer resumed ticking")),
      rounds_deferred_apply(r.counter("kvcore_apply_deferred_total",
                                      "Regions whose apply waited for the next round "
                                      "(apply_round_budget spent)")),
      store_heartbeats(r.counter("kvcore_store_heartbeats_total",
                                 "Empty frames sent so a store hears from this one every tick")),
      store_failures(r.counter("kvcore_store_failures_total",
                               "Internal errors after which the store stopped serving (it "
                               "needs a restart)")),
      parallel_passes(r.counter("kvcore_parallel_passes_total",
                                "Round phases that stepped or applied regions on several threads")),
      conf_changes_proposed(r.counter("kvcore_conf_changes_total",
                                      "Membership changes (ChangePeerV2), by outcome",
                                      "result=\"proposed\"")),
      conf_changes_applied(r.counter("kvcore_conf_changes_total",
                                     "Membership changes (ChangePeerV2), by outcome",
                                     "result=\"applied\"")),
      conf_changes_rejected(r.counter("kvcore_conf_changes_total",
                                      "Membership changes (ChangePeerV2), by outcome",
                                      "result=\"rejected\"")),
      conf_changes_refused(r.counter("kvcore_conf_changes_total",
                                     "Membership changes (ChangePeerV2), by outcome",
                                     "result=\"refused\"")),
      stale_checks_sent(r.counter("kvcore_stale_peer_messages_total",
                                  "Membership messages about stale peers, by kind",
                                  "kind=\"check_sent\"")),
      gc_peer_sent(r.counter("kvcore_stale_peer_messages_total",
                             "Membership messages about stale peers, by kind", "kind=\"gc_sent\"")),
      stale_peers_found(r.counter("kvcore_stale_peer_messages_total",
                                  "Membership messages about stale peers, by kind",
                                  "kind=\"gc_accepted\"")),
      transfer_leader_refused(r.counter("kvcore_transfer_leader_refused_total",
                                        "Leader transfers refused (learner, epoch, not leader)")),
      write_seconds(r.histogram("kvcore_write_seconds", "Write latency, request to callback",
                                latency_buckets())),
      read_seconds(r.histogram("kvcore_read_seconds", "Read latency, request to callback",
                               latency_buckets())),
      bad_frames_unknown_store(r.counter("kvcore_bad_frames_total",
                                         "Frames refused on receipt, by reason",
                                         "reason=\"unknown_store\"")) {
  for (auto reason : {FrameReject::kOversized, FrameReject::kDecode, FrameReject::kClusterId,
                      FrameReject::kWrongStore, FrameReject::kBadMessage}) {
    bad_frames_[static_cast<int>(reason)] =
        &r.counter("kvcore_bad_frames_total", "Frames refused on receipt, by reason",
                   fmt::format("reason=\"{}\"", to_string(reason)));
  }
}

metrics::Counter& StoreMetrics::bad_frames(FrameReject reason) {
  return *bad_frames_[static_cast<int>(reason)];
}

}  // namespace kvcore::raftstore
