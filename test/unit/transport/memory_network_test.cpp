// MemoryNetwork: delivery through runtime timers, delays and ordering, the
// faults (drop, duplicate, partition, isolate, one-way blocks, filters),
// detach, determinism from the seed, and a smoke test on real threads (which
// waits on a condition variable with a bounded wait; nothing sleeps).
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kvcore/memory_network.hpp"
#include "kvcore/store.hpp"
#include "runtime/real_runtime.hpp"
#include "runtime/sim_runtime.hpp"
#include "seed.hpp"

using namespace std::chrono_literals;
using kvcore::KvPair;
using kvcore::MemoryNetwork;
using kvcore::RawBatch;
using kvcore::RegionStatus;
using kvcore::RequestOptions;
using kvcore::Result;
using kvcore::Status;
using kvcore::runtime::Clock;
using kvcore::runtime::RealRuntime;
using kvcore::runtime::SimRuntime;

namespace {

// One delivery as a store saw it.
struct Arrival {
  std::uint64_t to;
  std::string frame;
  std::int64_t at_us;  // on the clock given to the store, since its start
  friend bool operator==(const Arrival&, const Arrival&) = default;
};

// A Store that records what the network hands it. Every request fails with
// NotSupported. Thread-safe: the real-runtime test delivers on the timer
// thread while the test thread reads.
class FakeStore final : public kvcore::Store {
 public:
  FakeStore(std::uint64_t id, const Clock& clock) : id_(id), clock_(clock), start_(clock.now()) {}

  Status deliver(std::string_view frame) override {
    std::lock_guard lock(mu_);
    if (closed_) ++after_close_;
    arrivals_.push_back(
        {id_, std::string(frame),
         std::chrono::duration_cast<std::chrono::microseconds>(clock_.now() - start_).count()});
    cv_.notify_all();
    return {};
  }
  void report_unreachable(std::uint64_t store_id) override {
    std::lock_guard lock(mu_);
    if (closed_) ++after_close_;
    unreachable_.push_back(store_id);
  }

  Result<std::optional<std::string>> get(std::string_view, const RequestOptions&) override {
    return unsupported();
  }
  Result<std::vector<KvPair>> scan(std::string_view, std::string_view, std::size_t, bool,
                                   const RequestOptions&) override {
    return unsupported();
  }
  Status put(std::string_view, std::string_view, const RequestOptions&) override {
    return unsupported();
  }
  Status del(std::string_view, const RequestOptions&) override { return unsupported(); }
  Status delete_range(std::string_view, std::string_view, const RequestOptions&) override {
    return unsupported();
  }
  Status write(RawBatch, const RequestOptions&) override { return unsupported(); }
  void async_get(std::string_view, const RequestOptions&, kvcore::GetCallback done) override {
    done(unsupported());
  }
  void async_scan(std::string_view, std::string_view, std::size_t, bool, const RequestOptions&,
                  kvcore::ScanCallback done) override {
    done(unsupported());
  }
  void async_write(RawBatch, const RequestOptions&, kvcore::WriteCallback done) override {
    done(unsupported());
  }
  void async_delete_range(std::string_view, std::string_view, const RequestOptions&,
                          kvcore::WriteCallback done) override {
    done(unsupported());
  }
  Status transfer_leader(std::uint64_t, std::uint64_t) override { return unsupported(); }
  Status split_region(std::uint64_t, std::vector<std::string>, const RequestOptions&) override {
    return unsupported();
  }
  void async_split_region(std::uint64_t, std::vector<std::string>, const RequestOptions&,
                          kvcore::WriteCallback done) override {
    done(unsupported());
  }
  Status change_peers(std::uint64_t, std::vector<kvcore::PeerChangeRequest>,
                      const RequestOptions&) override {
    return unsupported();
  }
  void async_change_peers(std::uint64_t, std::vector<kvcore::PeerChangeRequest>,
                          const RequestOptions&, kvcore::WriteCallback done) override {
    done(unsupported());
  }
  Status merge_region(std::uint64_t, std::uint64_t, const RequestOptions&) override {
    return unsupported();
  }
  void async_merge_region(std::uint64_t, std::uint64_t, const RequestOptions&,
                          kvcore::WriteCallback done) override {
    done(unsupported());
  }
  std::uint64_t store_id() const override { return id_; }
  std::vector<RegionStatus> regions() const override { return {}; }
  std::string metrics_text() const override { return {}; }
  std::uint64_t metric(std::string_view) const override { return 0; }

