// Crash safety: a forked child writes synced batches and reports each
// acknowledged one over a pipe; the parent SIGKILLs it at seeded moments,
// reopens, and checks that every acknowledged batch is there and that no
// batch is there in part. The same directory lives through all the kills.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "helpers.hpp"
#include "seed.hpp"
#include "temp_dir.hpp"

using namespace kvcore;
using namespace kvcore::raftlog;
using namespace kvcore::raftlog::testing;

namespace {

constexpr std::uint64_t kRegions = 4;

// Batch n (1-based) appends entry n to every region and sets each region's
// "last" record to n, so a half-applied batch shows as regions that differ.
[[noreturn]] void child_main(const std::string& dir, const RaftLogOptions& opts, int fd,
                             std::uint64_t seed) {
  auto opened = RaftLogEngine::open(dir, opts);
  if (!opened.is_ok()) _exit(3);
  auto& eng = *opened.value();
  test::Rng rng(seed);
  raft::Index n = eng.last_index(1).value_or(0);
  for (;;) {
    ++n;
    LogBatch b;
    for (std::uint64_t region = 1; region <= kRegions; ++region) {
      const auto ents = make_entries(region, n, n + 1, 1, rng.uniform(200));
      if (!b.append(region, ents).is_ok()) _exit(4);
      b.put_state(region, "last", std::to_string(n));
      if (n % 16 == 0) b.compact_to(region, n - 8);
    }
    if (!eng.write(b, true).is_ok()) _exit(5);
    if (::write(fd, &n, sizeof n) != sizeof n) _exit(6);
    if (n % 32 == 0 && !eng.purge().is_ok()) _exit(7);
  }
}

}  // namespace

TEST_CASE("raftlog: acknowledged batches survive SIGKILL, none half-applied", "[raftlog][crash]") {
  const std::uint64_t seed = test::test_seed(77);
  INFO(test::replay_hint(seed));
  test::Rng rng(seed);
  test::TempDir tmp("raftlog-crash");
  const std::string dir = tmp.sub("log");
  RaftLogOptions opts;
  opts.segment_bytes = 2048;
  raft::Index acked = 0;
  const int kills = 24;
  for (int kill = 0; kill < kills; ++kill) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      child_main(dir, opts, fds[1], rng.next());
    }
    ::close(fds[1]);
    rng.next();  // the child's seed
    // Kill after a seeded number of acknowledgements plus a seeded spin, so
    // the kill lands anywhere in a write, an fsync, a rotation or a purge.
    const std::uint64_t wait_for = 1 + rng.uniform(40);
    std::uint64_t seen = 0;
    raft::Index n = 0;
    while (seen < wait_for && ::read(fds[0], &n, sizeof n) == sizeof n) {
      acked = std::max(acked, n);
      ++seen;
    }
    volatile std::uint64_t spin = 0;
    for (std::uint64_t i = rng.uniform(200000); i > 0; --i) spin = spin + i;
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    // Acknowledgements the child sent before it died.
    while (::read(fds[0], &n, sizeof n) == sizeof n) acked = std::max(acked, n);
    ::close(fds[0]);
    INFO("kill " << kill << " child status " << status);
    REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));

    auto eng = open_engine(dir, opts);
    const auto last = eng->last_index(1);
    REQUIRE(last.has_value());
    CHECK(*last >= acked);
    for (std::uint64_t region = 1; region <= kRegions; ++region) {
      INFO("region " << region);
      CHECK(eng->last_index(region) == last);
      CHECK(eng->get_state(region, "last")->value_or("") == std::to_string(*last));
      const auto first = *eng->first_index(region);
      const auto ents = all_entries(*eng, region);
      REQUIRE(ents.size() == *last - first + 1);
      for (const auto& e : ents) {
        CHECK(e.data.rfind("r" + std::to_string(region) + "i" + std::to_string(e.index) + "t1",
                           0) == 0);
      }
    }
    acked = *last;
  }
  // Every child got at least one batch acknowledged.
  CHECK(acked >= static_cast<raft::Index>(kills));
}
