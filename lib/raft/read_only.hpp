// Pending ReadIndex requests of a leader in the safe mode: each waits for a
// quorum of heartbeat acknowledgements carrying its context. Requests are
// answered in arrival order; an acknowledged request also confirms every
// earlier one (the heartbeat round that confirmed it came after them).
#pragma once

#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kvcore/raft/types.hpp"

namespace kvcore::raft {

struct ReadIndexRequest {
  Index index = 0;
  NodeId from = kNoNode;  // the node that asked (the leader itself for local reads)
  std::string context;
  std::set<NodeId> acks;
};

class ReadOnly {
 public:
  // Ignored when a request with the same context is pending.
  void add_request(Index index, NodeId from, std::string context);
  // Records an ack; returns the acks of that context (nullptr when unknown).
  const std::set<NodeId>* recv_ack(NodeId id, const std::string& context);
  // Removes and returns every request up to and including `context`.
  std::vector<ReadIndexRequest> advance(const std::string& context);
  // The context of the newest pending request ("" when none).
  [[nodiscard]] std::string last_pending_context() const;
  [[nodiscard]] std::size_t pending() const { return queue_.size(); }
  void reset();

 private:
  std::map<std::string, ReadIndexRequest> pending_;
  std::deque<std::string> queue_;
};

}  // namespace kvcore::raft
