// SimRuntime: determinism, scheduling order, the driving calls, clock views.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/sim_runtime.hpp"
#include "seed.hpp"

using namespace std::chrono_literals;
using kvcore::runtime::ClockSkew;
using kvcore::runtime::Duration;
using kvcore::runtime::Executor;
using kvcore::runtime::Instant;
using kvcore::runtime::Runtime;
using kvcore::runtime::SimClock;
using kvcore::runtime::SimRuntime;
using kvcore::runtime::TimerId;

namespace {

std::int64_t ms_since_start(const SimRuntime& sim, Instant t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - sim.start()).count();
}

// A workload of posts and timers over three executors, written only against
// the Runtime interface (as store code is). Each task appends
// "<name>@<ms>" to the trace, posts follow-ups and arms timers; some timers
// are cancelled. Many tasks become ready at the same virtual time.
class Workload {
 public:
  explicit Workload(Runtime& rt) : rt_(rt) {
    exec_.push_back(rt.make_executor("raft", 1));
    exec_.push_back(rt.make_executor("apply", 2));
    exec_.push_back(rt.make_executor("io", 1));
    rng_ = std::make_unique<kvcore::runtime::Random>(rt.random().fork());
  }

  void start() {
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 4; ++j) post(static_cast<std::size_t>(i), fmt::format("p{}.{}", i, j), 3);
      for (int j = 0; j < 3; ++j) {
        rt_.timers().schedule_after(Duration(10ms * j), [this, i, j] {
          record(fmt::format("t{}.{}", i, j));
          post(static_cast<std::size_t>(j), fmt::format("tp{}.{}", i, j), 1);
        });
      }
    }
    TimerId doomed = rt_.timers().schedule_after(5ms, [this] { record("never"); });
    rt_.timers().schedule_after(
        1ms, [this, doomed] { record(rt_.timers().cancel(doomed) ? "cancelled" : "missed"); });
  }

  std::vector<std::string> trace;

 private:
  void post(std::size_t exec, std::string label, int depth) {
    exec_[exec]->post([this, exec, label, depth] {
      record(label);
      if (depth > 0) {
        post((exec + 1) % exec_.size(), label + "+", depth - 1);
        if (rng_->chance(0.5)) {
          rt_.timers().schedule_after(Duration(5ms * (depth % 2)),
                                      [this, label] { record("late:" + label); });
        }
      }
    });
  }
  void record(const std::string& what) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(rt_.clock().now().time_since_epoch());
    trace.push_back(fmt::format("{}@{}", what, ms.count()));
  }

  Runtime& rt_;
  std::vector<std::unique_ptr<Executor>> exec_;
  std::unique_ptr<kvcore::runtime::Random> rng_;
};

std::vector<std::string> run_workload(std::uint64_t seed) {
  SimRuntime sim(seed);
  std::vector<std::string> trace;
  {
    Workload w(sim);
    w.start();
    sim.run_for(1s);
    trace = w.trace;
  }
  return trace;
}

}  // namespace

TEST_CASE("sim: the same seed replays the same trace") {
  for (std::uint64_t seed : kvcore::test::test_seeds(1, 16)) {
    INFO(kvcore::test::replay_hint(seed));
    const auto a = run_workload(seed);
    const auto b = run_workload(seed);
    CHECK(a.size() > 40);
    CHECK(a == b);
    CHECK(std::count(a.begin(), a.end(), "cancelled@3600001") == 1);
  }
}

TEST_CASE("sim: different seeds interleave same-time tasks differently") {
  std::set<std::vector<std::string>> distinct;
  for (std::uint64_t seed = 100; seed < 116; ++seed) distinct.insert(run_workload(seed));
  CHECK(distinct.size() >= 12);
}

TEST_CASE("sim: a one-thread executor is FIFO, a wider one is not") {
  bool reordered = false;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SimRuntime sim(seed);
    std::vector<int> narrow_order, wide_order;
    {
      auto narrow = sim.make_executor("narrow", 1);
      auto wide = sim.make_executor("wide", 4);
      CHECK(wide->threads() == 4);
      for (int i = 0; i < 20; ++i) {
        narrow->post([&narrow_order, i] { narrow_order.push_back(i); });
        wide->post([&wide_order, i] { wide_order.push_back(i); });
      }
      CHECK(sim.ready_count() == 40);
      CHECK(sim.run_until_idle() == 40);
    }
    std::vector<int> sorted(20);
    std::iota(sorted.begin(), sorted.end(), 0);
    CHECK(narrow_order == sorted);
    REQUIRE(wide_order.size() == 20);
    reordered = reordered || wide_order != sorted;
  }
  CHECK(reordered);
}

