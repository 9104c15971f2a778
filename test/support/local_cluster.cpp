#include "local_cluster.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "kvcore/engine/memory_engine.hpp"
#include "seed.hpp"

namespace kvcore::test {
namespace {

constexpr std::uint64_t kClusterId = 1;

// How long past a request's own timeout the harness waits for its answer.
std::chrono::milliseconds margin(std::chrono::milliseconds tick) {
  return std::max<std::chrono::milliseconds>(std::chrono::seconds(1), 10 * tick);
}

// A request's outcome, shared with its callback: the callback may run after
// the helper gave up and returned.
template <class T>
using Slot = std::shared_ptr<std::optional<T>>;

template <class T>
Slot<T> make_slot() {
  return std::make_shared<std::optional<T>>();
}

}  // namespace

LocalCluster::LocalCluster(LocalClusterOptions options)
    : options_(std::move(options)), sim_(options_.seed), net_(sim_) {
  std::vector<std::uint64_t> ids;
  for (std::uint64_t id = 1; id <= options_.stores; ++id) ids.push_back(id);
  std::vector<std::uint64_t> voters = ids;
  if (options_.bootstrapped != 0 && options_.bootstrapped < ids.size()) {
    voters.resize(options_.bootstrapped);
  }

  for (std::uint64_t id : ids) {
    Node& n = nodes_[id];
    n.dir = std::make_unique<TempDir>("kvcore-cluster");
    const std::size_t i = id - 1;
    if (options_.simulated_disk) n.disk = std::make_unique<runtime::SimDisk>();
    n.view = sim_.make_view(
        i < options_.clock_skews.size() ? options_.clock_skews[i] : runtime::ClockSkew{},
        n.disk.get());
    StoreOptions& o = n.options;
    o.cluster_id = kClusterId;
    o.store_id = id;
    o.path = n.dir->path();
    o.engine = options_.engine;
    if (options_.engine == EngineKind::kMemory) {
      o.kv_path = "mem:" + n.dir->sub("kv");
      o.raft_path = n.dir->sub("raft");
    }
    o.tick_interval = options_.tick;
    // Without a simulated disk, crash() models a process crash for the raft
    // log, which keeps unsynced writes, so syncing it would cost real time
    // and prove nothing here (the kill -9 suite covers the synced path). A
    // simulated disk makes syncs free and crashes lose what was not synced.
    o.sync_log = options_.simulated_disk;
    if (options_.tune) options_.tune(o);
    o.runtime = n.view.get();

    if (id > voters.size()) continue;
    if (Status s = Store::bootstrap(o, voters); !s.is_ok()) fail("bootstrap", id, s);
  }
  for (std::uint64_t id : ids) {
    if (Status s = restart(id); !s.is_ok()) fail("open", id, s);
  }
}

void LocalCluster::fail(std::string_view what, std::uint64_t id, const Status& s) {
  // The destructor does not run for a throwing constructor: stop the stores
  // opened so far before the network they borrow goes.
  for (auto& [nid, n] : nodes_) shut_down(n, nid);
  throw std::runtime_error("LocalCluster: " + std::string(what) + " of store " +
                           std::to_string(id) + " failed: " + s.to_string() + "; " +
                           replay_hint(options_.seed));
}

LocalCluster::~LocalCluster() {
  for (auto& [id, n] : nodes_) shut_down(n, id);
  for (auto& [id, n] : nodes_) {
    if (n.options.engine == EngineKind::kMemory && !n.options.kv_path.empty()) {
      // The memory engine's disks live in a process-wide table: forget this
      // cluster's so that a long test binary does not accumulate them.
      static_cast<void>(MemoryEngine::destroy(n.options.kv_path));
    }
  }
}

std::vector<std::uint64_t> LocalCluster::store_ids() const {
  std::vector<std::uint64_t> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

LocalCluster::Node& LocalCluster::node(std::uint64_t id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) throw std::out_of_range("LocalCluster: no store " + std::to_string(id));
  return it->second;
}

const LocalCluster::Node& LocalCluster::node(std::uint64_t id) const {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) throw std::out_of_range("LocalCluster: no store " + std::to_string(id));
  return it->second;
}

Store& LocalCluster::store(std::uint64_t id) {
  Node& n = node(id);
  if (!n.store) throw std::out_of_range("LocalCluster: store " + std::to_string(id) + " is down");
  return *n.store;
}

bool LocalCluster::running(std::uint64_t id) const {
  auto it = nodes_.find(id);
  return it != nodes_.end() && it->second.store != nullptr;
}

const StoreOptions& LocalCluster::options(std::uint64_t id) const { return node(id).options; }
StoreOptions& LocalCluster::mutable_options(std::uint64_t id) { return node(id).options; }
runtime::SimView& LocalCluster::view(std::uint64_t id) { return *node(id).view; }
runtime::SimDisk* LocalCluster::disk(std::uint64_t id) { return node(id).disk.get(); }

