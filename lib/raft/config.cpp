// Config::validate: the ranges the raft core relies on.
#include "kvcore/raft/config.hpp"

namespace kvcore::raft {

Status Config::validate() const {
  if (id == kNoNode) return Status::invalid_argument("raft config: id must not be 0");
  if (heartbeat_tick <= 0) {
    return Status::invalid_argument("raft config: heartbeat_tick must be greater than 0");
  }
  if (election_tick <= heartbeat_tick) {
    return Status::invalid_argument(
        "raft config: election_tick must be greater than heartbeat_tick");
  }
  if (max_inflight_msgs == 0) {
    return Status::invalid_argument("raft config: max_inflight_msgs must be greater than 0");
  }
  if (max_inflight_bytes != 0 && max_inflight_bytes < max_size_per_msg) {
    return Status::invalid_argument(
        "raft config: max_inflight_bytes must be 0 or at least max_size_per_msg");
  }
  if (max_committed_size_per_ready == 0) {
    return Status::invalid_argument(
        "raft config: max_committed_size_per_ready must be greater than 0");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return Status::invalid_argument(
        "raft config: read_only_option=kLeaseBased requires check_quorum");
  }
  return Status::ok();
}

}  // namespace kvcore::raft
