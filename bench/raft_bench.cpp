// Throughput of the raft core alone: a 3-node cluster in one thread, over
// MemoryStorage, with messages handed from node to node in memory (no I/O,
// no encoding, no clock). Measures committed proposals per second with small
// and 1 KiB payloads, batched (many proposals per Ready round) and unbatched
// (one proposal, then wait until it is applied), and the time per step().
//
//   bench/raft_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kvcore/raft/raw_node.hpp"
#include "kvcore/raft/storage.hpp"

namespace {

using namespace kvcore::raft;

class BenchCluster {
 public:
  explicit BenchCluster(std::size_t nodes) {
    ConfState cs;
    for (std::size_t i = 1; i <= nodes; ++i) cs.voters.push_back(i);
    for (std::size_t i = 1; i <= nodes; ++i) {
      auto n = std::make_unique<Member>();
      Snapshot snap;
      snap.metadata.conf_state = cs;
      snap.metadata.index = 1;
      snap.metadata.term = 1;
      if (!n->storage.apply_snapshot(snap)) std::abort();
      Config c;
      c.id = i;
      c.applied = 1;
      c.seed = i;
      c.max_inflight_msgs = 4096;
      auto raw = RawNode::create(c, n->storage);
      if (!raw) std::abort();
      n->raw = std::move(raw).value();
      n->applied = 1;
      members_.push_back(std::move(n));
    }
    if (!members_[0]->raw->campaign()) std::abort();
    pump();
    if (members_[0]->raw->role() != StateRole::kLeader) std::abort();
  }

  RawNode& leader() { return *members_[0]->raw; }
  Index leader_applied() const { return members_[0]->applied; }
  std::uint64_t steps() const { return steps_; }

  // Handles Readies and delivers messages until the cluster is quiet.
  void pump() {
    bool busy = true;
    while (busy) {
      busy = false;
      for (auto& m : members_) {
        if (m->raw->has_ready()) {
          handle_ready(*m);
          busy = true;
        }
      }
      if (!outbox_.empty()) {
        busy = true;
        std::vector<Message> msgs;
        msgs.swap(outbox_);
        for (auto& msg : msgs) {
          ++steps_;
          (void)members_[msg.to - 1]->raw->step(std::move(msg));
        }
      }
    }
    compact_if_needed();
  }

 private:
  struct Member {
    MemoryStorage storage;
    std::unique_ptr<RawNode> raw;
    Index applied = 0;
  };

  void handle_ready(Member& m) {
    Ready rd = m.raw->ready();
    if (!rd.snapshot.empty()) (void)m.storage.apply_snapshot(rd.snapshot);
    if (!rd.entries.empty()) (void)m.storage.append(rd.entries);
    if (rd.hard_state) m.storage.set_hard_state(*rd.hard_state);
    for (auto& msg : rd.messages) outbox_.push_back(std::move(msg));
    for (auto& msg : rd.persisted_messages) {
      if (msg.to == msg.from) {
        ++steps_;
        (void)m.raw->step(std::move(msg));
      } else {
        outbox_.push_back(std::move(msg));
      }
    }
    if (!rd.committed_entries.empty()) {
      for (const auto& e : rd.committed_entries) benchmark::DoNotOptimize(e.data.data());
      m.applied = rd.committed_entries.back().index;
    }
    m.raw->advance(rd);
  }

  // Keeps memory bounded over millions of entries: every node has applied
  // everything after pump(), so the log below the lowest applied index can go.
  void compact_if_needed() {
    Index low = members_[0]->applied;
    for (auto& m : members_) low = std::min(low, m->applied);
    if (low < compacted_ + 50000) return;
    for (auto& m : members_) (void)m->storage.compact(low);
    compacted_ = low;
  }

  std::vector<std::unique_ptr<Member>> members_;
  std::vector<Message> outbox_;
  std::uint64_t steps_ = 0;
  Index compacted_ = 0;
};

// Args: payload bytes, proposals per Ready round.
void BM_CommitProposals(benchmark::State& state) {
  const auto payload = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<std::size_t>(state.range(1));
  BenchCluster c(3);
  const std::string data(payload, 'x');
  const Index start = c.leader_applied();
  const std::uint64_t start_steps = c.steps();
  std::uint64_t proposed = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < batch; ++i) {
      if (!c.leader().propose(data)) state.SkipWithError("proposal refused");
    }
    proposed += batch;
    c.pump();
  }
  const auto committed = static_cast<double>(c.leader_applied() - start);
  if (committed < static_cast<double>(proposed))
    state.SkipWithError("not every proposal committed");
  state.counters["proposals"] = benchmark::Counter(committed, benchmark::Counter::kIsRate);
  state.counters["bytes"] =
      benchmark::Counter(committed * static_cast<double>(payload), benchmark::Counter::kIsRate,
                         benchmark::Counter::OneK::kIs1024);
  // Inverted rate: seconds of the whole loop per step() call.
  state.counters["time_per_step"] =
      benchmark::Counter(static_cast<double>(c.steps() - start_steps),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["steps_per_proposal"] =
      static_cast<double>(c.steps() - start_steps) / std::max(committed, 1.0);
}
BENCHMARK(BM_CommitProposals)
    ->ArgNames({"payload", "batch"})
    ->Args({16, 1})
    ->Args({16, 64})
    ->Args({16, 1024})
    ->Args({1024, 1})
    ->Args({1024, 64})
    ->Args({1024, 1024})
    ->Unit(benchmark::kMicrosecond);

// The cost of one step() on its own: a follower handling one-entry appends
// from its leader (the most common message). Its Ready is handled every 64
// steps, so the figure includes that amortized cost.
void BM_FollowerStepAppend(benchmark::State& state) {
  MemoryStorage storage;
  Snapshot snap;
  snap.metadata.conf_state.voters = {1, 2, 3};
  snap.metadata.index = 1;
  snap.metadata.term = 1;
  if (!storage.apply_snapshot(snap)) std::abort();
  Config c;
  c.id = 2;
  c.applied = 1;
  auto created = RawNode::create(c, storage);
  if (!created) std::abort();
  auto node = std::move(created).value();
  Index last = 1;
  std::uint64_t steps = 0;
  for (auto _ : state) {
    Message m;
    m.type = MessageType::kAppend;
    m.from = 1;
    m.to = 2;
    m.term = 2;
    m.index = last;
    m.log_term = last == 1 ? 1 : 2;
    m.commit = last;
    Entry e;
    e.term = 2;
    e.index = ++last;
    e.data.assign(16, 'x');
    m.entries.push_back(std::move(e));
    (void)node->step(std::move(m));
    if (++steps % 64 == 0) {
      Ready rd = node->ready();
      if (!rd.entries.empty()) (void)storage.append(rd.entries);
      if (rd.hard_state) storage.set_hard_state(*rd.hard_state);
      node->advance(rd);
      if (last > 100000 && last % 65536 < 64) (void)storage.compact(last - 64);
    }
  }
  state.counters["steps"] =
      benchmark::Counter(static_cast<double>(steps), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FollowerStepAppend)->Unit(benchmark::kNanosecond);

}  // namespace

BENCHMARK_MAIN();