TEST_CASE("sim: timers fire in deadline order, at their deadline") {
  SimRuntime sim(1);
  std::vector<std::pair<int, std::int64_t>> fired;
  for (int d : {30, 10, 20, 0, 25}) {
    sim.timers().schedule_after(Duration(std::chrono::milliseconds(d)), [&, d] {
      fired.emplace_back(d, ms_since_start(sim, sim.clock().now()));
    });
  }
  sim.timers().schedule_at(sim.now() - 5ms, [&] { fired.emplace_back(-5, 0); });
  CHECK(sim.pending_timers() == 6);
  CHECK(sim.next_deadline() == sim.now() - 5ms);
  sim.run_for(100ms);
  const std::vector<std::pair<int, std::int64_t>> want = {{-5, 0},  {0, 0},   {10, 10},
                                                          {20, 20}, {25, 25}, {30, 30}};
  CHECK(fired == want);
  CHECK(sim.pending_timers() == 0);
}

TEST_CASE("sim: cancel stops a pending timer and destroys its task") {
  SimRuntime sim(1);
  auto token = std::make_shared<int>(0);
  bool ran = false;
  const TimerId id = sim.timers().schedule_after(10ms, [&ran, token] { ran = true; });
  CHECK(id.valid());
  CHECK(token.use_count() == 2);
  CHECK(sim.timers().cancel(id));
  CHECK(token.use_count() == 1);
  CHECK_FALSE(sim.timers().cancel(id));
  CHECK_FALSE(sim.timers().cancel(TimerId{}));

  const TimerId fired = sim.timers().schedule_after(1ms, [] {});
  sim.run_for(20ms);
  CHECK_FALSE(ran);
  CHECK_FALSE(sim.timers().cancel(fired));
}

TEST_CASE("sim: step and run_until_idle never move the clock") {
  SimRuntime sim(1);
  auto exec = sim.make_executor("e", 1);
  CHECK_FALSE(sim.step());
  int runs = 0;
  sim.timers().schedule_after(1ms, [&] { ++runs; });
  exec->post([&] {
    ++runs;
    exec->post([&] { ++runs; });
  });
  const Instant t0 = sim.now();
  CHECK(sim.step());
  CHECK(runs == 1);
  CHECK(sim.run_until_idle() == 1);
  CHECK(runs == 2);
  CHECK_FALSE(sim.step());
  CHECK(sim.now() == t0);
  CHECK(sim.pending_timers() == 1);
  CHECK(sim.tasks_run() == 2);
}

TEST_CASE("sim: run_for runs up to and including its end, and ends there") {
  SimRuntime sim(1);
  auto exec = sim.make_executor("e", 1);
  std::vector<std::int64_t> seen;
  sim.timers().schedule_after(50ms, [&] {
    // A task posted by a timer runs at the timer's virtual time.
    exec->post([&] { seen.push_back(ms_since_start(sim, sim.now())); });
  });
  sim.timers().schedule_after(100ms, [&] { seen.push_back(100); });
  sim.timers().schedule_after(101ms, [&] { seen.push_back(101); });
  const Instant t0 = sim.now();
  sim.run_for(100ms);
  CHECK(seen == std::vector<std::int64_t>{50, 100});
  CHECK(sim.now() == t0 + 100ms);
  sim.run_for(0ms);
  CHECK(seen.size() == 2);
  sim.run_for(1ms);
  CHECK(seen.back() == 101);
  sim.run_for(1h);
  CHECK(sim.now() == t0 + 1h + 101ms);
}

TEST_CASE("sim: run_until stops when its predicate holds or its time is up") {
  SimRuntime sim(1);
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    sim.timers().schedule_after(10ms, tick);
  };
  sim.timers().schedule_after(10ms, tick);
  const Instant t0 = sim.now();

  CHECK(sim.run_until([&] { return ticks == 5; }, 1s));
  CHECK(ticks == 5);
  CHECK(sim.now() == t0 + 50ms);

  CHECK(sim.run_until([] { return true; }, 1s));
  CHECK(sim.now() == t0 + 50ms);

  CHECK_FALSE(sim.run_until([&] { return ticks == 1000; }, 95ms));
  CHECK(ticks == 14);
  CHECK(sim.now() == t0 + 145ms);

  // A predicate on time alone holds once the clock reaches it.
  const Instant target = sim.now() + 3ms;
  CHECK(sim.run_until([&] { return sim.now() >= target; }, 1s));
  CHECK(sim.now() <= target + 10ms);
}

TEST_CASE("sim: jump moves the clock at once; skipped timers fire in order") {
  SimRuntime sim(1);
  std::vector<std::pair<int, std::int64_t>> fired;
  for (int d : {20, 10, 30}) {
    sim.timers().schedule_after(Duration(std::chrono::milliseconds(d)),
                                [&, d] { fired.emplace_back(d, ms_since_start(sim, sim.now())); });
  }
  const std::int64_t wall0 = sim.clock().wall_time_ms();
  CHECK(wall0 == SimRuntime::kDefaultWallStartMs);
  sim.jump(25ms);
  CHECK(fired.empty());
  CHECK(ms_since_start(sim, sim.clock().now()) == 25);
  CHECK(sim.clock().wall_time_ms() == wall0 + 25);
  CHECK(sim.ready_count() == 2);
  sim.run_until_idle();
  CHECK(fired == std::vector<std::pair<int, std::int64_t>>{{10, 25}, {20, 25}});
  sim.run_for(10ms);
  CHECK(fired.back() == std::pair<int, std::int64_t>{30, 30});
}

