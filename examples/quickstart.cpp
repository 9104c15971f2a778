// kvcore quickstart: a replicated cluster of three stores in one process.
//
// Each store has its own directory and would normally run on its own
// machine; here they talk over MemoryNetwork, the in-process transport. The
// walk-through: bootstrap the cluster, elect a leader, write and read, stop
// the leader and watch another store take over with the data intact, then
// restart the stopped store and watch it catch up. It ends with a few lines
// of the metrics a store exposes.
//
// The sync request methods (put, get) block the calling thread; that is fine
// here because main is not one of the stores' threads.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

#include "kvcore/engine/registry.hpp"
#include "kvcore/memory_network.hpp"
#include "kvcore/runtime.hpp"
#include "kvcore/store.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kClusterId = 1;
constexpr std::uint64_t kRegion = 1;  // bootstrap makes one region holding every key
const std::vector<std::uint64_t> kStoreIds = {1, 2, 3};

// A fresh directory under the system temp dir, removed (with everything in
// it) when the program ends, on error paths too.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "kvcore-quickstart-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Three stores sharing one runtime (clock, timers, threads) and one
// in-process network. Stores are destroyed before the network, and the
// network before the runtime, as their contracts require.
class Cluster {
 public:
  explicit Cluster(const std::string& dir) : net_(*runtime_) {
    net_.set_inline_delivery(true);  // frames go straight to the receiving store
    for (std::uint64_t id : kStoreIds) {
      kvcore::StoreOptions o;
      o.cluster_id = kClusterId;
      o.store_id = id;
      o.path = dir + "/store" + std::to_string(id);
      o.engine = kvcore::default_engine;
      o.runtime = runtime_.get();
      options_.push_back(o);
      stores_.emplace_back();
    }
  }
  ~Cluster() {
    for (std::uint64_t id : kStoreIds) stop(id);
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  [[nodiscard]] const kvcore::StoreOptions& options(std::uint64_t id) const {
    return options_[id - 1];
  }
  [[nodiscard]] kvcore::Store& store(std::uint64_t id) { return *stores_[id - 1]; }

  [[nodiscard]] kvcore::Status bootstrap() {
    for (std::uint64_t id : kStoreIds) {
      kvcore::Status s = kvcore::Store::bootstrap(options(id), kStoreIds);
      if (!s.is_ok()) return s.with_context("bootstrap of store " + std::to_string(id));
    }
    return {};
  }

  // Opens store `id` from its directory and connects it to the network.
  [[nodiscard]] kvcore::Status start(std::uint64_t id) {
    auto opened = kvcore::Store::open(options(id), net_.transport(id));
    if (!opened.is_ok()) return opened.status().with_context("open of store " + std::to_string(id));
    stores_[id - 1] = std::move(opened).value();
    net_.attach(id, stores_[id - 1].get());
    return {};
  }

  // Disconnects store `id` and destroys it; its directory stays.
  void stop(std::uint64_t id) {
    if (!stores_[id - 1]) return;
    net_.detach(id);
    stores_[id - 1].reset();
  }

  [[nodiscard]] bool running(std::uint64_t id) const { return stores_[id - 1] != nullptr; }

  // What store `id` knows of the region, if it is running.
  [[nodiscard]] std::optional<kvcore::RegionStatus> region(std::uint64_t id) const {
    if (!running(id)) return std::nullopt;
    for (const kvcore::RegionStatus& r : stores_[id - 1]->regions()) {
      if (r.region_id == kRegion) return r;
    }
    return std::nullopt;
  }

  // The running store whose peer leads the region in the highest term, or 0.
  [[nodiscard]] std::uint64_t leader() const {
    std::uint64_t best = 0;
    std::uint64_t best_term = 0;
    for (std::uint64_t id : kStoreIds) {
      auto r = region(id);
      if (r && r->is_leader && (best == 0 || r->term > best_term)) {
        best = id;
        best_term = r->term;
      }
    }
    return best;
  }

 private:
  std::shared_ptr<kvcore::runtime::Runtime> runtime_ = kvcore::make_real_runtime();
  kvcore::MemoryNetwork net_;
  std::vector<kvcore::StoreOptions> options_;
  std::vector<std::unique_ptr<kvcore::Store>> stores_;  // index id-1; null when stopped
};

// Checks `done` every few milliseconds until it holds or `max` passes.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds max) {
  const auto deadline = Clock::now() + max;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Waits for a leader and says who it is; 0 when none shows up in time.
std::uint64_t wait_for_leader(const Cluster& c) {
  const auto t = Clock::now();
  std::uint64_t leader = 0;
  wait_until(
      [&] {
        leader = c.leader();
        return leader != 0;
      },
      15s);
  if (leader == 0) {
    std::printf("   no leader after %lld ms\n", ms_since(t));
    return 0;
  }
  std::printf("   store %llu is the leader (term %llu), elected after %lld ms\n",
              static_cast<unsigned long long>(leader),
              static_cast<unsigned long long>(c.region(leader)->term), ms_since(t));
  return leader;
}

bool put(kvcore::Store& s, std::string_view key, std::string_view value) {
  const kvcore::Status st = s.put(key, value);
  if (!st.is_ok()) {
    std::printf("   put %.*s failed: %s\n", static_cast<int>(key.size()), key.data(),
                st.to_string().c_str());
    return false;
  }
  std::printf("   put  %-12.*s = %.*s\n", static_cast<int>(key.size()), key.data(),
              static_cast<int>(value.size()), value.data());
  return true;
}

bool get(kvcore::Store& s, std::string_view key, std::string_view want) {
  auto got = s.get(key);
  if (!got.is_ok()) {
    std::printf("   get %.*s failed: %s\n", static_cast<int>(key.size()), key.data(),
                got.status().to_string().c_str());
    return false;
  }
  const std::string shown = got->value_or("(missing)");
  std::printf("   get  %-12.*s = %s\n", static_cast<int>(key.size()), key.data(), shown.c_str());
  if (shown != want) {
    std::printf("   ... expected %.*s\n", static_cast<int>(want.size()), want.data());
    return false;
  }
  return true;
}

std::uint64_t other_store(std::uint64_t not_this) {
  return not_this == kStoreIds.front() ? kStoreIds[1] : kStoreIds.front();
}

int run(const std::string& dir) {
  std::printf("kvcore quickstart: three replicated stores in one process\n");
  std::printf("   engine: %.*s (the build's default), data under %s\n\n",
              static_cast<int>(kvcore::to_string(kvcore::default_engine).size()),
              kvcore::to_string(kvcore::default_engine).data(), dir.c_str());

  Cluster c(dir);

  std::printf("1. Bootstrap: region %llu holds every key, one replica on each of stores 1, 2, 3\n",
              static_cast<unsigned long long>(kRegion));
  if (kvcore::Status s = c.bootstrap(); !s.is_ok()) {
    std::printf("   %s\n", s.to_string().c_str());
    return EXIT_FAILURE;
  }
  for (std::uint64_t id : kStoreIds) std::printf("   %s\n", c.options(id).path.c_str());

  std::printf("\n2. Open the three stores and let them elect a leader\n");
  for (std::uint64_t id : kStoreIds) {
    if (kvcore::Status s = c.start(id); !s.is_ok()) {
      std::printf("   %s\n", s.to_string().c_str());
      return EXIT_FAILURE;
    }
  }
  const std::uint64_t first = wait_for_leader(c);
  if (first == 0) return EXIT_FAILURE;

  std::printf("\n3. Write and read through the leader (store %llu)\n",
              static_cast<unsigned long long>(first));
  kvcore::Store& leader = c.store(first);
  if (!put(leader, "fruit/apple", "red") || !put(leader, "fruit/banana", "yellow") ||
      !put(leader, "fruit/cherry", "dark red") || !get(leader, "fruit/banana", "yellow")) {
    return EXIT_FAILURE;
  }
  const std::uint64_t follower = other_store(first);
  auto refused = c.store(follower).get("fruit/apple");
  if (!refused.is_ok()) {
    // NotLeader carries the leader's store id: where a client sends it next.
    const auto* hint = refused.status().detail_as<kvcore::NotLeaderDetail>();
    const std::string answer =
        hint != nullptr && hint->leader_store_id != 0
            ? "\"not leader, ask store " + std::to_string(hint->leader_store_id) + "\""
            : refused.status().to_string();
    std::printf("   a follower does not serve requests: store %llu answers %s\n",
                static_cast<unsigned long long>(follower), answer.c_str());
  }

  std::printf("\n4. Stop the leader (store %llu) and let the other two elect a new one\n",
              static_cast<unsigned long long>(first));
  c.stop(first);
  const std::uint64_t second = wait_for_leader(c);
  if (second == 0) return EXIT_FAILURE;
  kvcore::Store& next = c.store(second);
  std::printf("   the data written before is all there:\n");
  if (!get(next, "fruit/apple", "red") || !get(next, "fruit/banana", "yellow") ||
      !get(next, "fruit/cherry", "dark red")) {
    return EXIT_FAILURE;
  }
  std::printf("   and it takes new writes:\n");
  if (!put(next, "fruit/durian", "green") || !put(next, "fruit/apple", "green") ||
      !get(next, "fruit/apple", "green")) {
    return EXIT_FAILURE;
  }

  std::printf("\n5. Restart store %llu from its directory and let it catch up\n",
              static_cast<unsigned long long>(first));
  if (kvcore::Status s = c.start(first); !s.is_ok()) {
    std::printf("   %s\n", s.to_string().c_str());
    return EXIT_FAILURE;
  }
  const std::uint64_t target = c.region(second)->applied_index;
  std::printf("   store %llu reopened at applied index %llu; the leader is at %llu\n",
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(c.region(first)->applied_index),
              static_cast<unsigned long long>(target));
  const auto t = Clock::now();
  const bool caught_up = wait_until(
      [&] {
        return c.region(first)->applied_index >= c.region(second)->applied_index &&
               c.region(first)->applied_index >= target;
      },
      15s);
  const kvcore::RegionStatus back = *c.region(first);
  if (!caught_up) {
    std::printf("   store %llu did not catch up: applied index %llu\n",
                static_cast<unsigned long long>(first),
                static_cast<unsigned long long>(back.applied_index));
    return EXIT_FAILURE;
  }
  std::printf("   caught up after %lld ms: applied index %llu, following store %llu (term %llu)\n",
              ms_since(t), static_cast<unsigned long long>(back.applied_index),
              static_cast<unsigned long long>(back.leader_store),
              static_cast<unsigned long long>(back.term));

  std::printf("\n6. A few of store %llu's metrics (Store::metrics_text(), Prometheus format)\n",
              static_cast<unsigned long long>(second));
  const std::string text = next.metrics_text();
  const std::vector<std::string_view> wanted = {
      "kvcore_raft_proposals_total", "kvcore_apply_entries_total", "kvcore_reads_total",
      "kvcore_write_seconds_count", "kvcore_frames_sent_total"};
  std::size_t from = 0;
  while (from < text.size()) {
    std::size_t to = text.find('\n', from);
    if (to == std::string::npos) to = text.size();
    const std::string_view line(text.data() + from, to - from);
    from = to + 1;
    if (line.starts_with('#')) continue;
    for (std::string_view name : wanted) {
      if (line.starts_with(name) &&
          (line.size() == name.size() || line[name.size()] == ' ' || line[name.size()] == '{')) {
        std::printf("   %.*s\n", static_cast<int>(line.size()), line.data());
      }
    }
  }

  std::printf("\nDone: stopping the stores and removing %s\n", dir.c_str());
  return EXIT_SUCCESS;
}

}  // namespace

int main() {
  TempDir dir;
  if (dir.path().empty()) {
    std::perror("mkdtemp");
    return EXIT_FAILURE;
  }
  return run(dir.path());
}
