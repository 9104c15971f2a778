// A seeded model of a raft cluster over an unreliable network, for the random
// network test: RawNodes over MemoryStorage, a network that drops,
// duplicates, delays, reorders and partitions messages, crashes that lose
// everything not persisted, and random proposals, reads, membership changes
// and leader transfers. After every step the model checks the safety
// properties of Raft and records the first violation.
//
// Everything is driven by one seed: the same seed replays the same run.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kvcore/raft/raw_node.hpp"
#include "kvcore/raft/storage.hpp"
#include "util/splitmix.hpp"

namespace kvcore::raft::sim {

// The test choices of the random cluster, in percent.
class Rng : public util::SplitMix64 {
 public:
  using SplitMix64::SplitMix64;
  // Uniform in [0, n); n > 0.
  std::uint64_t below(std::uint64_t n) { return uniform(n); }
  bool chance(unsigned percent) { return below(100) < percent; }
};

struct ClusterOptions {
  std::uint64_t seed = 1;
  int voters = 3;  // initial voters, ids 1..voters
  int spares = 2;  // ids that start empty and may be added later
  bool pre_vote = false;
  bool check_quorum = false;
  // Lease-based reads (needs check_quorum). Every node ticks at the same
  // moment in this model (no clock drift), the assumption leases rest on.
  bool lease_reads = false;
  // Crashes and restarts from storage.
  bool crashes = true;
  // Keep a trace of the last `trace_length` steps (slow: off for the bulk
  // run, on when a failing seed is replayed).
  bool trace = false;
  std::size_t trace_length = 60;
};

struct ClusterStats {
  std::uint64_t committed = 0;  // highest committed index seen
  std::uint64_t elections = 0;  // distinct (term, leader) pairs
  std::uint64_t reads_served = 0;
  std::uint64_t conf_changes_applied = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t crashes = 0;
};

class Cluster {
 public:
  explicit Cluster(const ClusterOptions& opts);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Runs one random step and checks every invariant. False once an
  // invariant is broken; failure() then says which.
  bool step();
  // Delivers everything, heals partitions and restarts crashed nodes, then
  // runs only ticks, deliveries and Ready handling for `steps` steps.
  bool settle(int steps);

  [[nodiscard]] const std::string& failure() const { return failure_; }
  // The last steps, one per line, oldest first.
  [[nodiscard]] std::string trace() const;
  [[nodiscard]] const ClusterStats& stats() const { return stats_; }
  [[nodiscard]] std::uint64_t steps_run() const { return step_; }

 private:
  struct Node;
  struct Flight {
    Message msg;
    std::uint64_t due = 0;
  };

  // Actions.
  void tick_all();
  void deliver_one();
  void process_ready(Node& n);
  void propose();
  void read();
  void conf_change();
  void transfer();
  void change_partition();
  void crash_or_restart();
  void snapshot_and_compact();
  void crash(Node& n);
  void restart(Node& n);

  // Network.
  void send(const Message& m, bool allow_loss);
  bool blocked(NodeId from, NodeId to) const;

  // Checks.
  void check_leaders();
  void fail(const std::string& what);
  void record_commit(Node& n, Index commit);
  void check_leader_completeness(Node& n);

  Node* leader();
  Node* live_random();
  // Records a trace line (built only when tracing is on).
  template <class MakeLine>
  void note(MakeLine&& make_line);

  ClusterOptions opts_;
  Rng rng_;
  std::map<NodeId, std::unique_ptr<Node>> nodes_;
  std::vector<Flight> net_;
  std::set<std::pair<NodeId, NodeId>> cut_;  // directed links that lose everything
  unsigned chaos_ = 100;                     // percent of partition/crash actions that happen
  unsigned loss_permille_ = 40;              // messages lost per thousand
  std::uint64_t step_ = 0;
  std::uint64_t next_proposal_ = 0;
  std::uint64_t next_read_ = 0;

  // The committed log as first observed, index -> entry, with the prefix
  // hash of the applied state after each index and the lowest term of a
  // node that observed the entry committed (an upper bound on the term in
  // which it was committed).
  std::vector<Entry> canon_;
  std::vector<std::uint64_t> canon_hash_;
  std::vector<Term> canon_seen_term_;
  std::map<Term, NodeId> leaders_;
  std::map<std::string, Index> reads_;  // context -> commit index when asked

  std::deque<std::string> trace_;
  std::string failure_;
  ClusterStats stats_;
};

// The hash of an applied state after applying `e` on top of `h`.
[[nodiscard]] std::uint64_t apply_hash(std::uint64_t h, const Entry& e);

}  // namespace kvcore::raft::sim
