// RealRuntime: thread pools, the timer thread, seeding. Waits use futures,
// latches and condition variables with generous timeouts; nothing sleeps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "runtime/real_runtime.hpp"

using namespace std::chrono_literals;
using kvcore::runtime::Duration;
using kvcore::runtime::Instant;
using kvcore::runtime::Random;
using kvcore::runtime::RealRuntime;
using kvcore::runtime::SteadyClock;
using kvcore::runtime::TimerId;

namespace {

constexpr auto kGenerous = 30s;

// Sets a flag when destroyed: shows a dropped task was released.
struct DropFlag {
  explicit DropFlag(std::shared_ptr<std::atomic<bool>> f) : flag(std::move(f)) {}
  DropFlag(DropFlag&& o) noexcept = default;
  ~DropFlag() {
    if (flag) flag->store(true);
  }
  std::shared_ptr<std::atomic<bool>> flag;
};

}  // namespace

TEST_CASE("real: a thread pool runs every task on its threads") {
  RealRuntime rt(1);
  constexpr int kTasks = 5000;
  std::atomic<int> count{0};
  std::latch done(kTasks);
  std::mutex mu;
  std::set<std::thread::id> threads;
  {
    auto pool = rt.make_executor("pool", 4);
    CHECK(pool->threads() == 4);
    CHECK(pool->name() == "pool");
    for (int i = 0; i < kTasks; ++i) {
      pool->post([&] {
        count.fetch_add(1);
        {
          std::lock_guard lock(mu);
          threads.insert(std::this_thread::get_id());
        }
        done.count_down();
      });
    }
    done.wait();
  }
  CHECK(count.load() == kTasks);
  CHECK(threads.size() <= 4);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
}

TEST_CASE("real: a one-thread pool runs tasks in order, even posted from its tasks") {
  RealRuntime rt(1);
  std::vector<int> order;  // touched only by the pool's one thread
  std::promise<std::vector<int>> result;
  auto fut = result.get_future();
  auto pool = rt.make_executor("fifo", 1);
  for (int i = 0; i < 100; ++i) pool->post([&order, i] { order.push_back(i); });
  pool->post([&] { pool->post([&] { result.set_value(order); }); });
  REQUIRE(fut.wait_for(kGenerous) == std::future_status::ready);
  std::vector<int> want(100);
  for (int i = 0; i < 100; ++i) want[static_cast<std::size_t>(i)] = i;
  CHECK(fut.get() == want);
}

TEST_CASE("real: shutdown runs queued tasks, then drops later posts") {
  RealRuntime rt(1);
  auto pool = rt.make_executor("drain", 2);
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::atomic<int> ran{0};
  // Both workers block, so the next tasks are certainly still queued when
  // shutdown begins.
  std::latch blocked(2);
  for (int i = 0; i < 2; ++i) {
    pool->post([&, open] {
      blocked.count_down();
      open.wait();
    });
  }
  blocked.wait();
  for (int i = 0; i < 50; ++i) pool->post([&] { ran.fetch_add(1); });
  std::thread opener([&] { gate.set_value(); });
  pool->shutdown();
  opener.join();
  CHECK(ran.load() == 50);

  auto dropped = std::make_shared<std::atomic<bool>>(false);
  pool->post([&ran, d = DropFlag(dropped)] { ran.fetch_add(100); });
  CHECK(dropped->load());
  pool->shutdown();  // idempotent
  pool.reset();
  CHECK(ran.load() == 50);
}

TEST_CASE("real: timers fire in deadline order, never early") {
  RealRuntime rt(1);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> order;     // guarded by mu
  std::vector<bool> on_time;  // guarded by mu
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();

  // The first timer (earliest deadline) holds the timer thread until every
  // other timer is armed, so their order depends only on their deadlines.
  const Instant base = rt.clock().now();
  rt.timers().schedule_at(base, [open] { open.wait(); });
  const int delays_ms[] = {7, 2, 9, 1, 5, 3, 8, 4, 6, 10};
  for (int d : delays_ms) {
    const Instant deadline = base + Duration(std::chrono::milliseconds(d));
    rt.timers().schedule_at(deadline, [&, d, deadline] {
      const bool ok = rt.clock().now() >= deadline;
      std::lock_guard lock(mu);
      order.push_back(d);
      on_time.push_back(ok);
      cv.notify_all();
    });
  }
  gate.set_value();
  std::unique_lock lock(mu);
  REQUIRE(cv.wait_for(lock, kGenerous, [&] { return order.size() == 10; }));
  CHECK(order == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(std::all_of(on_time.begin(), on_time.end(), [](bool b) { return b; }));
}

TEST_CASE("real: cancel stops a pending timer; a fired one cannot be cancelled") {
  RealRuntime rt(1);
  auto released = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool> ran{false};
  const TimerId far =
      rt.timers().schedule_after(1h, [&ran, d = DropFlag(released)] { ran = true; });
  CHECK(rt.timers().cancel(far));
  CHECK(released->load());
  CHECK_FALSE(rt.timers().cancel(far));

  std::promise<void> fired;
  auto fut = fired.get_future();
  const TimerId soon = rt.timers().schedule_after(-5ms, [&] { fired.set_value(); });
  REQUIRE(fut.wait_for(kGenerous) == std::future_status::ready);
  CHECK_FALSE(rt.timers().cancel(soon));
  CHECK_FALSE(ran.load());
}

TEST_CASE("real: timers may re-arm and cancel from their own tasks") {
  RealRuntime rt(1);
  std::promise<int> done;
  auto fut = done.get_future();
  int ticks = 0;      // touched only by the timer thread
  int cancelled = 0;  // likewise
  std::function<void()> tick = [&] {
    if (++ticks == 5) {
      done.set_value(cancelled);
      return;
    }
    const TimerId extra = rt.timers().schedule_after(1h, [] {});
    cancelled += rt.timers().cancel(extra) ? 1 : 0;
    rt.timers().schedule_after(1ms, tick);
  };
  rt.timers().schedule_after(1ms, tick);
  REQUIRE(fut.wait_for(kGenerous) == std::future_status::ready);
  CHECK(fut.get() == 4);
}

TEST_CASE("real: destroying the runtime drops pending timers") {
  auto released = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool> ran{false};
  {
    RealRuntime rt(1);
    rt.timers().schedule_after(1h, [&ran, d = DropFlag(released)] { ran = true; });
  }
  CHECK(released->load());
  CHECK_FALSE(ran.load());
}

TEST_CASE("real: random() follows the given seed, or reports the one it drew") {
  RealRuntime seeded(42);
  Random expect(42);
  CHECK(seeded.seed() == 42);
  CHECK(seeded.random().next_u64() == expect.next_u64());

  RealRuntime drawn;
  Random replay(drawn.seed());
  CHECK(drawn.random().next_u64() == replay.next_u64());
}

TEST_CASE("real: the steady clock is monotonic and wall time is the system's") {
  SteadyClock clock;
  Instant prev = clock.now();
  for (int i = 0; i < 1000; ++i) {
    const Instant t = clock.now();
    CHECK(t >= prev);
    prev = t;
  }
  const auto sys_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  CHECK(std::abs(clock.wall_time_ms() - sys_ms) < 60'000);
}
