// kvcore-sim: runs simulated clusters under faults and checks them.
//
//   kvcore-sim --seed N            one seed, with its summary (replays it exactly)
//   kvcore-sim --seeds A..B        seeds A to B inclusive
//   kvcore-sim --minutes M         seeds from --first (default 1) on, for M minutes
//
// Options: --jobs J (seeds run on J threads, default 1), --stores 3|5,
// --faults N, --workload-ms T, --clients C, --keys K, --skip-faults a,b,c
// (leave faults of the schedule out), --max-tasks N (a run taking more
// simulated tasks fails as a livelock), --trace (print each fault as applied,
// with the stores' info log lines),
// --verbose (details of every seed), --no-shrink, --shrink-runs N,
// --sabotage follower-reads|skip-log-sync (break the store on purpose, to
// watch the checkers catch it).
//
// On a failure it prints the seed, the fault schedule, what each fault did,
// the failed checks (with the shortest failing window of the history), then
// shrinks the schedule (drops faults while the run still fails) and prints
// the smaller failing run with the command that replays it. The exit status
// is 1 when any seed failed, 2 on bad arguments.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kvcore/logging.hpp"
#include "raftstore/sabotage.hpp"
#include "simulator.hpp"

namespace {

using kvcore::sim::SimOptions;
using kvcore::sim::SimReport;
using Clock = std::chrono::steady_clock;

struct Args {
  SimOptions base;
  std::uint64_t first = 1;
  std::uint64_t last = 1;
  std::optional<double> minutes;
  unsigned jobs = 1;
  bool verbose = false;
  bool shrink = true;
  int shrink_runs = 40;
  kvcore::raftstore::testing::Sabotage sabotage = kvcore::raftstore::testing::Sabotage::kNone;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "kvcore-sim: %s\nusage: kvcore-sim (--seed N | --seeds A..B | --minutes M "
               "[--first A]) [--jobs J] [--stores 3|5] [--faults N] [--workload-ms T] "
               "[--clients C] [--keys K] [--skip-faults a,b] [--max-tasks N] [--trace] [--verbose] "
               "[--no-shrink] [--shrink-runs N] [--sabotage follower-reads|skip-log-sync]\n",
               why.c_str());
  std::exit(2);
}

