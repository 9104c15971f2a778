// Raft: construction, role transitions, ticks, elections and the
// term-checking front of step().
#include "raft/raft.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace kvcore::raft {

namespace {

MessageType vote_response_type(MessageType t) {
  return t == MessageType::kVote ? MessageType::kVoteResponse : MessageType::kPreVoteResponse;
}

Status dropped(std::string_view why) {
  return Status(Code::kUnavailable, fmt::format("raft: proposal dropped: {}", why),
                SubCode::kProposalDropped);
}

}  // namespace

Raft::Raft(const Config& c, RaftLog log)
    : id_(c.id),
      raft_log_(std::move(log)),
      tracker_(c.max_inflight_msgs, c.max_inflight_bytes),
      read_only_option_(c.read_only_option),
      max_uncommitted_size_(c.max_uncommitted_entries_size),
      max_msg_size_(c.max_size_per_msg),
      election_timeout_(c.election_tick),
      heartbeat_timeout_(c.heartbeat_tick),
      check_quorum_(c.check_quorum),
      pre_vote_(c.pre_vote),
      disable_proposal_forwarding_(c.disable_proposal_forwarding),
      rng_(c.seed ^ (c.id * 0x9e3779b97f4a7c15ull)) {
  lease_clock_ = static_cast<std::uint64_t>(c.election_tick) + 2;
}

Result<std::unique_ptr<Raft>> Raft::create(const Config& config, Storage& storage) {
  KVCORE_RETURN_IF_ERROR(config.validate());
  KVCORE_ASSIGN_OR_RETURN(RaftLog log,
                          RaftLog::create(storage, config.max_committed_size_per_ready));
  KVCORE_ASSIGN_OR_RETURN(RaftState rs, storage.initial_state());
  std::unique_ptr<Raft> r(new Raft(config, std::move(log)));
  KVCORE_ASSIGN_OR_RETURN(ConfigAndProgress cp, restore_conf_state(rs.conf_state, r->tracker_,
                                                                   r->raft_log_.last_index()));
  r->switch_to_config(std::move(cp));
  if (!rs.hard_state.empty()) {
    const Index commit = rs.hard_state.commit;
    if (commit < r->raft_log_.committed() || commit > r->raft_log_.last_index()) {
      return Status::corruption(fmt::format("raft: hard state commit {} is out of range [{}, {}]",
                                            commit, r->raft_log_.committed(),
                                            r->raft_log_.last_index()));
    }
    r->load_state(rs.hard_state);
  }
  if (config.applied > 0) {
    if (config.applied > r->raft_log_.committed()) {
      return Status::invalid_argument(
          fmt::format("raft config: applied {} is beyond the commit index {}", config.applied,
                      r->raft_log_.committed()));
    }
    r->raft_log_.applied_to(config.applied);
  }
  r->become_follower(r->term_, kNoNode);
  r->ticks_since_leader_contact_ = r->term_ > 0 ? 0 : config.election_tick;
  r->persisted_term_ = r->term_;
  r->persisted_vote_ = r->vote_;
  return r;
}

void Raft::load_state(const HardState& hs) {
  raft_log_.commit_to(hs.commit);
  term_ = hs.term;
  vote_ = hs.vote;
}

bool Raft::has_valid_lease() const {
  if (state_ != StateRole::kLeader || !check_quorum_ || lead_transferee_ != kNoNode ||
      timeout_now_sent_) {
    return false;
  }
  // A follower that received a message stamped s refuses votes until at
  // least s + election_timeout on its own clock, so the newest stamp a
  // quorum acknowledged bounds the lease (clocks are assumed to advance
  // together; see ReadOnlyOption::kLeaseBased).
  const Index acked =
      tracker_.config.voters.committed_index([this](NodeId id) -> std::optional<Index> {
        if (id == id_) return lease_clock_;
        auto it = tracker_.progress.find(id);
        if (it == tracker_.progress.end()) return std::nullopt;
        return it->second.lease_ack;
      });
  return acked + static_cast<std::uint64_t>(election_timeout_) > lease_clock_;
}

void Raft::reset_randomized_election_timeout() {
  randomized_election_timeout_ =
      election_timeout_ +
      static_cast<int>(rng_.uniform(static_cast<std::uint64_t>(election_timeout_)));
}

void Raft::reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  bcast_pending_ = false;
  timeout_now_sent_ = false;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_election_timeout();
  abort_leader_transfer();
  tracker_.reset_votes();
  const Index last = raft_log_.last_index();
  for (auto& [id, pr] : tracker_.progress) {
    const bool learner = pr.is_learner;
    pr = Progress(last + 1, tracker_.max_inflight(), tracker_.max_inflight_bytes(), learner);
    if (id == id_) pr.match = raft_log_.last_stable_index();
  }
  pending_conf_index_ = 0;
  uncommitted_size_ = 0;
  read_only_.reset();
  pending_read_index_msgs_.clear();
}

