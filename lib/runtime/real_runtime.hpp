// RealRuntime: the production Runtime. std::chrono::steady_clock for now(),
// std::chrono::system_clock for wall time, one timer thread, and fixed-size
// thread pools with a FIFO queue.
//
// Thread-safety: clock(), timers() and the executors are safe to use from any
// thread, timer and executor tasks included. random() is not (see Runtime).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "runtime/runtime.hpp"
#include "runtime/timer_queue.hpp"

namespace kvcore::runtime {

// The process's monotonic clock. Its Instants share steady_clock's epoch.
class SteadyClock final : public Clock {
 public:
  [[nodiscard]] Instant now() const override;
  [[nodiscard]] std::int64_t wall_time_ms() const override;
};

// A fixed pool of threads named "<name>-<i>" taking tasks from one FIFO
// queue. Shutdown runs every task queued before it began, then joins; tasks
// posted after it began are destroyed without running.
class ThreadPool final : public Executor {
 public:
  // REQUIRES: threads >= 1 (0 is taken as 1).
  ThreadPool(std::string name, std::size_t threads);
  ~ThreadPool() override;

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void post(Task task) override;
  // REQUIRES: not called from one of this pool's tasks (it joins them).
  void shutdown() override;
  [[nodiscard]] std::string_view name() const override { return name_; }
  [[nodiscard]] std::size_t threads() const override { return workers_.size(); }

 private:
  void work();

  const std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::once_flag joined_;
  std::vector<std::thread> workers_;  // written only by the constructor
};

// One thread that sleeps on a condition variable until the earliest deadline
// and runs due timer tasks on itself, earliest deadline first.
// Destruction stops the thread; pending timers are destroyed without running.
class TimerThread final : public Timers {
 public:
  explicit TimerThread(const SteadyClock& clock);
  ~TimerThread() override;

  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  TimerId schedule_at(Instant deadline, Task task) override;
  TimerId schedule_after(Duration delay, Task task) override;
  bool cancel(TimerId id) override;

 private:
  void run();

  const SteadyClock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  TimerQueue<Task> queue_;     // guarded by mu_
  std::uint64_t next_id_ = 1;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  std::thread thread_;
};

class RealRuntime final : public Runtime {
 public:
  // Seeds random() with `seed`, or from std::random_device when none is given
  // (seed() tells which, so a log line can record it).
  explicit RealRuntime(std::optional<std::uint64_t> seed = std::nullopt);
  // REQUIRES: every executor made by this runtime is already destroyed.
  ~RealRuntime() override;

  RealRuntime(const RealRuntime&) = delete;
  RealRuntime& operator=(const RealRuntime&) = delete;

  [[nodiscard]] Clock& clock() override { return clock_; }
  [[nodiscard]] Timers& timers() override { return *timers_; }
  [[nodiscard]] Random& random() override { return random_; }
  // The machine's disk (real_disk()).
  [[nodiscard]] Disk& disk() override { return real_disk(); }
  [[nodiscard]] std::unique_ptr<Executor> make_executor(std::string name,
                                                        std::size_t threads) override;

  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }

 private:
  std::uint64_t seed_;
  SteadyClock clock_;
  Random random_;
  std::unique_ptr<TimerThread> timers_;
};

}  // namespace kvcore::runtime
