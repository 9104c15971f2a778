// Conformance: a seeded random sequence of writes (puts, deletes, range
// deletes, batches, ingestion, flushes, compactions, reopens) compared with a
// std::map model after every read: point reads, multi_get, and random
// iterator walks with random bounds, over the engine and over snapshots
// taken along the way. A failure prints the seed: KVCORE_SEED=<n> replays it.
#include <deque>
#include <string>
#include <vector>

#include "engine_test_util.hpp"

namespace kvcore::test {
namespace {

constexpr int kOpsPerSeed = 2000;
constexpr std::uint64_t kSeeds = 20;

// A small key space of binary keys (1 to 3 bytes from a few byte values,
// with 0x00 and 0xFF among them), so writes collide and keys are prefixes
// of one another.
std::string random_key(Rng& rng) {
  static constexpr unsigned char kBytes[] = {0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xfe, 0xff};
  std::string k(1 + rng.uniform(3), '\0');
  for (auto& c : k) c = static_cast<char>(kBytes[rng.uniform(sizeof(kBytes))]);
  return k;
}

// Probes for seeks and bounds also include keys that cannot exist.
std::string random_probe(Rng& rng) {
  switch (rng.uniform(8)) {
    case 0: return "";
    case 1: return std::string(4, '\xff');
    default: return random_key(rng);
  }
}

CF random_cf(Rng& rng) {
  // Mostly two CFs, so each holds enough keys to be interesting.
  static constexpr CF kWeighted[] = {CF::kDefault, CF::kDefault, CF::kWrite,
                                     CF::kWrite,   CF::kLock,    CF::kRaft};
  return kWeighted[rng.uniform(std::size(kWeighted))];
}

std::string random_value(Rng& rng) {
  // Empty values included: an empty value is a present key.
  return rng.bytes(rng.uniform(4) == 0 ? 0 : rng.uniform(24));
}

void erase_range(Model& m, const std::string& begin, const std::string& end) {
  if (begin < end) m.erase(m.lower_bound(begin), m.lower_bound(end));
}

IterOptions random_bounds(Rng& rng) {
  IterOptions opts;
  if (rng.chance(0.5)) opts.lower_bound = random_probe(rng);
  if (rng.chance(0.5)) opts.upper_bound = random_probe(rng);
  // Mostly well-formed ranges; sometimes inverted ones (which are empty).
  if (!opts.upper_bound.empty() && opts.upper_bound < opts.lower_bound && rng.chance(0.8)) {
    std::swap(opts.lower_bound, opts.upper_bound);
  }
  return opts;
}

struct HeldSnapshot {
  std::shared_ptr<const Snapshot> snap;
  StoreModel model;
};

class ModelRun {
 public:
  ModelRun(EngineKind kind, std::uint64_t seed) : store_(kind), rng_(seed) {}

  void run() {
    for (int op = 0; op < kOpsPerSeed; ++op) {
      INFO("op " << op);
      step();
      if (failed_) return;
    }
    check_everything(store_.engine(), model_, "final state");
    snapshots_.clear();
    store_.reopen();
    check_everything(store_.engine(), model_, "final state after reopen");
  }

 private:
  Engine& e() { return store_.engine(); }
  Model& m(CF cf) { return model_[cf_index(cf)]; }

  void step() {
    const auto roll = rng_.uniform(1000);
    if (roll < 350) {
      const CF cf = random_cf(rng_);
      const std::string k = random_key(rng_);
      const std::string v = random_value(rng_);
      put(e(), cf, k, v, rng_.chance(0.02));
      m(cf)[k] = v;
    } else if (roll < 480) {
      const CF cf = random_cf(rng_);
      const std::string k = random_key(rng_);
      del(e(), cf, k);
      m(cf).erase(k);
    } else if (roll < 530) {
      const CF cf = random_cf(rng_);
      std::string begin = random_probe(rng_);
      std::string end = random_key(rng_);
      if (end < begin) std::swap(begin, end);
      REQUIRE_OK(e().delete_range(cf, {begin, end}));
      erase_range(m(cf), begin, end);
    } else if (roll < 700) {
      write_random_batch();
    } else if (roll < 860) {
      walk(e(), model_, "engine");
    } else if (roll < 905) {
      point_reads(e(), model_);
    } else if (roll < 935) {
      if (snapshots_.size() >= 3) snapshots_.pop_front();
      snapshots_.push_back({e().snapshot(), model_});
    } else if (roll < 975) {
      if (!snapshots_.empty()) {
        const auto& held = snapshots_[rng_.uniform(snapshots_.size())];
        walk(*held.snap, held.model, "snapshot");
        point_reads(*held.snap, held.model);
      }
    } else if (roll < 977) {
      REQUIRE_OK(e().flush());
    } else if (roll < 979) {
      std::string begin = random_probe(rng_);
      std::string end = rng_.chance(0.3) ? std::string() : random_probe(rng_);
      if (!end.empty() && end < begin) std::swap(begin, end);
      REQUIRE_OK(e().compact_range(random_cf(rng_), {begin, end}));
    } else if (roll < 983) {
      ingest_random_file();
    } else if (roll < 998) {
      check_everything(e(), model_, "full check");
    } else {
      // The engine must outlive its snapshots.
      snapshots_.clear();
      store_.reopen();
    }
  }

