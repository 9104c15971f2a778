// The test-support linearizability checker, on hand-written histories and on
// random histories produced by a true sequential register.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "linearizability.hpp"
#include "seed.hpp"

using kvcore::test::check_linearizable;
using kvcore::test::kUnknownReturn;
using kvcore::test::Operation;

namespace {

using Kind = Operation::Kind;

Operation write(std::uint64_t client, std::string key, std::optional<std::string> v,
                std::int64_t call, std::int64_t ret) {
  return {client, Kind::kWrite, std::move(key), std::move(v), std::nullopt, call, ret};
}

Operation read(std::uint64_t client, std::string key, std::optional<std::string> v,
               std::int64_t call, std::int64_t ret) {
  return {client, Kind::kRead, std::move(key), std::move(v), std::nullopt, call, ret};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("empty and sequential histories are linearizable", "[linearizability]") {
  CHECK(check_linearizable({}).ok);
  const auto r = check_linearizable({
      read(1, "k", std::nullopt, 0, 5),
      write(1, "k", "a", 10, 20),
      read(2, "k", "a", 30, 40),
      write(2, "k", std::nullopt, 50, 60),
      read(1, "k", std::nullopt, 70, 80),
  });
  CHECK(r.ok);
  CHECK(r.explanation.empty());
  CHECK(r.states_explored >= 5);
}

TEST_CASE("a stale read after a completed write is not linearizable", "[linearizability]") {
  const auto r = check_linearizable({
      write(1, "k", "a", 0, 10),
      write(1, "k", "b", 20, 30),
      read(2, "k", "a", 40, 50),
  });
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation, "key \"k\""));
  CHECK(contains(r.explanation, "the 3 operation(s) below cannot be ordered"));
  CHECK(contains(r.explanation, "client 1 write \"a\" [0, 10]\n"));
  CHECK(contains(r.explanation, "client 1 write \"b\" [20, 30]\n"));
  CHECK(contains(r.explanation, "client 2 read -> \"a\" [40, 50]  <-"));
}

TEST_CASE("a read of a value never written is not linearizable", "[linearizability]") {
  const auto r = check_linearizable({
      write(1, "k", "a", 0, 10),
      read(2, "k", "zzz", 5, 15),
  });
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation, "client 2 read -> \"zzz\" [5, 15]  <-"));

  // Reading a value before its write was called is the same failure.
  CHECK_FALSE(check_linearizable({read(2, "k", "a", 0, 4), write(1, "k", "a", 5, 10)}).ok);
}

TEST_CASE("concurrent writes admit reads in either order", "[linearizability]") {
  for (const char* first : {"a", "b"}) {
    const std::string second = std::string(first) == "a" ? "b" : "a";
    INFO("reads see " << first << " then " << second);
    // Both writes overlap both reads, so each read may see either write.
    CHECK(check_linearizable({
                                 write(1, "k", "a", 0, 100),
                                 write(2, "k", "b", 0, 100),
                                 read(3, "k", first, 10, 20),
                                 read(3, "k", second, 30, 40),
                             })
              .ok);
    // After both writes completed, two sequential reads must agree.
    CHECK_FALSE(check_linearizable({
                                       write(1, "k", "a", 0, 10),
                                       write(2, "k", "b", 0, 10),
                                       read(3, "k", first, 20, 30),
                                       read(3, "k", second, 40, 50),
                                   })
                    .ok);
  }
  // Touching intervals (a return at the call's time) count as concurrent.
  CHECK(check_linearizable({write(1, "k", "a", 0, 10), read(2, "k", std::nullopt, 10, 20)}).ok);
}

TEST_CASE("an unknown-outcome write may take effect later or never", "[linearizability]") {
  // Appears long after its call, after a later completed write.
  CHECK(check_linearizable({
                               write(1, "k", "a", 0, kUnknownReturn),
                               write(2, "k", "b", 10, 20),
                               read(3, "k", "b", 30, 40),
                               read(3, "k", "a", 1000, 1010),
                               read(2, "k", "a", 2000, 2010),
                           })
            .ok);
  // Never appears.
  CHECK(check_linearizable({
                               write(1, "k", "a", 0, kUnknownReturn),
                               read(3, "k", std::nullopt, 30, 40),
                               read(3, "k", std::nullopt, 1000, 1010),
                           })
            .ok);
  // But it cannot appear before its call, nor vanish once read.
  CHECK_FALSE(check_linearizable({
                                     read(3, "k", "a", 0, 5),
                                     write(1, "k", "a", 10, kUnknownReturn),
                                 })
                  .ok);
  const auto r = check_linearizable({
      write(1, "k", "a", 0, kUnknownReturn),
      read(3, "k", "a", 30, 40),
      read(3, "k", std::nullopt, 50, 60),
  });
  REQUIRE_FALSE(r.ok);
  INFO(r.explanation);
  CHECK(contains(r.explanation, "[0, unknown]"));
}

TEST_CASE("keys are independent registers", "[linearizability]") {
  CHECK(check_linearizable({
                               write(1, "x", "1", 0, 10),
                               write(1, "y", "2", 20, 30),
                               read(2, "x", "1", 40, 50),
                               read(2, "y", "2", 40, 50),
                               read(2, "z", std::nullopt, 40, 50),
                           })
            .ok);
  // A read of "y" returning the value written to "x".
  const auto r = check_linearizable({
      write(1, "x", "1", 0, 10),
      write(1, "y", "2", 20, 30),
      read(2, "y", "1", 40, 50),
  });
  REQUIRE_FALSE(r.ok);
  CHECK(contains(r.explanation, "key \"y\""));
}

