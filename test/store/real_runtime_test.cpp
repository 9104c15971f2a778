// Stores on real threads (each its own RealRuntime, frames through a
// MemoryNetwork): the sync API from many threads at once. Built for the
// thread sanitizer as much as for the results.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <condition_variable>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kvcore/memory_network.hpp"
#include "kvcore/store.hpp"
#include "runtime/real_runtime.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;

namespace {

struct RealCluster {
  kvcore::runtime::RealRuntime rt{42};
  kvcore::MemoryNetwork net{rt};
  std::vector<std::unique_ptr<kvcore::test::TempDir>> dirs;
  std::vector<std::unique_ptr<kvcore::Store>> stores;

  std::function<void(kvcore::StoreOptions&)> tune;

  explicit RealCluster(std::size_t n, std::function<void(kvcore::StoreOptions&)> t = {})
      : tune(std::move(t)) {
    net.set_inline_delivery(true);
    std::vector<std::uint64_t> ids;
    for (std::size_t i = 1; i <= n; ++i) ids.push_back(i);
    for (std::uint64_t id : ids) {
      dirs.push_back(std::make_unique<kvcore::test::TempDir>("kvcore-real"));
      auto o = options(id);
      REQUIRE(kvcore::Store::bootstrap(o, ids).is_ok());
      auto s = kvcore::Store::open(o, net.transport(id));
      REQUIRE(s.is_ok());
      stores.push_back(std::move(s).value());
      net.attach(id, stores.back().get());
    }
  }
  ~RealCluster() {
    for (std::size_t i = 0; i < stores.size(); ++i) net.detach(i + 1);
    stores.clear();
  }

  kvcore::StoreOptions options(std::uint64_t id) {
    kvcore::StoreOptions o;
    o.cluster_id = 7;
    o.store_id = id;
    o.path = dirs[id - 1]->path();
    o.tick_interval = 10ms;  // elections in a few hundred milliseconds
    o.max_lease = 90ms;
    o.sync_log = false;
    o.engine = kvcore::EngineKind::kMemory;
    o.kv_path = "mem:" + o.path + "/kv";
    if (tune) tune(o);
    return o;
  }

  // Writes `key` through whichever store leads, following hints; bounded.
  kvcore::Status put(const std::string& key, const std::string& value, std::uint64_t* leader) {
    kvcore::Status last;
    std::uint64_t id = *leader == 0 ? 1 : *leader;
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < give_up) {
      last = stores[id - 1]->put(key, value, kvcore::RequestOptions{2s});
      if (last.is_ok()) {
        *leader = id;
        return last;
      }
      const auto* d = last.detail_as<kvcore::NotLeaderDetail>();
      id =
          (d != nullptr && d->leader_store_id != 0) ? d->leader_store_id : 1 + (id % stores.size());
      std::this_thread::yield();
    }
    return last;
  }
};

}  // namespace

