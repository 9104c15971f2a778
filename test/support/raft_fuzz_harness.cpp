#include "raft_fuzz_harness.hpp"

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kvcore/raft/raw_node.hpp"
#include "kvcore/raft/storage.hpp"

namespace kvcore::raft::fuzz {
namespace {

constexpr std::uint64_t kAll = std::numeric_limits<std::uint64_t>::max();

// Reads the input as a stream of small numbers; an exhausted input reads 0.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool done() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  // In [0, n).
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : u8() % n; }
  // A signed offset in [-lo, hi].
  std::int64_t offset(int lo, int hi) {
    return static_cast<std::int64_t>(below(static_cast<std::uint64_t>(lo + hi + 1))) - lo;
  }
  std::string bytes(std::size_t max) {
    std::string s;
    const std::size_t n = below(max + 1);
    for (std::size_t i = 0; i < n && !done(); ++i) s += static_cast<char>(u8());
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

std::uint64_t shifted(std::uint64_t base, std::int64_t delta) {
  if (delta < 0 && static_cast<std::uint64_t>(-delta) > base) return 0;
  return base + static_cast<std::uint64_t>(delta);
}

// Message types a peer may send.
constexpr MessageType kRemoteTypes[] = {
    MessageType::kPropose,         MessageType::kAppend,
    MessageType::kAppendResponse,  MessageType::kVote,
    MessageType::kVoteResponse,    MessageType::kPreVote,
    MessageType::kPreVoteResponse, MessageType::kSnapshot,
    MessageType::kHeartbeat,       MessageType::kHeartbeatResponse,
    MessageType::kTransferLeader,  MessageType::kTimeoutNow,
    MessageType::kReadIndex,       MessageType::kReadIndexResponse,
};

class Harness {
 public:
  Harness(Reader& in, std::string* trace) : in_(in), trace_(trace) {}

  std::string run() {
    if (!setup()) return {};
    for (int op = 0; !in_.done() && op < 4096 && failure_.empty(); ++op) {
      switch (in_.below(12)) {
        case 0: {
          const auto ticks = 1 + in_.below(12);
          note("tick x" + std::to_string(ticks));
          for (std::uint64_t i = 0; i < ticks; ++i) node_->tick();
          break;
        }
        case 1:
        case 2: step(random_message()); break;
        case 3: note("propose: " + node_->propose(in_.bytes(8)).to_string()); break;
        case 4:
        case 5: handle_ready(); break;
        case 6: note("campaign: " + node_->campaign().to_string()); break;
        case 7:
          note("read_index");
          node_->read_index("r" + std::to_string(in_.u8()));
          break;
        case 8: {
          const NodeId to = peer();
          note("transfer_leader " + std::to_string(to));
          node_->transfer_leader(to);
          break;
        }
        case 9: conf_change(); break;
        case 10: respond(); break;
        default: misc(); break;
      }
      check();
    }
    return failure_;
  }

 private:
  bool setup() {
    const auto shape = in_.u8();
    ConfState cs;
    cs.voters = {1, 2, 3};
    if (shape & 1) cs.learners = {4};
    if (shape & 2) cs.voters.push_back(5);
    if ((shape & 12) == 12) {
      // Node 1 starts as a learner.
      cs.voters = {2, 3, 5};
      cs.learners = {1};
    }
    Snapshot snap;
    snap.metadata.conf_state = cs;
    snap.metadata.index = 1 + in_.below(4);
    snap.metadata.term = 1;
    if (!storage_.apply_snapshot(snap)) return false;
    Config c;
    c.id = 1;
    c.election_tick = 3 + static_cast<int>(in_.below(5));
    c.heartbeat_tick = 1;
    c.applied = snap.metadata.index;
    c.pre_vote = (shape & 16) != 0;
    c.check_quorum = (shape & 32) != 0;
    c.read_only_option =
        (c.check_quorum && (shape & 64) != 0) ? ReadOnlyOption::kLeaseBased : ReadOnlyOption::kSafe;
    c.max_size_per_msg = (shape & 128) ? 0 : 1024;
    c.max_inflight_msgs = 1 + in_.below(4);
    c.max_uncommitted_entries_size = in_.below(2) ? 0 : 256;
    c.seed = in_.u8();
    auto raw = RawNode::create(c, storage_);
    if (!raw) {
      failure_ = "create: " + raw.status().to_string();
      return false;
    }
    node_ = std::move(raw).value();
    conf_ = cs;
    applied_ = snap.metadata.index;
    last_term_ = node_->term();
    return true;
  }

  NodeId peer() { return 1 + in_.below(6); }  // includes self and unknown ids

  Index last_index() const {
    auto l = storage_.last_index();
    return l ? *l : 0;
  }

  Message random_message() {
    Message m;
    m.type = kRemoteTypes[in_.below(std::size(kRemoteTypes))];
    m.to = in_.below(8) == 0 ? peer() : 1;
    m.from = 2 + in_.below(5);
    m.term = shifted(node_->term(), in_.offset(2, 3));
    const Index last = last_index();
    m.index = shifted(last, in_.offset(4, 3));
    m.log_term = shifted(node_->term(), in_.offset(3, 1));
    m.commit = shifted(committed_, in_.offset(2, 4));
    m.reject = in_.below(4) == 0;
    m.reject_hint = shifted(last, in_.offset(3, 1));
    if (in_.below(3) == 0) m.context = in_.below(2) ? "transfer" : "r" + std::to_string(in_.u8());
    const auto n = in_.below(4);
    Term t = m.log_term;
    for (std::uint64_t i = 0; i < n; ++i) {
      Entry e;
      e.index = m.index + 1 + i;
      t = std::max(t, shifted(m.term, in_.offset(1, 0)));
      e.term = t;
      e.data = in_.bytes(4);
      if (in_.below(8) == 0) {
        e.type = EntryType::kConfChange;
        e.data = encode_conf_change(random_cc());
      }
      m.entries.push_back(std::move(e));
    }
    if (m.type == MessageType::kSnapshot) {
      auto snap = std::make_shared<Snapshot>();
      snap->metadata.index = shifted(last, in_.offset(2, 6));
      snap->metadata.term = shifted(node_->term(), in_.offset(1, 0));
      snap->metadata.conf_state.voters = {1, 2, 3};
      if (in_.below(3) == 0) snap->metadata.conf_state.learners = {4};
      if (in_.below(5) == 0) snap->metadata.conf_state.voters = {2, 3, 4};
      snap->data = in_.bytes(4);
      m.snapshot = std::move(snap);
    }
    return m;
  }

  ConfChangeV2 random_cc() {
    ConfChangeV2 cc;
    const auto n = in_.below(4);
    for (std::uint64_t i = 0; i < n; ++i) {
      cc.changes.push_back({static_cast<ConfChangeType>(in_.below(3)), peer()});
    }
    cc.transition = static_cast<ConfChangeTransition>(in_.below(3));
    return cc;
  }

  void step(Message m) {
    std::string d = trace_ != nullptr ? describe(m) : std::string();
    auto s = node_->step(std::move(m));
    if (trace_ != nullptr)
      note("step " + d + ": " + s.to_string() + " -> term " + std::to_string(node_->term()));
  }

  void conf_change() {
    auto cc = random_cc();
    auto s = node_->propose_conf_change(cc);
    note("propose_conf_change " + describe(cc) + ": " + s.to_string());
  }

  void misc() {
    switch (in_.below(4)) {
      case 0: node_->report_unreachable(peer()); break;
      case 1: node_->report_snapshot(peer(), in_.below(2) == 0); break;
      case 2: {
        // Compaction by the application, below what it has applied.
        auto first = storage_.first_index();
        if (first && applied_ >= *first) {
          const Index to = *first + in_.below(applied_ - *first + 1);
          (void)storage_.create_snapshot(applied_, conf_, "s");
          (void)storage_.compact(std::min(to, applied_));
        }
        break;
      }
      default: {
        // A local message type must be refused, never acted on.
        Message m;
        m.type = in_.below(2) ? MessageType::kHup : MessageType::kBeat;
        m.from = 2;
        m.to = 1;
        if (node_->step(m).is_ok()) failure_ = "a local message type was accepted by step()";
        break;
      }
    }
  }

  void handle_ready() {
    if (!node_->has_ready()) return;
    Ready rd = node_->ready();
    if (trace_ != nullptr) note("ready:\n" + describe(rd));
    const HardState prev = storage_.hard_state();
    if (rd.hard_state) {
      if (rd.hard_state->term < prev.term) fail("persisted term went down");
      if (rd.hard_state->commit < prev.commit) fail("persisted commit went down");
    }
    if (!rd.snapshot.empty()) {
      if (rd.snapshot.metadata.index < prev.commit) fail("snapshot below the persisted commit");
      if (!storage_.apply_snapshot(rd.snapshot)) fail("snapshot older than the storage's");
      applied_ = rd.snapshot.metadata.index;
      conf_ = rd.snapshot.metadata.conf_state;
    }
    if (!rd.entries.empty()) {
      const Index commit = storage_.hard_state().commit;
      auto first = storage_.first_index();
      for (const auto& e : rd.entries) {
        if (e.index > commit || !first || e.index < *first || e.index > last_index()) continue;
        auto old = storage_.entries(e.index, e.index + 1, kAll);
        if (old && !old->empty() && !((*old)[0] == e)) {
          fail("entry " + describe((*old)[0]) + " at or below commit " + std::to_string(commit) +
               " overwritten by " + describe(e));
        }
      }
      if (!storage_.append(rd.entries)) fail("Ready entries do not fit the log");
    }
    if (rd.hard_state) {
      storage_.set_hard_state(*rd.hard_state);
      if (rd.hard_state->commit > last_index()) fail("commit index beyond the persisted log");
    }
    for (auto& m : rd.messages) outbox_.push_back(std::move(m));
    for (auto& m : rd.persisted_messages) outbox_.push_back(std::move(m));
    for (const auto& e : rd.committed_entries) {
      if (e.index != applied_ + 1) {
        fail("applies " + std::to_string(e.index) + " after " + std::to_string(applied_));
      }
      applied_ = e.index;
      if (e.type == EntryType::kConfChange) {
        auto cc = decode_conf_change(e.data);
        if (cc) conf_ = node_->apply_conf_change(*cc);
      }
    }
    node_->advance(rd);
  }

  // Plays the peers: answers the node's outgoing messages the way healthy
  // peers would (the input decides whether each answer is a rejection).
  void respond() {
    std::vector<Message> out = std::move(outbox_);
    outbox_.clear();
    for (const auto& m : out) {
      if (m.to == 1) {
        step(m);
        continue;
      }
      if (in_.below(4) == 0) continue;
      Message r;
      r.from = m.to;
      r.to = 1;
      r.term = m.term;
      switch (m.type) {
        case MessageType::kVote:
          r.type = MessageType::kVoteResponse;
          r.reject = in_.below(4) == 0;
          break;
        case MessageType::kPreVote:
          r.type = MessageType::kPreVoteResponse;
          r.reject = in_.below(4) == 0;
          break;
        case MessageType::kAppend:
          r.type = MessageType::kAppendResponse;
          r.index = m.index + m.entries.size();
          if (in_.below(6) == 0) {
            r.reject = true;
            r.index = m.index;
            r.reject_hint = m.index == 0 ? 0 : m.index - 1;
            r.log_term = 0;
          }
          break;
        case MessageType::kHeartbeat:
          r.type = MessageType::kHeartbeatResponse;
          r.context = m.context;
          break;
        case MessageType::kSnapshot:
          r.type = MessageType::kAppendResponse;
          r.index = m.snapshot ? m.snapshot->metadata.index : 0;
          break;
        default: continue;
      }
      step(std::move(r));
    }
  }

  void check() {
    const Term t = node_->term();
    if (t < last_term_) fail("term went down from " + std::to_string(last_term_));
    last_term_ = t;
    const Index c = node_->status().hard_state.commit;
    if (c < committed_) fail("commit index went down from " + std::to_string(committed_));
    committed_ = c;
  }

  void fail(const std::string& what) {
    if (failure_.empty()) failure_ = what;
  }

  void note(const std::string& line) {
    if (trace_ != nullptr) *trace_ += line + "\n";
  }

  Reader& in_;
  std::string* trace_;
  MemoryStorage storage_;
  std::unique_ptr<RawNode> node_;
  std::vector<Message> outbox_;
  ConfState conf_;
  Index applied_ = 0;
  Index committed_ = 0;
  Term last_term_ = 0;
  std::string failure_;
};

}  // namespace

std::string run_input(const std::uint8_t* data, std::size_t size, std::string* trace) {
  Reader in(data, size);
  Harness h(in, trace);
  return h.run();
}

}  // namespace kvcore::raft::fuzz
