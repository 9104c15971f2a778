// Time as the rest of kvcore sees it: an Instant on the runtime's monotonic
// clock, a Duration in nanoseconds, and the Clock interface that reads them.
//
// RuntimeClock deliberately has no static now(): time can only be read through
// a Clock object handed down by a Runtime, so a simulation controls every read.
// Instants of different Clock objects are comparable only when those clocks
// say so (a RealRuntime's clocks share one epoch; a simulated per-node clock
// view is offset from the simulator's on purpose).
#pragma once

#include <chrono>
#include <cstdint>
#include <ratio>

namespace kvcore::runtime {

struct RuntimeClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<RuntimeClock, duration>;
  static constexpr bool is_steady = true;
};

using Duration = RuntimeClock::duration;
using Instant = RuntimeClock::time_point;

// A source of time. now() never goes backwards on one Clock object;
// wall_time_ms() may (it follows the system's wall clock).
//
// Thread-safety: the Clocks of RealRuntime are safe to read from any thread;
// the Clocks of SimRuntime are read only on the simulation's thread.
class Clock {
 public:
  virtual ~Clock() = default;

  // Monotonic time, for deadlines, leases, timeouts and measuring durations.
  [[nodiscard]] virtual Instant now() const = 0;

  // Milliseconds since the Unix epoch, for timestamps that leave the process
  // or are persisted (TSO physical part, log lines). Never use it to measure
  // a duration.
  [[nodiscard]] virtual std::int64_t wall_time_ms() const = 0;
};

}  // namespace kvcore::runtime