  std::vector<Arrival> arrivals() const {
    std::lock_guard lock(mu_);
    return arrivals_;
  }
  std::vector<std::string> frames() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& a : arrivals_) out.push_back(a.frame);
    return out;
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return arrivals_.size();
  }
  std::vector<std::uint64_t> unreachable() const {
    std::lock_guard lock(mu_);
    return unreachable_;
  }
  // From now on any call is a contract violation (counted).
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  int calls_after_close() const {
    std::lock_guard lock(mu_);
    return after_close_;
  }
  // Waits (bounded) until `n` frames arrived. True when they did.
  bool wait_for_count(std::size_t n, std::chrono::seconds max) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, max, [&] { return arrivals_.size() >= n; });
  }

 private:
  static Status unsupported() { return Status::not_supported("fake store"); }

  const std::uint64_t id_;
  const Clock& clock_;
  const kvcore::runtime::Instant start_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<Arrival> arrivals_;           // guarded by mu_
  std::vector<std::uint64_t> unreachable_;  // guarded by mu_
  bool closed_ = false;                     // guarded by mu_
  int after_close_ = 0;                     // guarded by mu_
};

// A simulated network with stores 1..n attached.
struct SimNet {
  explicit SimNet(std::uint64_t seed, std::uint64_t n = 3) : sim(seed), net(sim) {
    for (std::uint64_t id = 1; id <= n; ++id) {
      stores.push_back(std::make_unique<FakeStore>(id, sim.clock()));
      net.attach(id, stores.back().get());
    }
  }
  FakeStore& store(std::uint64_t id) { return *stores.at(id - 1); }
  void send(std::uint64_t from, std::uint64_t to, std::string frame) {
    net.transport(from).send(to, std::move(frame));
  }

  SimRuntime sim;
  MemoryNetwork net;
  std::vector<std::unique_ptr<FakeStore>> stores;  // detached by the destructor's body first
  ~SimNet() {
    for (std::uint64_t id = 1; id <= stores.size(); ++id) net.detach(id);
  }
};

std::vector<std::string> numbered(std::string_view prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(fmt::format("{}{}", prefix, i));
  return out;
}

}  // namespace

TEST_CASE("memory network: a frame is delivered by a timer, not inside send") {
  SimNet s(1);
  s.send(1, 2, "hello");
  CHECK(s.store(2).count() == 0);
  CHECK(s.net.in_flight() == 1);
  s.sim.run_until_idle();
  REQUIRE(s.store(2).frames() == std::vector<std::string>{"hello"});
  CHECK(s.store(2).arrivals()[0].at_us == 0);
  CHECK(s.store(1).count() == 0);
  CHECK(s.store(3).count() == 0);

  const auto c = s.net.counters();
  CHECK(c.sent == 1);
  CHECK(c.delivered == 1);
  CHECK(c.dropped == 0);
  CHECK(c.in_flight == 0);
  CHECK(s.net.link(1, 2).delivered == 1);
  CHECK(s.net.link(2, 1) == MemoryNetwork::Counters{});
}

TEST_CASE("memory network: the transport reference is stable and per store") {
  SimNet s(1);
  kvcore::Transport& t1 = s.net.transport(1);
  CHECK(&s.net.transport(1) == &t1);
  CHECK(&s.net.transport(2) != &t1);
  // A transport for a store never attached works as a sender.
  s.net.transport(9).send(1, "from nine");
  s.sim.run_until_idle();
  CHECK(s.store(1).frames() == std::vector<std::string>{"from nine"});
  CHECK(s.net.link(9, 1).delivered == 1);
}