TEST_CASE("malformed histories and an exhausted budget never pass", "[linearizability]") {
  auto r = check_linearizable({read(1, "k", std::nullopt, 0, kUnknownReturn)});
  CHECK_FALSE(r.ok);
  CHECK(contains(r.explanation, "malformed"));
  r = check_linearizable({write(1, "k", "a", 10, 5)});
  CHECK_FALSE(r.ok);
  CHECK(contains(r.explanation, "malformed"));

  // 20 concurrent writes and a read no order explains: ruling out every
  // order takes far more than 50 states.
  std::vector<Operation> h;
  for (int i = 0; i < 20; ++i) h.push_back(write(i, "k", std::to_string(i), 0, 100));
  h.push_back(read(99, "k", "none", 200, 210));
  r = check_linearizable(h, 50);
  CHECK_FALSE(r.ok);
  CHECK(contains(r.explanation, "inconclusive"));
  CHECK(r.states_explored == 50);
}

namespace {

// A history of several clients on a few keys, recorded against a true
// sequential register: each operation takes effect at one instant inside its
// interval. Some writes time out (unknown return): they take effect at a
// random later instant, or never.
std::vector<Operation> random_history(kvcore::test::Rng& rng) {
  struct Planned {
    Operation op;
    std::int64_t at;  // instant of effect; -1 never
  };
  const int clients = 2 + static_cast<int>(rng.uniform(4));
  const int keys = 1 + static_cast<int>(rng.uniform(3));
  const int per_client = 5 + static_cast<int>(rng.uniform(20));
  std::vector<Planned> planned;
  for (int c = 0; c < clients; ++c) {
    std::int64_t t = static_cast<std::int64_t>(rng.uniform(20));
    for (int i = 0; i < per_client; ++i) {
      Operation op;
      op.client = static_cast<std::uint64_t>(c);
      op.key = "k" + std::to_string(rng.uniform(static_cast<std::uint64_t>(keys)));
      op.kind = rng.chance(0.5) ? Kind::kWrite : Kind::kRead;
      if (op.kind == Kind::kWrite && !rng.chance(0.1)) {
        op.value = "c" + std::to_string(c) + "." + std::to_string(i);
      }
      op.call = t + static_cast<std::int64_t>(rng.uniform(10));
      std::int64_t at = op.call + static_cast<std::int64_t>(rng.uniform(30));
      op.ret = at + static_cast<std::int64_t>(rng.uniform(30));
      t = op.ret;
      if (op.kind == Kind::kWrite && rng.chance(0.1)) {
        op.ret = kUnknownReturn;
        at = rng.chance(0.5) ? op.call + static_cast<std::int64_t>(rng.uniform(500)) : -1;
      }
      planned.push_back({std::move(op), at});
    }
  }
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < planned.size(); ++i) {
    if (planned[i].at >= 0) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return planned[a].at < planned[b].at; });
  std::map<std::string, std::optional<std::string>> reg;
  for (std::size_t i : order) {
    Operation& op = planned[i].op;
    if (op.kind == Kind::kWrite) {
      reg[op.key] = op.value;
    } else {
      auto it = reg.find(op.key);
      op.value = it == reg.end() ? std::nullopt : it->second;
    }
  }
  std::vector<Operation> history;
  for (auto& p : planned) {
    // A read that never took effect has no outcome to check.
    if (p.op.kind == Kind::kRead && p.at < 0) continue;
    history.push_back(std::move(p.op));
  }
  // Input order must not matter.
  for (std::size_t i = history.size(); i > 1; --i) {
    std::swap(history[i - 1], history[rng.uniform(i)]);
  }
  return history;
}

}  // namespace

TEST_CASE("histories of a sequential register pass; one corrupted read fails",
          "[linearizability]") {
  for (const std::uint64_t seed : kvcore::test::test_seeds(1, 300)) {
    INFO(kvcore::test::replay_hint(seed));
    kvcore::test::Rng rng(seed);
    std::vector<Operation> history = random_history(rng);
    const auto ok = check_linearizable(history);
    INFO(ok.explanation);
    REQUIRE(ok.ok);

    std::vector<std::size_t> reads;
    for (std::size_t i = 0; i < history.size(); ++i) {
      if (history[i].kind == Kind::kRead) reads.push_back(i);
    }
    if (reads.empty()) continue;
    Operation& victim = history[reads[rng.uniform(reads.size())]];
    victim.value = "never-written";
    const auto bad = check_linearizable(history);
    INFO(bad.explanation);
    REQUIRE_FALSE(bad.ok);
    CHECK(contains(bad.explanation, "key \"" + victim.key + "\""));
    // Shrunk to the one read that cannot be explained.
    CHECK(contains(bad.explanation, "read -> \"never-written\" [" + std::to_string(victim.call) +
                                        ", " + std::to_string(victim.ret) + "]  <-"));
    CHECK(contains(bad.explanation, "the 1 operation(s) below cannot be ordered"));
    CHECK_FALSE(contains(bad.explanation, "inconclusive"));
  }
}