std::uint64_t number(std::string_view s) {
  if (s.empty()) usage("a number is missing");
  std::uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') usage(fmt::format("not a number: {}", s));
    v = v * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  bool chosen = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage(fmt::format("{} needs a value", arg));
      return argv[++i];
    };
    if (arg == "--seed") {
      a.first = a.last = number(value());
      chosen = true;
    } else if (arg == "--seeds") {
      const auto v = value();
      const auto dots = v.find("..");
      if (dots == std::string_view::npos) usage("--seeds wants A..B");
      a.first = number(v.substr(0, dots));
      a.last = number(v.substr(dots + 2));
      if (a.last < a.first) usage("--seeds wants A <= B");
      chosen = true;
    } else if (arg == "--minutes") {
      a.minutes = std::strtod(std::string(value()).c_str(), nullptr);
      if (*a.minutes <= 0) usage("--minutes wants a positive number");
      chosen = true;
    } else if (arg == "--first") {
      a.first = number(value());
    } else if (arg == "--jobs") {
      a.jobs = static_cast<unsigned>(std::max<std::uint64_t>(1, number(value())));
    } else if (arg == "--stores") {
      a.base.stores = number(value());
      if (a.base.stores != 3 && a.base.stores != 5) usage("--stores is 3 or 5");
    } else if (arg == "--faults") {
      a.base.faults = number(value());
    } else if (arg == "--workload-ms") {
      a.base.workload = std::chrono::milliseconds(number(value()));
    } else if (arg == "--clients") {
      a.base.clients = std::max<std::uint64_t>(1, number(value()));
    } else if (arg == "--keys") {
      a.base.keys = std::max<std::uint64_t>(2, number(value()));
    } else if (arg == "--skip-faults") {
      const std::string v(value());
      std::size_t pos = 0;
      while (pos < v.size()) {
        const auto comma = v.find(',', pos);
        const auto end = comma == std::string::npos ? v.size() : comma;
        a.base.skip_faults.insert(number(std::string_view(v).substr(pos, end - pos)));
        pos = end + 1;
      }
    } else if (arg == "--max-tasks") {
      a.base.max_tasks = number(value());
    } else if (arg == "--trace") {
      a.base.trace = true;
    } else if (arg == "--verbose") {
      a.verbose = true;
    } else if (arg == "--no-shrink") {
      a.shrink = false;
    } else if (arg == "--shrink-runs") {
      a.shrink_runs = static_cast<int>(number(value()));
    } else if (arg == "--sabotage") {
      const auto v = value();
      using kvcore::raftstore::testing::Sabotage;
      if (v == "follower-reads") {
        a.sabotage = Sabotage::kFollowerReads;
      } else if (v == "skip-log-sync") {
        a.sabotage = Sabotage::kSkipLogSync;
      } else {
        usage(fmt::format("unknown sabotage {}", v));
      }
    } else {
      usage(fmt::format("unknown argument {}", arg));
    }
  }
  if (!chosen) usage("say which seeds: --seed, --seeds or --minutes");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  kvcore::raftstore::testing::set_sabotage(args.sabotage);
  // With --trace the stores' own info lines (elections aside: splits,
  // merges, destroyed peers, snapshots) interleave with the faults.
  if (args.base.trace) kvcore::set_log_level(kvcore::LogLevel::kInfo);

  const auto began = Clock::now();
  const auto deadline =
      args.minutes ? std::optional<Clock::time_point>(
                         began + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double, std::ratio<60>>(*args.minutes)))
                   : std::nullopt;
  std::atomic<std::uint64_t> next{args.first};
  std::mutex mu;  // guards what follows, and stdout
  std::uint64_t done = 0;
  std::uint64_t failed_count = 0;
  std::uint64_t ops = 0;
  double sim_seconds = 0;
  std::vector<SimReport> failures;
  auto last_progress = began;
  const bool single = !args.minutes && args.first == args.last;

  const auto worker = [&] {
    for (;;) {
      if (deadline && Clock::now() >= *deadline) return;
      const std::uint64_t seed = next.fetch_add(1);
      if (!deadline && seed > args.last) return;
      SimOptions o = args.base;
      o.seed = seed;
      SimReport r = kvcore::sim::run_simulation(o);
      std::lock_guard lock(mu);
      ++done;
      ops += r.history_ops;
      sim_seconds += r.sim_seconds;
      if (!r.ok) {
        ++failed_count;
        std::printf("%s", r.details().c_str());
        std::fflush(stdout);
        failures.push_back(std::move(r));
      } else if (args.verbose || single) {
        std::printf("%s", single ? r.details().c_str() : (r.summary() + "\n").c_str());
      }
      const auto now = Clock::now();
      if (!single && (now - last_progress > std::chrono::seconds(5))) {
        last_progress = now;
        const double minutes = std::chrono::duration<double>(now - began).count() / 60;
        std::string eta;
        if (deadline) {
          eta = fmt::format(", {:.1f} min left",
                            std::chrono::duration<double>(*deadline - now).count() / 60);
        } else {
          const auto total = args.last - args.first + 1;
          eta = fmt::format(", {}/{} seeds", done, total);
        }
        std::printf("[%.1f min] %llu seeds: %llu ok, %llu failed, %.1f seeds/min%s\n", minutes,
                    static_cast<unsigned long long>(done),
                    static_cast<unsigned long long>(done - failed_count),
                    static_cast<unsigned long long>(failed_count),
                    minutes > 0 ? static_cast<double>(done) / minutes : 0.0, eta.c_str());
        std::fflush(stdout);
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned j = 1; j < args.jobs; ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();

  const double minutes = std::chrono::duration<double>(Clock::now() - began).count() / 60;
  const double wall = minutes * 60;
  std::printf("%llu seeds (%llu..%llu), %llu ok, %llu failed, %llu operations checked, "
              "%.2f min, %.1f seeds/min, %.0f simulated s (%.0fx wall time)\n",
              static_cast<unsigned long long>(done), static_cast<unsigned long long>(args.first),
              static_cast<unsigned long long>(args.first + done - 1),
              static_cast<unsigned long long>(done - failed_count),
              static_cast<unsigned long long>(failed_count),
              static_cast<unsigned long long>(ops), minutes,
              minutes > 0 ? static_cast<double>(done) / minutes : 0.0, sim_seconds,
              wall > 0 ? sim_seconds / wall : 0.0);
  if (failures.empty()) return 0;

  if (args.shrink) {
    const SimReport& first = failures.front();
    std::printf("\nshrinking the fault schedule of seed %llu (at most %d runs)...\n",
                static_cast<unsigned long long>(first.options.seed), args.shrink_runs);
    std::fflush(stdout);
    SimOptions o = args.base;
    o.seed = first.options.seed;
    o.trace = false;
    const SimReport small = kvcore::sim::shrink_faults(o, first, args.shrink_runs);
    std::printf("smallest failing run found (%zu of %zu faults):\n%s",
                small.schedule.size() - small.skipped.size(), small.schedule.size(),
                small.details().c_str());
  }
  std::printf("failed seeds:");
  for (const auto& f : failures) {
    std::printf(" %llu", static_cast<unsigned long long>(f.options.seed));
  }
  std::printf("\n");
  return 1;
}
