// A seeded random test against an in-memory model: random batches over a
// few regions (appends with conflicts and gaps, hard states, state records,
// compaction, clean), purges and reopens, with tiny segments so rotation and
// rewrite happen all the time.
#include <catch2/catch.hpp>

#include <map>
#include <optional>

#include "helpers.hpp"
#include "seed.hpp"
#include "temp_dir.hpp"

using namespace kvcore;
using namespace kvcore::raftlog;
using namespace kvcore::raftlog::testing;

namespace {

struct ModelRegion {
  raft::Index first = 0;
  std::vector<raft::Entry> entries;
  std::optional<raft::HardState> hard_state;
  std::map<std::string, std::string> states;
  [[nodiscard]] bool empty() const { return entries.empty() && !hard_state && states.empty(); }
  [[nodiscard]] raft::Index last() const { return first + entries.size() - 1; }
};

const std::vector<std::string> kKeys = {"region", "apply", "snap"};

class Model {
 public:
  void append(std::uint64_t id, const std::vector<raft::Entry>& ents) {
    ModelRegion& r = regions_[id];
    const raft::Index at = ents.front().index;
    if (!r.entries.empty() && at >= r.first && at <= r.last() + 1) {
      r.entries.resize(at - r.first);
    } else {
      r.entries.clear();
      r.first = at;
    }
    r.entries.insert(r.entries.end(), ents.begin(), ents.end());
  }
  void hard_state(std::uint64_t id, raft::HardState hs) { regions_[id].hard_state = hs; }
  void put(std::uint64_t id, const std::string& k, const std::string& v) {
    regions_[id].states[k] = v;
  }
  void del(std::uint64_t id, const std::string& k) {
    auto it = regions_.find(id);
    if (it != regions_.end()) it->second.states.erase(k);
    prune(id);
  }
  void compact(std::uint64_t id, raft::Index index) {
    auto it = regions_.find(id);
    if (it == regions_.end() || it->second.entries.empty()) return;
    ModelRegion& r = it->second;
    if (index > r.first) {
      const std::size_t n = std::min<std::size_t>(index - r.first, r.entries.size());
      r.entries.erase(r.entries.begin(), r.entries.begin() + static_cast<std::ptrdiff_t>(n));
      r.first += n;
    }
    prune(id);
  }
  void clean(std::uint64_t id) { regions_.erase(id); }

  void check(const RaftLogEngine& eng) const {
    std::vector<std::uint64_t> ids;
    std::uint64_t live = 0;
    for (const auto& [id, r] : regions_) {
      ids.push_back(id);
      live += r.entries.size();
      INFO("region " << id);
      if (r.entries.empty()) {
        CHECK_FALSE(eng.first_index(id).has_value());
      } else {
        CHECK(eng.first_index(id) == r.first);
        CHECK(eng.last_index(id) == r.last());
        CHECK(all_entries(eng, id) == r.entries);
      }
      CHECK(eng.hard_state(id) == r.hard_state);
      for (const auto& k : kKeys) {
        auto it = r.states.find(k);
        auto got = eng.get_state(id, k);
        REQUIRE(got.is_ok());
        if (it == r.states.end()) {
          CHECK_FALSE(got->has_value());
        } else {
          CHECK(got->value_or("<none>") == it->second);
        }
      }
    }
    CHECK(eng.regions() == ids);
    CHECK(eng.live_entries() == live);
  }

  [[nodiscard]] const ModelRegion* find(std::uint64_t id) const {
    auto it = regions_.find(id);
    return it == regions_.end() ? nullptr : &it->second;
  }

 private:
  void prune(std::uint64_t id) {
    auto it = regions_.find(id);
    if (it != regions_.end() && it->second.empty()) regions_.erase(it);
  }
  std::map<std::uint64_t, ModelRegion> regions_;
};

void run_seed(std::uint64_t seed) {
  test::Rng rng(seed);
  test::TempDir tmp("raftlog-model");
  RaftLogOptions opts;
  // Small enough to rotate every few dozen batches; each rotation costs three
  // fsyncs (old segment, new segment, directory).
  opts.segment_bytes = 1024 + rng.uniform(4096);
  opts.rewrite_region_bytes = rng.chance(0.5) ? 0 : 1 + rng.uniform(4096);
  opts.rewrite_budget_bytes = 1 + rng.uniform(8192);
  auto eng = open_engine(tmp.sub("log"), opts);
  Model model;
  raft::Term term = 1;

  for (int step = 0; step < 300; ++step) {
    const auto action = rng.uniform(100);
    if (action < 4) {
      eng.reset();
      eng = open_engine(tmp.sub("log"), opts);
      model.check(*eng);
      continue;
    }
    if (action < 10) {
      REQUIRE(eng->purge().is_ok());
      model.check(*eng);
      continue;
    }
    LogBatch b;
    const int ops = 1 + static_cast<int>(rng.uniform(4));
    for (int i = 0; i < ops; ++i) {
      const std::uint64_t id = 1 + rng.uniform(6);
      const ModelRegion* r = model.find(id);
      const auto kind = rng.uniform(100);
      if (kind < 50) {
        raft::Index at = 1;
        if (r != nullptr && !r->entries.empty()) {
          const auto where = rng.uniform(10);
          if (where < 6) {
            at = r->last() + 1;
          } else if (where < 9) {
            at = r->first + rng.uniform(r->entries.size() + 1);
          } else {
            at = r->last() + 2 + rng.uniform(5);
          }
        } else {
          at = 1 + rng.uniform(20);
        }
        if (rng.chance(0.2)) ++term;
        auto ents = make_entries(id, at, at + 1 + rng.uniform(5), term, rng.uniform(60));
        REQUIRE(b.append(id, ents).is_ok());
        model.append(id, ents);
      } else if (kind < 62) {
        raft::HardState hs{term, rng.uniform(4), rng.uniform(100)};
        b.set_hard_state(id, hs);
        model.hard_state(id, hs);
      } else if (kind < 77) {
        const auto& k = kKeys[rng.uniform(kKeys.size())];
        const std::string v = rng.bytes(rng.uniform(30));
        b.put_state(id, k, v);
        model.put(id, k, v);
      } else if (kind < 83) {
        const auto& k = kKeys[rng.uniform(kKeys.size())];
        b.delete_state(id, k);
        model.del(id, k);
      } else if (kind < 97) {
        raft::Index to = 1 + rng.uniform(20);
        if (r != nullptr && !r->entries.empty()) to = r->first + rng.uniform(r->entries.size() + 2);
        b.compact_to(id, to);
        model.compact(id, to);
      } else {
        b.clean_region(id);
        model.clean(id);
      }
    }
    REQUIRE(eng->write(b, rng.chance(0.1)).is_ok());
    if (rng.chance(0.2)) model.check(*eng);
  }
  model.check(*eng);
  eng.reset();
  eng = open_engine(tmp.sub("log"), opts);
  model.check(*eng);
}

}  // namespace

TEST_CASE("raftlog: random operations match the model across reopens", "[raftlog][model]") {
  for (std::uint64_t seed : test::test_seeds(1000, 50)) {
    INFO(test::replay_hint(seed));
    run_seed(seed);
  }
}
