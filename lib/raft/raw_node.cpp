// RawNode: the Ready/advance protocol over the Raft state machine.
#include "kvcore/raft/raw_node.hpp"

#include <fmt/format.h>

#include "raft/raft.hpp"

namespace kvcore::raft {

class RawNode::Impl {
 public:
  explicit Impl(std::unique_ptr<Raft> r) : raft(std::move(r)) {
    prev_soft = raft->soft_state();
    prev_hard = raft->hard_state();
  }

  std::unique_ptr<Raft> raft;
  SoftState prev_soft;
  HardState prev_hard;
  // This node's own votes handed out with the last Ready, stepped on advance.
  std::vector<Message> self_msgs_in_flight;
};

namespace {

// Rejects messages no correct peer sends, so that a corrupt or hostile
// input cannot break the state machine's invariants (the term going down,
// a log with gaps).
Status validate_remote_message(const Message& m, NodeId self) {
  auto invalid = [&](std::string_view why) {
    return Status::invalid_argument(fmt::format("raft: invalid {}: {}", to_string(m.type), why));
  };
  if (m.from == kNoNode) return invalid("no sender");
  // A forwarded transfer request names the transferee in `from`, which may
  // be this (leader) node; nothing else ever claims to come from us.
  if (m.from == self && m.type != MessageType::kTransferLeader) {
    return invalid("sent by this node to itself");
  }
  // Only proposals and read requests are forwarded without a term; a node
  // still at term 0 rejects a pre-vote with its own term 0.
  if (m.term == 0 && m.type != MessageType::kPropose && m.type != MessageType::kReadIndex &&
      !(m.type == MessageType::kPreVoteResponse && m.reject)) {
    return invalid("term 0");
  }
  if (m.type == MessageType::kAppend) {
    Term prev = m.log_term;
    for (std::size_t i = 0; i < m.entries.size(); ++i) {
      const Entry& e = m.entries[i];
      if (e.index != m.index + 1 + i) return invalid("entries are not contiguous");
      if (e.term < prev || e.term > m.term) return invalid("entry terms out of order");
      prev = e.term;
    }
  }
  if (m.type == MessageType::kSnapshot) {
    if (!m.snapshot || m.snapshot->empty()) return invalid("no snapshot");
    if (m.snapshot->metadata.term > m.term) return invalid("snapshot from the future");
  }
  return Status::ok();
}

}  // namespace

RawNode::RawNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RawNode::~RawNode() = default;

Result<std::unique_ptr<RawNode>> RawNode::create(const Config& config, Storage& storage) {
  KVCORE_ASSIGN_OR_RETURN(std::unique_ptr<Raft> r, Raft::create(config, storage));
  return std::unique_ptr<RawNode>(new RawNode(std::make_unique<Impl>(std::move(r))));
}

void RawNode::tick() { impl_->raft->tick(); }

Status RawNode::campaign() {
  Message m;
  m.type = MessageType::kHup;
  m.from = impl_->raft->id();
  return impl_->raft->step(std::move(m));
}

Status RawNode::propose(std::string data) {
  Raft& r = *impl_->raft;
  Message m;
  m.type = MessageType::kPropose;
  m.from = r.id();
  Entry e;
  e.data = std::move(data);
  m.entries.push_back(std::move(e));
  return r.step(std::move(m));
}

Status RawNode::propose_conf_change(const ConfChangeV2& cc) {
  Raft& r = *impl_->raft;
  if (r.state() == StateRole::kLeader) KVCORE_RETURN_IF_ERROR(r.check_conf_change_proposal(cc));
  Message m;
  m.type = MessageType::kPropose;
  m.from = r.id();
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = encode_conf_change(cc);
  m.entries.push_back(std::move(e));
  return r.step(std::move(m));
}

ConfState RawNode::apply_conf_change(const ConfChangeV2& cc, Status* error) {
  return impl_->raft->apply_conf_change(cc, error);
}

Status RawNode::step(Message m) {
  if (is_local_message(m.type)) {
    return Status::invalid_argument(
        fmt::format("raft: cannot step local message {}", to_string(m.type)));
  }
  Raft& r = *impl_->raft;
  KVCORE_RETURN_IF_ERROR(validate_remote_message(m, r.id()));
  // Responses from nodes outside the configuration carry nothing the
  // leader needs; requests (votes, appends) are still handled.
  if (is_response_message(m.type) && r.tracker().progress.count(m.from) == 0) {
    return Status::ok();
  }
  return r.step(std::move(m));
}

void RawNode::read_index(std::string request_ctx) {
  Message m;
  m.type = MessageType::kReadIndex;
  m.from = impl_->raft->id();
  m.context = std::move(request_ctx);
  (void)impl_->raft->step(std::move(m));
}

void RawNode::transfer_leader(NodeId transferee) {
  Message m;
  m.type = MessageType::kTransferLeader;
  m.from = transferee;
  (void)impl_->raft->step(std::move(m));
}

void RawNode::report_unreachable(NodeId id) {
  Message m;
  m.type = MessageType::kUnreachable;
  m.from = id;
  (void)impl_->raft->step(std::move(m));
}

void RawNode::forget_leader_contact() { impl_->raft->forget_leader_contact(); }

void RawNode::report_snapshot(NodeId id, bool failed) {
  Message m;
  m.type = MessageType::kSnapshotStatus;
  m.from = id;
  m.reject = failed;
  (void)impl_->raft->step(std::move(m));
}

bool RawNode::has_ready() const {
  // Producing deferred appends is part of computing the output; it changes
  // nothing the caller can observe besides the Ready itself.
  impl_->raft->flush_broadcast();
  const Raft& r = *impl_->raft;
  if (r.soft_state() != impl_->prev_soft) return true;
  const HardState hs = r.hard_state();
  if (!hs.empty() && hs != impl_->prev_hard) return true;
  const RaftLog& log = r.log();
  if (log.has_pending_snapshot()) return true;
  if (!log.unstable_entries().empty()) return true;
  if (log.has_next_committed_entries()) return true;
  Raft& mr = *impl_->raft;
  return !mr.msgs().empty() || !mr.msgs_after_persist().empty() || !mr.self_msgs().empty() ||
         !mr.read_states().empty();
}

Ready RawNode::ready() {
  Raft& r = *impl_->raft;
  r.flush_broadcast();
  Ready rd;
  const SoftState ss = r.soft_state();
  if (ss != impl_->prev_soft) {
    rd.soft_state = ss;
    impl_->prev_soft = ss;
  }
  const HardState hs = r.hard_state();
  if (hs != impl_->prev_hard) {
    rd.hard_state = hs;
    rd.must_sync = hs.term != impl_->prev_hard.term || hs.vote != impl_->prev_hard.vote;
    impl_->prev_hard = hs;
  }
  RaftLog& log = r.log();
  rd.entries = log.unstable_entries();
  if (!rd.entries.empty()) rd.must_sync = true;
  if (log.unstable_snapshot()) {
    rd.snapshot = *log.unstable_snapshot();
    rd.must_sync = true;
  }
  rd.committed_entries = log.next_committed_entries();
  rd.read_states = std::move(r.read_states());
  r.read_states().clear();
  rd.messages = std::move(r.msgs());
  r.msgs().clear();
  rd.persisted_messages = std::move(r.msgs_after_persist());
  r.msgs_after_persist().clear();
  impl_->self_msgs_in_flight = std::move(r.self_msgs());
  r.self_msgs().clear();
  // Messages created from now on may assume this term and vote persisted:
  // they leave with a later Ready, after this one is handled.
  r.set_persisted_vote_state(hs.term, hs.vote);
  return rd;
}

void RawNode::advance(const Ready& rd) {
  Raft& r = *impl_->raft;
  RaftLog& log = r.log();
  if (!rd.snapshot.empty()) {
    log.stable_snap_to(rd.snapshot.metadata.index);
    log.applied_to(rd.snapshot.metadata.index);
  }
  if (!rd.entries.empty()) log.stable_to(rd.entries.back().index, rd.entries.back().term);
  if (!rd.committed_entries.empty()) {
    std::uint64_t bytes = 0;
    for (const auto& e : rd.committed_entries) bytes += e.data.size();
    r.on_applied(rd.committed_entries.back().index, bytes);
  }
  r.on_persisted();
  auto self = std::move(impl_->self_msgs_in_flight);
  impl_->self_msgs_in_flight.clear();
  for (auto& m : self) (void)r.step(std::move(m));
}

RaftStatus RawNode::status() const { return impl_->raft->status(); }
NodeId RawNode::id() const { return impl_->raft->id(); }
NodeId RawNode::leader_id() const { return impl_->raft->lead(); }
StateRole RawNode::role() const { return impl_->raft->state(); }
Term RawNode::term() const { return impl_->raft->term(); }
bool RawNode::has_valid_lease() const { return impl_->raft->has_valid_lease(); }
Index RawNode::last_index() const { return impl_->raft->log().last_index(); }
Index RawNode::committed() const { return impl_->raft->log().committed(); }
NodeId RawNode::lead_transferee() const { return impl_->raft->lead_transferee(); }

}  // namespace kvcore::raft
