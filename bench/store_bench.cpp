// The replicated store's write and read paths against raw RocksDB on the
// same disk, in one run so the ratios see the same disk and the same load.
//
// Sides (the second path component of each benchmark name):
//   raw       kvcore's RocksDB engine called directly (open_engine(kRocksDB)):
//             a put is one synced WriteBatch (WAL write + fdatasync, RocksDB's
//             own group commit across threads); a get is Engine::get.
//   store_r1  a one-store cluster: Store::put (raft log write with fsync, then
//             apply to RocksDB unsynced) on the leader.
//   store_r3  three stores in this process, each with its own directories and
//             its own RealRuntime, joined by one MemoryNetwork over a
//             RealRuntime of its own; puts and lease reads (Store::get) go to
//             the leader.
// Every store keeps user data in RocksDB with sync_log on. Keys are 16 bytes,
// values 100. Writers and readers are Google Benchmark threads (1 or 32)
// calling the sync API; the clusters and raw engines are opened once, on
// first use, and reused by every repetition. The gets read 20,000 preloaded
// keys from a raw engine and a three-store cluster of their own, which no put
// benchmark writes to (see Side).
//
// Counters (set once per run, by thread 0, over all threads' operations):
//   p50_us, p99_us   latency of one operation as its caller sees it;
//   fsyncs_per_op    raft log fsyncs on the leader (store) per put;
//   rounds_per_op    raft rounds on the leader per put;
//   follower_fsyncs_per_op  the same summed over the two followers (store_r3);
//   lease_frac       share of the store's reads served from the lease
//                    (metric("kvcore_reads_total{path=\"lease\"}")), the rest by
//                    ReadIndex; reads_counted: metric("kvcore_reads_total")
//                    over the run / gets made (1: the store saw every get).
//
// split/r3_1_into_10 times a batch split of one region into 10 (see
// BM_Split10).
//
//   bench/store_bench --benchmark_counters_tabular=true
//   python3 bench/store_ratios.py --bench BUILD/bench/store_bench
#include <benchmark/benchmark.h>

#include <stdlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kvcore/engine/registry.hpp"
#include "kvcore/memory_network.hpp"
#include "kvcore/store.hpp"
#include "runtime/real_runtime.hpp"

namespace {

using namespace kvcore;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kValueBytes = 100;
constexpr std::uint64_t kPreloadKeys = 20'000;
constexpr std::uint64_t kPreloadSpace = 0xffff;
constexpr std::uint64_t kClusterId = 4;
constexpr int kMaxThreads = 64;

// The put benchmarks write to kRaw, kStoreR1 and kStoreR3; the get
// benchmarks read from instances of their own (kRawRead, kStoreR3Read) that
// hold the preloaded keys only, so both sides of a get pair read the same
// data in the same state (all in the memtable) whatever puts ran before.
enum class Side : int { kRaw, kStoreR1, kStoreR3, kRawRead, kStoreR3Read };
constexpr int kSides = 5;

[[noreturn]] void die(std::string_view what, const Status& s) {
  std::fprintf(stderr, "store_bench: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               s.to_string().c_str());
  std::exit(1);
}

// 16 bytes: a 4-hex-digit key space, then a 12-hex-digit sequence number.
std::string make_key(std::uint64_t space, std::uint64_t seq) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%04llx%012llx", static_cast<unsigned long long>(space & 0xffff),
                static_cast<unsigned long long>(seq & 0xffff'ffff'ffffULL));
  return std::string(buf, 16);
}

const std::string& value() {
  static const std::string v(kValueBytes, 'v');
  return v;
}

// One sample of a Prometheus text line `name value` (name with its labels);
// 0 when absent.
double metric_value(const std::string& text, std::string_view name) {
  std::size_t pos = 0;
  while ((pos = text.find(name, pos)) != std::string::npos) {
    const bool line_start = pos == 0 || text[pos - 1] == '\n';
    const std::size_t after = pos + name.size();
    if (line_start && after < text.size() && text[after] == ' ') {
      return std::strtod(text.c_str() + after + 1, nullptr);
    }
    pos = after;
  }
  return 0;
}

// The store's counters the benchmarks report, read at once.
struct StoreCounters {
  double rounds = 0;
  double raftlog_writes = 0;
  double fsyncs = 0;
  double lease_reads = 0;
  double read_index_reads = 0;
  double all_reads = 0;

