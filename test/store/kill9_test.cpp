// Crash recovery of whole stores under SIGKILL: every acknowledged write
// survives, on every built disk engine, for a one-store cluster and for a
// three-store cluster in one process.
//
// Each round forks a child (the parent has started no thread of its own at
// that point, and the child starts its threads only after the fork) that
// opens the store(s) on a RealRuntime with sync_log on (bootstrapping them
// in the first round), reads back every key acknowledged in earlier rounds,
// then writes new keys with the sync Store::put from four threads as fast as
// it can, reporting each acknowledged key to the parent over a pipe. The
// parent kills it with SIGKILL after a seeded random number of
// acknowledgements, and the next round restarts from the same directories.
// After the last round the parent opens the stores itself and reads every
// acknowledged key from the leader.
//
// Once the parent has opened an engine, that engine's process-wide
// background threads (RocksDB's and LevelDB's thread pools) live on, so the
// rounds of the next engine fork after threads: the test is in the suite
// 'forks-after-threads', which ThreadSanitizer runs leave out.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

#include "../engine/child_process.hpp"
#include "kvcore/engine/registry.hpp"
#include "kvcore/memory_network.hpp"
#include "kvcore/store.hpp"
#include "runtime/real_runtime.hpp"
#include "seed.hpp"
#include "temp_dir.hpp"

namespace kvcore::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kRounds = 5;
constexpr std::uint64_t kMinAcks = 200;
constexpr std::uint64_t kMaxAcks = 2000;
constexpr int kWriters = 4;
constexpr std::string_view kAck = "ack ";

// Keys name their round, writer and sequence number, so no two writes of the
// whole test share a key; the value is a function of the key.
std::string key_of(int round, int writer, std::uint64_t seq) {
  return fmt::format("r{:02d}/w{}/{:08d}", round, writer, seq);
}

std::string value_of(std::string_view key) {
  const std::size_t pad = std::hash<std::string_view>{}(key) % 200;
  return fmt::format("v:{}:{}", key, std::string(pad, 'x'));
}

// Fast elections so a round spends its time writing, not waiting for a
// leader; frequent log compaction so restarts recover from compacted logs.
StoreOptions store_options(const TempDir& dir, std::uint64_t id, EngineKind engine,
                           runtime::Runtime& rt) {
  StoreOptions o;
  o.cluster_id = 1;
  o.store_id = id;
  o.path = dir.sub(fmt::format("store{}", id));
  o.engine = engine;
  o.runtime = &rt;
  o.sync_log = true;
  o.tick_interval = 20ms;
  o.election_ticks = 10;
  o.heartbeat_ticks = 2;
  o.max_lease = 150ms;
  o.raft_log_gc_ticks = 5;
  o.raft_log_gc_count_limit = 300;
  return o;
}

// Polls `done` until it holds or `max` passes. A bounded poll on stores of a
// real runtime: there is no event to wait on from outside a store.
bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds max) {
  const auto deadline = Clock::now() + max;
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock lock(mu);
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::yield();
    cv.wait_for(lock, 1ms);
  }
  return true;
}

// N stores in one process on one RealRuntime and one MemoryNetwork.
class RealCluster {
 public:
  RealCluster(const TempDir& dir, std::size_t stores, EngineKind engine, std::uint64_t seed)
      : rt_(seed), net_(rt_) {
    net_.set_inline_delivery(true);
    for (std::uint64_t id = 1; id <= stores; ++id) {
      options_.push_back(store_options(dir, id, engine, rt_));
      ids_.push_back(id);
    }
  }
  ~RealCluster() {
    for (std::size_t i = 0; i < stores_.size(); ++i) net_.detach(ids_[i]);
    stores_.clear();
  }
  RealCluster(const RealCluster&) = delete;
  RealCluster& operator=(const RealCluster&) = delete;

  [[nodiscard]] Status bootstrap() {
    for (const StoreOptions& o : options_) {
      KVCORE_RETURN_IF_ERROR(
          Store::bootstrap(o, ids_).with_context(fmt::format("bootstrap of store {}", o.store_id)));
    }
    return Status::ok();
  }

