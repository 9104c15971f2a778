// What a leader knows of one follower's log, and the state that decides how
// it replicates to it:
//   probe:     one append at a time until the match point is found;
//   replicate: optimistic pipelining bounded by the inflight window;
//   snapshot:  a snapshot is in flight, nothing else is sent.
// Invariant: match < next.
#pragma once

#include <cstdint>

#include "kvcore/raft/raw_node.hpp"
#include "raft/inflights.hpp"

namespace kvcore::raft {

struct Progress {
  Progress(Index next_index, std::size_t max_inflight, std::uint64_t max_inflight_bytes,
           bool learner)
      : next(next_index), inflights(max_inflight, max_inflight_bytes), is_learner(learner) {}

  Index match = 0;
  Index next = 1;
  ProgressState state = ProgressState::kProbe;
  // The snapshot index sent in the snapshot state (0 otherwise).
  Index pending_snapshot = 0;
  // Heard from since the last check-quorum round.
  bool recent_active = false;
  // In probe: an append was sent and not yet answered (cleared by a
  // response or a heartbeat response). Replicate pauses on a full window.
  bool msg_app_flow_paused = false;
  // The commit index carried by the last append sent.
  Index sent_commit = 0;
  // The newest leader clock stamp this follower echoed in a heartbeat
  // response (0: none yet this term).
  std::uint64_t lease_ack = 0;
  Inflights inflights;
  bool is_learner = false;

  void become_probe();
  void become_replicate();
  void become_snapshot(Index snapshot_index);
  // An append with `entries` entries of `bytes` bytes was sent at next.
  void sent_entries(std::size_t entries, std::uint64_t bytes);
  // Frees one inflight slot: a heartbeat response proved the follower alive
  // while the window was full (its acknowledgements may have been lost).
  void free_first_inflight() { inflights.free_first(); }
  // The follower acknowledged up to n. True when match moved.
  bool maybe_update(Index n);
  // The follower rejected an append at `rejected`; `match_hint` is where it
  // suggests to retry. True when next moved (the rejection was not stale).
  bool maybe_decr_to(Index rejected, Index match_hint);
  [[nodiscard]] bool is_paused() const;
  [[nodiscard]] ProgressStatus status() const;

 private:
  void reset_state(ProgressState s);
};

}  // namespace kvcore::raft
