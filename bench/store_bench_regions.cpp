// Many regions (issue 5), part of the store_bench program:
//
//   regions/put/N   three stores in this process (RocksDB, sync_log on, a
//                   RealRuntime each, one MemoryNetwork), region 1 split
//                   into N regions (N = 1, 64, 1024) whose leaders sit on
//                   the store that led region 1; 64 writer threads each put
//                   new keys, spread at random over the same key space
//                   whatever N (only how it is cut into regions changes,
//                   so the engine sees the same keys). The figure is
//                   items/s; bench/store_ratios.py divides N by 1 (one raft
//                   log sync per round across all regions is what keeps the
//                   ratio near 1).
//   regions/idle/H  three stores holding 10,000 regions with no traffic, H =
//                   hibernate on (1) or off (0): the process CPU time over 10
//                   seconds of wall time, per store, in percent of one core
//                   (counter cpu_pct_per_store).
//
//   store_bench --benchmark_filter=regions --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <stdlib.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kvcore/memory_network.hpp"
#include "kvcore/store.hpp"
#include "runtime/real_runtime.hpp"

namespace {

using namespace kvcore;
using SteadyClock = std::chrono::steady_clock;

[[noreturn]] void fail(const char* what, const Status& s) {
  std::fprintf(stderr, "store_bench regions: %s: %s\n", what, s.to_string().c_str());
  std::exit(1);
}

// Keys are "r<8 hex digits of a slot>..." with slots [0, kSlots): every run
// writes the same key distribution (a slot picked at random per put), and
// only how the slots are cut into regions changes. Region r of n starts at
// slot_key(first_slot(r, n)); region 0 also holds everything below.
constexpr std::uint64_t kSlots = 1 << 20;

std::string slot_key(std::uint64_t slot) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "r%08llx", static_cast<unsigned long long>(slot & 0xffffffffULL));
  return buf;
}
std::uint64_t first_slot(std::uint64_t r, std::uint64_t n) { return r * kSlots / n; }
// The region of n holding `slot`.
std::uint64_t region_of_slot(std::uint64_t slot, std::uint64_t n) {
  std::uint64_t r = slot * n / kSlots;
  while (r + 1 < n && first_slot(r + 1, n) <= slot) ++r;
  while (r > 0 && first_slot(r, n) > slot) --r;
  return r;
}

struct ManyRegions {
  std::string dir;
  std::unique_ptr<runtime::RealRuntime> net_rt;
  std::unique_ptr<MemoryNetwork> net;
  std::vector<std::unique_ptr<Store>> stores;
  std::size_t regions = 0;
  std::size_t pollers = 0;
  // leader_of[r]: the store thought to lead region r (follows NotLeader).
  std::vector<std::atomic<Store*>> leader_of;

  ManyRegions() = default;
  ManyRegions(const ManyRegions&) = delete;
  ManyRegions& operator=(const ManyRegions&) = delete;
  ~ManyRegions() {
    for (const auto& s : stores) net->detach(s->store_id());
    stores.clear();
    net.reset();
    net_rt.reset();
    std::filesystem::remove_all(dir);
  }

  Store* store(std::uint64_t id) { return stores[id - 1].get(); }

  // The store leading the region of `key` as `from` sees it, or nullptr.
  Store* leader_of_key(const std::string& key) {
    for (const auto& s : stores) {
      for (const auto& r : s->regions()) {
        if (r.is_leader && key >= r.start_key && (r.end_key.empty() || key < r.end_key)) {
          return s.get();
        }
      }
    }
    return nullptr;
  }
};