void LocalCluster::set_disk_latency(std::uint64_t id, runtime::Duration latency) {
  Node& n = node(id);
  if (!n.disk) {
    throw std::logic_error("LocalCluster: set_disk_latency needs simulated_disk");
  }
  n.disk->set_sync_latency(latency);
}

void LocalCluster::pause(std::uint64_t id, runtime::Duration d) { node(id).view->pause_for(d); }

bool LocalCluster::shut_down(Node& n, std::uint64_t id) {
  if (!n.store) return false;
  net_.detach(id);
  n.store.reset();
  // Timers the store left behind would call into it: a fresh view drops
  // them, and keeps the clock where it was.
  const runtime::ClockSkew skew = n.view->sim_clock().skew();
  n.view.reset();
  n.view = sim_.make_view(skew, n.disk.get());
  n.options.runtime = n.view.get();
  return true;
}

void LocalCluster::stop(std::uint64_t id) { shut_down(node(id), id); }

void LocalCluster::crash(std::uint64_t id) {
  Node& n = node(id);
  if (!shut_down(n, id)) return;
  if (n.options.engine == EngineKind::kMemory && !n.options.kv_path.empty()) {
    // NotFound only when the store never opened its engine: nothing to drop.
    static_cast<void>(MemoryEngine::crash_at(n.options.kv_path));
  }
  if (n.disk) {
    if (Status s = n.disk->crash(); !s.is_ok()) {
      throw std::runtime_error("LocalCluster: crash of store " + std::to_string(id) + ": " +
                               s.to_string() + "; " + replay_hint(options_.seed));
    }
  }
}

Status LocalCluster::restart(std::uint64_t id) {
  Node& n = node(id);
  if (n.store) {
    return Status::failed_precondition("LocalCluster: store " + std::to_string(id) + " is running");
  }
  n.options.runtime = n.view.get();
  Result<std::unique_ptr<Store>> opened = Store::open(n.options, net_.transport(id));
  if (!opened.is_ok()) return opened.status();
  n.store = std::move(opened).value();
  net_.attach(id, n.store.get());
  return {};
}

std::uint64_t LocalCluster::leader(std::uint64_t region) {
  std::uint64_t best = 0;
  std::uint64_t best_term = 0;
  for (auto& [id, n] : nodes_) {
    if (!n.store) continue;
    for (const RegionStatus& r : n.store->regions()) {
      if (r.region_id != region || !r.is_leader) continue;
      if (best == 0 || r.term > best_term) {
        best = id;
        best_term = r.term;
      }
    }
  }
  return best;
}

std::uint64_t LocalCluster::wait_leader(std::chrono::milliseconds max, std::uint64_t region) {
  std::uint64_t found = 0;
  sim_.run_until(
      [&] {
        found = leader(region);
        return found != 0;
      },
      max);
  return found;
}

bool LocalCluster::drive(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  return sim_.run_until(done, timeout + margin(options_.tick));
}

// --- requests on one store --------------------------------------------------

Status LocalCluster::put(std::uint64_t id, std::string_view key, std::string_view value,
                         std::chrono::milliseconds timeout) {
  RawBatch batch;
  batch.put(key, value);
  return write(id, std::move(batch), timeout);
}

Status LocalCluster::del(std::uint64_t id, std::string_view key,
                         std::chrono::milliseconds timeout) {
  RawBatch batch;
  batch.del(key);
  return write(id, std::move(batch), timeout);
}

Status LocalCluster::write(std::uint64_t id, RawBatch batch, std::chrono::milliseconds timeout) {
  if (!running(id)) return Status::unavailable("store " + std::to_string(id) + " is down");
  auto slot = make_slot<Status>();
  store(id).async_write(std::move(batch), RequestOptions{timeout},
                        [slot](Status s) { *slot = std::move(s); });
  if (!drive([&] { return slot->has_value(); }, timeout)) {
    return Status::internal("store " + std::to_string(id) + " never answered a write");
  }
  return std::move(**slot);
}

Result<std::optional<std::string>> LocalCluster::get(std::uint64_t id, std::string_view key,
                                                     std::chrono::milliseconds timeout) {
  using R = Result<std::optional<std::string>>;
  if (!running(id)) return Status::unavailable("store " + std::to_string(id) + " is down");
  auto slot = make_slot<R>();
  store(id).async_get(key, RequestOptions{timeout}, [slot](R r) { slot->emplace(std::move(r)); });
  if (!drive([&] { return slot->has_value(); }, timeout)) {
    return Status::internal("store " + std::to_string(id) + " never answered a get");
  }
  return std::move(**slot);
}

