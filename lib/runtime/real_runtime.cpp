#include "runtime/real_runtime.hpp"

#include "kvcore/runtime.hpp"

#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <random>
#include <utility>

namespace kvcore::runtime {
namespace {

// Linux limits thread names to 15 bytes; keep the tail, which holds the index.
void set_thread_name(const std::string& name) {
  std::string n = name.size() <= 15 ? name : name.substr(name.size() - 15);
  pthread_setname_np(pthread_self(), n.c_str());
}

std::uint64_t random_device_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

Instant SteadyClock::now() const {
  return Instant(
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

std::int64_t SteadyClock::wall_time_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------

ThreadPool::ThreadPool(std::string name, std::size_t threads) : name_(std::move(name)) {
  threads = std::max<std::size_t>(threads, 1);
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    workers_.emplace_back([this, i] {
      set_thread_name(name_ + "-" + std::to_string(i));
      work();
    });
  }
}

ThreadPool::~ThreadPool() { shutdown(); }

void ThreadPool::post(Task task) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(task));
      cv_.notify_one();
      return;
    }
  }
  // Dropped: `task` is destroyed here, outside the lock, since its captures'
  // destructors may post again.
}

void ThreadPool::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  std::call_once(joined_, [this] {
    for (auto& w : workers_) {
      assert(w.get_id() != std::this_thread::get_id() && "ThreadPool shut down from its own task");
      w.join();
    }
  });
}

void ThreadPool::work() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    Task task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task();
    task = nullptr;  // destroy captures outside the lock
    lock.lock();
  }
}

// ---------------------------------------------------------------------------

TimerThread::TimerThread(const SteadyClock& clock) : clock_(clock) {
  thread_ = std::thread([this] {
    set_thread_name("kvcore-timer");
    run();
  });
}

TimerThread::~TimerThread() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::vector<Task> dropped;
  {
    std::lock_guard lock(mu_);
    dropped = queue_.clear();
  }
}

TimerId TimerThread::schedule_at(Instant deadline, Task task) {
  std::uint64_t id = 0;
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    // Only a new earliest deadline changes how long the thread must sleep.
    const std::optional<Instant> first = queue_.next_deadline();
    wake = !first || deadline < *first;
    queue_.push(deadline, id, std::move(task));
  }
  if (wake) cv_.notify_one();
  return TimerId{id};
}

TimerId TimerThread::schedule_after(Duration delay, Task task) {
  return schedule_at(clock_.now() + std::max(delay, Duration::zero()), std::move(task));
}

bool TimerThread::cancel(TimerId id) {
  std::optional<Task> removed;
  {
    std::lock_guard lock(mu_);
    removed = queue_.remove(id.value);
  }
  return removed.has_value();
}

void TimerThread::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const std::optional<Instant> first = queue_.next_deadline();
    if (!first) {
      cv_.wait(lock);
      continue;
    }
    if (*first > clock_.now()) {
      // SteadyClock's Instants share steady_clock's epoch.
      cv_.wait_until(lock, std::chrono::steady_clock::time_point(
                               std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   first->time_since_epoch())));
      continue;
    }
    Task task = std::move(queue_.pop_nth(0).payload);
    lock.unlock();
    task();
    task = nullptr;
    lock.lock();
  }
}

// ---------------------------------------------------------------------------

RealRuntime::RealRuntime(std::optional<std::uint64_t> seed)
    : seed_(seed ? *seed : random_device_seed()),
      random_(seed_),
      timers_(std::make_unique<TimerThread>(clock_)) {}

RealRuntime::~RealRuntime() = default;

std::unique_ptr<Executor> RealRuntime::make_executor(std::string name, std::size_t threads) {
  return std::make_unique<ThreadPool>(std::move(name), threads);
}

}  // namespace kvcore::runtime

namespace kvcore {

std::shared_ptr<runtime::Runtime> make_real_runtime() {
  return std::make_shared<runtime::RealRuntime>();
}

}  // namespace kvcore
