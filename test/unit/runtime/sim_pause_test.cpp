// SimView::pause_for: a paused view runs nothing until its pause ends, the
// other views go on, and the clock still gets there.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/sim_runtime.hpp"
#include "seed.hpp"

using namespace std::chrono_literals;
using kvcore::runtime::ClockSkew;
using kvcore::runtime::Duration;
using kvcore::runtime::Executor;
using kvcore::runtime::Instant;
using kvcore::runtime::SimRuntime;
using kvcore::runtime::SimView;

namespace {

// "<what>@<ms since the start>" of each task, in the order they ran.
class Trace {
 public:
  explicit Trace(SimRuntime& sim) : sim_(sim) {}
  void add(const std::string& what) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(sim_.now() - sim_.start()).count();
    lines.push_back(fmt::format("{}@{}", what, ms));
  }
  auto recorder(std::string what) {
    return [this, what = std::move(what)] { add(what); };
  }
  std::vector<std::string> lines;

 private:
  SimRuntime& sim_;
};

}  // namespace

TEST_CASE("pause: a paused view's tasks and timers wait; other views run") {
  SimRuntime sim(1);
  Trace trace(sim);
  auto a = sim.make_view(ClockSkew{});
  auto b = sim.make_view(ClockSkew{});
  {
    auto a_exec = a->make_executor("a", 1);
    auto b_exec = b->make_executor("b", 1);
    a->pause_for(100ms);
    CHECK(a->paused_for() == 100ms);
    CHECK(b->paused_for() == Duration::zero());
    a_exec->post(trace.recorder("a-task"));
    b_exec->post(trace.recorder("b-task"));
    // A's timer is due first, yet must not hold back B's.
    a->timers().schedule_after(10ms, trace.recorder("a-timer"));
    b->timers().schedule_after(20ms, trace.recorder("b-timer"));
    b->timers().schedule_after(200ms, trace.recorder("b-late"));
    CHECK(sim.ready_count() == 1);  // b-task only

    sim.run_for(50ms);
    CHECK(trace.lines == std::vector<std::string>{"b-task@0", "b-timer@20"});
    CHECK(a->paused_for() == 50ms);
    CHECK(sim.pending_timers() == 2);  // a-timer waits, b-late is not due

    sim.run_for(300ms);
    const std::vector<std::string> want = {"b-task@0", "b-timer@20", "a-task@100", "a-timer@100",
                                           "b-late@200"};
    // a-task and a-timer become ready together at 100: either order is fine.
    REQUIRE(trace.lines.size() == want.size());
    CHECK(trace.lines[4] == want[4]);
    CHECK(std::is_permutation(trace.lines.begin(), trace.lines.end(), want.begin()));
    CHECK(a->paused_for() == Duration::zero());
  }
}

TEST_CASE("pause: the clock advances to a pause's end, so run_until finds the work") {
  SimRuntime sim(3);
  Trace trace(sim);
  auto a = sim.make_view(ClockSkew{});
  auto exec = a->make_executor("a", 1);
  bool ran = false;
  a->pause_for(250ms);
  exec->post([&] { ran = true; });
  const Instant t0 = sim.now();
  CHECK_FALSE(sim.step());
  CHECK(sim.run_until_idle() == 0);
  CHECK(sim.run_until([&] { return ran; }, 1s));
  CHECK(sim.now() == t0 + 250ms);

  // run_for stops at its own end even while the view is still paused.
  ran = false;
  a->pause_for(1s);
  exec->post([&] { ran = true; });
  sim.run_for(100ms);
  CHECK_FALSE(ran);
  CHECK(sim.now() == t0 + 350ms);
  CHECK(sim.ready_count() == 0);
  CHECK_FALSE(sim.run_until([&] { return ran; }, 100ms));
  CHECK(sim.now() == t0 + 450ms);
  sim.run_for(1s);
  CHECK(ran);
}

TEST_CASE("pause: overdue timers of a resumed view fire earliest first, before later ones") {
  SimRuntime sim(5);
  Trace trace(sim);
  auto a = sim.make_view(ClockSkew{});
  auto b = sim.make_view(ClockSkew{});
  a->pause_for(100ms);
  a->timers().schedule_after(30ms, trace.recorder("a30"));
  a->timers().schedule_after(10ms, trace.recorder("a10"));
  // Due at the very instant A resumes, but later than A's overdue timers.
  b->timers().schedule_after(100ms, trace.recorder("b100"));
  sim.run_for(200ms);
  CHECK(trace.lines == std::vector<std::string>{"a10@100", "a30@100", "b100@100"});
}

