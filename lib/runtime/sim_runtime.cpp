#include "runtime/sim_runtime.hpp"

#include "runtime/sim_disk.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <deque>
#include <utility>

namespace kvcore::runtime {
namespace {

__extension__ typedef __int128 I128;  // NOLINT(modernize-use-using)

constexpr std::int64_t kMillion = 1'000'000;

I128 floor_div(I128 a, I128 b) {
  I128 q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// View-elapsed nanoseconds after `e` simulator-elapsed nanoseconds.
I128 skewed(I128 e, std::int64_t drift_ppm) { return e + floor_div(e * drift_ppm, kMillion); }

}  // namespace

// --- SimClock --------------------------------------------------------------

Instant SimClock::from_sim(Instant sim_time) const {
  const std::int64_t e = (sim_time - sim_->start_).count();
  return sim_->start_ + skew_.offset +
         Duration(static_cast<std::int64_t>(skewed(e, skew_.drift_ppm)));
}

Instant SimClock::to_sim(Instant view_time) const {
  const std::int64_t target = (view_time - sim_->start_ - skew_.offset).count();
  const std::int64_t rate = kMillion + skew_.drift_ppm;
  assert(rate > 0 && "drift_ppm must be above -1'000'000");
  // A first guess from the exact inverse, then fixed up against the rounding
  // of skewed(), which is monotonic for rate > 0.
  I128 e = -floor_div(-static_cast<I128>(target) * kMillion, rate);
  while (skewed(e, skew_.drift_ppm) < target) ++e;
  while (skewed(e - 1, skew_.drift_ppm) >= target) --e;
  return sim_->start_ + Duration(static_cast<std::int64_t>(e));
}

Instant SimClock::now() const { return from_sim(sim_->now()); }

std::int64_t SimClock::wall_time_ms() const {
  return sim_->wall_start_ms_ +
         std::chrono::floor<std::chrono::milliseconds>(now() - sim_->start_).count();
}

void SimClock::jump(Duration delta) {
  sim_->check_thread();
  assert(delta >= Duration::zero() && "a monotonic clock cannot jump backwards");
  skew_.offset += std::max(delta, Duration::zero());
  sim_->on_view_jump(*this);
}

// --- SimTimers / SimExecutor -----------------------------------------------

class SimRuntime::SimTimers final : public Timers {
 public:
  // `view_id` names the SimView these timers belong to (0: none).
  SimTimers(SimRuntime& sim, const SimClock& view, std::uint64_t view_id)
      : sim_(sim), view_(view), view_id_(view_id) {}

  TimerId schedule_at(Instant deadline, Task task) override {
    return sim_.schedule(view_, view_id_, deadline, std::move(task));
  }
  TimerId schedule_after(Duration delay, Task task) override {
    return sim_.schedule(view_, view_id_, view_.now() + std::max(delay, Duration::zero()),
                         std::move(task));
  }
  bool cancel(TimerId id) override { return sim_.cancel(id); }

 private:
  SimRuntime& sim_;
  const SimClock& view_;
  const std::uint64_t view_id_;
};

class SimRuntime::SimExecutor final : public Executor {
 public:
  // `view_id` names the SimView whose pauses hold this executor (0: none).
  SimExecutor(SimRuntime& sim, std::string name, std::size_t threads, std::uint64_t view_id)
      : sim_(sim),
        name_(std::move(name)),
        threads_(std::max<std::size_t>(threads, 1)),
        view_id_(view_id) {
    sim_.attach(this);
  }
  ~SimExecutor() override {
    shutdown();
    sim_.detach(this);
  }

  SimExecutor(const SimExecutor&) = delete;
  SimExecutor& operator=(const SimExecutor&) = delete;

  void post(Task task) override {
    sim_.check_thread();
    if (!stopped_) queue_.push_back(std::move(task));
  }

  void shutdown() override {
    sim_.check_thread();
    if (stopped_) return;
    stopped_ = true;
    while (!queue_.empty()) run_one(0);
  }

  [[nodiscard]] std::string_view name() const override { return name_; }
  [[nodiscard]] std::size_t threads() const override { return threads_; }
  [[nodiscard]] std::uint64_t view_id() const noexcept { return view_id_; }

  // How many of the queued tasks may run next: as many as the declared workers.
  [[nodiscard]] std::size_t offered() const { return std::min(threads_, queue_.size()); }
  [[nodiscard]] std::size_t queued() const { return queue_.size(); }

  // Runs the i-th queued task. REQUIRES: i < offered().
  void run_one(std::size_t i) {
    auto it = queue_.begin() + static_cast<std::ptrdiff_t>(i);
    Task task = std::move(*it);
    queue_.erase(it);
    ++sim_.tasks_run_;
    task();
  }