TEST_CASE("sim: clock_for gives per-node views with offset and drift") {
  SimRuntime sim(SimRuntime::Options{1, 1'000'000});
  auto same = sim.clock_for(ClockSkew{});
  auto ahead = sim.clock_for(2s, 0);
  auto fast = sim.clock_for(0s, 1000);   // +0.1%
  auto slow = sim.clock_for(-1s, -500);  // -0.05%
  CHECK(same->now() == sim.now());
  CHECK(ahead->now() == sim.now() + 2s);
  CHECK(ahead->wall_time_ms() == 1'002'000);
  CHECK(slow->wall_time_ms() == 999'000);

  sim.run_for(10s);
  CHECK(same->now() == sim.now());
  CHECK(ahead->now() == sim.now() + 2s);
  CHECK(fast->now() == sim.now() + 10ms);
  CHECK(slow->now() == sim.now() - 1s - 5ms);
  CHECK(fast->wall_time_ms() == 1'010'010);

  ahead->jump(500ms);
  CHECK(ahead->now() == sim.now() + 2500ms);
  CHECK(ahead->skew().offset == 2500ms);
  CHECK(same->now() == sim.now());
}

TEST_CASE("sim: to_sim is the least simulator time at which a view reads a time") {
  SimRuntime sim(1);
  kvcore::runtime::Random r(kvcore::test::test_seed(5));
  for (int i = 0; i < 2000; ++i) {
    const auto offset =
        Duration(static_cast<std::int64_t>(r.uniform(2'000'000'000)) - 1'000'000'000);
    const auto drift = static_cast<std::int64_t>(r.uniform(400'000)) - 200'000;
    auto view = sim.clock_for(offset, drift);
    const Instant target = sim.start() + Duration(static_cast<std::int64_t>(r.uniform(1ull << 50)));
    const Instant s = view->to_sim(target);
    INFO("offset=" << offset.count() << " drift=" << drift);
    CHECK(view->from_sim(s) >= target);
    CHECK(view->from_sim(s - Duration(1)) < target);
  }
}

TEST_CASE("sim: a view runtime's timers count in the view's time") {
  SimRuntime sim(1);
  auto node = sim.make_view(ClockSkew{5s, 100'000});  // 10% fast
  Runtime& rt = *node;
  std::vector<std::string> fired;
  rt.timers().schedule_after(
      110ms, [&] { fired.push_back(fmt::format("a@{}", ms_since_start(sim, sim.now()))); });
  rt.timers().schedule_at(rt.clock().now() + 1100ms, [&] {
    fired.push_back(fmt::format("b@{}", ms_since_start(sim, sim.now())));
  });
  sim.run_for(100ms);
  CHECK(fired == std::vector<std::string>{"a@100"});
  CHECK(rt.clock().now() == sim.now() + 5s + 10ms);

  // A jump of the node's clock brings its timers forward; other clocks don't move.
  const Instant before = sim.now();
  node->sim_clock().jump(1s);
  CHECK(sim.run_until_idle() == 1);
  CHECK(fired.back() == "b@100");
  CHECK(sim.now() == before);

  // Destroying the node drops its pending timers, not the simulator's.
  bool node_fired = false, base_fired = false;
  rt.timers().schedule_after(1ms, [&] { node_fired = true; });
  sim.timers().schedule_after(1ms, [&] { base_fired = true; });
  node.reset();
  sim.run_for(10ms);
  CHECK_FALSE(node_fired);
  CHECK(base_fired);
}

TEST_CASE("sim: views share one schedule and fork the simulator's generator") {
  auto draw = [](std::uint64_t seed) {
    SimRuntime sim(seed);
    auto a = sim.make_view({});
    auto b = sim.make_view({});
    return std::vector<std::uint64_t>{a->random().next_u64(), b->random().next_u64()};
  };
  CHECK(draw(9) == draw(9));
  CHECK(draw(9)[0] != draw(9)[1]);
  CHECK(draw(9) != draw(10));

  SimRuntime sim(3);
  auto view = sim.make_view({});
  auto exec = view->make_executor("node-exec", 1);
  bool ran = false;
  exec->post([&] { ran = true; });
  CHECK(sim.ready_count() == 1);
  sim.run_until_idle();
  CHECK(ran);
}

TEST_CASE("sim: shutdown drains queued tasks and drops later posts") {
  SimRuntime sim(1);
  auto exec = sim.make_executor("e", 3);
  std::vector<int> ran;
  for (int i = 0; i < 5; ++i) exec->post([&ran, i] { ran.push_back(i); });
  exec->shutdown();
  CHECK(ran == std::vector<int>{0, 1, 2, 3, 4});
  auto token = std::make_shared<int>(0);
  exec->post([&ran, token] { ran.push_back(99); });
  CHECK(token.use_count() == 1);
  CHECK(sim.run_until_idle() == 0);
  CHECK(ran.size() == 5);
  CHECK(exec->name() == "e");
}
