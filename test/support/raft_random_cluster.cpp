#include "raft_random_cluster.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace kvcore::raft::sim {

namespace {

constexpr std::uint64_t kAll = std::numeric_limits<std::uint64_t>::max();

bool contains(const std::vector<NodeId>& v, NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

std::string ids_text(const std::vector<NodeId>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s + ")";
}

}  // namespace

std::uint64_t apply_hash(std::uint64_t h, const Entry& e) {
  // FNV-1a over the entry's identity and payload, chained.
  std::uint64_t x = h ^ 0xcbf29ce484222325ULL;
  auto mix = [&x](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      x ^= (v >> (8 * i)) & 0xff;
      x *= 0x100000001b3ULL;
    }
  };
  mix(e.index);
  mix(e.term);
  mix(static_cast<std::uint64_t>(e.type));
  for (unsigned char c : e.data) {
    x ^= c;
    x *= 0x100000001b3ULL;
  }
  return x;
}

struct Cluster::Node {
  NodeId id = kNoNode;
  Config config;
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> raw;  // null while crashed
  // The application: its membership, applied index and state hash.
  ConfState conf;
  Index applied = 0;
  std::uint64_t hash = 0;
  // Bookkeeping of the checks (survives crashes: it is the observer's).
  Index checked_commit = 0;
  Term completeness_term = 0;
};

Cluster::Cluster(const ClusterOptions& opts) : opts_(opts), rng_(opts.seed) {
  ConfState cs;
  for (int i = 1; i <= opts_.voters; ++i) cs.voters.push_back(static_cast<NodeId>(i));
  // Per-seed knobs, so the seeds cover message-size and window limits too.
  const std::uint64_t sizes[] = {0, 256, 4096, 1 << 20};
  const std::uint64_t max_size = sizes[rng_.below(4)];
  const std::size_t inflight = 2 + rng_.below(15);
  const std::uint64_t inflight_bytes =
      rng_.chance(25) ? 2 * std::max<std::uint64_t>(max_size, 256) : 0;
  const std::uint64_t committed_per_ready = rng_.chance(25) ? 64 : kAll;
  const std::uint64_t uncommitted_cap = rng_.chance(25) ? 256 : 0;
  // Calm, stormy and chaotic networks: how often partitions and crashes
  // happen and how many messages are lost.
  const unsigned level = static_cast<unsigned>(rng_.below(3));
  chaos_ = level == 0 ? 15 : level == 1 ? 45 : 100;
  loss_permille_ = level == 0 ? 5 : level == 1 ? 20 : 60;
  for (int i = 1; i <= opts_.voters + opts_.spares; ++i) {
    auto n = std::make_unique<Node>();
    n->id = static_cast<NodeId>(i);
    Config& c = n->config;
    c.id = n->id;
    c.election_tick = 10;
    c.heartbeat_tick = 2;
    c.pre_vote = opts_.pre_vote;
    c.check_quorum = opts_.check_quorum || opts_.lease_reads;
    c.read_only_option = opts_.lease_reads ? ReadOnlyOption::kLeaseBased : ReadOnlyOption::kSafe;
    c.max_size_per_msg = max_size;
    c.max_inflight_msgs = inflight;
    c.max_inflight_bytes = inflight_bytes;
    c.max_committed_size_per_ready = committed_per_ready;
    c.max_uncommitted_entries_size = uncommitted_cap;
    c.seed = opts_.seed * 1000003 + n->id;
    n->storage = std::make_unique<MemoryStorage>();
    if (i <= opts_.voters) {
      // Bootstrapped from a snapshot at index 1 so that nodes added later
      // learn the initial membership from a snapshot, never from a log
      // that does not hold it.
      Snapshot snap;
      snap.data = std::to_string(0);
      snap.metadata.conf_state = cs;
      snap.metadata.index = 1;
      snap.metadata.term = 1;
      (void)n->storage->apply_snapshot(snap);
      n->conf = cs;
      n->applied = 1;
      n->checked_commit = 1;
      c.applied = 1;
    }
    auto raw = RawNode::create(c, *n->storage);
    if (!raw) {
      fail("create node " + std::to_string(i) + ": " + raw.status().to_string());
      return;
    }
    n->raw = std::move(raw).value();
    nodes_[n->id] = std::move(n);
  }
  canon_.resize(2);
  canon_[1].index = 1;
  canon_[1].term = 1;
  canon_hash_ = {0, 0};
  canon_seen_term_ = {0, 0};
}