void Raft::become_follower(Term term, NodeId lead) {
  reset(term);
  lead_ = lead;
  state_ = StateRole::kFollower;
}

void Raft::become_candidate() {
  reset(term_ + 1);
  vote_ = id_;
  state_ = StateRole::kCandidate;
}

void Raft::become_pre_candidate() {
  // Keeps term and vote: a pre-vote round changes nothing durable. Votes
  // are reset so the pre-vote tally starts afresh.
  tracker_.reset_votes();
  lead_ = kNoNode;
  state_ = StateRole::kPreCandidate;
}

void Raft::become_leader() {
  reset(term_);
  lead_ = id_;
  state_ = StateRole::kLeader;
  auto it = tracker_.progress.find(id_);
  if (it != tracker_.progress.end()) {
    it->second.become_replicate();
    it->second.recent_active = true;
  }
  // Conf changes in the uncommitted tail may be pending: allow none until
  // the whole log so far is applied.
  pending_conf_index_ = raft_log_.last_index();
  Entry empty;
  append_entry({std::move(empty)});
}

void Raft::tick() {
  ++lease_clock_;
  if (ticks_since_leader_contact_ < election_timeout_) ++ticks_since_leader_contact_;
  if (state_ == StateRole::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  ++election_elapsed_;
  if (promotable() && past_election_timeout()) {
    election_elapsed_ = 0;
    Message m;
    m.type = MessageType::kHup;
    m.from = id_;
    (void)step(std::move(m));
  }
}

void Raft::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (check_quorum_) {
      Message m;
      m.type = MessageType::kCheckQuorum;
      m.from = id_;
      (void)step(std::move(m));
    }
    // A transfer that did not finish within an election timeout is aborted.
    if (state_ == StateRole::kLeader && lead_transferee_ != kNoNode) abort_leader_transfer();
  }
  if (state_ != StateRole::kLeader) return;
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    maybe_auto_leave();
    Message m;
    m.type = MessageType::kBeat;
    m.from = id_;
    (void)step(std::move(m));
  }
}

bool Raft::promotable() const {
  auto it = tracker_.progress.find(id_);
  return it != tracker_.progress.end() && !it->second.is_learner &&
         tracker_.config.voters.contains(id_) && !raft_log_.has_pending_snapshot();
}

void Raft::hup(CampaignType t) {
  if (state_ == StateRole::kLeader) return;
  if (!promotable()) return;
  // A committed but unapplied conf change may remove this node or change
  // the quorum: wait until it is applied.
  if (raft_log_.committed() > raft_log_.applied()) {
    auto ents = raft_log_.slice(raft_log_.applied() + 1, raft_log_.committed() + 1,
                                std::numeric_limits<std::uint64_t>::max());
    if (!ents.is_ok()) return;
    for (const auto& e : *ents) {
      if (e.type == EntryType::kConfChange) return;
    }
  }
  campaign(t);
}

void Raft::campaign(CampaignType t) {
  Term term;
  MessageType vote_type;
  if (t == CampaignType::kPreElection) {
    become_pre_candidate();
    vote_type = MessageType::kPreVote;
    term = term_ + 1;
  } else {
    become_candidate();
    vote_type = MessageType::kVote;
    term = term_;
  }
  for (NodeId id : tracker_.voter_ids()) {
    Message m;
    m.to = id;
    m.term = term;
    if (id == id_) {
      // Our own vote counts once the Ready carrying it is persisted.
      m.type = vote_response_type(vote_type);
      m.from = id_;
      self_msgs_.push_back(std::move(m));
      continue;
    }
    m.type = vote_type;
    m.index = raft_log_.last_index();
    m.log_term = raft_log_.last_term();
    if (t == CampaignType::kTransfer) m.context = std::string(kCampaignTransfer);
    send(std::move(m));
  }
}

VoteResult Raft::poll(NodeId id, bool granted) {
  tracker_.record_vote(id, granted);
  return tracker_.tally_votes().result;
}

void Raft::send(Message m) {
  // Forwarded messages keep their origin (a transfer request names the
  // transferee in `from`).
  if (m.from == kNoNode) m.from = id_;
  const MessageType t = m.type;
  const bool is_vote = t == MessageType::kVote || t == MessageType::kVoteResponse ||
                       t == MessageType::kPreVote || t == MessageType::kPreVoteResponse;
  // Votes carry their own term (pre-votes are in the future); proposals and
  // forwarded reads travel without one.
  if (!is_vote && t != MessageType::kPropose && t != MessageType::kReadIndex) m.term = term_;
  const bool leader_stream =
      state_ == StateRole::kLeader &&
      (t == MessageType::kAppend || t == MessageType::kHeartbeat || t == MessageType::kSnapshot);
  const bool needs_persist =
      t == MessageType::kAppendResponse || t == MessageType::kVoteResponse ||
      t == MessageType::kPreVoteResponse ||
      (!leader_stream && (term_ != persisted_term_ || vote_ != persisted_vote_));
  if (needs_persist) {
    msgs_after_persist_.push_back(std::move(m));
  } else {
    msgs_.push_back(std::move(m));
  }
}

