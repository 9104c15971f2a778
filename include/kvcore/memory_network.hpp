// kvcore::MemoryNetwork: an in-process Transport for running several Stores
// in one process (tests, the simulator, single-machine demos), with faults a
// test can switch on and off: drops, duplicates, delays (and so reordering),
// partitions, one-way blocks and arbitrary frame filters.
//
// Each store gets its Transport from transport(store_id); attach() names the
// Store that frames for that id are handed to. A frame sent is judged at once
// (filters, drop rate), then delivered by a timer of the Runtime the network
// was built with, after its delay (zero by default: the next step of a
// simulation). Delivery calls Store::deliver() on the runtime's timer thread
// (the simulation's thread in a SimRuntime), ignoring the Status it returns
// (the store counts bad frames itself).
//
// Ordering. Frames of one link (from, to) due at the same instant arrive in
// the order they were sent; frames with different delays arrive in deadline
// order, so a random delay (set_delay with min < max) reorders them.
//
// Determinism. Every random choice (drop, duplicate, delay) comes from a fork
// of the runtime's random() taken in the constructor, so on a SimRuntime the
// same seed and the same sends give the same deliveries at the same times.
//
// Unreachable stores. A frame sent to a store that is not attached is
// dropped, and the sender is told through Store::report_unreachable(to) from
// a timer (never from inside send()), at most one report pending per link.
// Filters, partitions and drops are silent, as on a real network.
//
// Thread-safety: all methods are thread-safe; send() on the transports may be
// called from many threads at once and only takes a short mutex. On a
// SimRuntime everything, send() included, must run on the simulation's
// thread, as the runtime itself requires.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "kvcore/transport.hpp"

namespace kvcore {

namespace runtime {
class Runtime;
}  // namespace runtime

class Store;

class MemoryNetwork {
 public:
  // Returns true to let the frame through. Runs inside send(), under the
  // network's lock, one call at a time: it must be quick and must not call
  // this network or any Store.
  using Filter = std::function<bool(std::uint64_t from, std::uint64_t to, std::string_view frame)>;
  using FilterId = std::uint64_t;

  // Counts of frames. A duplicate is one more frame in flight, so at any time
  // sent + duplicated == delivered + dropped + in_flight.
  struct Counters {
    std::uint64_t sent = 0;        // frames handed to send()
    std::uint64_t duplicated = 0;  // extra copies made by the duplicate rate
    std::uint64_t delivered = 0;   // Store::deliver() calls made
    std::uint64_t dropped = 0;     // frames discarded (any reason, any time)
    std::uint64_t in_flight = 0;   // frames waiting for their delivery time
    friend bool operator==(const Counters&, const Counters&) = default;
  };

  // `rt` is borrowed: REQUIRES it outlives the network. Its timers deliver
  // the frames; its random() is forked here (wire the network in a
  // deterministic order with the rest of a simulation).
  explicit MemoryNetwork(runtime::Runtime& rt);
  // Detaches every store (waiting for deliveries in progress) and discards
  // the frames in flight. REQUIRES: no Store still uses one of its transports.
  ~MemoryNetwork();

  MemoryNetwork(const MemoryNetwork&) = delete;
  MemoryNetwork& operator=(const MemoryNetwork&) = delete;

  // The Transport that store `store_id` sends through (its frames go out as
  // from `store_id`). Created on first use; valid until the network is
  // destroyed.
  [[nodiscard]] Transport& transport(std::uint64_t store_id);

  // Frames for `store_id` are delivered to `store` from now on (replacing any
  // store attached before). `store` is borrowed: REQUIRES it stays alive until
  // detach(store_id) returns.
  void attach(std::uint64_t store_id, Store* store);
  // Frames for `store_id` are dropped from now on, those in flight included.
  // Waits for a delivery to it in progress on another thread: once detach
  // returns, no Store::deliver() or report_unreachable() call on the detached
  // store runs or will run. REQUIRES: not called from inside that store's
  // deliver() (it would wait for itself). No-op when nothing is attached.
  void detach(std::uint64_t store_id);
  [[nodiscard]] bool attached(std::uint64_t store_id) const;

  // With `on`, a frame that has no delay to wait (no delay or duplication
  // configured, nothing queued ahead of it on its link) is handed to the
  // destination's deliver() on the sending thread instead of through a timer:
  // one thread hop less per frame (real runtimes: quickstart, benchmarks).
  // Off by default, so a simulation interleaves deliveries with everything
  // else. Store::deliver only queues, so it never calls back into the sender.
  void set_inline_delivery(bool on);

  // --- faults; all apply to frames sent from now on ---

  // Each frame is dropped with probability `p` (0 disables; 1 drops all).
  void set_drop_rate(double p);
  // Each frame that passes is delivered twice with probability `p`; the copy
  // draws its own delay.
  void set_duplicate_rate(double p);
  // Each frame (and copy) waits a delay drawn uniformly from [min, max]
  // before delivery. REQUIRES: 0 <= min <= max (a negative min is taken as
  // zero, a max below min as min).
  void set_delay(std::chrono::nanoseconds min, std::chrono::nanoseconds max);
  // Splits the stores into groups that cannot reach each other (both ways).
  // A store named in no group can reach no one. Replaces any earlier
  // partition; an empty list removes it.
  void partition(std::vector<std::vector<std::uint64_t>> groups);
  // Cuts `store_id` off from every other store, both ways, until heal().
  void isolate(std::uint64_t store_id);
  // Frames from `from` to `to` are dropped (one way) until unblock or heal.
  void block(std::uint64_t from, std::uint64_t to);
  void unblock(std::uint64_t from, std::uint64_t to);
  // Adds a filter (see Filter); a frame passes only if every filter returns
  // true. Filters run in the order they were added and stop at the first
  // false. Returns an id for remove_filter (ids are never reused).
  FilterId add_filter(Filter filter);
  // False when no filter has that id (already removed, or cleared by heal).
  bool remove_filter(FilterId id);
  // Removes every fault: drop and duplicate rates, delays, partition,
  // isolations, blocks and filters. Frames already in flight keep their
  // delivery time.
  void heal();

  // --- counters ---

  [[nodiscard]] Counters counters() const;
  [[nodiscard]] std::uint64_t sent() const { return counters().sent; }
  [[nodiscard]] std::uint64_t delivered() const { return counters().delivered; }
  [[nodiscard]] std::uint64_t dropped() const { return counters().dropped; }
  [[nodiscard]] std::uint64_t duplicated() const { return counters().duplicated; }
  [[nodiscard]] std::uint64_t in_flight() const { return counters().in_flight; }
  // The counts of the one-way link `from` -> `to` (all zero when unused).
  [[nodiscard]] Counters link(std::uint64_t from, std::uint64_t to) const;

 private:
  class Core;
  // Shared with the delivery timers, which may outlive the network in the
  // runtime's queue (they then find it closed and do nothing).
  std::shared_ptr<Core> core_;
};

}  // namespace kvcore
