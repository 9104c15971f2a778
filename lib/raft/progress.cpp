#include "raft/progress.hpp"

#include <algorithm>

namespace kvcore::raft {

std::string_view to_string(ProgressState state) noexcept {
  switch (state) {
    case ProgressState::kProbe: return "StateProbe";
    case ProgressState::kReplicate: return "StateReplicate";
    case ProgressState::kSnapshot: return "StateSnapshot";
  }
  return "StateUnknown";
}

void Progress::reset_state(ProgressState s) {
  msg_app_flow_paused = false;
  pending_snapshot = 0;
  state = s;
  inflights.reset();
}

void Progress::become_probe() {
  if (state == ProgressState::kSnapshot) {
    const Index pending = pending_snapshot;
    reset_state(ProgressState::kProbe);
    next = std::max(match + 1, pending + 1);
  } else {
    reset_state(ProgressState::kProbe);
    next = match + 1;
  }
}

void Progress::become_replicate() {
  reset_state(ProgressState::kReplicate);
  next = match + 1;
}

void Progress::become_snapshot(Index snapshot_index) {
  reset_state(ProgressState::kSnapshot);
  pending_snapshot = snapshot_index;
  next = snapshot_index + 1;
}

void Progress::sent_entries(std::size_t entries, std::uint64_t bytes) {
  switch (state) {
    case ProgressState::kReplicate:
      if (entries > 0) {
        next += entries;
        inflights.add(next - 1, bytes);
      }
      msg_app_flow_paused = inflights.full();
      break;
    case ProgressState::kProbe: msg_app_flow_paused = true; break;
    case ProgressState::kSnapshot: break;
  }
}

bool Progress::maybe_update(Index n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    msg_app_flow_paused = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::maybe_decr_to(Index rejected, Index match_hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection of something already matched is stale.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe only the last probe sent (at next-1) matters.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  msg_app_flow_paused = false;
  return true;
}

bool Progress::is_paused() const {
  switch (state) {
    case ProgressState::kProbe: return msg_app_flow_paused;
    case ProgressState::kReplicate: return inflights.full();
    case ProgressState::kSnapshot: return true;
  }
  return true;
}

ProgressStatus Progress::status() const {
  ProgressStatus s;
  s.match = match;
  s.next = next;
  s.state = state;
  s.pending_snapshot = pending_snapshot;
  s.recent_active = recent_active;
  s.probe_sent = msg_app_flow_paused;
  s.inflight_count = inflights.count();
  s.is_learner = is_learner;
  return s;
}

}  // namespace kvcore::raft
