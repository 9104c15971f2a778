// TimerQueue<Payload>: pending timers ordered by (deadline, id), with removal
// by id. Shared by the real timer thread and the simulator; it does no locking
// and reads no clock.
//
// Ids grow with scheduling order, so timers with equal deadlines sit in the
// order they were scheduled; the simulator picks among such ties at random.
//
// Thread-safety: none; the owner locks (RealRuntime) or is single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/clock.hpp"

namespace kvcore::runtime {

template <class Payload>
class TimerQueue {
 public:
  struct Entry {
    Instant deadline;
    std::uint64_t id;
    Payload payload;
  };

  // REQUIRES: `id` is not pending.
  void push(Instant deadline, std::uint64_t id, Payload payload) {
    by_deadline_.emplace(Key{deadline, id}, std::move(payload));
    deadline_of_.emplace(id, deadline);
  }

  // The payload of pending timer `id`, removed; nullopt when not pending.
  std::optional<Payload> remove(std::uint64_t id) {
    auto it = deadline_of_.find(id);
    if (it == deadline_of_.end()) return std::nullopt;
    auto node = by_deadline_.extract(Key{it->second, id});
    deadline_of_.erase(it);
    return std::move(node.mapped());
  }

  [[nodiscard]] bool empty() const noexcept { return by_deadline_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return by_deadline_.size(); }

  [[nodiscard]] std::optional<Instant> next_deadline() const {
    if (by_deadline_.empty()) return std::nullopt;
    return by_deadline_.begin()->first.first;
  }

  // How many timers share the earliest deadline. 0 when empty.
  [[nodiscard]] std::size_t earliest_ties() const {
    if (by_deadline_.empty()) return 0;
    const Instant first = by_deadline_.begin()->first.first;
    std::size_t n = 0;
    for (auto it = by_deadline_.begin(); it != by_deadline_.end() && it->first.first == first;
         ++it) {
      ++n;
    }
    return n;
  }

  // How many timers have a deadline at or before `t`.
  [[nodiscard]] std::size_t count_until(Instant t) const {
    std::size_t n = 0;
    for (auto it = by_deadline_.begin(); it != by_deadline_.end() && it->first.first <= t; ++it) {
      ++n;
    }
    return n;
  }

  // Calls visit(deadline, id, payload) on the timers in (deadline, id)
  // order until it returns false. `visit` must not change the queue.
  template <class F>
  void visit(F&& visit) const {
    for (const auto& [key, payload] : by_deadline_) {
      if (!visit(key.first, key.second, payload)) return;
    }
  }

  // Removes and returns the n-th (0-based) timer in (deadline, id) order.
  // REQUIRES: n < size().
  Entry pop_nth(std::size_t n) {
    auto it = std::next(by_deadline_.begin(), static_cast<std::ptrdiff_t>(n));
    auto node = by_deadline_.extract(it);
    deadline_of_.erase(node.key().second);
    return Entry{node.key().first, node.key().second, std::move(node.mapped())};
  }

  // Moves every timer for which `new_deadline(payload)` returns a deadline to
  // that deadline; the others stay.
  template <class F>
  void reschedule_if(F&& new_deadline) {
    std::vector<typename Map::node_type> moved;
    for (auto it = by_deadline_.begin(); it != by_deadline_.end();) {
      auto cur = it++;
      if (std::optional<Instant> d = new_deadline(cur->second); d && *d != cur->first.first) {
        auto node = by_deadline_.extract(cur);
        node.key().first = *d;
        deadline_of_[node.key().second] = *d;
        moved.push_back(std::move(node));
      }
    }
    for (auto& node : moved) by_deadline_.insert(std::move(node));
  }

  // Removes every timer whose payload satisfies `pred`; returns them.
  template <class F>
  std::vector<Payload> remove_if(F&& pred) {
    std::vector<Payload> out;
    for (auto it = by_deadline_.begin(); it != by_deadline_.end();) {
      auto cur = it++;
      if (pred(cur->second)) {
        deadline_of_.erase(cur->first.second);
        out.push_back(std::move(by_deadline_.extract(cur).mapped()));
      }
    }
    return out;
  }

  // Removes everything; returns the payloads so the caller can destroy them
  // outside its lock.
  std::vector<Payload> clear() {
    std::vector<Payload> out;
    out.reserve(by_deadline_.size());
    for (auto& [key, payload] : by_deadline_) out.push_back(std::move(payload));
    by_deadline_.clear();
    deadline_of_.clear();
    return out;
  }

 private:
  using Key = std::pair<Instant, std::uint64_t>;
  using Map = std::map<Key, Payload>;

  Map by_deadline_;
  std::unordered_map<std::uint64_t, Instant> deadline_of_;
};

}  // namespace kvcore::runtime