 private:
  SimRuntime& sim_;
  const std::string name_;
  const std::size_t threads_;
  const std::uint64_t view_id_;
  std::deque<Task> queue_;
  bool stopped_ = false;
};

// --- SimRuntime ------------------------------------------------------------

SimRuntime::SimRuntime(const Options& options)
    : seed_(options.seed),
      wall_start_ms_(options.wall_start_ms),
      owner_(std::this_thread::get_id()),
      // An hour in, so that no simulated Instant is the default Instant{}.
      start_(Instant(std::chrono::hours(1))),
      now_(start_),
      random_(options.seed),
      scheduler_(random_.fork()),
      base_clock_(*this, ClockSkew{}),
      base_timers_(std::make_unique<SimTimers>(*this, base_clock_, 0)) {}

SimRuntime::~SimRuntime() {
  assert(executors_.empty() && "SimRuntime destroyed before its executors");
  auto dropped = timers_.clear();
}

Timers& SimRuntime::timers() { return *base_timers_; }

std::unique_ptr<Executor> SimRuntime::make_executor(std::string name, std::size_t threads) {
  return new_executor(std::move(name), threads, 0);
}

std::unique_ptr<SimRuntime::SimExecutor> SimRuntime::new_executor(std::string name,
                                                                  std::size_t threads,
                                                                  std::uint64_t view_id) {
  check_thread();
  return std::make_unique<SimExecutor>(*this, std::move(name), threads, view_id);
}

std::unique_ptr<SimClock> SimRuntime::clock_for(ClockSkew skew) {
  check_thread();
  assert(skew.drift_ppm > -kMillion && "drift_ppm must be above -1'000'000");
  return std::unique_ptr<SimClock>(new SimClock(*this, skew));
}

std::unique_ptr<SimView> SimRuntime::make_view(ClockSkew skew, SimDisk* disk) {
  std::unique_ptr<SimClock> clock = clock_for(skew);
  const std::uint64_t id = next_view_id_++;
  auto timers = std::make_unique<SimTimers>(*this, *clock, id);
  return std::unique_ptr<SimView>(
      new SimView(*this, std::move(clock), std::move(timers), random_.fork(), id, disk));
}

void SimRuntime::check_thread() const {
  assert(std::this_thread::get_id() == owner_ &&
         "SimRuntime used from a thread other than the one that built it");
}

TimerId SimRuntime::schedule(const SimClock& view, std::uint64_t view_id, Instant view_deadline,
                             Task task) {
  check_thread();
  const std::uint64_t id = next_timer_id_++;
  timers_.push(view.to_sim(view_deadline), id,
               TimerEntry{std::move(task), &view, view_deadline, view_id});
  return TimerId{id};
}

bool SimRuntime::cancel(TimerId id) {
  check_thread();
  return timers_.remove(id.value).has_value();
}

void SimRuntime::on_view_jump(const SimClock& view) {
  timers_.reschedule_if([&view](const TimerEntry& e) -> std::optional<Instant> {
    if (e.view != &view) return std::nullopt;
    return view.to_sim(e.view_deadline);
  });
}

void SimRuntime::drop_timers_of(const SimClock& view) {
  check_thread();
  auto dropped = timers_.remove_if([&view](const TimerEntry& e) { return e.view == &view; });
}

void SimRuntime::attach(SimExecutor* e) {
  check_thread();
  executors_.push_back(e);
}

void SimRuntime::detach(SimExecutor* e) {
  check_thread();
  executors_.erase(std::find(executors_.begin(), executors_.end(), e));
}

void SimRuntime::pause_view(std::uint64_t view_id, Instant until) {
  check_thread();
  if (until <= now_) return;
  Instant& end = paused_until_.try_emplace(view_id, until).first->second;
  end = std::max(end, until);
}

void SimRuntime::expire_pauses() {
  std::erase_if(paused_until_, [this](const auto& p) { return p.second <= now_; });
}

void SimRuntime::forget_view(std::uint64_t view_id) {
  check_thread();
  paused_until_.erase(view_id);
}

Instant SimRuntime::resume_at(std::uint64_t view_id) const {
  if (view_id == 0 || paused_until_.empty()) return Instant::min();
  auto it = paused_until_.find(view_id);
  return it == paused_until_.end() ? Instant::min() : it->second;
}

std::vector<std::uint64_t> SimRuntime::due_timers_of_running_views() const {
  std::vector<std::uint64_t> ids;
  std::optional<Instant> at;
  timers_.visit([&](Instant deadline, std::uint64_t id, const TimerEntry& e) {
    if (deadline > now_ || (at && deadline != *at)) return false;
    if (paused(e.view_id)) return true;
    at = deadline;
    ids.push_back(id);
    return true;
  });
  return ids;
}

std::optional<Instant> SimRuntime::next_event() const {
  if (paused_until_.empty()) return timers_.next_deadline();
  std::optional<Instant> best;
  auto consider = [&best](Instant t) {
    if (!best || t < *best) best = t;
  };
  for (const SimExecutor* e : executors_) {
    if (e->queued() > 0) consider(std::max(now_, resume_at(e->view_id())));
  }
  // A timer is ready at its deadline or when its view's pause ends, whichever
  // is later; past the best found so far no later deadline can beat it.
  timers_.visit([&](Instant deadline, std::uint64_t /*id*/, const TimerEntry& e) {
    if (best && deadline >= *best) return false;
    consider(std::max(deadline, resume_at(e.view_id)));
    return true;
  });
  return best;
}

bool SimRuntime::step() {
  check_thread();
  expire_pauses();
  // With no view paused, the timers offered are the first `timer_ties` in
  // queue order; otherwise exactly those listed in `due`.
  std::size_t timer_ties = 0;
  std::vector<std::uint64_t> due;
  if (paused_until_.empty()) {
    if (std::optional<Instant> first = timers_.next_deadline(); first && *first <= now_) {
      timer_ties = timers_.earliest_ties();
    }
  } else {
    due = due_timers_of_running_views();
    timer_ties = due.size();
  }
  auto offered = [this](const SimExecutor* e) -> std::size_t {
    return paused(e->view_id()) ? 0 : e->offered();
  };
  std::size_t total = timer_ties;
  for (const SimExecutor* e : executors_) total += offered(e);
  if (total == 0) return false;

  std::size_t pick = total == 1 ? 0 : static_cast<std::size_t>(scheduler_.uniform(total));
  if (pick < timer_ties) {
    Task task = due.empty() ? std::move(timers_.pop_nth(pick).payload.task)
                            : std::move(timers_.remove(due[pick])->task);
    ++tasks_run_;
    task();
    return true;
  }
  pick -= timer_ties;
  for (SimExecutor* e : executors_) {
    const std::size_t n = offered(e);
    if (pick < n) {
      e->run_one(pick);
      return true;
    }
    pick -= n;
  }
  assert(false && "step() picked past the ready tasks");
  return false;
}

std::size_t SimRuntime::run_until_idle() {
  std::size_t n = 0;
  while (step()) ++n;
  return n;
}

bool SimRuntime::advance_towards(Instant end) {
  expire_pauses();
  const std::optional<Instant> next = next_event();
  if (!next || *next > end) return false;
  now_ = std::max(now_, *next);
  return true;
}

void SimRuntime::run_for(Duration duration) {
  check_thread();
  assert(duration >= Duration::zero());
  const Instant end = now_ + std::max(duration, Duration::zero());
  do {
    run_until_idle();
  } while (advance_towards(end));
  now_ = std::max(now_, end);
}

bool SimRuntime::run_until(const std::function<bool()>& done, Duration max_duration) {
  check_thread();
  const Instant end = now_ + std::max(max_duration, Duration::zero());
  if (done()) return true;
  for (;;) {
    while (step()) {
      if (done()) return true;
    }
    if (!advance_towards(end)) break;
    if (done()) return true;
  }
  now_ = std::max(now_, end);
  return done();
}

void SimRuntime::jump(Duration delta) {
  check_thread();
  assert(delta >= Duration::zero() && "a monotonic clock cannot jump backwards");
  now_ += std::max(delta, Duration::zero());
}

Instant SimRuntime::now() const {
  check_thread();
  return now_;
}

std::size_t SimRuntime::ready_count() const {
  check_thread();
  std::size_t n = 0;
  if (paused_until_.empty()) {
    n = timers_.count_until(now_);
  } else {
    timers_.visit([&](Instant deadline, std::uint64_t /*id*/, const TimerEntry& e) {
      if (deadline > now_) return false;
      if (!paused(e.view_id)) ++n;
      return true;
    });
  }
  for (const SimExecutor* e : executors_) {
    if (!paused(e->view_id())) n += e->queued();
  }
  return n;
}

std::size_t SimRuntime::pending_timers() const {
  check_thread();
  return timers_.size();
}

std::optional<Instant> SimRuntime::next_deadline() const {
  check_thread();
  return timers_.next_deadline();
}

// --- SimView ---------------------------------------------------------------

SimView::SimView(SimRuntime& sim, std::unique_ptr<SimClock> clock, std::unique_ptr<Timers> timers,
                 Random random, std::uint64_t id, SimDisk* disk)
    : sim_(sim),
      clock_(std::move(clock)),
      timers_(std::move(timers)),
      random_(random),
      id_(id),
      disk_(disk) {
  if (disk_ != nullptr) disk_->bind(this);
}

SimView::~SimView() {
  if (disk_ != nullptr) disk_->unbind(this);
  sim_.forget_view(id_);
  sim_.drop_timers_of(*clock_);
}

Disk& SimView::disk() {
  if (disk_ != nullptr) return *disk_;
  return real_disk();
}

std::unique_ptr<Executor> SimView::make_executor(std::string name, std::size_t threads) {
  return sim_.new_executor(std::move(name), threads, id_);
}

void SimView::pause_for(Duration d) {
  assert(d >= Duration::zero());
  sim_.pause_view(id_, sim_.now() + std::max(d, Duration::zero()));
}

Duration SimView::paused_for() const {
  const Instant now = sim_.now();
  if (!sim_.paused(id_)) return Duration::zero();
  return sim_.resume_at(id_) - now;
}

}  // namespace kvcore::runtime