  static StoreCounters of(const Store& s) {
    StoreCounters c;
    const auto m = [&](std::string_view name) { return static_cast<double>(s.metric(name)); };
    c.rounds = m("kvcore_raft_rounds_total");
    c.raftlog_writes = m("kvcore_raftlog_writes_total");
    c.lease_reads = m("kvcore_reads_total{path=\"lease\"}");
    c.read_index_reads = m("kvcore_reads_total{path=\"read_index\"}");
    c.all_reads = m("kvcore_reads_total");
    // metric() gives a histogram's count (rounds); the fsyncs are its sum.
    c.fsyncs = metric_value(s.metrics_text(), "kvcore_raft_round_fsyncs_sum");
    return c;
  }
};

// Stores of one cluster over one MemoryNetwork. The network runs on its own
// RealRuntime; each store runs its own (StoreOptions::runtime = nullptr).
struct Cluster {
  std::unique_ptr<runtime::RealRuntime> net_rt;
  std::unique_ptr<MemoryNetwork> net;
  std::vector<std::unique_ptr<Store>> stores;
  Store* leader = nullptr;

  Cluster() = default;
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  ~Cluster() {
    for (const auto& s : stores) net->detach(s->store_id());
    stores.clear();
    net.reset();
    net_rt.reset();
  }
};

