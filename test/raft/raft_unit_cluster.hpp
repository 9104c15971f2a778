// A tiny in-memory cluster for the white-box raft unit tests: RawNodes over
// MemoryStorage, a message queue, and helpers to run Ready cycles. Delivery
// is explicit and deterministic.
#pragma once

#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kvcore/raft/raw_node.hpp"
#include "kvcore/raft/storage.hpp"

namespace kvcore::raft::unit {

struct UnitNode {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> node;
  Config config;
  std::vector<Entry> applied;
  std::vector<ReadState> read_states;
  ConfState conf_state;
};

class UnitCluster {
 public:
  // Nodes 1..n, all voters unless listed in `learners`.
  explicit UnitCluster(std::size_t n, std::function<void(Config&)> tweak = nullptr,
                       std::set<NodeId> learners = {}) {
    ConfState cs;
    for (NodeId id = 1; id <= n; ++id) {
      if (learners.count(id) != 0) {
        cs.learners.push_back(id);
      } else {
        cs.voters.push_back(id);
      }
    }
    for (NodeId id = 1; id <= n; ++id) {
      Config c;
      c.id = id;
      c.election_tick = 10;
      c.heartbeat_tick = 1;
      c.seed = 1000 + id;
      if (tweak) tweak(c);
      add(id, c, cs);
    }
  }

  void add(NodeId id, const Config& c, const ConfState& cs) {
    UnitNode& u = nodes[id];
    u.storage = std::make_unique<MemoryStorage>(MemoryStorage::with_conf_state(cs));
    u.config = c;
    u.conf_state = cs;
    auto r = RawNode::create(c, *u.storage);
    REQUIRE(r.is_ok());
    u.node = std::move(r).value();
  }

  // Restarts a node from its storage (unpersisted state is lost).
  void restart(NodeId id) {
    UnitNode& u = nodes.at(id);
    Config c = u.config;
    c.applied = u.applied.empty() ? 0 : u.applied.back().index;
    u.node.reset();
    auto r = RawNode::create(c, *u.storage);
    REQUIRE(r.is_ok());
    u.node = std::move(r).value();
  }

  RawNode& node(NodeId id) { return *nodes.at(id).node; }

  // Handles every pending Ready of node `id`; queues its messages.
  void process(NodeId id) {
    UnitNode& u = nodes.at(id);
    while (u.node->has_ready()) {
      Ready rd = u.node->ready();
      for (auto& m : rd.messages) queue.push_back(m);
      if (!rd.snapshot.empty()) REQUIRE(u.storage->apply_snapshot(rd.snapshot).is_ok());
      REQUIRE(u.storage->append(rd.entries).is_ok());
      if (rd.hard_state) u.storage->set_hard_state(*rd.hard_state);
      for (auto& m : rd.persisted_messages) queue.push_back(m);
      for (auto& rs : rd.read_states) u.read_states.push_back(rs);
      for (const auto& e : rd.committed_entries) {
        if (e.type == EntryType::kConfChange) {
          auto cc = decode_conf_change(e.data);
          REQUIRE(cc.is_ok());
          u.conf_state = u.node->apply_conf_change(*cc);
          u.storage->set_conf_state(u.conf_state);
        }
        u.applied.push_back(e);
      }
      u.node->advance(rd);
    }
  }

  // Delivers queued messages (and the ones they cause) until quiet.
  void stabilize(int max_rounds = 1000) {
    for (int i = 0; i < max_rounds; ++i) {
      for (auto& [id, u] : nodes) process(id);
      if (queue.empty()) return;
      deliver_all();
    }
    FAIL("cluster did not stabilize");
  }

  void deliver_all() {
    auto msgs = std::move(queue);
    queue.clear();
    for (auto& m : msgs) deliver(m);
  }

  void deliver(const Message& m) {
    if (cut.count({m.from, m.to}) != 0) return;
    auto it = nodes.find(m.to);
    if (it == nodes.end()) return;
    (void)it->second.node->step(m);
  }