Cluster::~Cluster() = default;

template <class MakeLine>
void Cluster::note(MakeLine&& make_line) {
  if (!opts_.trace) return;
  std::string line = make_line();
  trace_.push_back("step " + std::to_string(step_) + ": " + std::move(line));
  while (trace_.size() > opts_.trace_length) trace_.pop_front();
}

std::string Cluster::trace() const {
  std::string s;
  for (const auto& l : trace_) s += l + "\n";
  return s;
}

void Cluster::fail(const std::string& what) {
  if (failure_.empty()) failure_ = "step " + std::to_string(step_) + ": " + what;
}

bool Cluster::step() {
  if (!failure_.empty()) return false;
  ++step_;
  const auto r = rng_.below(100);
  if (r < 20) {
    tick_all();
  } else if (r < 55) {
    deliver_one();
  } else if (r < 80) {
    std::vector<Node*> ready;
    for (auto& [id, n] : nodes_) {
      if (n->raw && n->raw->has_ready()) ready.push_back(n.get());
    }
    if (!ready.empty()) {
      if (rng_.chance(50)) {
        process_ready(*ready[rng_.below(ready.size())]);
      } else {
        for (Node* n : ready) process_ready(*n);
      }
    }
  } else if (r < 89) {
    propose();
  } else if (r < 92) {
    read();
  } else if (r < 94) {
    conf_change();
  } else if (r < 95) {
    transfer();
  } else if (r < 97) {
    if (rng_.chance(chaos_)) change_partition();
  } else if (r < 98) {
    if (opts_.crashes && rng_.chance(chaos_)) crash_or_restart();
  } else {
    snapshot_and_compact();
  }
  check_leaders();
  return failure_.empty();
}

bool Cluster::settle(int steps) {
  cut_.clear();
  for (auto& [id, n] : nodes_) {
    if (!n->raw) restart(*n);
  }
  note([&] { return std::string("settle: healed, all nodes up"); });
  for (int i = 0; i < steps && failure_.empty(); ++i) {
    ++step_;
    const auto r = rng_.below(3);
    if (r == 0) {
      tick_all();
    } else if (r == 1) {
      deliver_one();
    } else {
      for (auto& [id, n] : nodes_) {
        if (n->raw && n->raw->has_ready()) process_ready(*n);
      }
    }
    check_leaders();
  }
  return failure_.empty();
}

// ---------------------------------------------------------------------------
// Actions

void Cluster::tick_all() {
  note([&] { return std::string("tick"); });
  for (auto& [id, n] : nodes_) {
    if (n->raw) n->raw->tick();
  }
}

bool Cluster::blocked(NodeId from, NodeId to) const { return cut_.count({from, to}) != 0; }

void Cluster::send(const Message& m, bool allow_loss) {
  const bool self = m.to == m.from;
  if (allow_loss && !self && rng_.below(1000) < loss_permille_) return;
  const std::uint64_t due = step_ + rng_.below(self ? 2 : 6);
  net_.push_back({m, due});
  if (allow_loss && !self && rng_.chance(2)) net_.push_back({m, due + rng_.below(8)});
}

void Cluster::deliver_one() {
  std::vector<std::size_t> due;
  for (std::size_t i = 0; i < net_.size(); ++i) {
    if (net_[i].due <= step_) due.push_back(i);
  }
  if (due.empty()) return;
  // Deliver a random subset of the due messages in a random order.
  for (std::size_t i = due.size(); i > 1; --i) std::swap(due[i - 1], due[rng_.below(i)]);
  due.resize(1 + rng_.below(std::min<std::size_t>(due.size(), 6)));
  std::sort(due.begin(), due.end(), std::greater<>());
  std::vector<Message> batch;
  for (std::size_t i : due) {
    batch.push_back(std::move(net_[i].msg));
    net_[i] = std::move(net_.back());
    net_.pop_back();
  }
  for (auto& m : batch) {
    auto it = nodes_.find(m.to);
    Node* sender = nodes_.count(m.from) ? nodes_[m.from].get() : nullptr;
    const bool lost = it == nodes_.end() || !it->second->raw || blocked(m.from, m.to);
    if (m.type == MessageType::kSnapshot && sender != nullptr && sender->raw) {
      sender->raw->report_snapshot(m.to, lost);
    }
    if (lost) {
      note([&] { return std::string("lost " + describe(m)); });
      if (sender != nullptr && sender->raw && rng_.chance(30))
        sender->raw->report_unreachable(m.to);
      continue;
    }
    note([&] { return std::string("deliver " + describe(m)); });
    (void)it->second->raw->step(std::move(m));
  }
}

