// RaftLogStorage: the same operations fed to raft::MemoryStorage and to a
// RaftLogStorage give the same answers, before and after a reopen; and a
// RawNode runs over it.
#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "kvcore/raft/raw_node.hpp"
#include "raftlog/storage.hpp"
#include "seed.hpp"
#include "temp_dir.hpp"

using namespace kvcore;
using namespace kvcore::raftlog;
using namespace kvcore::raftlog::testing;

namespace {

int error_kind(const Status& s) {
  const auto* d = s.detail_as<raft::StorageErrorDetail>();
  return d == nullptr ? -1 : static_cast<int>(d->kind);
}

template <class T>
void check_same(const Result<T>& mem, const Result<T>& log) {
  INFO("memory: " << mem.status().to_string() << " raftlog: " << log.status().to_string());
  REQUIRE(mem.is_ok() == log.is_ok());
  if (mem.is_ok()) {
    CHECK(*mem == *log);
  } else {
    CHECK(mem.status() == log.status());
    CHECK(error_kind(mem.status()) == error_kind(log.status()));
  }
}

void compare(const raft::MemoryStorage& mem, const RaftLogStorage& log, test::Rng& rng) {
  const auto mstate = mem.initial_state();
  const auto lstate = log.initial_state();
  REQUIRE(lstate.is_ok());
  CHECK(mstate->hard_state == lstate->hard_state);
  CHECK(mstate->conf_state == lstate->conf_state);
  check_same(mem.first_index(), log.first_index());
  check_same(mem.last_index(), log.last_index());
  CHECK(mem.snapshot()->metadata == log.snapshot()->metadata);
  const raft::Index last = *mem.last_index();
  for (raft::Index i = 0; i <= last + 2; ++i) check_same(mem.term(i), log.term(i));
  for (int k = 0; k < 5; ++k) {
    const raft::Index lo = rng.uniform(last + 3);
    const raft::Index hi = lo + rng.uniform(last + 3 - lo);
    const std::uint64_t max = rng.chance(0.5) ? UINT64_MAX : rng.uniform(400);
    check_same(mem.entries(lo, hi, max), log.entries(lo, hi, max));
  }
}

raft::ConfState random_conf(test::Rng& rng) {
  raft::ConfState cs;
  for (raft::NodeId id = 1; id <= 5; ++id) {
    if (rng.chance(0.5))
      cs.voters.push_back(id);
    else if (rng.chance(0.3))
      cs.learners.push_back(id);
  }
  if (rng.chance(0.2)) {
    cs.voters_outgoing = {1, 2, 3};
    cs.auto_leave = rng.chance(0.5);
  }
  return cs;
}

}  // namespace

