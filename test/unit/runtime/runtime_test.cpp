// The runtime's building blocks: UniqueFunction, Random, TimerQueue.
#include <catch2/catch.hpp>

#include <array>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/random.hpp"
#include "runtime/timer_queue.hpp"
#include "runtime/unique_function.hpp"

using kvcore::runtime::Duration;
using kvcore::runtime::Instant;
using kvcore::runtime::Random;
using kvcore::runtime::Task;
using kvcore::runtime::TimerQueue;
using kvcore::runtime::UniqueFunction;

namespace {

// Counts live copies, to check that captures are destroyed exactly once.
struct Tracked {
  explicit Tracked(int* live) : live_(live) { ++*live_; }
  Tracked(Tracked&& o) noexcept : live_(o.live_) { ++*live_; }
  Tracked(const Tracked&) = delete;
  ~Tracked() { --*live_; }
  int* live_;
};

Instant at_ms(int ms) { return Instant(std::chrono::milliseconds(ms)); }

}  // namespace

TEST_CASE("UniqueFunction holds move-only callables, inline and on the heap") {
  auto owned = std::make_unique<int>(41);
  UniqueFunction<int(int)> small([p = std::move(owned)](int d) { return *p + d; });
  REQUIRE(small);
  CHECK(small(1) == 42);

  std::array<std::uint64_t, 16> big{};
  big[15] = 7;
  UniqueFunction<std::uint64_t()> large(
      [big, p = std::make_unique<int>(1)] { return big[15] + *p; });
  CHECK(large() == 8);

  UniqueFunction<std::uint64_t()> moved = std::move(large);
  CHECK_FALSE(large);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  CHECK(moved() == 8);

  UniqueFunction<int(int)> empty;
  CHECK_FALSE(empty);
  empty = std::move(small);
  CHECK(empty(2) == 43);
  empty = nullptr;
  CHECK_FALSE(empty);
}

TEST_CASE("UniqueFunction destroys its captures exactly once") {
  int live = 0;
  {
    Task a([t = Tracked(&live)] {});
    CHECK(live == 1);
    Task b = std::move(a);
    CHECK(live == 1);
    std::array<char, 200> pad{};
    Task c([t = Tracked(&live), pad] { (void)pad; });
    CHECK(live == 2);
    b = std::move(c);
    CHECK(live == 1);
  }
  CHECK(live == 0);
}

TEST_CASE("Random replays a seed and differs across seeds") {
  Random a(7), b(7), c(8);
  std::vector<std::uint64_t> va, vb, vc;
  for (int i = 0; i < 100; ++i) {
    va.push_back(a.next_u64());
    vb.push_back(b.next_u64());
    vc.push_back(c.next_u64());
  }
  CHECK(va == vb);
  CHECK(va != vc);
  Random zero(0);
  CHECK(zero.next_u64() != zero.next_u64());
}

TEST_CASE("Random::uniform stays in range and covers it evenly") {
  Random r(1);
  std::array<int, 10> counts{};
  for (int i = 0; i < 100'000; ++i) {
    const std::uint64_t v = r.uniform(10);
    REQUIRE(v < 10);
    ++counts[v];
  }
  for (int c : counts) {
    CHECK(c > 9'000);
    CHECK(c < 11'000);
  }
  CHECK(r.uniform(1) == 0);
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t v = r.uniform_between(5, 7);
    CHECK(v >= 5);
    CHECK(v <= 7);
  }
  CHECK(r.uniform_between(3, 3) == 3);
}

TEST_CASE("Random::chance honours its bounds and its probability") {
  Random r(2);
  int hits = 0;
  for (int i = 0; i < 10'000; ++i) {
    CHECK_FALSE(r.chance(0.0));
    CHECK(r.chance(1.0));
    hits += r.chance(0.25) ? 1 : 0;
  }
  CHECK(hits > 2'200);
  CHECK(hits < 2'800);
}

TEST_CASE("Random::fork is deterministic and independent of the parent") {
  Random p1(3), p2(3);
  Random c1 = p1.fork(), c2 = p2.fork();
  for (int i = 0; i < 10; ++i) CHECK(c1.next_u64() == c2.next_u64());
  Random p3(3);
  const std::uint64_t first_of_parent = p3.next_u64();
  Random c3 = Random(3).fork();
  CHECK(c3.next_u64() != first_of_parent);
  // Sibling forks differ.
  Random p4(3);
  Random s1 = p4.fork(), s2 = p4.fork();
  CHECK(s1.next_u64() != s2.next_u64());
}

TEST_CASE("TimerQueue orders by deadline, then by id") {
  TimerQueue<int> q;
  q.push(at_ms(30), 1, 1);
  q.push(at_ms(10), 2, 2);
  q.push(at_ms(10), 3, 3);
  q.push(at_ms(20), 4, 4);
  CHECK(q.size() == 4);
  CHECK(q.next_deadline() == at_ms(10));
  CHECK(q.earliest_ties() == 2);
  CHECK(q.count_until(at_ms(20)) == 3);

  CHECK(q.remove(4) == 4);
  CHECK_FALSE(q.remove(4).has_value());
  CHECK_FALSE(q.remove(99).has_value());

  auto e = q.pop_nth(1);
  CHECK(e.id == 3);
  CHECK(e.deadline == at_ms(10));
  CHECK(q.pop_nth(0).payload == 2);
  CHECK(q.pop_nth(0).payload == 1);
  CHECK(q.empty());
  CHECK_FALSE(q.next_deadline().has_value());
}

TEST_CASE("TimerQueue reschedules and removes by payload") {
  TimerQueue<int> q;
  for (int i = 1; i <= 6; ++i) q.push(at_ms(i * 10), static_cast<std::uint64_t>(i), i);
  q.reschedule_if([](int p) -> std::optional<Instant> {
    if (p % 2 == 0) return at_ms(1000 - p);
    return std::nullopt;
  });
  std::vector<int> order;
  auto removed = q.remove_if([](int p) { return p == 3; });
  CHECK(removed == std::vector<int>{3});
  CHECK(q.remove(4) == 4);  // the index follows the new deadline
  while (!q.empty()) order.push_back(q.pop_nth(0).payload);
  CHECK(order == std::vector<int>{1, 5, 6, 2});
}