void Cluster::process_ready(Node& n) {
  Ready rd = n.raw->ready();
  note([&] { return std::string("ready " + std::to_string(n.id) + ": " + describe(rd)); });
  const HardState prev = n.storage->hard_state();
  if (rd.hard_state) {
    if (rd.hard_state->term < prev.term)
      fail("term of node " + std::to_string(n.id) + " went down");
    if (rd.hard_state->commit < prev.commit) {
      fail("commit of node " + std::to_string(n.id) + " went down");
    }
  }
  // Messages that may leave before persistence do leave first; a crash can
  // then strike before anything of this Ready is persisted.
  for (const auto& m : rd.messages) send(m, true);
  if (opts_.crashes && rng_.below(1000) < chaos_ / 10) {
    crash(n);
    note([&] { return std::string("crash " + std::to_string(n.id) + " before persisting"); });
    return;
  }
  if (!rd.snapshot.empty()) {
    const Index idx = rd.snapshot.metadata.index;
    if (idx >= canon_.size()) {
      fail("node " + std::to_string(n.id) + " got a snapshot at " + std::to_string(idx) +
           " beyond every commit index");
      return;
    }
    if (rd.snapshot.data != std::to_string(canon_hash_[idx])) {
      fail("snapshot at " + std::to_string(idx) + " does not hold the committed state");
    }
    auto s = n.storage->apply_snapshot(rd.snapshot);
    if (!s) fail("apply_snapshot on node " + std::to_string(n.id) + ": " + s.to_string());
    n.applied = idx;
    n.hash = canon_hash_[idx];
    n.conf = rd.snapshot.metadata.conf_state;
    n.checked_commit = std::max(n.checked_commit, idx);
    ++stats_.snapshots_installed;
  }
  if (!rd.entries.empty()) {
    const Index commit = n.storage->hard_state().commit;
    for (const auto& e : rd.entries) {
      if (e.index <= commit && e.index < canon_.size() && !(e == canon_[e.index])) {
        fail("node " + std::to_string(n.id) + " overwrites committed entry " +
             describe(canon_[e.index]) + " with " + describe(e));
      }
    }
    auto s = n.storage->append(rd.entries);
    if (!s) fail("append on node " + std::to_string(n.id) + ": " + s.to_string());
  }
  if (rd.hard_state) {
    n.storage->set_hard_state(*rd.hard_state);
    record_commit(n, rd.hard_state->commit);
  }
  for (const auto& m : rd.persisted_messages) send(m, true);
  for (const auto& e : rd.committed_entries) {
    if (e.index != n.applied + 1) {
      fail("node " + std::to_string(n.id) + " applies " + std::to_string(e.index) + " after " +
           std::to_string(n.applied));
    }
    if (e.index >= canon_.size() || !(e == canon_[e.index])) {
      fail("node " + std::to_string(n.id) + " applies " + describe(e) +
           " which is not the committed entry at its index");
    }
    n.hash = apply_hash(n.hash, e);
    n.applied = e.index;
    if (e.type == EntryType::kConfChange) {
      auto cc = decode_conf_change(e.data);
      if (!cc) {
        fail("undecodable conf change " + describe(e));
      } else {
        n.conf = n.raw->apply_conf_change(*cc);
        ++stats_.conf_changes_applied;
      }
    }
  }
  for (const auto& rs : rd.read_states) {
    auto it = reads_.find(rs.request_ctx);
    if (it == reads_.end()) {
      fail("node " + std::to_string(n.id) + " answers unknown read '" + rs.request_ctx + "'");
    } else if (rs.index < it->second) {
      fail("stale read '" + rs.request_ctx + "' on node " + std::to_string(n.id) + ": index " +
           std::to_string(rs.index) + " < commit index " + std::to_string(it->second) +
           " when asked");
    } else {
      ++stats_.reads_served;
    }
  }
  n.raw->advance(rd);
  check_leader_completeness(n);
}