TEST_CASE("memory network: one link is FIFO at equal delays, whatever the sim's tie order") {
  for (std::uint64_t seed : kvcore::test::test_seeds(1, 5)) {
    INFO(kvcore::test::replay_hint(seed));
    SimNet s(seed);
    const auto frames = numbered("f", 100);
    for (const auto& f : frames) {
      s.send(1, 2, f);
      s.send(3, 2, "other");
    }
    s.sim.run_until_idle();
    std::vector<std::string> from1;
    for (const auto& f : s.store(2).frames()) {
      if (f != "other") from1.push_back(f);
    }
    CHECK(from1 == frames);
    CHECK(s.store(2).count() == 200);
  }
}

TEST_CASE("memory network: delays hold frames back and reorder them") {
  SimNet s(7);
  SECTION("a fixed delay") {
    s.net.set_delay(10ms, 10ms);
    s.send(1, 2, "a");
    s.sim.run_for(9ms);
    CHECK(s.store(2).count() == 0);
    s.sim.run_for(1ms);
    REQUIRE(s.store(2).count() == 1);
    CHECK(s.store(2).arrivals()[0].at_us == 10'000);
  }
  SECTION("a shorter delay overtakes a longer one") {
    s.net.set_delay(10ms, 10ms);
    s.send(1, 2, "slow");
    s.net.set_delay(1ms, 1ms);
    s.send(1, 2, "fast");
    s.sim.run_for(20ms);
    CHECK(s.store(2).frames() == std::vector<std::string>{"fast", "slow"});
  }
  SECTION("a random delay spreads frames over [min, max] and reorders them") {
    s.net.set_delay(5ms, 100ms);
    const auto frames = numbered("r", 200);
    for (const auto& f : frames) s.send(1, 2, f);
    s.sim.run_for(4ms);
    CHECK(s.store(2).count() == 0);
    s.sim.run_for(96ms);
    const auto arrivals = s.store(2).arrivals();
    REQUIRE(arrivals.size() == frames.size());
    std::int64_t lo = arrivals.front().at_us;
    std::int64_t hi = lo;
    for (const auto& a : arrivals) {
      lo = std::min(lo, a.at_us);
      hi = std::max(hi, a.at_us);
    }
    CHECK(lo >= 5'000);
    CHECK(hi <= 100'000);
    CHECK(hi - lo > 50'000);  // 200 uniform draws over 95ms
    CHECK(s.store(2).frames() != frames);
  }
  SECTION("heal removes the delay") {
    s.net.set_delay(50ms, 50ms);
    s.net.heal();
    s.send(1, 2, "now");
    s.sim.run_until_idle();
    CHECK(s.store(2).count() == 1);
  }
}

TEST_CASE("memory network: the drop rate drops about that share of frames") {
  const std::uint64_t seed = kvcore::test::test_seed(11);
  INFO(kvcore::test::replay_hint(seed));
  SimNet s(seed);
  constexpr int kFrames = 10'000;
  constexpr double kRate = 0.3;
  s.net.set_drop_rate(kRate);
  for (int i = 0; i < kFrames; ++i) s.send(1, 2, "x");
  s.sim.run_until_idle();
  const auto c = s.net.counters();
  CHECK(c.sent == kFrames);
  CHECK(c.delivered + c.dropped == kFrames);
  CHECK(c.delivered == s.store(2).count());
  // sigma = sqrt(n p (1-p)) ~ 46; five sigmas.
  CHECK(static_cast<double>(c.dropped) == Approx(kFrames * kRate).margin(230));

  s.net.set_drop_rate(1.0);
  s.send(1, 2, "gone");
  s.net.set_drop_rate(0.0);
  s.send(1, 2, "kept");
  s.sim.run_until_idle();
  CHECK(s.store(2).frames().back() == "kept");
  CHECK(s.net.dropped() == c.dropped + 1);
}

TEST_CASE("memory network: duplicates") {
  const std::uint64_t seed = kvcore::test::test_seed(3);
  INFO(kvcore::test::replay_hint(seed));
  SimNet s(seed);
  SECTION("rate 1 delivers every frame twice, in order at equal delays") {
    s.net.set_duplicate_rate(1.0);
    s.send(1, 2, "a");
    s.send(1, 2, "b");
    s.sim.run_until_idle();
    CHECK(s.store(2).frames() == std::vector<std::string>{"a", "a", "b", "b"});
    const auto c = s.net.counters();
    CHECK(c.sent == 2);
    CHECK(c.duplicated == 2);
    CHECK(c.delivered == 4);
  }
  SECTION("rate p duplicates about that share") {
    s.net.set_duplicate_rate(0.25);
    for (int i = 0; i < 4000; ++i) s.send(1, 2, "d");
    s.sim.run_until_idle();
    const auto c = s.net.counters();
    CHECK(c.delivered == 4000 + c.duplicated);
    // sigma ~ 27
    CHECK(static_cast<double>(c.duplicated) == Approx(1000).margin(140));
  }
}

TEST_CASE("memory network: partitions, isolation and one-way blocks") {
  SimNet s(5, 4);
  // Sends one frame on every link and returns the links that delivered,
  // as "from>to" strings.
  auto reachable = [&s] {
    std::vector<std::string> out;
    for (std::uint64_t from = 1; from <= 4; ++from) {
      for (std::uint64_t to = 1; to <= 4; ++to) {
        if (from == to) continue;
        const auto before = s.net.link(from, to).delivered;
        s.send(from, to, "probe");
        s.sim.run_until_idle();
        if (s.net.link(from, to).delivered > before) out.push_back(fmt::format("{}>{}", from, to));
      }
    }
    return out;
  };
  using V = std::vector<std::string>;
  const V all = {"1>2", "1>3", "1>4", "2>1", "2>3", "2>4",
                 "3>1", "3>2", "3>4", "4>1", "4>2", "4>3"};
  CHECK(reachable() == all);

  SECTION("partition; a store in no group is cut off") {
    s.net.partition({{1, 2}, {3}});
    CHECK(reachable() == V{"1>2", "2>1"});
    s.net.partition({{1, 2}, {3, 4}});
    CHECK(reachable() == V{"1>2", "2>1", "3>4", "4>3"});
    s.net.partition({});
    CHECK(reachable() == all);
  }
  SECTION("isolate") {
    s.net.isolate(2);
    CHECK(reachable() == V{"1>3", "1>4", "3>1", "3>4", "4>1", "4>3"});
  }
  SECTION("block is one way; unblock restores") {
    s.net.block(1, 2);
    s.net.block(3, 4);
    CHECK(reachable() == V{"1>3", "1>4", "2>1", "2>3", "2>4", "3>1", "3>2", "4>1", "4>2", "4>3"});
    s.net.unblock(1, 2);
    CHECK(reachable() ==
          V{"1>2", "1>3", "1>4", "2>1", "2>3", "2>4", "3>1", "3>2", "4>1", "4>2", "4>3"});
  }
  SECTION("filters; remove_filter; heal clears everything") {
    const auto id = s.net.add_filter([](std::uint64_t from, std::uint64_t, std::string_view frame) {
      return !(from == 4 && frame == "probe");
    });
    CHECK(reachable() == V{"1>2", "1>3", "1>4", "2>1", "2>3", "2>4", "3>1", "3>2", "3>4"});
    CHECK(s.net.remove_filter(id));
    CHECK_FALSE(s.net.remove_filter(id));
    CHECK(reachable() == all);

    s.net.add_filter([](std::uint64_t, std::uint64_t to, std::string_view) { return to != 1; });
    s.net.partition({{1, 2, 3}, {4}});
    s.net.isolate(3);
    s.net.block(2, 1);
    s.net.set_drop_rate(1.0);
    CHECK(reachable().empty());
    s.net.heal();
    CHECK(reachable() == all);
  }
  // Dropped frames are silent: no report_unreachable for filtered links.
  for (std::uint64_t id = 1; id <= 4; ++id) CHECK(s.store(id).unreachable().empty());
}

TEST_CASE("memory network: detach drops frames and reports the store unreachable") {
  SimNet s(9);
  s.send(1, 2, "in flight");
  s.net.detach(2);
  CHECK_FALSE(s.net.attached(2));
  s.sim.run_until_idle();
  CHECK(s.store(2).count() == 0);
  CHECK(s.net.dropped() == 1);
  CHECK(s.store(1).unreachable().empty());  // it was attached when sent

  // Sent to a detached store: dropped, and the sender hears of it from a
  // timer, once per pending report.
  s.send(1, 2, "a");
  s.send(1, 2, "b");
  CHECK(s.store(1).unreachable().empty());
  s.sim.run_until_idle();
  CHECK(s.store(1).unreachable() == std::vector<std::uint64_t>{2});
  CHECK(s.net.dropped() == 3);

  // Re-attached: delivery resumes.
  s.net.attach(2, &s.store(2));
  s.send(1, 2, "back");
  s.sim.run_until_idle();
  CHECK(s.store(2).frames() == std::vector<std::string>{"back"});

  // A detached sender hears nothing.
  s.net.detach(1);
  s.net.detach(2);
  s.send(1, 2, "x");
  s.sim.run_until_idle();
  CHECK(s.store(1).unreachable().size() == 1);
}

TEST_CASE("memory network: destroying the network discards frames in flight") {
  SimRuntime sim(1);
  FakeStore store(2, sim.clock());
  {
    MemoryNetwork net(sim);
    net.attach(2, &store);
    net.set_delay(5ms, 5ms);
    net.transport(1).send(2, "late");
  }
  sim.run_for(10ms);
  CHECK(store.count() == 0);
}

TEST_CASE("memory network: the same seed gives the same deliveries") {
  auto run = [](std::uint64_t seed) {
    SimNet s(seed);
    s.net.set_drop_rate(0.2);
    s.net.set_duplicate_rate(0.2);
    s.net.set_delay(0ms, 30ms);
    for (int i = 0; i < 300; ++i) {
      const auto from = static_cast<std::uint64_t>(1 + i % 3);
      const auto to = static_cast<std::uint64_t>(1 + (i + 1) % 3);
      s.send(from, to, fmt::format("m{}", i));
      if (i % 10 == 0) s.sim.run_for(3ms);
    }
    s.sim.run_for(100ms);
    std::vector<Arrival> all;
    for (std::uint64_t id = 1; id <= 3; ++id) {
      const auto a = s.store(id).arrivals();
      all.insert(all.end(), a.begin(), a.end());
    }
    return all;
  };
  for (std::uint64_t seed : kvcore::test::test_seeds(100, 3)) {
    INFO(kvcore::test::replay_hint(seed));
    const auto first = run(seed);
    CHECK(first.size() > 200);
    CHECK(run(seed) == first);
    CHECK(run(seed + 1000) != first);
  }
}

TEST_CASE("memory network: real runtime, many senders, detach under load") {
  RealRuntime rt(42);
  FakeStore a(1, rt.clock());
  FakeStore b(2, rt.clock());
  MemoryNetwork net(rt);
  net.attach(1, &a);
  net.attach(2, &b);
  net.set_delay(0ms, 1ms);

  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  {
    std::vector<std::jthread> senders;
    for (int t = 0; t < kThreads; ++t) {
      senders.emplace_back([&net, t] {
        for (int i = 0; i < kPerThread; ++i) {
          net.transport(1).send(2, fmt::format("{}:{}", t, i));
          net.transport(2).send(1, "ack");
        }
      });
    }
  }
  REQUIRE(b.wait_for_count(kThreads * kPerThread, 30s));
  REQUIRE(a.wait_for_count(kThreads * kPerThread, 30s));
  CHECK(net.sent() == 2 * kThreads * kPerThread);

  // Detach while senders keep going: once detach returns, store b sees no
  // further call.
  std::atomic<bool> stop{false};
  std::jthread sender([&] {
    while (!stop.load()) net.transport(1).send(2, "more");
  });
  REQUIRE(b.wait_for_count(kThreads * kPerThread + 50, 30s));
  net.detach(2);
  b.close();
  const std::size_t seen = b.count();
  const auto more = a.count();
  net.transport(2).send(1, "still works");
  REQUIRE(a.wait_for_count(more + 1, 30s));
  stop.store(true);
  sender.join();
  CHECK(b.count() == seen);
  CHECK(b.calls_after_close() == 0);
  net.detach(1);
}
