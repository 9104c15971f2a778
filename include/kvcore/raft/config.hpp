// Configuration of one raft node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "kvcore/raft/types.hpp"
#include "kvcore/status.hpp"

namespace kvcore::raft {

enum class ReadOnlyOption : std::uint8_t {
  // ReadIndex confirms leadership with a round of heartbeats to a quorum
  // before answering. Always safe.
  kSafe,
  // ReadIndex answers from the leader's lease, without a round trip. Safe
  // only while clocks drift less than the election timeout; requires
  // check_quorum (validate() rejects it otherwise).
  kLeaseBased,
};

struct Config {
  // This node's id. Never 0.
  NodeId id = kNoNode;
  // Ticks without hearing from a leader before a follower campaigns; the
  // actual timeout is drawn uniformly from [election_tick, 2*election_tick).
  // Must be greater than heartbeat_tick.
  int election_tick = 10;
  // Ticks between heartbeats of a leader.
  int heartbeat_tick = 1;
  // The last index already applied by the application (on restart).
  Index applied = 0;
  // Upper bound on the bytes of entries in one append message; 0 sends at
  // most one entry per message. Smaller means less data resent after a loss.
  std::uint64_t max_size_per_msg = 1 << 20;
  // Upper bound on bytes of committed entries handed out in one Ready.
  std::uint64_t max_committed_size_per_ready = std::numeric_limits<std::uint64_t>::max();
  // Proposals are dropped (ResourceExhausted) while the leader's uncommitted
  // tail exceeds this many bytes; 0 means no limit.
  std::uint64_t max_uncommitted_entries_size = 0;
  // Append messages in flight to one follower in the replicate state.
  std::size_t max_inflight_msgs = 256;
  // Bytes of append messages in flight to one follower; 0 means no limit.
  std::uint64_t max_inflight_bytes = 0;
  // A leader that has not heard from a quorum within an election timeout
  // steps down. Also lets nodes ignore votes while they hear from a leader.
  bool check_quorum = false;
  // Campaigns run a pre-vote round first, so a partitioned node rejoining
  // does not disrupt the cluster by bumping the term.
  bool pre_vote = false;
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  // Followers drop proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;
  // Seed of the generator that randomizes election timeouts. Tests set it;
  // nodes of one cluster should use different seeds.
  std::uint64_t seed = 0;

  // InvalidArgument with the reason when a field is out of range.
  [[nodiscard]] Status validate() const;
};

}  // namespace kvcore::raft