TEST_CASE("raftlog: RaftLogStorage agrees with MemoryStorage", "[raftlog][storage]") {
  for (std::uint64_t seed : test::test_seeds(2000, 30)) {
    INFO(test::replay_hint(seed));
    test::Rng rng(seed);
    test::TempDir tmp("raftlog-storage");
    RaftLogOptions opts;
    opts.segment_bytes = 1024;
    auto eng = open_engine(tmp.sub("log"), opts);
    raft::MemoryStorage mem;
    auto log = std::make_unique<RaftLogStorage>(*eng, 42);
    raft::Term term = 1;
    for (int step = 0; step < 150; ++step) {
      LogBatch b;
      const auto action = rng.uniform(100);
      if (action < 45) {
        const raft::Index last = *mem.last_index();
        const raft::Index first = *mem.first_index();
        raft::Index at = last + 1;
        if (rng.chance(0.3)) at = first > 3 ? first - 3 + rng.uniform(last - first + 5) : 1;
        if (rng.chance(0.05)) at = last + 3;
        if (rng.chance(0.2)) ++term;
        auto ents = make_entries(42, at, at + 1 + rng.uniform(4), term, rng.uniform(80));
        const Status ms = mem.append(ents);
        const Status ls = log->append(b, ents);
        REQUIRE(ms.code() == ls.code());
      } else if (action < 60) {
        const raft::Index ci = *mem.first_index() - 1 + rng.uniform(8);
        const Status ms = mem.compact(ci);
        const Status ls = log->compact(b, ci);
        REQUIRE(ms.code() == ls.code());
      } else if (action < 70) {
        raft::HardState hs{term, rng.uniform(4), rng.uniform(10)};
        mem.set_hard_state(hs);
        log->set_hard_state(b, hs);
      } else if (action < 78) {
        auto cs = random_conf(rng);
        mem.set_conf_state(cs);
        log->set_conf_state(b, cs);
      } else if (action < 90) {
        // At or above the compacted index: MemoryStorage does not check below.
        const raft::Index i =
            std::max(mem.snapshot()->metadata.index, *mem.first_index() - 1) + rng.uniform(6);
        std::optional<raft::ConfState> cs;
        if (rng.chance(0.5)) cs = random_conf(rng);
        auto ms = mem.create_snapshot(i, cs, "");
        auto ls = log->create_snapshot(b, i, cs);
        REQUIRE(ms.is_ok() == ls.is_ok());
        if (ms.is_ok()) CHECK(ms->metadata == *ls);
      } else if (action < 95) {
        raft::Snapshot snap;
        snap.metadata.index = mem.snapshot()->metadata.index + rng.uniform(20);
        snap.metadata.term = term;
        snap.metadata.conf_state = random_conf(rng);
        const Status ls = log->apply_snapshot(b, snap.metadata);
        const Status ms = mem.apply_snapshot(snap);
        REQUIRE(ms.code() == ls.code());
      } else {
        log.reset();
        eng.reset();
        eng = open_engine(tmp.sub("log"), opts);
        log = std::make_unique<RaftLogStorage>(*eng, 42);
      }
      REQUIRE(eng->write(b, false).is_ok());
      if (rng.chance(0.1)) REQUIRE(eng->purge().is_ok());
      compare(mem, *log, rng);
    }
  }
}

TEST_CASE("raftlog: a RawNode runs over RaftLogStorage and restarts from it",
          "[raftlog][storage]") {
  test::TempDir tmp("raftlog-rawnode");
  const std::string dir = tmp.sub("log");
  raft::Config cfg;
  cfg.id = 1;
  std::vector<std::string> applied;
  auto drive = [&](raft::RawNode& node, RaftLogEngine& eng, RaftLogStorage& storage) {
    while (node.has_ready()) {
      raft::Ready rd = node.ready();
      LogBatch b;
      REQUIRE(storage.append(b, rd.entries).is_ok());
      if (rd.hard_state) storage.set_hard_state(b, *rd.hard_state);
      REQUIRE(eng.write(b, rd.must_sync).is_ok());
      for (const auto& e : rd.committed_entries) {
        if (e.type == raft::EntryType::kNormal && !e.data.empty()) applied.push_back(e.data);
      }
      node.advance(rd);
    }
  };
  {
    auto eng = open_engine(dir);
    RaftLogStorage storage(*eng, 7);
    LogBatch b;
    raft::ConfState cs;
    cs.voters = {1};
    storage.set_conf_state(b, cs);
    REQUIRE(eng->write(b, true).is_ok());
    auto node = raft::RawNode::create(cfg, storage);
    REQUIRE(node.is_ok());
    REQUIRE((*node)->campaign().is_ok());
    drive(**node, *eng, storage);
    REQUIRE((*node)->role() == raft::StateRole::kLeader);
    for (int i = 0; i < 5; ++i) {
      REQUIRE((*node)->propose("cmd" + std::to_string(i)).is_ok());
      drive(**node, *eng, storage);
    }
  }
  CHECK(applied == std::vector<std::string>{"cmd0", "cmd1", "cmd2", "cmd3", "cmd4"});
  auto eng = open_engine(dir);
  RaftLogStorage storage(*eng, 7);
  auto st = storage.initial_state();
  REQUIRE(st.is_ok());
  CHECK(st->conf_state.voters == std::vector<raft::NodeId>{1});
  CHECK(st->hard_state.commit == *storage.last_index());
  auto node = raft::RawNode::create(cfg, storage);
  REQUIRE(node.is_ok());
  CHECK((*node)->term() == st->hard_state.term);
}