TEST_CASE("real threads: concurrent writers and readers on a three-store cluster") {
  RealCluster c(3);
  std::uint64_t leader = 0;
  REQUIRE(c.put("hello", "world", &leader).is_ok());
  REQUIRE(leader != 0);

  constexpr int kWriters = 4;
  constexpr int kPerWriter = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::uint64_t l = leader;
      for (int i = 0; i < kPerWriter; ++i) {
        if (!c.put(fmt::format("w{}-{:04d}", w, i), fmt::format("v{}", i), &l).is_ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      auto r = c.stores[leader - 1]->get("hello");
      if (r.is_ok() && r->value_or("") != "world") failures.fetch_add(1);
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  reader.join();
  CHECK(failures.load() == 0);

  std::uint64_t l = leader;
  REQUIRE(c.put("final", "x", &l).is_ok());
  auto all = c.stores[l - 1]->scan("w", "x", 0);
  REQUIRE(all.is_ok());
  CHECK(all->size() == kWriters * kPerWriter);
  const auto text = c.stores[l - 1]->metrics_text();
  CHECK(text.find("kvcore_raft_proposals_total") != std::string::npos);
}

TEST_CASE("real threads: raft poller and apply pools over many regions") {
  RealCluster c(3, [](kvcore::StoreOptions& o) {
    o.raft_pollers = 3;
    o.apply_pollers = 3;
  });
  std::uint64_t leader = 0;
  REQUIRE(c.put("a", "b", &leader).is_ok());
  constexpr int kRegions = 64;
  std::vector<std::string> keys;
  for (int r = 1; r < kRegions; ++r) keys.push_back(fmt::format("r{:03d}", r));
  kvcore::Status split;
  for (int attempt = 0; attempt < 50; ++attempt) {
    split = c.stores[leader - 1]->split_region(1, keys, kvcore::RequestOptions{5s});
    if (split.is_ok()) break;
    (void)c.put("a", "b", &leader);
  }
  REQUIRE(split.is_ok());
  // The new regions elect (their peers on the parent leader's store
  // campaign at once); wait until every region has a leader everywhere.
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  auto all_led = [&] {
    for (auto& s : c.stores) {
      auto rs = s->regions();
      if (rs.size() != kRegions) return false;
      for (auto& r : rs) {
        if (r.leader_store == 0) return false;
      }
    }
    return true;
  };
  while (!all_led() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  REQUIRE(all_led());

  // Bursts of async writes, one per region at once, from several threads:
  // rounds then hold many regions, stepped and applied on several lanes.
  constexpr int kThreads = 4;
  constexpr int kBursts = 15;
  std::atomic<int> acked{0};
  std::atomic<int> failed{0};
  std::mutex retry_mu;
  std::vector<std::string> retry;  // keys whose write no store took
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBursts; ++b) {
        std::mutex mu;
        std::condition_variable cv;
        int left = kRegions;
        for (int r = 0; r < kRegions; ++r) {
          kvcore::RawBatch batch;
          const std::string key = fmt::format("r{:03d}-{}-{:03d}", r, t, b);
          batch.put(key, "v");
          // Every store: the leader takes it, the others refuse at once.
          auto* counted = new std::atomic<int>(static_cast<int>(c.stores.size()));
          auto* ok = new std::atomic<bool>(false);
          for (auto& s : c.stores) {
            kvcore::RawBatch copy = batch;
            s->async_write(std::move(copy), kvcore::RequestOptions{5s},
                           [&, counted, ok, key](kvcore::Status st) {
                             if (st.is_ok()) ok->store(true);
                             if (counted->fetch_sub(1) != 1) return;
                             (ok->load() ? acked : failed).fetch_add(1);
                             if (!ok->load()) {
                               std::lock_guard rl(retry_mu);
                               retry.push_back(key);
                             }
                             delete counted;
                             delete ok;
                             std::lock_guard lock(mu);
                             if (--left == 0) cv.notify_one();
                           });
          }
        }
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return left == 0; });
      }
    });
  }
  for (auto& th : threads) th.join();
  // Every write was answered; one no store took (its region's leader moved
  // meanwhile, likely under a sanitizer's slowdown) is written again through
  // the leader, so every key must read back below.
  CHECK(acked.load() + failed.load() == kThreads * kBursts * kRegions);
  CHECK(acked.load() > 0);
  for (const auto& k : retry) {
    std::uint64_t hint = leader;
    REQUIRE(c.put(k, "v", &hint).is_ok());
  }
  std::uint64_t parallel = 0;
  for (auto& s : c.stores) parallel += s->metric("kvcore_parallel_passes_total");
  CHECK(parallel > 0);
  // Every acknowledged write reads back: count them over all regions.
  std::uint64_t l = leader;
  REQUIRE(c.put("zz-final", "x", &l).is_ok());
  std::size_t found = 0;
  for (int r = 0; r < kRegions; ++r) {
    const std::string prefix = fmt::format("r{:03d}-", r);
    for (int attempt = 0; attempt < 100; ++attempt) {
      bool done = false;
      for (auto& s : c.stores) {
        auto got = s->scan(prefix, prefix + "~", 0, false, kvcore::RequestOptions{2s});
        if (got.is_ok()) {
          found += got->size();
          done = true;
          break;
        }
      }
      if (done) break;
      std::this_thread::sleep_for(10ms);
    }
  }
  CHECK(found == static_cast<std::size_t>(kThreads * kBursts * kRegions));
}

