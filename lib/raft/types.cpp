// Value-type helpers: names, equality, the ConfChangeV2 encoding and the
// stable describe() renderings used by logs and scenario tests.
#include "kvcore/raft/types.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "util/coding.hpp"

namespace kvcore::raft {

std::string_view to_string(MessageType type) noexcept {
  switch (type) {
    case MessageType::kHup: return "MsgHup";
    case MessageType::kBeat: return "MsgBeat";
    case MessageType::kPropose: return "MsgProp";
    case MessageType::kAppend: return "MsgApp";
    case MessageType::kAppendResponse: return "MsgAppResp";
    case MessageType::kVote: return "MsgVote";
    case MessageType::kVoteResponse: return "MsgVoteResp";
    case MessageType::kPreVote: return "MsgPreVote";
    case MessageType::kPreVoteResponse: return "MsgPreVoteResp";
    case MessageType::kSnapshot: return "MsgSnap";
    case MessageType::kHeartbeat: return "MsgHeartbeat";
    case MessageType::kHeartbeatResponse: return "MsgHeartbeatResp";
    case MessageType::kUnreachable: return "MsgUnreachable";
    case MessageType::kSnapshotStatus: return "MsgSnapStatus";
    case MessageType::kCheckQuorum: return "MsgCheckQuorum";
    case MessageType::kTransferLeader: return "MsgTransferLeader";
    case MessageType::kTimeoutNow: return "MsgTimeoutNow";
    case MessageType::kReadIndex: return "MsgReadIndex";
    case MessageType::kReadIndexResponse: return "MsgReadIndexResp";
  }
  return "MsgUnknown";
}

bool is_local_message(MessageType type) noexcept {
  switch (type) {
    case MessageType::kHup:
    case MessageType::kBeat:
    case MessageType::kUnreachable:
    case MessageType::kSnapshotStatus:
    case MessageType::kCheckQuorum: return true;
    default: return false;
  }
}

bool is_response_message(MessageType type) noexcept {
  switch (type) {
    case MessageType::kAppendResponse:
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
    case MessageType::kHeartbeatResponse:
    case MessageType::kReadIndexResponse:
    case MessageType::kUnreachable:
    case MessageType::kSnapshotStatus: return true;
    default: return false;
  }
}

std::string_view to_string(StateRole role) noexcept {
  switch (role) {
    case StateRole::kFollower: return "StateFollower";
    case StateRole::kCandidate: return "StateCandidate";
    case StateRole::kLeader: return "StateLeader";
    case StateRole::kPreCandidate: return "StatePreCandidate";
  }
  return "StateUnknown";
}

bool operator==(const Message& a, const Message& b) {
  const bool snaps_equal =
      (a.snapshot == b.snapshot) || (a.snapshot && b.snapshot && *a.snapshot == *b.snapshot);
  return a.type == b.type && a.to == b.to && a.from == b.from && a.term == b.term &&
         a.log_term == b.log_term && a.index == b.index && a.entries == b.entries &&
         a.commit == b.commit && snaps_equal && a.reject == b.reject &&
         a.reject_hint == b.reject_hint && a.context == b.context && a.lease_stamp == b.lease_stamp;
}

namespace {

std::vector<NodeId> sorted(std::vector<NodeId> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Encoding version; bump when the layout changes.
constexpr std::uint8_t kConfChangeVersion = 1;
constexpr std::uint8_t kMaxTransition =
    static_cast<std::uint8_t>(ConfChangeTransition::kJointExplicit);
constexpr std::uint8_t kMaxChangeType = static_cast<std::uint8_t>(ConfChangeType::kAddLearnerNode);

std::string ids(const std::vector<NodeId>& v) { return fmt::format("[{}]", fmt::join(v, " ")); }

std::string quoted(std::string_view data) {
  std::string out = "\"";
  for (unsigned char c : data) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

bool ConfState::equivalent(const ConfState& other) const {
  return sorted(voters) == sorted(other.voters) && sorted(learners) == sorted(other.learners) &&
         sorted(voters_outgoing) == sorted(other.voters_outgoing) &&
         sorted(learners_next) == sorted(other.learners_next) && auto_leave == other.auto_leave;
}

std::string encode_conf_change(const ConfChangeV2& cc) {
  std::string out;
  out.push_back(static_cast<char>(kConfChangeVersion));
  out.push_back(static_cast<char>(cc.transition));
  util::put_varint64(out, cc.changes.size());
  for (const auto& c : cc.changes) {
    out.push_back(static_cast<char>(c.type));
    util::put_varint64(out, c.node_id);
  }
  util::put_length_prefixed(out, cc.context);
  return out;
}

Result<ConfChangeV2> decode_conf_change(std::string_view data) {
  auto bad = [](std::string_view why) {
    return Status::corruption(fmt::format("conf change: {}", why));
  };
  if (data.size() < 2) return bad("truncated header");
  if (static_cast<std::uint8_t>(data[0]) != kConfChangeVersion) return bad("unknown version");
  const auto transition = static_cast<std::uint8_t>(data[1]);
  if (transition > kMaxTransition) return bad("unknown transition");
  data.remove_prefix(2);
  ConfChangeV2 cc;
  cc.transition = static_cast<ConfChangeTransition>(transition);
  std::uint64_t n = 0;
  if (!util::get_varint64(data, n)) return bad("truncated change count");
  // Each change takes at least two bytes: reject absurd counts before reserving.
  if (n > data.size() / 2) return bad("change count exceeds input");
  cc.changes.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    if (data.empty()) return bad("truncated change");
    const auto type = static_cast<std::uint8_t>(data[0]);
    if (type > kMaxChangeType) return bad("unknown change type");
    data.remove_prefix(1);
    ConfChangeSingle c;
    c.type = static_cast<ConfChangeType>(type);
    if (!util::get_varint64(data, c.node_id)) return bad("truncated node id");
    cc.changes.push_back(c);
  }
  std::string_view ctx;
  if (!util::get_length_prefixed(data, ctx)) return bad("truncated context");
  cc.context = std::string(ctx);
  if (!data.empty()) return bad("trailing bytes");
  return cc;
}

std::string describe(const ConfChangeV2& cc) {
  if (cc.changes.empty()) return "leave";
  std::string out;
  for (const auto& c : cc.changes) {
    if (!out.empty()) out.push_back(' ');
    switch (c.type) {
      case ConfChangeType::kAddNode: out += fmt::format("v{}", c.node_id); break;
      case ConfChangeType::kRemoveNode: out += fmt::format("r{}", c.node_id); break;
      case ConfChangeType::kAddLearnerNode: out += fmt::format("l{}", c.node_id); break;
    }
  }
  if (cc.transition == ConfChangeTransition::kJointImplicit) out += " (joint-implicit)";
  if (cc.transition == ConfChangeTransition::kJointExplicit) out += " (joint-explicit)";
  return out;
}

std::string describe(const Entry& e) {
  if (e.type == EntryType::kConfChange) {
    auto cc = decode_conf_change(e.data);
    if (cc.is_ok())
      return fmt::format("{}/{} EntryConfChangeV2 {}", e.term, e.index, describe(*cc));
    return fmt::format("{}/{} EntryConfChangeV2 <corrupt {}>", e.term, e.index, quoted(e.data));
  }
  return fmt::format("{}/{} EntryNormal {}", e.term, e.index, quoted(e.data));
}

std::string describe(const HardState& hs) {
  return fmt::format("Term:{} Vote:{} Commit:{}", hs.term, hs.vote, hs.commit);
}

std::string describe(const SoftState& ss) {
  return fmt::format("Lead:{} State:{}", ss.leader_id, to_string(ss.role));
}

std::string describe(const ConfState& cs) {
  std::string out = fmt::format("Voters:{}", ids(cs.voters));
  if (!cs.voters_outgoing.empty())
    out += fmt::format(" VotersOutgoing:{}", ids(cs.voters_outgoing));
  if (!cs.learners.empty()) out += fmt::format(" Learners:{}", ids(cs.learners));
  if (!cs.learners_next.empty()) out += fmt::format(" LearnersNext:{}", ids(cs.learners_next));
  if (cs.auto_leave) out += " AutoLeave:true";
  return out;
}

std::string describe(const Snapshot& s) {
  return fmt::format("Index:{} Term:{} ConfState:{{{}}}", s.metadata.index, s.metadata.term,
                     describe(s.metadata.conf_state));
}

std::string describe(const Message& m) {
  std::string out = fmt::format("{}->{} {} Term:{} Log:{}/{}", m.from, m.to, to_string(m.type),
                                m.term, m.log_term, m.index);
  if (m.reject) out += fmt::format(" Rejected (Hint: {})", m.reject_hint);
  if (m.commit != 0) out += fmt::format(" Commit:{}", m.commit);
  if (!m.entries.empty()) {
    out += " Entries:[";
    for (std::size_t i = 0; i < m.entries.size(); ++i) {
      if (i > 0) out += ", ";
      out += describe(m.entries[i]);
    }
    out += "]";
  }
  if (m.snapshot && !m.snapshot->empty())
    out += fmt::format(" Snapshot: {}", describe(*m.snapshot));
  if (!m.context.empty()) out += fmt::format(" Context:{}", quoted(m.context));
  return out;
}

}  // namespace kvcore::raft