  void write_random_batch() {
    auto batch = e().new_write_batch();
    StoreModel next = model_;
    const auto ops = 1 + rng_.uniform(8);
    for (std::uint64_t i = 0; i < ops; ++i) {
      const CF cf = random_cf(rng_);
      Model& nm = next[cf_index(cf)];
      const auto kind = rng_.uniform(10);
      if (kind < 5) {
        const std::string k = random_key(rng_);
        const std::string v = random_value(rng_);
        batch->put(cf, k, v);
        nm[k] = v;
      } else if (kind < 8) {
        const std::string k = random_key(rng_);
        batch->delete_key(cf, k);
        nm.erase(k);
      } else {
        // Including begin >= end and an empty end, which delete nothing.
        std::string begin = random_probe(rng_);
        const std::string end = rng_.chance(0.05) ? std::string() : random_key(rng_);
        batch->delete_range(cf, begin, end);
        erase_range(nm, begin, end);
      }
    }
    REQUIRE(batch->count() <= ops);
    REQUIRE_OK(e().write(*batch, WriteOptions{.sync = rng_.chance(0.05)}));
    model_ = std::move(next);
  }

  void ingest_random_file() {
    const CF cf = random_cf(rng_);
    Model entries;
    const auto n = 1 + rng_.uniform(30);
    for (std::uint64_t i = 0; i < n; ++i) entries[random_key(rng_)] = random_value(rng_);
    const std::string path = store_.sub("ingest-" + std::to_string(files_++) + ".sst");
    auto writer = e().new_sst_writer(path);
    REQUIRE_OK(writer);
    for (const auto& [k, v] : entries) REQUIRE_OK((*writer)->put(k, v));
    REQUIRE_OK((*writer)->finish());
    const std::vector<std::string> files = {path};
    REQUIRE_OK(e().ingest(cf, files));
    for (const auto& [k, v] : entries) m(cf)[k] = v;
  }

  void walk(const Reader& r, const StoreModel& model, std::string_view what) {
    const CF cf = random_cf(rng_);
    const IterOptions opts = random_bounds(rng_);
    INFO(what << " walk over " << cf_name(cf) << " with bounds [" << printable(opts.lower_bound)
              << ", " << printable(opts.upper_bound) << ")");
    auto it = r.new_iterator(cf, opts);
    const int steps = 5 + static_cast<int>(rng_.uniform(30));
    if (!random_walk(*it, model[cf_index(cf)], opts, rng_, steps,
                     [this] { return random_probe(rng_); })) {
      failed_ = true;
    }
  }

  void point_reads(const Reader& r, const StoreModel& model) {
    const CF cf = random_cf(rng_);
    const Model& mm = model[cf_index(cf)];
    std::vector<std::string> owned;
    for (int i = 0; i < 6; ++i) owned.push_back(random_key(rng_));
    const std::vector<std::string_view> keys(owned.begin(), owned.end());
    auto many = r.multi_get(cf, keys);
    REQUIRE_OK(many);
    REQUIRE(many->size() == keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto found = mm.find(owned[i]);
      const std::optional<std::string> want =
          found == mm.end() ? std::nullopt : std::optional<std::string>(found->second);
      INFO("key " << printable(owned[i]) << " in " << cf_name(cf));
      CHECK((*many)[i] == want);
      CHECK(get(r, cf, owned[i]) == want);
      if ((*many)[i] != want) failed_ = true;
    }
  }

  void check_everything(const Reader& r, const StoreModel& model, std::string_view what) {
    INFO(what);
    for (CF cf : kAllCFs) {
      INFO("cf " << cf_name(cf));
      const Model got = dump(r, cf);
      CHECK(got == model[cf_index(cf)]);
      CHECK(dump_backward(r, cf) == model[cf_index(cf)]);
      if (got != model[cf_index(cf)]) failed_ = true;
    }
  }

  TestStore store_;
  StoreModel model_;
  Rng rng_;
  std::deque<HeldSnapshot> snapshots_;  // after store_: released before the engine
  int files_ = 0;
  bool failed_ = false;
};

TEST_CASE("randomized operations match a std::map model", "[engine][model]") {
  FOR_EACH_ENGINE(kind) {
    for (const std::uint64_t seed : test_seeds(1, kSeeds)) {
      INFO(to_string(kind) << " seed " << seed << ": " << replay_hint(seed));
      ModelRun run(kind, seed);
      run.run();
    }
  }
}

}  // namespace
}  // namespace kvcore::test
