// Stable multi-line renderings of a Ready and a RaftStatus for scenario tests.
#include <fmt/format.h>

#include "kvcore/raft/raw_node.hpp"

namespace kvcore::raft {

std::string describe(const Ready& rd) {
  std::string out;
  if (rd.soft_state) out += describe(*rd.soft_state) + "\n";
  if (rd.hard_state) out += "HardState " + describe(*rd.hard_state) + "\n";
  if (!rd.read_states.empty()) {
    out += "ReadStates:\n";
    for (const auto& rs : rd.read_states) {
      out += fmt::format("  Index:{} Context:{}\n", rs.index, rs.request_ctx);
    }
  }
  if (!rd.entries.empty()) {
    out += "Entries:\n";
    for (const auto& e : rd.entries) out += "  " + describe(e) + "\n";
  }
  if (!rd.snapshot.empty()) out += "Snapshot " + describe(rd.snapshot) + "\n";
  if (!rd.committed_entries.empty()) {
    out += "CommittedEntries:\n";
    for (const auto& e : rd.committed_entries) out += "  " + describe(e) + "\n";
  }
  if (!rd.messages.empty()) {
    out += "Messages:\n";
    for (const auto& m : rd.messages) out += "  " + describe(m) + "\n";
  }
  if (!rd.persisted_messages.empty()) {
    out += "OnSync:\n";
    for (const auto& m : rd.persisted_messages) out += "  " + describe(m) + "\n";
  }
  if (rd.must_sync) out += "MustSync\n";
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string describe(const RaftStatus& st) {
  std::string out = fmt::format("{} {} {} Applied:{}", st.id, describe(st.soft_state),
                                describe(st.hard_state), st.applied);
  if (st.lead_transferee != kNoNode) out += fmt::format(" LeadTransferee:{}", st.lead_transferee);
  out += fmt::format("\nConfState {}", describe(st.conf_state));
  for (const auto& [id, pr] : st.progress) {
    out += fmt::format("\n{}: {} match={} next={}", id, to_string(pr.state), pr.match, pr.next);
    if (pr.is_learner) out += " learner";
    if (pr.state == ProgressState::kSnapshot)
      out += fmt::format(" pending_snap={}", pr.pending_snapshot);
    if (pr.probe_sent) out += " paused";
    if (pr.inflight_count > 0) out += fmt::format(" inflight={}", pr.inflight_count);
    if (!pr.recent_active) out += " inactive";
  }
  return out;
}

}  // namespace kvcore::raft
