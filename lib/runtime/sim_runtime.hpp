// SimRuntime: the deterministic Runtime. One thread (the one that built it)
// drives everything: a virtual clock that moves only when the simulation
// advances it, executors that are queues (whatever their declared size, no
// real thread exists), and timers that fire when the virtual clock reaches
// them. Whenever several tasks are ready at the same virtual time (the heads
// of executor queues, the earliest due timers), a generator seeded from the
// simulation's seed picks which runs next: different seeds explore different
// interleavings, and one seed replays the same run exactly.
//
// Which tasks are "ready" for the pick:
// - each executor offers its first min(threads, queued) tasks: a one-thread
//   executor stays FIFO, an N-thread one lets any of the N oldest finish first;
// - the timers that share the earliest deadline, once that deadline has come.
//   Timers with an earlier deadline always fire before later ones.
//
// Per-node clocks: clock_for() gives a view of the virtual clock with an
// offset and a drift, and make_view() a whole Runtime around such a view (its
// timers count in the view's time), so each simulated store can run on its
// own skewed clock while all of them share one schedule.
//
// Paused nodes: SimView::pause_for() holds back a view's executors and timers
// (a stalled process, a slow disk). While a view is paused none of its tasks
// is ready, so the pick above only sees the other views' tasks, and a paused
// view's due timer never holds back another view's; when the pause ends its
// waiting tasks join the pick as usual (its overdue timers earliest first).
// The clock advances to a pause's end like to a deadline, so run_for() and
// run_until() run a paused view's work once its pause is over.
//
// Thread-safety: none, by design. Every call on a SimRuntime, its views,
// clocks, timers and executors must come from the thread that constructed it;
// anything else is a bug, asserted in debug builds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unordered_map>

#include "runtime/runtime.hpp"
#include "runtime/timer_queue.hpp"

namespace kvcore::runtime {

class SimDisk;
class SimRuntime;
class SimView;

// How a node's clock differs from the simulator's: it starts `offset` ahead
// (or behind, when negative) and runs `drift_ppm` parts per million fast
// (slow, when negative). REQUIRES: drift_ppm > -1'000'000.
struct ClockSkew {
  Duration offset{0};
  std::int64_t drift_ppm = 0;
};

// A view of the simulator's virtual clock through a ClockSkew. now() is
// monotonic; wall_time_ms() is skewed the same way. Lives no longer than its
// SimRuntime.
class SimClock final : public Clock {
 public:
  [[nodiscard]] Instant now() const override;
  [[nodiscard]] std::int64_t wall_time_ms() const override;

  // Steps this view forward by `delta` (a node's clock jumping: a paused VM,
  // a stalled process). Timers armed through a view Runtime on this clock
  // keep their deadlines in the view's time, so those now passed fire at the
  // next steps. REQUIRES: delta >= 0, since now() is monotonic.
  void jump(Duration delta);

  [[nodiscard]] ClockSkew skew() const noexcept { return skew_; }

  // What this view reads when the simulator's clock reads `sim_time`.
  [[nodiscard]] Instant from_sim(Instant sim_time) const;
  // The earliest simulator instant at which this view reads `view_time` or
  // later.
  [[nodiscard]] Instant to_sim(Instant view_time) const;

 private:
  friend class SimRuntime;
  SimClock(SimRuntime& sim, ClockSkew skew) : sim_(&sim), skew_(skew) {}

  SimRuntime* sim_;
  ClockSkew skew_;
};

class SimRuntime final : public Runtime {
 public:
  // 2020-09-13, a round figure: wall time at the start of every simulation.
  static constexpr std::int64_t kDefaultWallStartMs = 1'600'000'000'000;

  struct Options {
    std::uint64_t seed = 0;
    // wall_time_ms() when the simulation starts.
    std::int64_t wall_start_ms = kDefaultWallStartMs;
  };

  explicit SimRuntime(std::uint64_t seed) : SimRuntime(Options{seed}) {}
  explicit SimRuntime(const Options& options);
  // REQUIRES: every executor, view and clock made by this runtime is already
  // destroyed. Pending timers are destroyed without running.
  ~SimRuntime() override;

  SimRuntime(const SimRuntime&) = delete;
  SimRuntime& operator=(const SimRuntime&) = delete;