std::unique_ptr<ManyRegions> open_many(std::size_t regions, bool hibernate,
                                       std::size_t pollers = 2) {
  auto c = std::make_unique<ManyRegions>();
  std::string tmpl = (std::filesystem::temp_directory_path() / "regions-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  c->dir = tmpl;
  c->net_rt = std::make_unique<runtime::RealRuntime>();
  c->net = std::make_unique<MemoryNetwork>(*c->net_rt);
  c->net->set_inline_delivery(true);
  const std::vector<std::uint64_t> ids = {1, 2, 3};
  for (std::uint64_t id : ids) {
    StoreOptions o;
    o.cluster_id = 9;
    o.store_id = id;
    o.path = c->dir + "/store" + std::to_string(id);
    o.engine = EngineKind::kRocksDB;
    o.sync_log = true;
    o.hibernate_regions = hibernate;
    o.raft_pollers = pollers;
    o.apply_pollers = pollers;
    if (Status s = Store::bootstrap(o, ids); !s.is_ok()) fail("bootstrap", s);
    auto opened = Store::open(o, c->net->transport(id));
    if (!opened.is_ok()) fail("open", opened.status());
    c->net->attach(id, opened->get());
    c->stores.push_back(std::move(opened).value());
  }
  const auto wait = [&](const char* what, auto done) {
    const auto give_up = SteadyClock::now() + std::chrono::minutes(5);
    while (!done()) {
      if (SteadyClock::now() > give_up) fail(what, Status::unavailable("timed out"));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  Store* leader = nullptr;
  wait("election", [&] {
    leader = c->leader_of_key("");
    return leader != nullptr;
  });
  std::fprintf(stderr, "regions bench: 3 stores open, splitting into %zu regions...\n", regions);
  // The regions are made in steps of at most kStep by splitting the last
  // region, each step's regions electing (and, with hibernation, falling
  // asleep) before the next: a store accumulates idle regions over time, and
  // 10,000 regions all electing at once would keep two cores busier than
  // what is measured here (the store holding them idle).
  constexpr std::size_t kStep = 1000;
  const auto all_led = [&](std::size_t n) {
    for (const auto& st : c->stores) {
      const auto rs = st->regions();
      if (rs.size() != n) return false;
      for (const auto& r : rs) {
        if (r.leader_store == 0) return false;
      }
    }
    return true;
  };
  const auto asleep = [&] {
    std::uint64_t n = 0;
    for (const auto& st : c->stores) n += st->metric("kvcore_region_hibernations_total");
    return n;
  };
  for (std::size_t made = 1; made < regions;) {
    const std::size_t to = std::min(regions, made + kStep);
    std::vector<std::string> keys;
    for (std::size_t r = made; r < to; ++r) keys.push_back(slot_key(first_slot(r, regions)));
    // The last region holds everything from its first slot on.
    const std::string last_start =
        made == 1 ? std::string() : slot_key(first_slot(made - 1, regions));
    Store* lead = nullptr;
    std::uint64_t last_id = 0;
    wait("the last region's leader", [&] {
      lead = c->leader_of_key(last_start);
      if (lead == nullptr) return false;
      for (const auto& r : lead->regions()) {
        if (r.start_key == last_start) last_id = r.region_id;
      }
      return last_id != 0;
    });
    Status s = lead->split_region(last_id, keys, RequestOptions{std::chrono::minutes(5)});
    if (!s.is_ok()) fail("split", s);
    wait("leaders of every region", [&] { return all_led(to); });
    if (hibernate) {
      const auto give_up = SteadyClock::now() + std::chrono::seconds(60);
      while (asleep() < 3 * (to - 1) && SteadyClock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    std::fprintf(stderr, "regions bench: %zu of %zu regions made and led, %llu peers asleep\n", to,
                 regions, static_cast<unsigned long long>(asleep()));
    made = to;
  }
  wait("leaders of every region", [&] { return all_led(regions); });
  std::fprintf(stderr, "regions bench: %zu regions led\n", regions);
  c->regions = regions;
  c->leader_of = std::vector<std::atomic<Store*>>(regions);
  for (const auto& r : leader->regions()) {
    Store* l = c->store(r.leader_store);
    const std::size_t index =
        r.start_key.empty()
            ? 0
            : region_of_slot(std::strtoull(r.start_key.c_str() + 1, nullptr, 16), regions);
    c->leader_of[index].store(l);
  }
  return c;
}

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const auto sec = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

std::mutex g_mu;
std::unique_ptr<ManyRegions> g_many;  // guarded by g_mu (set before the loop)

void BM_RegionsPut(benchmark::State& state) {
  const auto regions = static_cast<std::size_t>(state.range(0));
  const auto pollers = static_cast<std::size_t>(state.range(1));
  if (state.thread_index() == 0) {
    std::lock_guard lock(g_mu);
    if (!g_many || g_many->regions != regions || g_many->pollers != pollers) {
      g_many.reset();
      g_many = open_many(regions, true, pollers);
      g_many->pollers = pollers;
    }
  }
  const auto totals = [](const char* name) {
    double n = 0;
    for (const auto& st : g_many->stores) n += static_cast<double>(st->metric(name));
    return n;
  };
  double rounds0 = 0;
  double writes0 = 0;
  double cpu0 = 0;
  if (state.thread_index() == 0) {
    cpu0 = cpu_seconds();
    rounds0 = totals("kvcore_raft_rounds_total");
    writes0 = totals("kvcore_raftlog_writes_total");
  }
  std::mt19937_64 rng(static_cast<std::uint64_t>(state.thread_index()) * 7919 + regions);
  std::uint64_t seq = 0;
  std::int64_t done = 0;
  for (auto _ : state) {
    ManyRegions& c = *g_many;
    const std::uint64_t slot = rng() % kSlots;
    const std::uint64_t r = region_of_slot(slot, c.regions);
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "-%02d-%010llu", state.thread_index(),
                  static_cast<unsigned long long>(seq++));
    const std::string key = slot_key(slot) + suffix;
    Store* s = c.leader_of[r].load();
    Status st = s->put(key, std::string(100, 'v'));
    for (int retry = 0; !st.is_ok() && retry < 50; ++retry) {
      const auto* d = st.detail_as<NotLeaderDetail>();
      if (d != nullptr && d->leader_store_id != 0) {
        s = c.store(d->leader_store_id);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        s = c.leader_of_key(key);
        if (s == nullptr) s = c.stores[0].get();
      }
      c.leader_of[r].store(s);
      st = s->put(key, std::string(100, 'v'));
    }
    if (!st.is_ok()) {
      state.SkipWithError(st.to_string().c_str());
      break;
    }
    ++done;
  }
  state.SetItemsProcessed(done);
  if (state.thread_index() == 0 && done > 0) {
    // Over all three stores, per put of this thread times the threads: an
    // estimate (the other threads' counts are not gathered).
    const double ops = static_cast<double>(done) * state.threads();
    state.counters["rounds_per_op"] = (totals("kvcore_raft_rounds_total") - rounds0) / ops;
    state.counters["log_writes_per_op"] = (totals("kvcore_raftlog_writes_total") - writes0) / ops;
    // The whole process (three stores and the writers), per put.
    state.counters["cpu_us_per_op"] = (cpu_seconds() - cpu0) * 1e6 / ops;
  }
}

void BM_RegionsIdle(benchmark::State& state) {
  const auto kRegions = static_cast<std::size_t>(state.range(0));
  const bool hibernate = state.range(1) != 0;
  {
    std::lock_guard lock(g_mu);
    g_many.reset();
    g_many = open_many(kRegions, hibernate);
  }
  // Let elections settle and, with hibernation, every peer fall asleep
  // (20 idle ticks of 100 ms, then a heartbeat; longer while the stores are
  // still busy electing 10,000 leaders). Without it, a settling time.
  const auto hibernated = [] {
    double n = 0;
    for (const auto& s : g_many->stores) {
      n += static_cast<double>(s->metric("kvcore_region_hibernations_total"));
    }
    return n;
  };
  const auto give_up = SteadyClock::now() + std::chrono::minutes(3);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  while (hibernate && hibernated() < 3.0 * static_cast<double>(kRegions) &&
         SteadyClock::now() < give_up) {
    std::fprintf(stderr, "regions bench: %.0f of %zu peers asleep\n", hibernated(), 3 * kRegions);
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  const double hibernations = hibernated();
  constexpr double kSeconds = 10;
  double pct = 0;
  for (auto _ : state) {
    const double cpu0 = cpu_seconds();
    const auto t0 = SteadyClock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(kSeconds));
    const double wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    pct = (cpu_seconds() - cpu0) / wall / 3 * 100;
  }
  state.counters["cpu_pct_per_store"] = pct;
  state.counters["regions"] = static_cast<double>(kRegions);
  state.counters["hibernations"] = hibernations;
  std::lock_guard lock(g_mu);
  g_many.reset();
}

BENCHMARK(BM_RegionsPut)
    ->Name("regions/put")
    ->ArgNames({"regions", "pollers"})
    ->ArgsProduct({{1, 64, 1024}, {1, 2}})
    ->Threads(64)
    ->UseRealTime()
    ->MinTime(3.0);
// Without hibernation 10,000 regions heartbeat more than two cores keep up
// with (three stores in one process); the baseline runs 1,000.
BENCHMARK(BM_RegionsIdle)
    ->Name("regions/idle")
    ->ArgNames({"regions", "hibernate"})
    ->Args({10'000, 1})
    ->Args({1'000, 0})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

// The clusters close before main returns (the stores' runtimes must stop
// before static destruction).
struct Closer {
  ~Closer() {
    std::lock_guard lock(g_mu);
    g_many.reset();
  }
} g_closer;

}  // namespace