void Cluster::propose() {
  Node* n = (rng_.chance(70) ? leader() : nullptr);
  if (n == nullptr) n = live_random();
  if (n == nullptr) return;
  const int count = 1 + static_cast<int>(rng_.below(3));
  for (int i = 0; i < count; ++i) {
    std::string data = "p" + std::to_string(++next_proposal_);
    auto s = n->raw->propose(data);
    note([&] {
      return std::string("propose " + data + " on " + std::to_string(n->id) + ": " + s.to_string());
    });
  }
}

void Cluster::read() {
  Node* n = live_random();
  if (n == nullptr) return;
  Index required = canon_.size() - 1;
  for (auto& [id, other] : nodes_) {
    if (other->raw) required = std::max(required, other->raw->status().hard_state.commit);
  }
  std::string ctx = "r" + std::to_string(++next_read_);
  reads_[ctx] = required;
  n->raw->read_index(ctx);
  note([&] {
    return std::string("read " + ctx + " on " + std::to_string(n->id) + " (commit index " +
                       std::to_string(required) + ")");
  });
}

void Cluster::conf_change() {
  Node* l = leader();
  if (l == nullptr) return;
  const ConfState cs = l->raw->status().conf_state;
  std::vector<NodeId> voters = cs.voters;
  std::vector<NodeId> learners = cs.learners;
  std::vector<NodeId> others;
  for (auto& [id, n] : nodes_) {
    if (!contains(voters, id) && !contains(learners, id)) others.push_back(id);
  }
  auto pick = [this](const std::vector<NodeId>& v) { return v[rng_.below(v.size())]; };
  ConfChangeV2 cc;
  if (cs.joint()) {
    if (!rng_.chance(80) && !others.empty())
      cc.changes.push_back({ConfChangeType::kAddNode, pick(others)});
  } else {
    const auto r = rng_.below(100);
    std::vector<NodeId> promotable = others;
    promotable.insert(promotable.end(), learners.begin(), learners.end());
    if (r < 30 && !promotable.empty()) {
      cc.changes.push_back({ConfChangeType::kAddNode, pick(promotable)});
    } else if (r < 50) {
      if (!others.empty() && rng_.chance(60)) {
        cc.changes.push_back({ConfChangeType::kAddLearnerNode, pick(others)});
      } else if (voters.size() > 2) {
        cc.changes.push_back({ConfChangeType::kAddLearnerNode, pick(voters)});  // demotion
      }
    } else if (r < 70) {
      if (!learners.empty() && rng_.chance(40)) {
        cc.changes.push_back({ConfChangeType::kRemoveNode, pick(learners)});
      } else if (voters.size() > 2) {
        cc.changes.push_back({ConfChangeType::kRemoveNode, pick(voters)});
      }
    } else if (!promotable.empty()) {
      // Joint: replace a voter (maybe the leader itself) by another node.
      cc.changes.push_back({ConfChangeType::kAddNode, pick(promotable)});
      NodeId out = pick(voters);
      cc.changes.push_back(
          {rng_.chance(50) ? ConfChangeType::kRemoveNode : ConfChangeType::kAddLearnerNode, out});
      if (rng_.chance(30) && !others.empty()) {
        cc.changes.push_back({ConfChangeType::kAddLearnerNode, pick(others)});
      }
      cc.transition = rng_.chance(50) ? ConfChangeTransition::kJointImplicit
                                      : ConfChangeTransition::kJointExplicit;
    }
    if (cc.changes.empty()) return;
  }
  auto s = l->raw->propose_conf_change(cc);
  note([&] {
    return std::string("conf change " + describe(cc) + " on " + std::to_string(l->id) +
                       " (voters " + ids_text(voters) + "): " + s.to_string());
  });
}

