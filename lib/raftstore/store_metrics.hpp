// The metrics of one store, looked up once from its registry.
#pragma once

#include "raftstore/codec.hpp"
#include "util/metrics.hpp"

namespace kvcore::raftstore {

struct StoreMetrics {
  explicit StoreMetrics(metrics::Registry& r);

  metrics::Registry& registry;
  metrics::Counter& proposals;
  metrics::Counter& proposals_dropped;
  metrics::Counter& committed_entries;
  metrics::Counter& applied_entries;
  metrics::Counter& applied_bad_cmds;
  metrics::Counter& rounds;
  metrics::Counter& raftlog_writes;
  metrics::Histogram& fsyncs_per_round;
  metrics::Histogram& regions_per_raftlog_write;
  metrics::Counter& frames_sent;
  metrics::Counter& frames_received;
  metrics::Histogram& frame_bytes_sent;
  metrics::Counter& frame_bytes_received;
  metrics::Counter& messages_sent;
  metrics::Counter& messages_received;
  metrics::Counter& messages_unknown_region;
  metrics::Counter& messages_stale_peer;
  metrics::Counter& lease_reads;
  metrics::Counter& read_index_reads;
  metrics::Counter& not_leader;
  metrics::Counter& timeouts;
  metrics::Counter& snapshots_generated;
  metrics::Counter& snapshots_sent;
  metrics::Counter& snapshot_chunks_sent;
  metrics::Counter& snapshot_chunks_received;
  metrics::Counter& snapshot_chunks_dropped;
  metrics::Counter& snapshots_applied;
  metrics::Counter& log_compactions;
  metrics::Counter& splits;
  metrics::Counter& merges_prepared;
  metrics::Counter& merges_committed;
  metrics::Counter& merges_rolled_back;
  // Source peers brought up to their PrepareMerge by a CommitMerge's entries.
  metrics::Counter& merge_catch_ups;
  metrics::Counter& peers_created;
  metrics::Counter& peers_destroyed;
  metrics::Counter& region_hibernations;
  metrics::Counter& region_wakeups;
  metrics::Counter& rounds_deferred_apply;
  metrics::Counter& store_heartbeats;
  metrics::Counter& store_failures;
  metrics::Counter& parallel_passes;
  metrics::Counter& conf_changes_proposed;
  metrics::Counter& conf_changes_applied;
  metrics::Counter& conf_changes_rejected;  // at apply time (epoch, invalid)
  metrics::Counter& conf_changes_refused;   // at proposal time
  metrics::Counter& stale_checks_sent;
  metrics::Counter& gc_peer_sent;
  metrics::Counter& stale_peers_found;
  metrics::Counter& transfer_leader_refused;
  metrics::Histogram& write_seconds;
  metrics::Histogram& read_seconds;
  // Frames from a store that hosts no peer of any region here.
  metrics::Counter& bad_frames_unknown_store;

  // The bad-frame counter of one reason.
  [[nodiscard]] metrics::Counter& bad_frames(FrameReject reason);

 private:
  metrics::Counter* bad_frames_[8] = {};
};

}  // namespace kvcore::raftstore
