// LocalCluster: a replicated kvcore cluster of N Stores in one process, on
// one SimRuntime and one MemoryNetwork, for tests.
//
// Everything runs on the simulation's one thread, the thread that built the
// cluster: the stores' executors and timers are queues of the SimRuntime and
// the network delivers frames by its timers, so nothing happens unless the
// test drives the simulation (sim().run_for(), run_until(), or the request
// helpers below, which run it until their request completes). The helpers
// never block a thread, and the stores' sync request methods must not be
// called (they would wait for a simulation that only this thread can run).
//
// A run is a function of the seed: the same LocalClusterOptions replay the
// same schedule, deliveries and elections. A failing test must print the
// seed, e.g. INFO(kvcore::test::replay_hint(seed)) from seed.hpp, and take it
// from kvcore::test::test_seed()/test_seeds() so KVCORE_SEED replays it.
//
// Durability: the memory kv engine always loses its unsynced writes at
// crash(). The raft log is on a real file system and, by default, keeps what
// was written (a process crash) while stores skip its syncs. With
// simulated_disk each store's raft log goes through a SimDisk of its own and
// is synced as in production, and crash() is a power loss for it too.
//
// Each store has its own temporary directory (removed with the cluster),
// store ids are 1..N, the cluster id is 1, and stores 1..bootstrapped are
// bootstrapped with those stores as the voters of region 1; the others
// start empty (fresh stores that membership changes can add).
//
// Thread-safety: none; use it only from the thread that built it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/engine/types.hpp"
#include "kvcore/memory_network.hpp"
#include "kvcore/status.hpp"
#include "kvcore/store.hpp"
#include "runtime/sim_disk.hpp"
#include "runtime/sim_runtime.hpp"
#include "temp_dir.hpp"

namespace kvcore::test {

struct LocalClusterOptions {
  // Stores 1..stores.
  std::size_t stores = 3;
  // Stores 1..bootstrapped are the voters of region 1; the rest start with
  // no region. 0: every store.
  std::size_t bootstrapped = 0;
  // Seeds the SimRuntime, and through it every random choice of the run.
  std::uint64_t seed = 1;
  // kMemory puts user data at "mem:<dir>/kv" (crash() can then drop its
  // unsynced writes); the raft log stays on disk at "<dir>/raft".
  EngineKind engine = EngineKind::kMemory;
  // Applied to each store's options after the defaults above, at creation.
  // Changes for one restart go through mutable_options().
  std::function<void(StoreOptions&)> tune = {};
  // Store i's clock runs with clock_skews[i-1] (offset and drift against the
  // simulator); stores past the end of the list run on the simulator's time.
  std::vector<runtime::ClockSkew> clock_skews = {};
  // StoreOptions::tick_interval of every store.
  std::chrono::milliseconds tick{100};
  // Gives each store a runtime::SimDisk (kept across its restarts) under its
  // raft log, and sync_log = true (before `tune`): syncs then cost no real
  // time, and crash() drops every raft log write that was not synced, as a
  // power loss would. false keeps the raft log's unsynced writes at crash()
  // and turns sync_log off.
  bool simulated_disk = false;
};

class LocalCluster {
 public:
  // Bootstraps and opens every store. Throws std::runtime_error (with the
  // seed to replay) when a store cannot be bootstrapped or opened: a harness
  // failure, not a result to test.
  explicit LocalCluster(LocalClusterOptions options);
  // Stops every running store, then the network, then the clock views.
  ~LocalCluster();

  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  [[nodiscard]] runtime::SimRuntime& sim() { return sim_; }
  [[nodiscard]] MemoryNetwork& net() { return net_; }
  [[nodiscard]] std::uint64_t seed() const { return options_.seed; }
  [[nodiscard]] std::size_t size() const { return nodes_.size(); }
  // 1..size().
  [[nodiscard]] std::vector<std::uint64_t> store_ids() const;

  // The running Store `id`. Throws std::out_of_range when it is not running;
  // the reference is valid until stop(id) or crash(id).
  [[nodiscard]] Store& store(std::uint64_t id);
  [[nodiscard]] bool running(std::uint64_t id) const;
  // The options store `id` is opened with (throws std::out_of_range for an
  // unknown id). mutable_options() changes them for the next restart().
  [[nodiscard]] const StoreOptions& options(std::uint64_t id) const;
  [[nodiscard]] StoreOptions& mutable_options(std::uint64_t id);
  // Store `id`'s runtime, for jumping its clock (view(id).sim_clock().jump).
  // A stop or crash replaces it (the old one's pending timers die with the
  // store, and so does a pause); the clock skew, jumps included, carries
  // over, and so does the SimDisk.
  [[nodiscard]] runtime::SimView& view(std::uint64_t id);
  // Store `id`'s SimDisk; nullptr without simulated_disk. Lives as long as
  // the cluster.
  [[nodiscard]] runtime::SimDisk* disk(std::uint64_t id);

