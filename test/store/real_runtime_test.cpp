// Stores on real threads (each its own RealRuntime, frames through a
// MemoryNetwork): the sync API from many threads at once. Built for the
// thread sanitizer as much as for the results.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <memory>
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

  explicit RealCluster(std::size_t n) {
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
