// The raftstore's types to and from protobuf (lib/proto/raftstore.proto).
// The only file that includes the generated header. The snapshot data
// layout is in snapshot_data.cpp.
//
// Frame layout: the serialized proto::Frame, then a 4-byte little-endian
// CRC-32C of it. Protobuf alone would parse most damaged frames into wrong
// values; the checksum makes transport damage a refused frame instead.
//
#include "raftstore/codec.hpp"

#include <climits>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "raftstore.pb.h"
#include "util/coding.hpp"
#include "util/crc32c.hpp"

namespace kvcore::raftstore {
namespace {

namespace pb = ::kvcore::proto;

constexpr std::size_t kCrcBytes = 4;

std::string num(std::uint64_t v) { return std::to_string(v); }
// Protobuf enums are open: a parsed field holds any int32.
std::string enum_num(int v) { return std::to_string(v); }

// Protobuf's parsers take an int size.
template <class P>
bool parse(std::string_view in, P* p) {
  if (in.size() > static_cast<std::size_t>(INT_MAX)) return false;
  return p->ParseFromArray(in.data(), static_cast<int>(in.size()));
}

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// --- Enums: mapped by name, never by number ---------------------------------
// A C++ value outside its enum (a bug upstream) encodes as a number no
// decoder accepts, rather than as some valid value.
constexpr int kNoSuchEnumValue = -1;

pb::PeerState to_pb(PeerState s) {
  switch (s) {
    case PeerState::kNormal: return pb::PEER_STATE_NORMAL;
    case PeerState::kTombstone: return pb::PEER_STATE_TOMBSTONE;
    case PeerState::kMerging: return pb::PEER_STATE_MERGING;
  }
  return static_cast<pb::PeerState>(kNoSuchEnumValue);
}
std::optional<PeerState> from_pb(pb::PeerState s) {
  switch (s) {
    case pb::PEER_STATE_NORMAL: return PeerState::kNormal;
    case pb::PEER_STATE_TOMBSTONE: return PeerState::kTombstone;
    case pb::PEER_STATE_MERGING: return PeerState::kMerging;
    default: return std::nullopt;
  }
}

pb::ColumnFamily to_pb(CF cf) {
  switch (cf) {
    case CF::kDefault: return pb::CF_DEFAULT;
    case CF::kLock: return pb::CF_LOCK;
    case CF::kWrite: return pb::CF_WRITE;
    case CF::kRaft: return pb::CF_RAFT;
  }
  return static_cast<pb::ColumnFamily>(kNoSuchEnumValue);
}
std::optional<CF> from_pb(pb::ColumnFamily cf) {
  switch (cf) {
    case pb::CF_DEFAULT: return CF::kDefault;
    case pb::CF_LOCK: return CF::kLock;
    case pb::CF_WRITE: return CF::kWrite;
    case pb::CF_RAFT: return CF::kRaft;
    default: return std::nullopt;
  }
}

pb::WriteOpKind to_pb(WriteOpKind k) {
  switch (k) {
    case WriteOpKind::kPut: return pb::WRITE_OP_PUT;
    case WriteOpKind::kDelete: return pb::WRITE_OP_DELETE;
    case WriteOpKind::kDeleteRange: return pb::WRITE_OP_DELETE_RANGE;
  }
  return static_cast<pb::WriteOpKind>(kNoSuchEnumValue);
}
std::optional<WriteOpKind> from_pb(pb::WriteOpKind k) {
  switch (k) {
    case pb::WRITE_OP_PUT: return WriteOpKind::kPut;
    case pb::WRITE_OP_DELETE: return WriteOpKind::kDelete;
    case pb::WRITE_OP_DELETE_RANGE: return WriteOpKind::kDeleteRange;
    default: return std::nullopt;
  }
}

pb::ConfChangeType to_pb(raft::ConfChangeType t) {
  switch (t) {
    case raft::ConfChangeType::kAddNode: return pb::CONF_CHANGE_ADD_NODE;
    case raft::ConfChangeType::kRemoveNode: return pb::CONF_CHANGE_REMOVE_NODE;
    case raft::ConfChangeType::kAddLearnerNode: return pb::CONF_CHANGE_ADD_LEARNER_NODE;
  }
  return static_cast<pb::ConfChangeType>(kNoSuchEnumValue);
}
std::optional<raft::ConfChangeType> from_pb(pb::ConfChangeType t) {
  switch (t) {
    case pb::CONF_CHANGE_ADD_NODE: return raft::ConfChangeType::kAddNode;
    case pb::CONF_CHANGE_REMOVE_NODE: return raft::ConfChangeType::kRemoveNode;
    case pb::CONF_CHANGE_ADD_LEARNER_NODE: return raft::ConfChangeType::kAddLearnerNode;
    default: return std::nullopt;
  }
}

pb::ExtraMessage to_pb(ExtraMessage e) {
  switch (e) {
    case ExtraMessage::kNone: return pb::EXTRA_MESSAGE_NONE;
    case ExtraMessage::kGcPeer: return pb::EXTRA_MESSAGE_GC_PEER;
    case ExtraMessage::kCheckStalePeer: return pb::EXTRA_MESSAGE_CHECK_STALE_PEER;
  }
  return static_cast<pb::ExtraMessage>(kNoSuchEnumValue);
}
std::optional<ExtraMessage> from_pb(pb::ExtraMessage e) {
  switch (e) {
    case pb::EXTRA_MESSAGE_NONE: return ExtraMessage::kNone;
    case pb::EXTRA_MESSAGE_GC_PEER: return ExtraMessage::kGcPeer;
    case pb::EXTRA_MESSAGE_CHECK_STALE_PEER: return ExtraMessage::kCheckStalePeer;
    default: return std::nullopt;
  }
}

pb::EntryType to_pb(raft::EntryType t) {
  switch (t) {
    case raft::EntryType::kNormal: return pb::ENTRY_TYPE_NORMAL;
    case raft::EntryType::kConfChange: return pb::ENTRY_TYPE_CONF_CHANGE;
  }
  return static_cast<pb::EntryType>(kNoSuchEnumValue);
}
std::optional<raft::EntryType> from_pb(pb::EntryType t) {
  switch (t) {
    case pb::ENTRY_TYPE_NORMAL: return raft::EntryType::kNormal;
    case pb::ENTRY_TYPE_CONF_CHANGE: return raft::EntryType::kConfChange;
    default: return std::nullopt;
  }
}

pb::MessageType to_pb(raft::MessageType t) {
  using T = raft::MessageType;
  switch (t) {
    case T::kHup: return pb::MESSAGE_TYPE_HUP;
    case T::kBeat: return pb::MESSAGE_TYPE_BEAT;
    case T::kPropose: return pb::MESSAGE_TYPE_PROPOSE;
    case T::kAppend: return pb::MESSAGE_TYPE_APPEND;
    case T::kAppendResponse: return pb::MESSAGE_TYPE_APPEND_RESPONSE;
    case T::kVote: return pb::MESSAGE_TYPE_VOTE;
    case T::kVoteResponse: return pb::MESSAGE_TYPE_VOTE_RESPONSE;
    case T::kPreVote: return pb::MESSAGE_TYPE_PRE_VOTE;
    case T::kPreVoteResponse: return pb::MESSAGE_TYPE_PRE_VOTE_RESPONSE;
    case T::kSnapshot: return pb::MESSAGE_TYPE_SNAPSHOT;
    case T::kHeartbeat: return pb::MESSAGE_TYPE_HEARTBEAT;
    case T::kHeartbeatResponse: return pb::MESSAGE_TYPE_HEARTBEAT_RESPONSE;
    case T::kUnreachable: return pb::MESSAGE_TYPE_UNREACHABLE;
    case T::kSnapshotStatus: return pb::MESSAGE_TYPE_SNAPSHOT_STATUS;
    case T::kCheckQuorum: return pb::MESSAGE_TYPE_CHECK_QUORUM;
    case T::kTransferLeader: return pb::MESSAGE_TYPE_TRANSFER_LEADER;
    case T::kTimeoutNow: return pb::MESSAGE_TYPE_TIMEOUT_NOW;
    case T::kReadIndex: return pb::MESSAGE_TYPE_READ_INDEX;
    case T::kReadIndexResponse: return pb::MESSAGE_TYPE_READ_INDEX_RESPONSE;
  }
  return pb::MESSAGE_TYPE_UNSPECIFIED;
}
std::optional<raft::MessageType> from_pb(pb::MessageType t) {
  using T = raft::MessageType;
  switch (t) {
    case pb::MESSAGE_TYPE_HUP: return T::kHup;
    case pb::MESSAGE_TYPE_BEAT: return T::kBeat;
    case pb::MESSAGE_TYPE_PROPOSE: return T::kPropose;
    case pb::MESSAGE_TYPE_APPEND: return T::kAppend;
    case pb::MESSAGE_TYPE_APPEND_RESPONSE: return T::kAppendResponse;
    case pb::MESSAGE_TYPE_VOTE: return T::kVote;
    case pb::MESSAGE_TYPE_VOTE_RESPONSE: return T::kVoteResponse;
    case pb::MESSAGE_TYPE_PRE_VOTE: return T::kPreVote;
    case pb::MESSAGE_TYPE_PRE_VOTE_RESPONSE: return T::kPreVoteResponse;
    case pb::MESSAGE_TYPE_SNAPSHOT: return T::kSnapshot;
    case pb::MESSAGE_TYPE_HEARTBEAT: return T::kHeartbeat;
    case pb::MESSAGE_TYPE_HEARTBEAT_RESPONSE: return T::kHeartbeatResponse;
    case pb::MESSAGE_TYPE_UNREACHABLE: return T::kUnreachable;
    case pb::MESSAGE_TYPE_SNAPSHOT_STATUS: return T::kSnapshotStatus;
    case pb::MESSAGE_TYPE_CHECK_QUORUM: return T::kCheckQuorum;
    case pb::MESSAGE_TYPE_TRANSFER_LEADER: return T::kTransferLeader;
    case pb::MESSAGE_TYPE_TIMEOUT_NOW: return T::kTimeoutNow;
    case pb::MESSAGE_TYPE_READ_INDEX: return T::kReadIndex;
    case pb::MESSAGE_TYPE_READ_INDEX_RESPONSE: return T::kReadIndexResponse;
    default: return std::nullopt;
  }
}

// The name of a message type for error messages (raft::to_string would tie
// this file, and the codec fuzz target, to the raft library).
std::string type_name(raft::MessageType t) { return pb::MessageType_Name(to_pb(t)); }

// Messages travel between stores unless raft only ever makes them for itself.
// A proposal is refused too: this store forwards proposals as commands of its
// own, never as raft messages.
bool travels_between_stores(raft::MessageType t) {
  using T = raft::MessageType;
  switch (t) {
    case T::kHup:
    case T::kBeat:
    case T::kPropose:
    case T::kUnreachable:
    case T::kSnapshotStatus:
    case T::kCheckQuorum: return false;
    default: return true;
  }
}

// --- Plain structs ----------------------------------------------------------

void put(const RegionEpoch& e, pb::RegionEpoch* p) {
  p->set_conf_ver(e.conf_ver);
  p->set_version(e.version);
}
RegionEpoch get(const pb::RegionEpoch& p) { return {p.conf_ver(), p.version()}; }

void put(const PeerMeta& m, pb::PeerMeta* p) {
  p->set_id(m.id);
  p->set_store_id(m.store_id);
  p->set_learner(m.learner);
}
PeerMeta get(const pb::PeerMeta& p) { return {p.id(), p.store_id(), p.learner()}; }

void put(const RegionMeta& r, pb::RegionMeta* p) {
  p->set_id(r.id);
  p->set_start_key(r.start_key);
  p->set_end_key(r.end_key);
  put(r.epoch, p->mutable_epoch());
  p->mutable_peers()->Reserve(static_cast<int>(r.peers.size()));
  for (const auto& peer : r.peers) put(peer, p->add_peers());
}
RegionMeta get(pb::RegionMeta& p) {
  RegionMeta r;
  r.id = p.id();
  r.start_key = std::move(*p.mutable_start_key());
  r.end_key = std::move(*p.mutable_end_key());
  r.epoch = get(p.epoch());
  r.peers.reserve(static_cast<std::size_t>(p.peers_size()));
  for (const auto& peer : p.peers()) r.peers.push_back(get(peer));
  return r;
}

template <class Field>
void put_ids(const std::vector<raft::NodeId>& ids, Field* f) {
  f->Reserve(static_cast<int>(ids.size()));
  for (auto id : ids) f->Add(id);
}
template <class Field>
std::vector<raft::NodeId> get_ids(const Field& f) {
  return std::vector<raft::NodeId>(f.begin(), f.end());
}

void put(const raft::ConfState& c, pb::ConfState* p) {
  put_ids(c.voters, p->mutable_voters());
  put_ids(c.learners, p->mutable_learners());
  put_ids(c.voters_outgoing, p->mutable_voters_outgoing());
  put_ids(c.learners_next, p->mutable_learners_next());
  p->set_auto_leave(c.auto_leave);
}
raft::ConfState get(const pb::ConfState& p) {
  raft::ConfState c;
  c.voters = get_ids(p.voters());
  c.learners = get_ids(p.learners());
  c.voters_outgoing = get_ids(p.voters_outgoing());
  c.learners_next = get_ids(p.learners_next());
  c.auto_leave = p.auto_leave();
  return c;
}

void put(const raft::SnapshotMetadata& m, pb::SnapshotMetadata* p) {
  put(m.conf_state, p->mutable_conf_state());
  p->set_index(m.index);
  p->set_term(m.term);
}
raft::SnapshotMetadata get(const pb::SnapshotMetadata& p) {
  return {get(p.conf_state()), p.index(), p.term()};
}

void put(const raft::Entry& e, pb::Entry* p) {
  p->set_term(e.term);
  p->set_index(e.index);
  p->set_type(to_pb(e.type));
  p->set_data(e.data);
}

// The snapshot's data is not encoded: it travels in chunks.
void put(const raft::Message& m, pb::Message* p) {
  p->set_type(to_pb(m.type));
  p->set_to(m.to);
  p->set_from(m.from);
  p->set_term(m.term);
  p->set_log_term(m.log_term);
  p->set_index(m.index);
  p->mutable_entries()->Reserve(static_cast<int>(m.entries.size()));
  for (const auto& e : m.entries) put(e, p->add_entries());
  p->set_commit(m.commit);
  if (m.snapshot) put(m.snapshot->metadata, p->mutable_snapshot());
  p->set_reject(m.reject);
  p->set_reject_hint(m.reject_hint);
  p->set_context(m.context);
  p->set_lease_stamp(m.lease_stamp);
}

// Corruption for an enum out of range. A decoded snapshot has empty data.
Status get(pb::Message& p, raft::Message* m) {
  const auto type = from_pb(p.type());
  if (!type) return Status::corruption("message type " + enum_num(p.type()) + " out of range");
  m->type = *type;
  m->to = p.to();
  m->from = p.from();
  m->term = p.term();
  m->log_term = p.log_term();
  m->index = p.index();
  m->entries.reserve(static_cast<std::size_t>(p.entries_size()));
  for (int i = 0; i < p.entries_size(); ++i) {
    auto& pe = *p.mutable_entries(i);
    const auto et = from_pb(pe.type());
    if (!et) {
      return Status::corruption("entry " + num(static_cast<std::uint64_t>(i)) + " (index " +
                                num(pe.index()) + "): entry type " + enum_num(pe.type()) +
                                " out of range");
    }
    raft::Entry e;
    e.term = pe.term();
    e.index = pe.index();
    e.type = *et;
    e.data = std::move(*pe.mutable_data());
    m->entries.push_back(std::move(e));
  }
  m->commit = p.commit();
  if (p.has_snapshot()) {
    auto snap = std::make_shared<raft::Snapshot>();
    snap->metadata = get(p.snapshot());
    m->snapshot = std::move(snap);
  }
  m->reject = p.reject();
  m->reject_hint = p.reject_hint();
  m->context = std::move(*p.mutable_context());
  m->lease_stamp = p.lease_stamp();
  return Status::ok();
}

void put(const MergeState& m, pb::MergeState* p) {
  p->set_min_index(m.min_index);
  put(m.target, p->mutable_target());
  p->set_commit(m.commit);
}
MergeState get(pb::MergeState& p) {
  return MergeState{p.min_index(), get(*p.mutable_target()), p.commit()};
}

void put(const ApplyState& s, pb::ApplyState* p) {
  p->set_applied_index(s.applied_index);
  p->set_applied_term(s.applied_term);
  p->set_truncated_index(s.truncated_index);
  p->set_truncated_term(s.truncated_term);
  put(s.region, p->mutable_region());
  put(s.conf_state, p->mutable_conf_state());
  if (s.merge_state) put(*s.merge_state, p->mutable_merge_state());
}

// Corruption for an entry type out of range.
Status get(pb::Entry& pe, raft::Entry* e) {
  const auto et = from_pb(pe.type());
  if (!et) return Status::corruption("entry type " + enum_num(pe.type()) + " out of range");
  e->term = pe.term();
  e->index = pe.index();
  e->type = *et;
  e->data = std::move(*pe.mutable_data());
  return Status::ok();
}

void put(const RaftEnvelope& m, pb::RaftEnvelope* p) {
  p->set_region_id(m.region_id);
  put(m.from_peer, p->mutable_from_peer());
  put(m.to_peer, p->mutable_to_peer());
  put(m.epoch, p->mutable_epoch());
  put(m.message, p->mutable_message());
  p->set_hibernate(m.hibernate);
  if (m.extra != ExtraMessage::kNone) p->set_extra(to_pb(m.extra));
}

void put(const SnapshotChunk& c, pb::SnapshotChunk* p) {
  p->set_region_id(c.region_id);
  put(c.from_peer, p->mutable_from_peer());
  put(c.to_peer, p->mutable_to_peer());
  put(c.epoch, p->mutable_epoch());
  put(c.message, p->mutable_message());
  p->set_offset(c.offset);
  p->set_total_bytes(c.total_bytes);
  p->set_data(c.data);
}

// --- Frame checks -------------------------------------------------------------

// Why a message (of an envelope or a chunk) may not be delivered to
// `self_store` in a frame from `from_store`; empty when it may.
std::string route_problem(std::uint64_t region_id, const PeerMeta& from_peer,
                          const PeerMeta& to_peer, const raft::Message& m, std::uint64_t from_store,
                          std::uint64_t self_store) {
  if (region_id == 0) return "region id 0";
  if (from_peer.id == 0 || to_peer.id == 0) return "peer id 0";
  if (to_peer.store_id != self_store) {
    return "to_peer " + num(to_peer.id) + " is on store " + num(to_peer.store_id) +
           ", not on this store";
  }
  if (from_peer.store_id != from_store) {
    return "from_peer " + num(from_peer.id) + " is on store " + num(from_peer.store_id) +
           ", not on the sending store " + num(from_store);
  }
  if (m.to != to_peer.id) {
    return "message to " + num(m.to) + " in an envelope for peer " + num(to_peer.id);
  }
  if (m.from != from_peer.id) {
    return "message from " + num(m.from) + " in an envelope from peer " + num(from_peer.id);
  }
  if (!travels_between_stores(m.type)) {
    return type_name(m.type) + " does not travel between stores";
  }
  return {};
}

Status bad_message(const char* what, std::size_t i, std::uint64_t region_id,
                   std::string_view problem) {
  return Status::invalid_argument("frame: " + std::string(what) + " " + num(i) + " (region " +
                                  num(region_id) + "): " + std::string(problem));
}

}  // namespace

// --- States and commands ------------------------------------------------------

std::string encode_region_state(const RegionLocalState& s) {
  pb::RegionLocalState p;
  p.set_state(to_pb(s.state));
  put(s.region, p.mutable_region());
  if (s.merge_state) put(*s.merge_state, p.mutable_merge_state());
  return p.SerializeAsString();
}

Result<RegionLocalState> decode_region_state(std::string_view in) {
  pb::RegionLocalState p;
  if (!parse(in, &p)) return Status::corruption("region state: does not parse");
  const auto state = from_pb(p.state());
  if (!state) {
    return Status::corruption("region state: peer state " + enum_num(p.state()) + " out of range");
  }
  RegionLocalState s;
  s.state = *state;
  s.region = get(*p.mutable_region());
  if (p.has_merge_state()) s.merge_state = get(*p.mutable_merge_state());
  return s;
}

std::string encode_apply_state(const ApplyState& s) {
  pb::ApplyState p;
  put(s, &p);
  return p.SerializeAsString();
}

Result<ApplyState> decode_apply_state(std::string_view in) {
  pb::ApplyState p;
  if (!parse(in, &p)) return Status::corruption("apply state: does not parse");
  ApplyState s;
  s.applied_index = p.applied_index();
  s.applied_term = p.applied_term();
  s.truncated_index = p.truncated_index();
  s.truncated_term = p.truncated_term();
  s.region = get(*p.mutable_region());
  s.conf_state = get(p.conf_state());
  if (p.has_merge_state()) s.merge_state = get(*p.mutable_merge_state());
  return s;
}

std::string encode_store_ident(const StoreIdent& s) {
  pb::StoreIdent p;
  p.set_cluster_id(s.cluster_id);
  p.set_store_id(s.store_id);
  return p.SerializeAsString();
}

Result<StoreIdent> decode_store_ident(std::string_view in) {
  pb::StoreIdent p;
  if (!parse(in, &p)) return Status::corruption("store ident: does not parse");
  return StoreIdent{p.cluster_id(), p.store_id()};
}

std::string encode_cmd(const RaftCmd& cmd) {
  pb::RaftCmd p;
  auto* h = p.mutable_header();
  h->set_region_id(cmd.header.region_id);
  h->set_peer_id(cmd.header.peer_id);
  put(cmd.header.epoch, h->mutable_epoch());
  p.mutable_writes()->Reserve(static_cast<int>(cmd.writes.size()));
  for (const auto& w : cmd.writes) {
    auto* pw = p.add_writes();
    pw->set_kind(to_pb(w.kind));
    pw->set_cf(to_pb(w.cf));
    pw->set_key(w.key);
    pw->set_value(w.value);
  }
  p.mutable_conditions()->Reserve(static_cast<int>(cmd.conditions.size()));
  for (const auto& c : cmd.conditions) {
    auto* pc = p.add_conditions();
    pc->set_key(c.key);
    if (c.expected) pc->set_value(*c.expected);
  }
  if (cmd.compact_log) {
    p.mutable_compact_log()->set_compact_index(cmd.compact_log->compact_index);
    p.mutable_compact_log()->set_compact_term(cmd.compact_log->compact_term);
  }
  if (cmd.batch_split) {
    auto* bs = p.mutable_batch_split();
    for (const auto& k : cmd.batch_split->split_keys) bs->add_split_keys(k);
    for (const auto& r : cmd.batch_split->new_regions) {
      auto* pr = bs->add_new_regions();
      pr->set_region_id(r.region_id);
      for (auto id : r.peer_ids) pr->add_peer_ids(id);
    }
  }
  if (cmd.change_peer) {
    auto* cp = p.mutable_change_peer();
    for (const auto& c : cmd.change_peer->changes) {
      auto* pc = cp->add_changes();
      pc->set_type(to_pb(c.type));
      put(c.peer, pc->mutable_peer());
    }
  }
  if (cmd.prepare_merge) {
    auto* pm = p.mutable_prepare_merge();
    pm->set_min_index(cmd.prepare_merge->min_index);
    put(cmd.prepare_merge->target, pm->mutable_target());
  }
  if (cmd.commit_merge) {
    auto* cm = p.mutable_commit_merge();
    put(cmd.commit_merge->source, cm->mutable_source());
    cm->set_commit(cmd.commit_merge->commit);
    for (const auto& e : cmd.commit_merge->entries) put(e, cm->add_entries());
  }
  if (cmd.rollback_merge) p.mutable_rollback_merge()->set_commit(cmd.rollback_merge->commit);
  return p.SerializeAsString();
}

bool is_commit_merge_cmd(std::string_view in) noexcept {
  constexpr std::uint64_t kCommitMergeField = 7;  // RaftCmd.commit_merge
  std::size_t pos = 0;
  const auto varint = [&](std::uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && pos < in.size(); shift += 7) {
      const auto b = static_cast<std::uint8_t>(in[pos++]);
      *v |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80u) == 0) return true;
    }
    return false;
  };
  while (pos < in.size()) {
    std::uint64_t tag = 0;
    if (!varint(&tag)) return false;
    const std::uint64_t skip_varint_or_len = tag & 7u;
    std::uint64_t n = 0;
    switch (skip_varint_or_len) {
      case 0:
        if (!varint(&n)) return false;
        break;
      case 1: n = 8; break;
      case 5: n = 4; break;
      case 2:
        if ((tag >> 3) == kCommitMergeField) return true;
        if (!varint(&n)) return false;
        break;
      default: return false;
    }
    if (skip_varint_or_len != 0) {
      if (n > in.size() - pos) return false;
      pos += static_cast<std::size_t>(n);
    }
  }
  return false;
}