  // A slow disk: each raft log sync of store `id` from now on stalls the
  // store for `latency` (SimDisk::set_sync_latency); zero makes syncs free
  // again. Survives restarts. Throws std::logic_error without
  // simulated_disk.
  void set_disk_latency(std::uint64_t id, runtime::Duration latency);
  // Stalls store `id` for `d` of simulated time (SimView::pause_for): its
  // executors and timers run nothing meanwhile; frames to it wait in its
  // inbox. A stop or crash ends the pause.
  void pause(std::uint64_t id, runtime::Duration d);

  // Detaches store `id` from the network and destroys it (a clean stop: its
  // pending requests complete with Unavailable). No-op when not running.
  void stop(std::uint64_t id);
  // A machine crash: detaches and destroys the store like stop(), then, with
  // the memory engine, drops every kv write that was not synced
  // (MemoryEngine::crash_at). Without simulated_disk the raft log on disk
  // keeps what was written (synced or not: a process crash, not a power
  // loss, for that engine); with it, SimDisk::crash() cuts the raft log back
  // to what was synced. Throws std::runtime_error when the disk cannot be cut
  // (a harness failure).
  void crash(std::uint64_t id);
  // Opens store `id` again from its directories with options(id) and
  // attaches it. FailedPrecondition when it is running; otherwise what
  // Store::open returns.
  [[nodiscard]] Status restart(std::uint64_t id);

  // The running store whose peer of `region` claims leadership in the
  // highest term any running store claims it in (0 when none does). Reads
  // regions(); runs nothing.
  [[nodiscard]] std::uint64_t leader(std::uint64_t region = 1);
  // Runs the simulation until leader(region) names a store (at most `max` of
  // simulated time) and returns it, or 0.
  std::uint64_t wait_leader(std::chrono::milliseconds max = std::chrono::seconds(10),
                            std::uint64_t region = 1);

  // --- requests on one store ---
  // Each issues the async request on store `id` with RequestOptions{timeout}
  // and runs the simulation until it completes: the store's own answer
  // (NotLeader, DeadlineExceeded, ...) is returned as is. Unavailable when
  // `id` is not running; Internal when the store never answers within
  // timeout plus a margin (a bug: the store must fail it with
  // DeadlineExceeded).
  Status put(std::uint64_t id, std::string_view key, std::string_view value,
             std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Status del(std::uint64_t id, std::string_view key,
             std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Status write(std::uint64_t id, RawBatch batch,
               std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Result<std::optional<std::string>> get(
      std::uint64_t id, std::string_view key,
      std::chrono::milliseconds timeout = std::chrono::seconds(5));
  Result<std::vector<KvPair>> scan(std::uint64_t id, std::string_view start, std::string_view end,
                                   std::size_t limit = 0, bool reverse = false,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Store::async_change_peers on store `id`, run until it completes.
  Status change_peers(std::uint64_t id, std::uint64_t region,
                      std::vector<PeerChangeRequest> changes,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // --- requests that find the leader ---
  // Start at leader() (or any running store), follow NotLeader hints, and
  // after an Unavailable or ResourceExhausted answer without a usable hint
  // wait one tick and ask the next running store (in id order), until
  // `timeout` of simulated time has
  // passed. Any other answer is returned as is. DeadlineExceeded, with the
  // last answer in its message, when time runs out.
  Status put_any(std::string_view key, std::string_view value,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Status del_any(std::string_view key,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Status write_any(const RawBatch& batch,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Result<std::optional<std::string>> get_any(
      std::string_view key, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  Result<std::vector<KvPair>> scan_any(
      std::string_view start, std::string_view end, std::size_t limit = 0, bool reverse = false,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  struct Node {
    std::unique_ptr<TempDir> dir;
    std::unique_ptr<runtime::SimDisk> disk;  // outlives the views bound to it
    std::unique_ptr<runtime::SimView> view;
    StoreOptions options;
    std::unique_ptr<Store> store;
  };

  // Stops what the constructor opened and throws std::runtime_error.
  [[noreturn]] void fail(std::string_view what, std::uint64_t id, const Status& s);
  Node& node(std::uint64_t id);
  const Node& node(std::uint64_t id) const;
  // Detaches and destroys the store, and replaces its view (dropping the
  // timers it left). False when it was not running.
  bool shut_down(Node& n, std::uint64_t id);
  // Runs the simulation until `*done` holds, at most timeout + margin.
  bool drive(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  // The retry loop of the *_any forms. `attempt(id, remaining)` makes one
  // request on store `id` and returns its status.
  Status follow_leader(
      std::chrono::milliseconds timeout,
      const std::function<Status(std::uint64_t id, std::chrono::milliseconds remaining)>& attempt);

  LocalClusterOptions options_;
  runtime::SimRuntime sim_;
  // Destroyed after the network (its views and directories outlive the
  // stores' last frames); stores are destroyed first, by the destructor body.
  std::map<std::uint64_t, Node> nodes_;
  MemoryNetwork net_;
};

}  // namespace kvcore::test