Status Raft::step(Message m) {
  if (m.term == 0) {
    // Local message.
  } else if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      const bool force = m.context == kCampaignTransfer;
      const bool in_lease =
          check_quorum_ && ((lead_ != kNoNode && election_elapsed_ < election_timeout_) ||
                            ticks_since_leader_contact_ < election_timeout_);
      // A node that heard from a live leader within the election timeout
      // ignores votes: a partitioned node must not depose a healthy leader.
      if (!force && in_lease) return Status::ok();
    }
    if (m.type == MessageType::kPreVote) {
      // Never change the term in response to a pre-vote.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // The term is bumped when a pre-vote quorum is reached.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      become_follower(m.term, m.from);
    } else {
      become_follower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((check_quorum_ || pre_vote_) &&
        (m.type == MessageType::kHeartbeat || m.type == MessageType::kAppend)) {
      // A stale leader (for example one cut off by a partition) learns of the
      // newer term from this response and steps down; without it, a node
      // that ignored votes while in lease could never be replaced.
      Message r;
      r.to = m.from;
      r.type = MessageType::kAppendResponse;
      send(std::move(r));
    } else if (m.type == MessageType::kPreVote) {
      Message r;
      r.to = m.from;
      r.term = term_;
      r.type = MessageType::kPreVoteResponse;
      r.reject = true;
      send(std::move(r));
    }
    return Status::ok();
  }

  if ((m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
       m.type == MessageType::kSnapshot) &&
      state_ != StateRole::kLeader) {
    // From the leader of our term (older terms were dropped above).
    ticks_since_leader_contact_ = 0;
  }
  switch (m.type) {
    case MessageType::kHup:
      hup(pre_vote_ ? CampaignType::kPreElection : CampaignType::kElection);
      return Status::ok();
    case MessageType::kVote:
    case MessageType::kPreVote: handle_vote_request(m); return Status::ok();
    default: break;
  }
  switch (state_) {
    case StateRole::kLeader: return step_leader(m);
    case StateRole::kCandidate:
    case StateRole::kPreCandidate: return step_candidate(m);
    case StateRole::kFollower: return step_follower(m);
  }
  return Status::ok();
}

void Raft::handle_vote_request(const Message& m) {
  // We can vote when we already voted for the sender (a repeated request),
  // when we voted for nobody and know no leader in this term, or for a
  // pre-vote in a future term.
  const bool can_vote = vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) ||
                        (m.type == MessageType::kPreVote && m.term > term_);
  Message r;
  r.to = m.from;
  r.type = vote_response_type(m.type);
  if (can_vote && raft_log_.is_up_to_date(m.index, m.log_term)) {
    // The response carries the request's term: for a pre-vote that is a
    // future term, which the pre-candidate recognizes.
    r.term = m.term;
    send(std::move(r));
    if (m.type == MessageType::kVote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.term = term_;
    r.reject = true;
    send(std::move(r));
  }
}

Status Raft::step_candidate(Message& m) {
  const MessageType my_vote_resp = state_ == StateRole::kPreCandidate
                                       ? MessageType::kPreVoteResponse
                                       : MessageType::kVoteResponse;
  switch (m.type) {
    case MessageType::kPropose: return dropped("no leader (campaign in progress)");
    case MessageType::kReadIndex: return Status::ok();
    case MessageType::kAppend:
      become_follower(m.term, m.from);
      handle_append_entries(m);
      return Status::ok();
    case MessageType::kHeartbeat:
      become_follower(m.term, m.from);
      handle_heartbeat(m);
      return Status::ok();
    case MessageType::kSnapshot:
      become_follower(m.term, m.from);
      handle_snapshot(m);
      return Status::ok();
    case MessageType::kTimeoutNow: return Status::ok();
    default: break;
  }
  if (m.type != my_vote_resp) return Status::ok();
  switch (poll(m.from, !m.reject)) {
    case VoteResult::kWon:
      if (state_ == StateRole::kPreCandidate) {
        campaign(CampaignType::kElection);
      } else {
        become_leader();
        bcast_append();
      }
      break;
    case VoteResult::kLost:
      // A pre-candidate or candidate that lost goes back to follower in its
      // own (possibly just bumped) term.
      become_follower(term_, kNoNode);
      break;
    case VoteResult::kPending: break;
  }
  return Status::ok();
}

}  // namespace kvcore::raft