  [[nodiscard]] Clock& clock() override { return base_clock_; }
  [[nodiscard]] Timers& timers() override;
  [[nodiscard]] Random& random() override { return random_; }
  // The real disk: the simulator itself keeps no durable files.
  [[nodiscard]] Disk& disk() override { return real_disk(); }
  // A queue on the simulation's thread. Destroying it (or shutdown()) runs
  // its queued tasks right away, in order, as a real pool would drain (a
  // pause of its view does not hold that back).
  [[nodiscard]] std::unique_ptr<Executor> make_executor(std::string name,
                                                        std::size_t threads) override;

  // A clock view with `skew` (see SimClock).
  [[nodiscard]] std::unique_ptr<SimClock> clock_for(ClockSkew skew);
  [[nodiscard]] std::unique_ptr<SimClock> clock_for(Duration offset, std::int64_t drift_ppm) {
    return clock_for(ClockSkew{offset, drift_ppm});
  }

  // A Runtime for one simulated node (see SimView). With `disk`, the view's
  // disk() is that SimDisk, and the disk's sync latency pauses this view.
  // REQUIRES: `disk`, when given, outlives the view.
  [[nodiscard]] std::unique_ptr<SimView> make_view(ClockSkew skew, SimDisk* disk = nullptr);

  // --- driving the simulation (the clock never moves by itself) ---

  // Runs one ready task at the current virtual time, chosen by the seeded
  // generator among all ready ones. False when none is ready.
  bool step();

  // Runs ready tasks (and any they make ready) until none is; the clock does
  // not move. Returns how many ran. A task that always re-posts itself keeps
  // this (and run_for, run_until) from returning: periodic work belongs on a
  // timer, as on a real runtime it would otherwise spin a thread.
  std::size_t run_until_idle();

  // Advances the clock by `duration`, running every task and timer that
  // becomes ready on the way, each at its own deadline; ends with the clock at
  // exactly now() + duration and nothing ready. REQUIRES: duration >= 0.
  void run_for(Duration duration);

  // Like run_for(max_duration), but stops as soon as `done()` holds: it is
  // checked before the first task and after every task. True when it held
  // (the clock stays where it held); false when max_duration passed without
  // it (the clock is then at the start + max_duration).
  bool run_until(const std::function<bool()>& done, Duration max_duration);

  // Moves the clock forward by `delta` at once, running nothing: a pause of
  // the whole system. Timers whose deadline it skips fire, earliest first, at
  // the next steps. REQUIRES: delta >= 0.
  void jump(Duration delta);

  // --- inspection ---

  [[nodiscard]] Instant now() const;
  // now() when the simulation started: clock views are anchored there.
  [[nodiscard]] Instant start() const noexcept { return start_; }
  [[nodiscard]] std::int64_t wall_start_ms() const noexcept { return wall_start_ms_; }
  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
  // Executor tasks queued plus timers due now, leaving out those of views
  // paused now.
  [[nodiscard]] std::size_t ready_count() const;
  // Every pending timer, a paused view's included.
  [[nodiscard]] std::size_t pending_timers() const;
  // The earliest pending timer's deadline, in simulator time, whether or not
  // its view is paused; nullopt when no timer is pending.
  [[nodiscard]] std::optional<Instant> next_deadline() const;
  // Tasks run so far, timers included.
  [[nodiscard]] std::uint64_t tasks_run() const noexcept { return tasks_run_; }

 private:
  class SimExecutor;
  class SimTimers;
  friend class SimClock;
  friend class SimView;

  // A timer as the simulator stores it: its deadline in the view's time is
  // kept so that a jump of that view can re-aim it, and the id of the
  // SimView that armed it (0: none) so that a pause of that view holds it.
  struct TimerEntry {
    Task task;
    const SimClock* view;
    Instant view_deadline;
    std::uint64_t view_id;
  };

  void check_thread() const;
  TimerId schedule(const SimClock& view, std::uint64_t view_id, Instant view_deadline, Task task);
  bool cancel(TimerId id);
  void on_view_jump(const SimClock& view);
  void drop_timers_of(const SimClock& view);
  void attach(SimExecutor* e);
  void detach(SimExecutor* e);
  std::unique_ptr<SimExecutor> new_executor(std::string name, std::size_t threads,
                                            std::uint64_t view_id);