  [[nodiscard]] Status open() {
    for (const StoreOptions& o : options_) {
      auto opened = Store::open(o, net_.transport(o.store_id));
      if (!opened.is_ok()) {
        return opened.status().with_context(fmt::format("open of store {}", o.store_id));
      }
      stores_.push_back(std::move(opened).value());
      net_.attach(o.store_id, stores_.back().get());
    }
    return Status::ok();
  }

  [[nodiscard]] std::size_t size() const { return stores_.size(); }
  [[nodiscard]] Store& store(std::uint64_t id) { return *stores_.at(id - 1); }

  // The store claiming leadership of region 1 in the highest term, or 0.
  [[nodiscard]] std::uint64_t leader() const {
    std::uint64_t best = 0;
    std::uint64_t best_term = 0;
    for (const auto& s : stores_) {
      for (const RegionStatus& r : s->regions()) {
        if (r.region_id == 1 && r.is_leader && (best == 0 || r.term > best_term)) {
          best = s->store_id();
          best_term = r.term;
        }
      }
    }
    return best;
  }

  [[nodiscard]] std::uint64_t wait_leader(std::chrono::milliseconds max = 10s) const {
    std::uint64_t found = 0;
    poll_until(
        [&] {
          found = leader();
          return found != 0;
        },
        max);
    return found;
  }

  // Runs `request` on the leader, following NotLeader hints and retrying
  // answers that say "retry" (Unavailable, DeadlineExceeded, busy) until it
  // succeeds, fails otherwise, or `max` passes.
  template <class R>
  R on_leader(const std::function<R(Store&)>& request, std::chrono::milliseconds max = 20s) {
    const auto deadline = Clock::now() + max;
    std::uint64_t target = leader();
    for (;;) {
      if (target == 0) {
        target = wait_leader(std::chrono::duration_cast<std::chrono::milliseconds>(
            std::max(deadline - Clock::now(), Clock::duration::zero())));
      }
      if (target == 0) return Status::unavailable("no leader");
      R r = request(store(target));
      const Status s = status_of(r);
      const bool retry = s.code() == Code::kUnavailable || s.code() == Code::kDeadlineExceeded ||
                         s.code() == Code::kResourceExhausted;
      if (!retry || Clock::now() >= deadline) return r;
      const auto* hint = s.detail_as<NotLeaderDetail>();
      target = hint != nullptr && hint->leader_store_id != target ? hint->leader_store_id : 0;
      if (target == 0) std::this_thread::yield();
    }
  }

 private:
  static Status status_of(const Status& s) { return s; }
  template <class T>
  static Status status_of(const Result<T>& r) {
    return r.status();
  }

  runtime::RealRuntime rt_;
  MemoryNetwork net_;
  std::vector<std::uint64_t> ids_;
  std::vector<StoreOptions> options_;
  // Destroyed (after detaching) before the network and the runtime.
  std::vector<std::unique_ptr<Store>> stores_;
};

// Reads every key of `acked` on the leader; the first problem, or "".
std::string check_acked(RealCluster& c, const std::vector<std::string>& acked) {
  for (const std::string& key : acked) {
    auto got = c.on_leader<Result<std::optional<std::string>>>(
        [&](Store& s) { return s.get(key, RequestOptions{5s}); });
    if (!got.is_ok()) return fmt::format("get {}: {}", key, got.status().to_string());
    if (!got->has_value()) return fmt::format("acknowledged key {} is missing", key);
    if (**got != value_of(key)) return fmt::format("acknowledged key {} has a wrong value", key);
  }
  return {};
}

// The child of one round. Reports "open", "checked <n>", "ack <key>" and
// "error: ..." lines; never returns normally (the parent kills it).
void round_child(int fd, const TempDir& dir, std::size_t stores, EngineKind engine, int round,
                 std::uint64_t seed, const std::vector<std::string>& acked) {
  RealCluster c(dir, stores, engine, seed);
  if (round == 0) {
    if (Status s = c.bootstrap(); !s.is_ok()) {
      report(fd, "error: " + s.to_string());
      ::_exit(2);
    }
  }
  if (Status s = c.open(); !s.is_ok()) {
    report(fd, "error: " + s.to_string());
    ::_exit(2);
  }
  report(fd, "open");
  if (std::string problem = check_acked(c, acked); !problem.empty()) {
    report(fd, "error: after restart: " + problem);
    ::_exit(2);
  }
  report(fd, fmt::format("checked {}", acked.size()));

  std::atomic<int> failed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (std::uint64_t seq = 0;; ++seq) {
        const std::string key = key_of(round, w, seq);
        const Status s = c.on_leader<Status>([&](Store& st) { return st.put(key, value_of(key)); });
        if (!s.is_ok()) {
          report(fd, fmt::format("error: put {}: {}", key, s.to_string()));
          failed.fetch_add(1);
          return;
        }
        report(fd, std::string(kAck) + key);
      }
    });
  }
  for (auto& t : writers) t.join();
  ::_exit(failed.load() > 0 ? 2 : 0);
}