void Cluster::transfer() {
  Node* l = leader();
  if (l == nullptr) return;
  const NodeId to = 1 + rng_.below(nodes_.size());
  l->raw->transfer_leader(to);
  note([&] {
    return std::string("transfer leadership " + std::to_string(l->id) + " -> " +
                       std::to_string(to));
  });
}

void Cluster::change_partition() {
  const auto r = rng_.below(100);
  const auto n = nodes_.size();
  if (r < 50) {
    cut_.clear();
    note([&] { return std::string("heal"); });
  } else if (r < 65) {
    const NodeId x = 1 + rng_.below(n);
    for (NodeId y = 1; y <= n; ++y) {
      if (y != x) {
        cut_.insert({x, y});
        cut_.insert({y, x});
      }
    }
    note([&] { return std::string("isolate " + std::to_string(x)); });
  } else if (r < 80) {
    const NodeId x = 1 + rng_.below(n);
    const NodeId y = 1 + rng_.below(n);
    if (x == y) return;
    cut_.insert({x, y});
    note([&] { return std::string("cut " + std::to_string(x) + " -> " + std::to_string(y)); });
  } else {
    std::vector<bool> side(n + 1);
    for (NodeId x = 1; x <= n; ++x) side[x] = rng_.chance(50);
    cut_.clear();
    std::string text;
    for (NodeId x = 1; x <= n; ++x) {
      if (side[x]) text += std::to_string(x) + " ";
      for (NodeId y = 1; y <= n; ++y) {
        if (side[x] != side[y]) cut_.insert({x, y});
      }
    }
    note([&] { return std::string("split {" + text + "} from the rest"); });
  }
}

void Cluster::crash_or_restart() {
  std::vector<Node*> down;
  std::vector<Node*> up;
  for (auto& [id, n] : nodes_) (n->raw ? up : down).push_back(n.get());
  if (!down.empty() && (down.size() >= 2 || rng_.chance(70))) {
    Node* n = down[rng_.below(down.size())];
    restart(*n);
    note([&] { return std::string("restart " + std::to_string(n->id)); });
    return;
  }
  if (up.empty()) return;
  Node* n = up[rng_.below(up.size())];
  crash(*n);
  note([&] { return std::string("crash " + std::to_string(n->id)); });
}

void Cluster::crash(Node& n) {
  // A crash loses the unstable log and every Ready not yet handled; storage
  // (the persisted state) survives. Messages to itself were in memory only.
  n.raw.reset();
  const NodeId id = n.id;
  net_.erase(std::remove_if(net_.begin(), net_.end(),
                            [id](const Flight& f) { return f.msg.to == id && f.msg.from == id; }),
             net_.end());
  ++stats_.crashes;
}

void Cluster::restart(Node& n) {
  auto snap = n.storage->snapshot();
  if (!snap) {
    fail("snapshot of node " + std::to_string(n.id) + ": " + snap.status().to_string());
    return;
  }
  const Index idx = snap->metadata.index;
  n.applied = idx;
  n.hash = idx < canon_hash_.size() ? canon_hash_[idx] : 0;
  n.conf = snap->metadata.conf_state;
  n.config.applied = idx;
  auto raw = RawNode::create(n.config, *n.storage);
  if (!raw) {
    fail("restart node " + std::to_string(n.id) + ": " + raw.status().to_string());
    return;
  }
  n.raw = std::move(raw).value();
}

void Cluster::snapshot_and_compact() {
  Node* n = live_random();
  if (n == nullptr) return;
  auto snap = n->storage->snapshot();
  if (!snap) return;
  Index snap_index = snap->metadata.index;
  if (n->applied > snap_index) {
    auto made = n->storage->create_snapshot(n->applied, n->conf, std::to_string(n->hash));
    if (!made) {
      fail("create_snapshot on node " + std::to_string(n->id) + ": " + made.status().to_string());
      return;
    }
    snap_index = n->applied;
  }
  auto first = n->storage->first_index();
  if (!first) return;
  const Index compact_to = snap_index - std::min<Index>(snap_index, rng_.below(3));
  if (compact_to >= *first) {
    auto s = n->storage->compact(compact_to);
    if (!s) fail("compact on node " + std::to_string(n->id) + ": " + s.to_string());
  }
  note([&] {
    return std::string("snapshot node " + std::to_string(n->id) + " at " +
                       std::to_string(snap_index) + ", compact to " + std::to_string(compact_to));
  });
}