Result<RaftCmd> decode_cmd(std::string_view in) {
  pb::RaftCmd p;
  if (!parse(in, &p)) return Status::corruption("command: does not parse");
  RaftCmd cmd;
  cmd.header.region_id = p.header().region_id();
  cmd.header.peer_id = p.header().peer_id();
  cmd.header.epoch = get(p.header().epoch());
  cmd.writes.reserve(static_cast<std::size_t>(p.writes_size()));
  for (int i = 0; i < p.writes_size(); ++i) {
    auto& pw = *p.mutable_writes(i);
    const auto kind = from_pb(pw.kind());
    if (!kind) {
      return Status::corruption("command: write " + num(static_cast<std::uint64_t>(i)) +
                                ": write op kind " + enum_num(pw.kind()) + " out of range");
    }
    const auto cf = from_pb(pw.cf());
    if (!cf) {
      return Status::corruption("command: write " + num(static_cast<std::uint64_t>(i)) +
                                ": column family " + enum_num(pw.cf()) + " out of range");
    }
    cmd.writes.push_back(
        {*kind, *cf, std::move(*pw.mutable_key()), std::move(*pw.mutable_value())});
  }
  cmd.conditions.reserve(static_cast<std::size_t>(p.conditions_size()));
  for (auto& pc : *p.mutable_conditions()) {
    WriteCondition c;
    c.key = std::move(*pc.mutable_key());
    if (pc.has_value()) c.expected = std::move(*pc.mutable_value());
    cmd.conditions.push_back(std::move(c));
  }
  if (p.has_compact_log()) {
    cmd.compact_log =
        CompactLogCmd{p.compact_log().compact_index(), p.compact_log().compact_term()};
  }
  if (p.has_batch_split()) {
    BatchSplitCmd bs;
    auto& pb_split = *p.mutable_batch_split();
    for (auto& k : *pb_split.mutable_split_keys()) bs.split_keys.push_back(std::move(k));
    for (const auto& r : pb_split.new_regions()) {
      bs.new_regions.push_back(SplitRegion{
          r.region_id(), std::vector<std::uint64_t>(r.peer_ids().begin(), r.peer_ids().end())});
    }
    cmd.batch_split = std::move(bs);
  }
  if (p.has_change_peer()) {
    ChangePeerCmd cp;
    for (auto& pc : *p.mutable_change_peer()->mutable_changes()) {
      const auto type = from_pb(pc.type());
      if (!type) {
        return Status::corruption("command: change peer type " + enum_num(pc.type()) +
                                  " out of range");
      }
      cp.changes.push_back(PeerChange{*type, get(pc.peer())});
    }
    cmd.change_peer = std::move(cp);
  }
  if (p.has_prepare_merge()) {
    auto& pm = *p.mutable_prepare_merge();
    cmd.prepare_merge = PrepareMergeCmd{pm.min_index(), get(*pm.mutable_target())};
  }
  if (p.has_commit_merge()) {
    auto& cm = *p.mutable_commit_merge();
    CommitMergeCmd c;
    c.source = get(*cm.mutable_source());
    c.commit = cm.commit();
    c.entries.reserve(static_cast<std::size_t>(cm.entries_size()));
    for (auto& pe : *cm.mutable_entries()) {
      raft::Entry e;
      KVCORE_RETURN_IF_ERROR(get(pe, &e).with_context("command: commit merge"));
      c.entries.push_back(std::move(e));
    }
    cmd.commit_merge = std::move(c);
  }
  if (p.has_rollback_merge()) cmd.rollback_merge = RollbackMergeCmd{p.rollback_merge().commit()};
  return cmd;
}