TEST_CASE("pause: a longer pause already running is kept; a task can pause its own view") {
  SimRuntime sim(7);
  Trace trace(sim);
  auto a = sim.make_view(ClockSkew{});
  a->pause_for(100ms);
  a->pause_for(40ms);
  CHECK(a->paused_for() == 100ms);
  a->pause_for(0ms);
  CHECK(a->paused_for() == 100ms);
  sim.run_for(100ms);
  CHECK(a->paused_for() == Duration::zero());

  auto exec = a->make_executor("a", 1);
  exec->post([&] {
    trace.add("first");
    a->pause_for(30ms);
    trace.add("first-after-pause");  // the running task finishes
  });
  exec->post(trace.recorder("second"));
  sim.run_for(100ms);
  CHECK(trace.lines ==
        std::vector<std::string>{"first@100", "first-after-pause@100", "second@130"});
}

TEST_CASE("pause: destroying a paused view ends its pause") {
  SimRuntime sim(9);
  bool ran = false;
  std::unique_ptr<Executor> exec;
  {
    auto a = sim.make_view(ClockSkew{});
    exec = a->make_executor("a", 1);
    a->pause_for(1s);
    exec->post([&] { ran = true; });
    CHECK_FALSE(sim.step());
  }
  CHECK(sim.step());
  CHECK(ran);
}

TEST_CASE("pause: a clock jump of a paused view re-aims its timers, the pause holds") {
  SimRuntime sim(11);
  Trace trace(sim);
  auto a = sim.make_view(ClockSkew{});
  a->timers().schedule_after(500ms, trace.recorder("a500"));
  a->pause_for(100ms);
  a->sim_clock().jump(450ms);  // the timer is now due at sim 50ms
  sim.run_for(1s);
  CHECK(trace.lines == std::vector<std::string>{"a500@100"});
}

namespace {

// Three views posting and arming timers, pausing each other at seeded
// moments: the trace is a function of the seed.
std::vector<std::string> pause_workload(std::uint64_t seed) {
  SimRuntime sim(seed);
  Trace trace(sim);
  std::vector<std::unique_ptr<SimView>> views;
  std::vector<std::unique_ptr<Executor>> execs;
  for (int i = 0; i < 3; ++i) {
    views.push_back(sim.make_view(ClockSkew{}));
    execs.push_back(views.back()->make_executor(fmt::format("v{}", i), 1 + i % 2));
  }
  auto rng = std::make_shared<kvcore::runtime::Random>(sim.random().fork());
  std::function<void(int, int)> work = [&](int v, int depth) {
    trace.add(fmt::format("v{}d{}", v, depth));
    if (depth == 0) return;
    const int other = static_cast<int>(rng->uniform(3));
    if (rng->chance(0.2)) {
      views[static_cast<std::size_t>(other)]->pause_for(
          Duration(std::chrono::milliseconds(rng->uniform(50))));
    }
    execs[static_cast<std::size_t>(other)]->post([&work, other, depth] { work(other, depth - 1); });
    views[static_cast<std::size_t>(v)]->timers().schedule_after(
        Duration(std::chrono::milliseconds(rng->uniform(30))),
        [&work, v, depth] { work(v, depth - 1); });
  };
  for (int v = 0; v < 3; ++v) {
    execs[static_cast<std::size_t>(v)]->post([&work, v] { work(v, 6); });
  }
  sim.run_for(5s);
  // Everything ran out long before: destroying the executors drains nothing.
  CHECK(sim.ready_count() == 0);
  CHECK(sim.pending_timers() == 0);
  execs.clear();
  return trace.lines;
}

}  // namespace

TEST_CASE("pause: the same seed replays the same trace with pauses") {
  for (std::uint64_t seed : kvcore::test::test_seeds(1, 8)) {
    INFO(kvcore::test::replay_hint(seed));
    const auto a = pause_workload(seed);
    CHECK(a.size() > 100);
    CHECK(a == pause_workload(seed));
  }
}