struct RoundOutcome {
  std::uint64_t acks = 0;
  bool checked = false;
  std::vector<std::string> errors;
};

// Takes one line of a child's report into `out` and `acked`.
void take_line(const std::string& line, RoundOutcome& out, std::vector<std::string>& acked) {
  if (line.starts_with(kAck)) {
    acked.push_back(line.substr(kAck.size()));
    ++out.acks;
  } else if (line.starts_with("checked ")) {
    out.checked = true;
  } else if (line.starts_with("error")) {
    out.errors.push_back(line);
  }
}

TEST_CASE("kill -9: every acknowledged put survives restarts of killed stores", "[store][kill9]") {
  const std::uint64_t seed = test_seed(9);
  // Catch2 runs the case once per section: time them all from the first.
  static const auto start = Clock::now();
  for (const EngineKind engine : built_engines()) {
    if (engine == EngineKind::kMemory) continue;  // its data does not outlive the process
    for (const std::size_t stores : {std::size_t{1}, std::size_t{3}}) {
      DYNAMIC_SECTION(to_string(engine) << ", " << stores << " store(s)") {
        INFO(replay_hint(seed));
        Rng rng(seed ^ (static_cast<std::uint64_t>(engine) << 8) ^ stores);
        TempDir dir("kvcore-kill9");
        std::vector<std::string> acked;  // every key acknowledged so far
        const auto began = Clock::now();

        for (int round = 0; round < kRounds; ++round) {
          INFO("round " << round << ", " << acked.size() << " keys acknowledged before it");
          const std::uint64_t want = kMinAcks + rng.uniform(kMaxAcks - kMinAcks + 1);
          const std::uint64_t child_seed = rng.next();
          Child child = Child::spawn(
              [&](int fd) { round_child(fd, dir, stores, engine, round, child_seed, acked); });
          RoundOutcome out;
          while (out.acks < want && out.errors.empty()) {
            auto line = child.read_line(30s);
            if (!line) break;
            take_line(*line, out, acked);
          }
          // Kill at a random point of the writes in flight, not always right
          // after an acknowledgement was read.
          if (auto line = child.read_line(std::chrono::milliseconds(rng.uniform(3)))) {
            take_line(*line, out, acked);
          }
          child.kill_now();
          std::vector<std::string> rest;
          const ChildExit how = child.finish(30s, &rest);
          // Lines still in the pipe were acknowledged before the kill.
          for (const auto& line : rest) take_line(line, out, acked);
          for (const auto& e : out.errors) {
            INFO("child said: " << e);
            CHECK(false);
          }
          INFO("child " << how.describe());
          REQUIRE(out.errors.empty());
          REQUIRE(out.checked);
          REQUIRE(out.acks >= want);
          REQUIRE((how.signal == SIGKILL && !how.timed_out));
        }

        // The parent opens the stores itself, the last child reaped.
        RealCluster c(dir, stores, engine, rng.next());
        REQUIRE(c.open().is_ok());
        REQUIRE(c.wait_leader() != 0);
        const std::string problem = check_acked(c, acked);
        INFO(problem);
        CHECK(problem.empty());
        const auto secs =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count();
        WARN(to_string(engine) << ", " << stores << " store(s): " << acked.size()
                               << " acknowledged keys checked after " << kRounds << " kills, "
                               << secs << " ms");
      }
    }
  }
  INFO("all sections so far took "
       << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count() << " s");
  CHECK(Clock::now() - start < 60s);
}

}  // namespace
}  // namespace kvcore::test