// --- Frames ---------------------------------------------------------------------

std::string encode_frame(const Frame& frame) {
  pb::Frame p;
  p.set_cluster_id(frame.cluster_id);
  p.set_from_store(frame.from_store);
  p.set_to_store(frame.to_store);
  p.mutable_messages()->Reserve(static_cast<int>(frame.messages.size()));
  for (const auto& m : frame.messages) put(m, p.add_messages());
  p.mutable_chunks()->Reserve(static_cast<int>(frame.chunks.size()));
  for (const auto& c : frame.chunks) put(c, p.add_chunks());
  std::string out = p.SerializeAsString();
  util::put_fixed32(out, util::crc32c(out));
  return out;
}

// What the envelope adds to its frame: the field's tag (field 4, one byte),
// its length, and the envelope itself. A frame's size is the sum of its
// parts plus at most 3 * 11 bytes of header and the 4-byte checksum.
std::size_t encoded_size(const RaftEnvelope& m) {
  pb::RaftEnvelope p;
  put(m, &p);
  const std::size_t body = p.ByteSizeLong();
  return 1 + varint_size(body) + body;
}

std::string_view to_string(FrameReject r) noexcept {
  switch (r) {
    case FrameReject::kNone: return "none";
    case FrameReject::kOversized: return "oversized";
    case FrameReject::kDecode: return "decode";
    case FrameReject::kClusterId: return "cluster_id";
    case FrameReject::kWrongStore: return "wrong_store";
    case FrameReject::kBadMessage: return "bad_message";
  }
  return "unknown";
}