  void isolate(NodeId id) {
    for (auto& [other, u] : nodes) {
      if (other == id) continue;
      cut.insert({id, other});
      cut.insert({other, id});
    }
  }
  void heal() { cut.clear(); }

  void elect(NodeId id) {
    REQUIRE(node(id).campaign().is_ok());
    stabilize();
    REQUIRE(node(id).role() == StateRole::kLeader);
  }

  void tick_all(int n) {
    for (int i = 0; i < n; ++i) {
      for (auto& [id, u] : nodes) u.node->tick();
      stabilize();
    }
  }

  std::map<NodeId, UnitNode> nodes;
  std::deque<Message> queue;
  std::set<std::pair<NodeId, NodeId>> cut;
};

inline std::vector<std::string> applied_data(const UnitNode& u) {
  std::vector<std::string> out;
  for (const auto& e : u.applied) {
    if (e.type == EntryType::kNormal && !e.data.empty()) out.push_back(e.data);
  }
  return out;
}

}  // namespace kvcore::raft::unit

namespace kvcore::raft::unit {

// One node driven by hand: its Ready cycles are persisted to its own storage
// and the messages it sends are collected for the test to inspect.
struct Solo {
  explicit Solo(NodeId id, ConfState cs, std::function<void(Config&)> tweak = nullptr)
      : storage(MemoryStorage::with_conf_state(std::move(cs))) {
    config.id = id;
    config.election_tick = 10;
    config.heartbeat_tick = 1;
    config.seed = 7 + id;
    if (tweak) tweak(config);
  }
  void start() {
    auto r = RawNode::create(config, storage);
    REQUIRE(r.is_ok());
    node = std::move(r).value();
  }
  // Runs every Ready; returns the messages sent (both kinds), in order.
  std::vector<Message> drain() {
    std::vector<Message> out;
    while (node->has_ready()) {
      Ready rd = node->ready();
      out.insert(out.end(), rd.messages.begin(), rd.messages.end());
      if (!rd.snapshot.empty()) REQUIRE(storage.apply_snapshot(rd.snapshot).is_ok());
      REQUIRE(storage.append(rd.entries).is_ok());
      if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
      out.insert(out.end(), rd.persisted_messages.begin(), rd.persisted_messages.end());
      for (const auto& rs : rd.read_states) read_states.push_back(rs);
      for (const auto& e : rd.committed_entries) {
        if (e.type == EntryType::kConfChange) {
          auto cc = decode_conf_change(e.data);
          REQUIRE(cc.is_ok());
          storage.set_conf_state(node->apply_conf_change(*cc));
        }
        applied.push_back(e);
      }
      node->advance(rd);
    }
    return out;
  }
  Status step(MessageType t, NodeId from, Term term, std::function<void(Message&)> f = nullptr) {
    Message m;
    m.type = t;
    m.from = from;
    m.to = config.id;
    m.term = term;
    if (f) f(m);
    return node->step(std::move(m));
  }

  MemoryStorage storage;
  Config config;
  std::unique_ptr<RawNode> node;
  std::vector<Entry> applied;
  std::vector<ReadState> read_states;
};

inline std::vector<Message> of_type(const std::vector<Message>& msgs, MessageType t) {
  std::vector<Message> out;
  for (const auto& m : msgs) {
    if (m.type == t) out.push_back(m);
  }
  return out;
}

inline Entry entry(Term t, Index i, std::string data = "") {
  Entry e;
  e.term = t;
  e.index = i;
  e.data = std::move(data);
  return e;
}

inline ConfState voters(std::vector<NodeId> v, std::vector<NodeId> l = {}) {
  ConfState cs;
  cs.voters = std::move(v);
  cs.learners = std::move(l);
  return cs;
}

}  // namespace kvcore::raft::unit