  // --- pauses (see SimView::pause_for) ---
  void pause_view(std::uint64_t view_id, Instant until);
  // Forgets the pauses that are over (and that of a view being destroyed).
  void expire_pauses();
  void forget_view(std::uint64_t view_id);
  // When view `view_id`'s pause ends; Instant::min() when it is not paused.
  [[nodiscard]] Instant resume_at(std::uint64_t view_id) const;
  [[nodiscard]] bool paused(std::uint64_t view_id) const { return resume_at(view_id) > now_; }
  // The ids of the timers a step may fire while some view is paused: those
  // of running views that share the earliest due deadline among them.
  [[nodiscard]] std::vector<std::uint64_t> due_timers_of_running_views() const;
  // The earliest instant at which some task will be ready: a deadline, or
  // the end of a pause holding back work.
  [[nodiscard]] std::optional<Instant> next_event() const;
  // Advances to the next event not after `end`; false when there is none.
  bool advance_towards(Instant end);

  const std::uint64_t seed_;
  const std::int64_t wall_start_ms_;
  const std::thread::id owner_;
  const Instant start_;
  Instant now_;
  Random random_;     // handed out by random()
  Random scheduler_;  // picks among ready tasks; never handed out
  SimClock base_clock_;
  std::unique_ptr<SimTimers> base_timers_;
  TimerQueue<TimerEntry> timers_;
  std::uint64_t next_timer_id_ = 1;
  std::vector<SimExecutor*> executors_;  // in creation order: the pick is deterministic
  std::uint64_t tasks_run_ = 0;
  std::uint64_t next_view_id_ = 1;
  // Views paused now (or until now, before the next expire_pauses()): view
  // id -> the simulator instant the pause ends. Empty in a run that pauses
  // nothing, which then takes exactly the scheduling path it always took.
  std::unordered_map<std::uint64_t, Instant> paused_until_;
};

// The Runtime of one simulated node: its clock is a SimClock view with the
// node's skew, its timers count in that view's time, its random() is a fork
// of the simulator's, its executors join the simulator's one schedule, and
// its disk() is the node's SimDisk when it was made with one. Store code sees
// only the Runtime interface; the simulation keeps the SimView to jump the
// node's clock or pause it. Destroying it destroys the node's pending timers
// (the node is gone) and ends its pause. REQUIRES: destroyed before its
// SimRuntime and its SimDisk.
class SimView final : public Runtime {
 public:
  ~SimView() override;

  SimView(const SimView&) = delete;
  SimView& operator=(const SimView&) = delete;

  [[nodiscard]] Clock& clock() override { return *clock_; }
  [[nodiscard]] Timers& timers() override { return *timers_; }
  [[nodiscard]] Random& random() override { return random_; }
  // The SimDisk given to make_view, else the real disk.
  [[nodiscard]] Disk& disk() override;
  // Executors whose tasks a pause of this view holds back.
  [[nodiscard]] std::unique_ptr<Executor> make_executor(std::string name,
                                                        std::size_t threads) override;

  [[nodiscard]] SimClock& sim_clock() noexcept { return *clock_; }
  // The SimDisk given to make_view; nullptr when none.
  [[nodiscard]] SimDisk* sim_disk() const noexcept { return disk_; }

  // Stalls the node until the simulator's now() + `d` (a pause already
  // running longer is kept): until then its executors and timers run
  // nothing. Tasks posted and timers falling due meanwhile wait, then run
  // in the usual seeded order; other views go on meanwhile, and the clock
  // (the node's included) keeps moving. A task of the view that is running
  // when it pauses itself runs to its end. REQUIRES: d >= 0.
  void pause_for(Duration d);
  // What is left of the current pause; zero when the view is not paused.
  [[nodiscard]] Duration paused_for() const;

 private:
  friend class SimRuntime;
  SimView(SimRuntime& sim, std::unique_ptr<SimClock> clock, std::unique_ptr<Timers> timers,
          Random random, std::uint64_t id, SimDisk* disk);

  SimRuntime& sim_;
  std::unique_ptr<SimClock> clock_;
  std::unique_ptr<Timers> timers_;
  Random random_;
  const std::uint64_t id_;
  SimDisk* const disk_;
};

}  // namespace kvcore::runtime