Result<Frame> decode_frame(std::string_view bytes, const FrameCheck& check, FrameReject* reject) {
  FrameReject unused = FrameReject::kNone;
  if (reject == nullptr) reject = &unused;
  *reject = FrameReject::kNone;
  const auto refuse = [reject](FrameReject r, Status s) {
    *reject = r;
    return s;
  };

  if (bytes.size() > check.max_frame_bytes) {
    return refuse(
        FrameReject::kOversized,
        Status::invalid_argument("frame: " + num(bytes.size()) + " bytes, more than the limit of " +
                                 num(check.max_frame_bytes)));
  }
  if (bytes.size() < kCrcBytes) {
    return refuse(FrameReject::kDecode, Status::corruption("frame: " + num(bytes.size()) +
                                                           " bytes, too short for its checksum"));
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kCrcBytes);
  if (util::crc32c(body) != util::decode_fixed32(bytes.data() + body.size())) {
    return refuse(FrameReject::kDecode, Status::corruption("frame: checksum mismatch"));
  }
  pb::Frame p;
  if (!parse(body, &p)) {
    return refuse(FrameReject::kDecode, Status::corruption("frame: does not parse"));
  }
  if (p.cluster_id() != check.cluster_id) {
    return refuse(FrameReject::kClusterId,
                  Status::invalid_argument("frame: of cluster " + num(p.cluster_id()) +
                                           ", this store is in cluster " + num(check.cluster_id)));
  }
  if (p.to_store() != check.self_store || p.from_store() == 0 ||
      p.from_store() == check.self_store) {
    return refuse(FrameReject::kWrongStore,
                  Status::invalid_argument("frame: from store " + num(p.from_store()) +
                                           " to store " + num(p.to_store()) +
                                           ", received by store " + num(check.self_store)));
  }

  Frame frame;
  frame.cluster_id = p.cluster_id();
  frame.from_store = p.from_store();
  frame.to_store = p.to_store();

  frame.messages.reserve(static_cast<std::size_t>(p.messages_size()));
  for (int i = 0; i < p.messages_size(); ++i) {
    auto& pm = *p.mutable_messages(i);
    const auto idx = static_cast<std::size_t>(i);
    RaftEnvelope m;
    m.region_id = pm.region_id();
    m.from_peer = get(pm.from_peer());
    m.to_peer = get(pm.to_peer());
    m.epoch = get(pm.epoch());
    m.hibernate = pm.hibernate();
    if (Status s = get(*pm.mutable_message(), &m.message); !s.is_ok()) {
      return refuse(FrameReject::kBadMessage,
                    bad_message("message", idx, m.region_id, s.message()));
    }
    const auto extra = from_pb(pm.extra());
    if (!extra) {
      return refuse(FrameReject::kBadMessage,
                    bad_message("message", idx, m.region_id,
                                "extra message " + enum_num(pm.extra()) + " out of range"));
    }
    m.extra = *extra;
    std::string problem = route_problem(m.region_id, m.from_peer, m.to_peer, m.message,
                                        frame.from_store, check.self_store);
    if (problem.empty() && m.message.type == raft::MessageType::kSnapshot) {
      problem = "a snapshot message outside a chunk";
    }
    if (problem.empty() && m.extra != ExtraMessage::kNone &&
        (!m.message.entries.empty() || m.message.snapshot)) {
      problem = "an extra message carrying raft entries";
    }
    if (!problem.empty()) {
      return refuse(FrameReject::kBadMessage, bad_message("message", idx, m.region_id, problem));
    }
    frame.messages.push_back(std::move(m));
  }

  frame.chunks.reserve(static_cast<std::size_t>(p.chunks_size()));
  for (int i = 0; i < p.chunks_size(); ++i) {
    auto& pc = *p.mutable_chunks(i);
    const auto idx = static_cast<std::size_t>(i);
    SnapshotChunk c;
    c.region_id = pc.region_id();
    c.from_peer = get(pc.from_peer());
    c.to_peer = get(pc.to_peer());
    c.epoch = get(pc.epoch());
    if (Status s = get(*pc.mutable_message(), &c.message); !s.is_ok()) {
      return refuse(FrameReject::kBadMessage, bad_message("chunk", idx, c.region_id, s.message()));
    }
    c.offset = pc.offset();
    c.total_bytes = pc.total_bytes();
    c.data = std::move(*pc.mutable_data());
    std::string problem = route_problem(c.region_id, c.from_peer, c.to_peer, c.message,
                                        frame.from_store, check.self_store);
    if (problem.empty() && c.message.type != raft::MessageType::kSnapshot) {
      problem = "chunk of a " + type_name(c.message.type) + ", not of a snapshot";
    }
    if (problem.empty() && (!c.message.snapshot || c.message.snapshot->metadata.index == 0)) {
      problem = "chunk of a snapshot at index 0";
    }
    if (problem.empty() && (c.offset > c.total_bytes || c.data.size() > c.total_bytes - c.offset)) {
      problem = "chunk of " + num(c.data.size()) + " bytes at offset " + num(c.offset) +
                " exceeds the snapshot's " + num(c.total_bytes) + " bytes";
    }
    if (!problem.empty()) {
      return refuse(FrameReject::kBadMessage, bad_message("chunk", idx, c.region_id, problem));
    }
    frame.chunks.push_back(std::move(c));
  }
  return frame;
}

// --- Column family codes (snapshot data records) ----------------------------------

std::uint8_t cf_wire_code(CF cf) noexcept { return static_cast<std::uint8_t>(to_pb(cf)); }

std::optional<CF> cf_from_wire_code(std::uint8_t code) noexcept {
  return from_pb(static_cast<pb::ColumnFamily>(code));
}

}  // namespace kvcore::raftstore