Result<std::vector<KvPair>> LocalCluster::scan(std::uint64_t id, std::string_view start,
                                               std::string_view end, std::size_t limit,
                                               bool reverse, std::chrono::milliseconds timeout) {
  using R = Result<std::vector<KvPair>>;
  if (!running(id)) return Status::unavailable("store " + std::to_string(id) + " is down");
  auto slot = make_slot<R>();
  store(id).async_scan(start, end, limit, reverse, RequestOptions{timeout},
                       [slot](R r) { slot->emplace(std::move(r)); });
  if (!drive([&] { return slot->has_value(); }, timeout)) {
    return Status::internal("store " + std::to_string(id) + " never answered a scan");
  }
  return std::move(**slot);
}

Status LocalCluster::change_peers(std::uint64_t id, std::uint64_t region,
                                  std::vector<PeerChangeRequest> changes,
                                  std::chrono::milliseconds timeout) {
  if (!running(id)) return Status::unavailable("store " + std::to_string(id) + " is down");
  auto slot = make_slot<Status>();
  store(id).async_change_peers(region, std::move(changes), RequestOptions{timeout},
                               [slot](Status s) { *slot = std::move(s); });
  if (!drive([&] { return slot->has_value(); }, timeout)) {
    return Status::internal("store " + std::to_string(id) + " never answered change_peers");
  }
  return std::move(**slot);
}

// --- requests that find the leader -------------------------------------------

Status LocalCluster::follow_leader(
    std::chrono::milliseconds timeout,
    const std::function<Status(std::uint64_t id, std::chrono::milliseconds remaining)>& attempt) {
  const runtime::Instant deadline = sim_.now() + timeout;
  Status last = Status::unavailable("no store was asked");
  std::uint64_t target = leader();
  // Hints followed without waiting since the last back-off: two stores with
  // stale hints pointing at each other must not spin with the clock stopped.
  std::size_t hops = 0;
  // After a back-off the next store in id order is asked: the key's region
  // may have no peer on the store just asked (it moved, or was split or
  // merged away there), and leader() only knows region 1.
  auto back_off = [&] {
    const runtime::Duration left = std::max(deadline - sim_.now(), runtime::Duration::zero());
    sim_.run_for(std::min<runtime::Duration>(options_.tick, left));
    hops = 0;
    auto next = nodes_.upper_bound(target);
    if (next == nodes_.end()) next = nodes_.begin();
    target = next->first;
  };
  for (;;) {
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - sim_.now());
    if (remaining <= std::chrono::milliseconds::zero()) break;
    if (target == 0 || !running(target)) {
      target = 0;
      for (const auto& [id, n] : nodes_) {
        if (n.store) {
          target = id;
          break;
        }
      }
      if (target == 0) {
        last = Status::unavailable("no store is running");
        back_off();
        continue;
      }
    }
    last = attempt(target, remaining);
    if (last.is_ok()) return last;
    if (last.code() != Code::kUnavailable && last.code() != Code::kResourceExhausted) return last;
    const auto* hint = last.detail_as<NotLeaderDetail>();
    if (hint != nullptr && hint->leader_store_id != 0 && hint->leader_store_id != target &&
        running(hint->leader_store_id) && hops < nodes_.size()) {
      target = hint->leader_store_id;
      ++hops;
      continue;
    }
    back_off();
  }
  return Status::deadline_exceeded("no leader answered in time; last answer: " + last.to_string());
}

Status LocalCluster::put_any(std::string_view key, std::string_view value,
                             std::chrono::milliseconds timeout) {
  RawBatch batch;
  batch.put(key, value);
  return write_any(batch, timeout);
}

Status LocalCluster::del_any(std::string_view key, std::chrono::milliseconds timeout) {
  RawBatch batch;
  batch.del(key);
  return write_any(batch, timeout);
}

Status LocalCluster::write_any(const RawBatch& batch, std::chrono::milliseconds timeout) {
  return follow_leader(timeout, [&](std::uint64_t id, std::chrono::milliseconds remaining) {
    return write(id, batch, remaining);
  });
}

Result<std::optional<std::string>> LocalCluster::get_any(std::string_view key,
                                                         std::chrono::milliseconds timeout) {
  std::optional<Result<std::optional<std::string>>> out;
  Status s = follow_leader(timeout, [&](std::uint64_t id, std::chrono::milliseconds remaining) {
    out.emplace(get(id, key, remaining));
    return out->status();
  });
  if (!s.is_ok()) return s;
  return std::move(*out);
}

Result<std::vector<KvPair>> LocalCluster::scan_any(std::string_view start, std::string_view end,
                                                   std::size_t limit, bool reverse,
                                                   std::chrono::milliseconds timeout) {
  std::optional<Result<std::vector<KvPair>>> out;
  Status s = follow_leader(timeout, [&](std::uint64_t id, std::chrono::milliseconds remaining) {
    out.emplace(scan(id, start, end, limit, reverse, remaining));
    return out->status();
  });
  if (!s.is_ok()) return s;
  return std::move(*out);
}

}  // namespace kvcore::test