TEST_CASE("real threads: merges on apply lanes while writers run") {
  RealCluster c(3, [](kvcore::StoreOptions& o) {
    o.raft_pollers = 3;
    o.apply_pollers = 3;
  });
  std::uint64_t leader = 0;
  REQUIRE(c.put("a", "b", &leader).is_ok());
  constexpr int kRegions = 64;
  std::vector<std::string> keys;
  for (int r = 1; r < kRegions; ++r) keys.push_back(fmt::format("r{:03d}", r));
  kvcore::Status split = kvcore::Status::internal("not tried");
  for (int attempt = 0; attempt < 50 && !split.is_ok(); ++attempt) {
    split = c.stores[leader - 1]->split_region(1, keys, kvcore::RequestOptions{5s});
    if (!split.is_ok()) (void)c.put("a", "b", &leader);
  }
  REQUIRE(split.is_ok());
  const auto count_regions = [&](std::size_t want) {
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      bool all = true;
      for (auto& s : c.stores) {
        auto rs = s->regions();
        if (rs.size() != want) all = false;
        for (auto& r : rs) all = all && r.leader_store != 0;
      }
      if (all) return true;
      if (std::chrono::steady_clock::now() > give_up) return false;
      std::this_thread::yield();
    }
  };
  REQUIRE(count_regions(kRegions));

  // A writer over every region while the merges run; it retries what the
  // merges refuse, so every key it finishes is acknowledged.
  // Writers over every region while the merges run (so rounds hold many
  // regions, applied on several lanes); they retry what the merges refuse.
  constexpr int kWriters = 4;
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::string>> written(kWriters);  // read after join()
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::uint64_t l = leader;
      for (int i = 0; !stop.load(); ++i) {
        const std::string k = fmt::format("r{:03d}-{}-{:05d}", (i * 7 + w) % kRegions, w, i);
        if (c.put(k, k, &l).is_ok()) written[w].push_back(k);
      }
    });
  }
  // Odd regions merge into their left neighbours, one after another, each
  // on whichever store leads the source at the time.
  for (int r = 1; r < kRegions; r += 2) {
    const std::string start = fmt::format("r{:03d}", r);
    const std::string left = r == 1 ? std::string() : fmt::format("r{:03d}", r - 1);
    kvcore::Status st = kvcore::Status::internal("not tried");
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (!st.is_ok() && std::chrono::steady_clock::now() < give_up) {
      std::uint64_t source = 0;
      std::uint64_t target = 0;
      std::uint64_t at = 0;
      for (auto& s : c.stores) {
        for (auto& reg : s->regions()) {
          if (reg.start_key == start && reg.is_leader) {
            source = reg.region_id;
            at = s->store_id();
          }
          if (reg.start_key == left) target = reg.region_id;
        }
      }
      if (source == 0 || target == 0) {
        std::this_thread::yield();
        continue;
      }
      st = c.stores[at - 1]->merge_region(source, target, kvcore::RequestOptions{5s});
      // A source already merged (its peer gone) counts as done.
      if (st.sub_code() == kvcore::SubCode::kRegionNotFound) break;
    }
    INFO("merging " << start << ": " << st.to_string());
    REQUIRE((st.is_ok() || st.sub_code() == kvcore::SubCode::kRegionNotFound));
  }
  stop = true;
  for (auto& th : writers) th.join();
  REQUIRE(count_regions(kRegions / 2));
  for (auto& s : c.stores) {
    CHECK(s->metric("kvcore_region_merges_total{stage=\"committed\"}") == kRegions / 2);
  }
  // Every key the writer finished reads back from the merged regions.
  std::vector<std::string> acked;
  for (auto& w : written) acked.insert(acked.end(), w.begin(), w.end());
  CHECK(!acked.empty());
  for (const auto& k : acked) {
    std::uint64_t l = leader;
    kvcore::Result<std::optional<std::string>> got = kvcore::Status::internal("not read");
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < give_up) {
      got = c.stores[l - 1]->get(k, kvcore::RequestOptions{2s});
      if (got.is_ok()) break;
      const auto* d = got.status().detail_as<kvcore::NotLeaderDetail>();
      l = (d != nullptr && d->leader_store_id != 0) ? d->leader_store_id : 1 + (l % 3);
    }
    INFO(k);
    REQUIRE(got.is_ok());
    CHECK(got->value_or("") == k);
  }
}