std::unique_ptr<Cluster> open_cluster(const std::string& dir, std::uint64_t n) {
  auto c = std::make_unique<Cluster>();
  c->net_rt = std::make_unique<runtime::RealRuntime>();
  c->net = std::make_unique<MemoryNetwork>(*c->net_rt);
  c->net->set_inline_delivery(true);
  std::vector<std::uint64_t> ids;
  for (std::uint64_t id = 1; id <= n; ++id) ids.push_back(id);
  for (std::uint64_t id : ids) {
    StoreOptions o;
    o.cluster_id = kClusterId;
    o.store_id = id;
    o.path = dir + "/store" + std::to_string(id);
    o.engine = EngineKind::kRocksDB;
    o.sync_log = true;
    if (Status s = Store::bootstrap(o, ids); !s.is_ok()) die("bootstrap", s);
    auto opened = Store::open(o, c->net->transport(id));
    if (!opened.is_ok()) die("open", opened.status());
    c->net->attach(id, opened->get());
    c->stores.push_back(std::move(opened).value());
  }
  const auto give_up = SteadyClock::now() + std::chrono::seconds(60);
  while (c->leader == nullptr) {
    for (const auto& s : c->stores) {
      const auto rs = s->regions();
      if (!rs.empty() && rs[0].is_leader) c->leader = s.get();
    }
    if (SteadyClock::now() > give_up) die("election", Status::unavailable("no leader in 60 s"));
    if (c->leader == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The same keys as the raw engine's preload, in batches of 100 (one
  // proposal each).
  for (std::uint64_t i = 0; i < kPreloadKeys; i += 100) {
    RawBatch b;
    for (std::uint64_t k = i; k < i + 100 && k < kPreloadKeys; ++k) {
      b.put(make_key(kPreloadSpace, k), value());
    }
    if (Status s = c->leader->write(std::move(b)); !s.is_ok()) die("preload", s);
  }
  return c;
}

std::unique_ptr<Engine> open_raw(const std::string& dir) {
  auto eng = open_engine(EngineKind::kRocksDB, dir);
  if (!eng.is_ok()) die("open raw rocksdb", eng.status());
  for (std::uint64_t i = 0; i < kPreloadKeys; i += 100) {
    auto b = (*eng)->new_write_batch();
    for (std::uint64_t k = i; k < i + 100 && k < kPreloadKeys; ++k) {
      b->put(CF::kDefault, make_key(kPreloadSpace, k), value());
    }
    WriteOptions wo;
    wo.sync = true;
    if (Status s = (*eng)->write(*b, wo); !s.is_ok()) die("preload raw", s);
  }
  return std::move(eng).value();
}

// Everything the benchmarks share, opened on first use (thread 0, before
// the timed loop) and closed at the end of main.
struct World {
  std::string root;
  std::unique_ptr<Engine> raw;
  std::unique_ptr<Cluster> r1;
  std::unique_ptr<Cluster> r3;
  std::unique_ptr<Engine> raw_read;
  std::unique_ptr<Cluster> r3_read;
  // Next key of each (side, thread): every put writes a new key.
  std::array<std::array<std::uint64_t, kMaxThreads>, kSides> next_seq{};
};
World g_world;

void ensure_open(Side side) {
  World& w = g_world;
  if (w.root.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "store-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    w.root = tmpl;
  }
  switch (side) {
    case Side::kRaw:
      if (!w.raw) w.raw = open_raw(w.root + "/raw");
      break;
    case Side::kStoreR1:
      if (!w.r1) w.r1 = open_cluster(w.root + "/r1", 1);
      break;
    case Side::kStoreR3:
      if (!w.r3) w.r3 = open_cluster(w.root + "/r3", 3);
      break;
    case Side::kRawRead:
      if (!w.raw_read) w.raw_read = open_raw(w.root + "/raw_read");
      break;
    case Side::kStoreR3Read:
      if (!w.r3_read) w.r3_read = open_cluster(w.root + "/r3_read", 3);
      break;
  }
}

void close_world() {
  World& w = g_world;
  w.r3_read.reset();
  w.raw_read.reset();
  w.r3.reset();
  w.r1.reset();
  w.raw.reset();
  if (!w.root.empty()) std::filesystem::remove_all(w.root);
}

Cluster* cluster_of(Side side) {
  switch (side) {
    case Side::kStoreR1: return g_world.r1.get();
    case Side::kStoreR3: return g_world.r3.get();
    case Side::kStoreR3Read: return g_world.r3_read.get();
    default: return nullptr;
  }
}

Engine* raw_of(Side side) {
  return side == Side::kRawRead ? g_world.raw_read.get() : g_world.raw.get();
}

// Latencies of one run, gathered from every thread after the timed loop.
// Thread 0 resets it before the loop; the others touch it only after the
// loop, so after Google Benchmark's start barrier.
struct RunSamples {
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;                 // guarded by mu
  std::vector<double> latency_us;  // guarded by mu
};
RunSamples g_samples;

void reset_samples() {
  std::lock_guard lock(g_samples.mu);
  g_samples.arrived = 0;
  g_samples.latency_us.clear();
}

// Hands this thread's latencies over; on thread 0, waits for every thread's
// and returns them all (sorted), elsewhere returns nothing.
std::vector<double> gather(const benchmark::State& state, const std::vector<double>& mine) {
  std::unique_lock lock(g_samples.mu);
  g_samples.latency_us.insert(g_samples.latency_us.end(), mine.begin(), mine.end());
  ++g_samples.arrived;
  g_samples.cv.notify_all();
  if (state.thread_index() != 0) return {};
  g_samples.cv.wait(lock, [&] { return g_samples.arrived == state.threads(); });
  std::vector<double> all = std::move(g_samples.latency_us);
  g_samples.latency_us.clear();
  std::sort(all.begin(), all.end());
  return all;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

void set_latency_counters(benchmark::State& state, const std::vector<double>& all) {
  state.counters["p50_us"] = percentile(all, 0.50);
  state.counters["p99_us"] = percentile(all, 0.99);
}

double elapsed_us(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

void BM_Put(benchmark::State& state, Side side) {
  const int t = state.thread_index();
  if (t >= kMaxThreads) std::abort();
  std::vector<StoreCounters> before;
  if (t == 0) {
    ensure_open(side);
    reset_samples();
    if (Cluster* c = cluster_of(side)) {
      for (const auto& s : c->stores) before.push_back(StoreCounters::of(*s));
    }
  }
  std::uint64_t& seq = g_world.next_seq[static_cast<int>(side)][t];
  const std::uint64_t space = 0x1000 * (1 + static_cast<std::uint64_t>(side)) + t;
  std::vector<double> lat;
  lat.reserve(1 << 14);
  WriteOptions synced;
  synced.sync = true;

  for (auto _ : state) {
    // Read here, not before the loop: thread 0 opens them before the loop,
    // and Google Benchmark's start barrier orders that before this.
    Engine* raw = g_world.raw.get();
    Store* store = side == Side::kRaw ? nullptr : cluster_of(side)->leader;
    const std::string key = make_key(space, seq++);
    Status s;
    const auto t0 = SteadyClock::now();
    if (store == nullptr) {
      auto b = raw->new_write_batch();
      b->put(CF::kDefault, key, value());
      s = raw->write(*b, synced);
    } else {
      s = store->put(key, value());
    }
    const auto t1 = SteadyClock::now();
    if (!s.is_ok()) {
      state.SkipWithError(s.to_string().c_str());
      break;
    }
    lat.push_back(elapsed_us(t0, t1));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(lat.size()));
  const std::vector<double> all = gather(state, lat);
  if (t != 0) return;
  set_latency_counters(state, all);
  if (Cluster* c = cluster_of(side); c != nullptr && !all.empty()) {
    const auto ops = static_cast<double>(all.size());
    double follower_fsyncs = 0;
    for (std::size_t i = 0; i < c->stores.size(); ++i) {
      const StoreCounters now = StoreCounters::of(*c->stores[i]);
      if (c->stores[i].get() == c->leader) {
        state.counters["fsyncs_per_op"] = (now.fsyncs - before[i].fsyncs) / ops;
        state.counters["rounds_per_op"] = (now.rounds - before[i].rounds) / ops;
        state.counters["raftlog_writes_per_op"] =
            (now.raftlog_writes - before[i].raftlog_writes) / ops;
      } else {
        follower_fsyncs += now.fsyncs - before[i].fsyncs;
      }
    }
    if (c->stores.size() > 1) state.counters["follower_fsyncs_per_op"] = follower_fsyncs / ops;
  }
}

// A fixed-seed xorshift: the same keys in the same order on both sides.
struct KeyPicker {
  std::uint64_t x;
  explicit KeyPicker(int thread) : x(0x9e3779b97f4a7c15ULL * (thread + 1)) {}
  std::uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x % kPreloadKeys;
  }
};

void BM_Get(benchmark::State& state, Side side) {
  const int t = state.thread_index();
  StoreCounters before;
  if (t == 0) {
    ensure_open(side);
    reset_samples();
    // A write just before the reads: the leader's lease is fresh (it lasts
    // max_lease, 900 ms, from the round that proposed it; a longer run
    // renews it by one ReadIndex round). The raw side writes the same.
    Status s;
    if (Cluster* c = cluster_of(side)) {
      s = c->leader->put(make_key(kPreloadSpace, 0), value());
      before = StoreCounters::of(*c->leader);
    } else {
      auto b = raw_of(side)->new_write_batch();
      b->put(CF::kDefault, make_key(kPreloadSpace, 0), value());
      WriteOptions synced;
      synced.sync = true;
      s = raw_of(side)->write(*b, synced);
    }
    if (!s.is_ok()) die("put before the reads", s);
  }
  KeyPicker picker(t);
  std::vector<double> lat;
  lat.reserve(1 << 16);

  for (auto _ : state) {
    Engine* raw = raw_of(side);  // see BM_Put
    Cluster* c = cluster_of(side);
    Store* store = c == nullptr ? nullptr : c->leader;
    const std::string key = make_key(kPreloadSpace, picker.next());
    const auto t0 = SteadyClock::now();
    Result<std::optional<std::string>> r =
        store == nullptr ? raw->get(CF::kDefault, key) : store->get(key);
    const auto t1 = SteadyClock::now();
    if (!r.is_ok() || !r->has_value()) {
      state.SkipWithError(r.is_ok() ? "a preloaded key is missing"
                                    : r.status().to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
    lat.push_back(elapsed_us(t0, t1));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(lat.size()));
  const std::vector<double> all = gather(state, lat);
  if (t != 0) return;
  set_latency_counters(state, all);
  if (Cluster* c = cluster_of(side)) {
    const StoreCounters now = StoreCounters::of(*c->leader);
    const double lease = now.lease_reads - before.lease_reads;
    const double read_index = now.read_index_reads - before.read_index_reads;
    state.counters["lease_frac"] = lease + read_index > 0 ? lease / (lease + read_index) : 0;
    state.counters["read_index_reads"] = read_index;
    // Every get of the run counted by the store (lease + ReadIndex) / gets.
    state.counters["reads_counted"] =
        (now.all_reads - before.all_reads) / static_cast<double>(all.size());
  }
}

// Wall time of one batch split of a region holding data (the 20,000
// preloaded keys, ~2.3 MB) into 10, on a fresh three-store cluster per
// iteration (opening and preloading it is not timed). Timed: from
// split_region() on the leader until every store has the 10 regions and each
// has a leader (manual time). Counters: split_applied_ms (split_region()
// returned: applied on the leader), all_led_ms (the iteration time), and as
// the baseline measured on the same cluster just before, put_p50_us (one
// Store::put); the *_per_put ratios divide the split times by it.
void BM_Split10(benchmark::State& state) {
  ensure_open(Side::kRaw);  // makes the root directory
  std::vector<double> applied_ms;
  std::vector<double> led_ms;
  std::vector<double> put_us;
  int iteration = 0;
  for (auto _ : state) {
    const std::string dir = g_world.root + "/split" + std::to_string(iteration++);
    auto c = open_cluster(dir, 3);
    for (int i = 0; i < 200; ++i) {
      const auto t0 = SteadyClock::now();
      if (Status s = c->leader->put(make_key(0x2000, i), value()); !s.is_ok()) die("put", s);
      put_us.push_back(elapsed_us(t0, SteadyClock::now()));
    }
    std::vector<std::string> keys;
    for (std::uint64_t k = 1; k < 10; ++k) {
      keys.push_back(make_key(kPreloadSpace, k * kPreloadKeys / 10));
    }
    const auto t0 = SteadyClock::now();
    if (Status s = c->leader->split_region(1, keys); !s.is_ok()) die("split", s);
    const auto t1 = SteadyClock::now();
    const auto give_up = t1 + std::chrono::seconds(60);
    for (;;) {
      bool all = true;
      std::size_t led = 0;
      for (const auto& st : c->stores) {
        const auto rs = st->regions();
        all = all && rs.size() == 10;
        for (const auto& r : rs) led += r.is_leader ? 1 : 0;
      }
      if (all && led == 10) break;
      if (SteadyClock::now() > give_up) die("split", Status::unavailable("no 10 led regions"));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    const auto t2 = SteadyClock::now();
    applied_ms.push_back(elapsed_us(t0, t1) / 1000);
    led_ms.push_back(elapsed_us(t0, t2) / 1000);
    state.SetIterationTime(elapsed_us(t0, t2) / 1e6);
    c.reset();
    std::filesystem::remove_all(dir);
  }
  std::sort(applied_ms.begin(), applied_ms.end());
  std::sort(led_ms.begin(), led_ms.end());
  std::sort(put_us.begin(), put_us.end());
  const double put = percentile(put_us, 0.5);
  state.counters["split_applied_ms"] = percentile(applied_ms, 0.5);
  state.counters["all_led_ms"] = percentile(led_ms, 0.5);
  state.counters["put_p50_us"] = put;
  state.counters["applied_per_put"] = put > 0 ? percentile(applied_ms, 0.5) * 1000 / put : 0;
  state.counters["led_per_put"] = put > 0 ? percentile(led_ms, 0.5) * 1000 / put : 0;
}

void register_all() {
  benchmark::RegisterBenchmark("split/r3_1_into_10", BM_Split10)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond)
      ->Iterations(5);
  struct SideName {
    Side side;
    const char* name;
  };
  const SideName sides[] = {
      {Side::kRaw, "raw"}, {Side::kStoreR1, "store_r1"}, {Side::kStoreR3, "store_r3"}};
  for (const auto& [side, name] : sides) {
    const std::string put = std::string("put/") + name;
    benchmark::RegisterBenchmark(put.c_str(), BM_Put, side)
        ->UseRealTime()
        ->MinTime(1.0)
        ->Threads(1)
        ->Threads(32);
  }
  const SideName read_sides[] = {{Side::kRawRead, "raw"}, {Side::kStoreR3Read, "store_r3"}};
  for (const auto& [side, name] : read_sides) {
    const std::string get = std::string("get/") + name;
    benchmark::RegisterBenchmark(get.c_str(), BM_Get, side)
        ->UseRealTime()
        ->MinTime(0.3)
        ->Threads(1)
        ->Threads(32);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  close_world();
  return 0;
}
