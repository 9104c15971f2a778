// The runtime: every clock read, timer, random number and thread pool of
// kvcore goes through these interfaces, so the same store code runs on real
// threads in production (RealRuntime) and on one thread from a seed in tests
// (SimRuntime, where a failing seed replays exactly).
//
// A component (a store, a raftstore, an apply pool) takes a Runtime& and uses
// nothing else for time, timers, randomness or threads. In production all of
// a process's stores may share one RealRuntime; in a simulated cluster each
// store gets a SimView of one SimRuntime, with a clock skewed its own way.
//
// Rules for code written against a Runtime:
// - Read time only from clock(); never from std::chrono clocks directly.
// - Wait only by scheduling a timer; never sleep or block on a condition that
//   another task of the same runtime must satisfy (in a simulation there is
//   only one thread, so that deadlocks).
// - Take randomness from a fork() of random() made at wiring time.
// - Run background work on executors from make_executor(), never on threads
//   of your own.
// - Sync, create and remove write-ahead files through disk(), so that a
//   simulation can tell what a power loss keeps.
// - Assume no order between tasks of different executors, nor between tasks
//   of one executor that has more than one thread. A one-thread executor runs
//   its tasks one at a time in the order they were posted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/clock.hpp"
#include "runtime/disk.hpp"
#include "runtime/random.hpp"
#include "runtime/unique_function.hpp"

namespace kvcore::runtime {

// Names one scheduled timer. The default value names none.
struct TimerId {
  std::uint64_t value = 0;
  [[nodiscard]] bool valid() const noexcept { return value != 0; }
  friend bool operator==(TimerId, TimerId) = default;
};

// One-shot timers. A timer's task runs once, at or after its deadline, unless
// cancelled first. Timer tasks should be short: hand real work to an executor.
//
// Thread-safety: RealRuntime's Timers may be used from any thread (timer tasks
// run on its timer thread); SimRuntime's only from the simulation's thread.
class Timers {
 public:
  virtual ~Timers() = default;

  // Runs `task` once the clock of these timers reaches `deadline` (at once,
  // on the timer thread or at the next simulation step, if it has passed).
  // Timers with equal deadlines run in an unspecified order.
  virtual TimerId schedule_at(Instant deadline, Task task) = 0;

  // Same as schedule_at(clock.now() + delay); a negative delay is zero.
  virtual TimerId schedule_after(Duration delay, Task task) = 0;

  // True when the timer was pending and now never runs; its task is destroyed
  // before cancel returns. False when it already ran, is running right now
  // (cancel does not wait for it), was cancelled, or never existed.
  virtual bool cancel(TimerId id) = 0;
};

// A named pool of workers that runs posted tasks.
//
// Destruction (or shutdown()) stops the executor: tasks already queued still
// run, then the workers stop; tasks posted after shutdown began are destroyed
// without running (so a promise they hold breaks instead of hanging its
// waiter). REQUIRES: an Executor is destroyed before the Runtime that made it,
// and not from one of its own tasks.
//
// Thread-safety: post() may be called from any thread (RealRuntime) or from
// the simulation's thread (SimRuntime). Tasks must not throw.
class Executor {
 public:
  virtual ~Executor() = default;

  // Queues `task`; see the class comment for ordering.
  virtual void post(Task task) = 0;

  // Runs the queued tasks and stops; idempotent. Later posts are dropped.
  virtual void shutdown() = 0;

  [[nodiscard]] virtual std::string_view name() const = 0;
  // The number of workers it was declared with (a simulation runs them all
  // on its one thread, but honours the declared size when picking the order).
  [[nodiscard]] virtual std::size_t threads() const = 0;
};

// Owns a clock, timers and a root random generator, makes executors, and
// names the disk that durable files sync through. Every object it returns
// lives as long as the Runtime (a SimView's disk: as long as that SimDisk).
//
// Thread-safety: clock(), timers() and make_executor() as their objects say;
// random() returns a generator that is NOT thread-safe in any runtime: use it
// while wiring components, on one thread, and give each component a fork().
class Runtime {
 public:
  virtual ~Runtime() = default;

  [[nodiscard]] virtual Clock& clock() = 0;
  [[nodiscard]] virtual Timers& timers() = 0;
  [[nodiscard]] virtual Random& random() = 0;
  // Thread-safe in every runtime (see Disk).
  [[nodiscard]] virtual Disk& disk() = 0;

  // A pool named `name` (thread names, logs) with `threads` workers.
  // REQUIRES: threads >= 1 (0 is taken as 1).
  [[nodiscard]] virtual std::unique_ptr<Executor> make_executor(std::string name,
                                                                std::size_t threads) = 0;
};

}  // namespace kvcore::runtime
