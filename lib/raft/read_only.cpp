#include "raft/read_only.hpp"

namespace kvcore::raft {

void ReadOnly::add_request(Index index, NodeId from, std::string context) {
  if (pending_.count(context) != 0) return;
  ReadIndexRequest req{index, from, context, {}};
  pending_.emplace(context, std::move(req));
  queue_.push_back(std::move(context));
}

const std::set<NodeId>* ReadOnly::recv_ack(NodeId id, const std::string& context) {
  auto it = pending_.find(context);
  if (it == pending_.end()) return nullptr;
  it->second.acks.insert(id);
  return &it->second.acks;
}

std::vector<ReadIndexRequest> ReadOnly::advance(const std::string& context) {
  std::vector<ReadIndexRequest> out;
  if (pending_.count(context) == 0) return out;
  while (!queue_.empty()) {
    std::string ctx = std::move(queue_.front());
    queue_.pop_front();
    auto it = pending_.find(ctx);
    out.push_back(std::move(it->second));
    pending_.erase(it);
    if (ctx == context) break;
  }
  return out;
}

std::string ReadOnly::last_pending_context() const {
  return queue_.empty() ? std::string() : queue_.back();
}

void ReadOnly::reset() {
  pending_.clear();
  queue_.clear();
}

}  // namespace kvcore::raft