// ---------------------------------------------------------------------------
// Checks

Cluster::Node* Cluster::leader() {
  Node* best = nullptr;
  for (auto& [id, n] : nodes_) {
    if (n->raw && n->raw->role() == StateRole::kLeader &&
        (best == nullptr || n->raw->term() > best->raw->term())) {
      best = n.get();
    }
  }
  return best;
}

Cluster::Node* Cluster::live_random() {
  std::vector<Node*> up;
  for (auto& [id, n] : nodes_) {
    if (n->raw) up.push_back(n.get());
  }
  return up.empty() ? nullptr : up[rng_.below(up.size())];
}

void Cluster::check_leaders() {
  for (auto& [id, n] : nodes_) {
    if (!n->raw || n->raw->role() != StateRole::kLeader) continue;
    auto [it, inserted] = leaders_.emplace(n->raw->term(), id);
    if (inserted) {
      ++stats_.elections;
    } else if (it->second != id) {
      fail("two leaders in term " + std::to_string(it->first) + ": " + std::to_string(it->second) +
           " and " + std::to_string(id));
    }
  }
}

void Cluster::record_commit(Node& n, Index commit) {
  if (commit <= n.checked_commit) return;
  auto first = n.storage->first_index();
  auto last = n.storage->last_index();
  if (!first || !last) {
    fail("storage of node " + std::to_string(n.id) + " broken");
    return;
  }
  if (commit > *last) {
    fail("node " + std::to_string(n.id) + " commits " + std::to_string(commit) +
         " beyond its persisted log " + std::to_string(*last));
    return;
  }
  const Index lo = std::max(n.checked_commit + 1, *first);
  if (lo > canon_.size()) {
    fail("node " + std::to_string(n.id) + " commits past a gap at " +
         std::to_string(canon_.size()));
    return;
  }
  const Term term = n.storage->hard_state().term;
  if (lo <= commit) {
    auto ents = n.storage->entries(lo, commit + 1, kAll);
    if (!ents) {
      fail("entries of node " + std::to_string(n.id) + ": " + ents.status().to_string());
      return;
    }
    for (const auto& e : *ents) {
      if (e.index < canon_.size()) {
        if (!(e == canon_[e.index])) {
          fail("node " + std::to_string(n.id) + " committed " + describe(e) + " but " +
               describe(canon_[e.index]) + " was committed before");
          return;
        }
        canon_seen_term_[e.index] = std::min(canon_seen_term_[e.index], term);
      } else {
        canon_.push_back(e);
        canon_hash_.push_back(apply_hash(canon_hash_.back(), e));
        canon_seen_term_.push_back(term);
      }
    }
  }
  n.checked_commit = commit;
  stats_.committed = canon_.size() - 1;
}

void Cluster::check_leader_completeness(Node& n) {
  if (!n.raw || n.raw->role() != StateRole::kLeader) return;
  const Term t = n.raw->term();
  if (t <= n.completeness_term) return;
  n.completeness_term = t;
  auto first = n.storage->first_index();
  auto last = n.storage->last_index();
  if (!first || !last) return;
  // Every entry known committed in a term before t must be in the log of
  // the leader of t (Raft §5.4.1: leader completeness).
  const Index lo = std::max<Index>(*first, 2);
  const Index hi = canon_.size() - 1;
  if (lo > hi) return;
  const Index have_hi = std::min(hi, *last);
  std::vector<Entry> ents;
  if (lo <= have_hi) {
    auto r = n.storage->entries(lo, have_hi + 1, kAll);
    if (r) ents = std::move(r).value();
  }
  for (Index i = lo; i <= hi; ++i) {
    if (canon_seen_term_[i] >= t) continue;
    if (i > have_hi || !(ents[i - lo] == canon_[i])) {
      fail("leader " + std::to_string(n.id) + " of term " + std::to_string(t) +
           " lacks committed entry " + describe(canon_[i]));
      return;
    }
  }
}

}  // namespace kvcore::raft::sim
