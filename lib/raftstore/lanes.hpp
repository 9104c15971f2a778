// Fork-join over a round's regions: the items are cut into contiguous
// shares, one per lane; lane 0 runs on the calling thread and the others on
// a pool's workers, and the call returns when every lane is done. Each lane
// has its own state (a raft log batch, an outbox, a kv write batch), so the
// lanes share nothing but the items they are given.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <span>
#include <vector>

#include "runtime/runtime.hpp"

namespace kvcore::raftstore {

// How many lanes to use for `items` on `pool` (nullptr: one): at most the
// pool's workers plus the caller, and at least `min_per_lane` items each, so
// a small round stays on one thread (a hand-off costs a thread wake-up).
inline std::size_t lanes_for(const runtime::Executor* pool, std::size_t items,
                             std::size_t min_per_lane) {
  if (pool == nullptr || items == 0) return 1;
  const std::size_t by_items = std::max<std::size_t>(1, items / std::max<std::size_t>(1, min_per_lane));
  return std::min(pool->threads() + 1, by_items);
}

// Calls fn(lane_index, share) once per lane, with the lane's contiguous
// share of `items` (a std::span). REQUIRES: lanes >= 1; with lanes > 1,
// pool is not null. fn must not throw.
template <class Item, class Fn>
void run_shares(runtime::Executor* pool, std::size_t lanes, std::vector<Item>& items, Fn& fn) {
  const std::size_t n = items.size();
  lanes = std::max<std::size_t>(1, std::min(lanes, n));
  const auto share = [&](std::size_t lane) {
    const std::size_t b = n * lane / lanes;
    const std::size_t e = n * (lane + 1) / lanes;
    return std::span<Item>(items.data() + b, e - b);
  };
  if (lanes == 1) {
    fn(std::size_t{0}, share(0));
    return;
  }
  struct Join {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left = 0;
  } join;
  join.left = lanes - 1;
  for (std::size_t lane = 1; lane < lanes; ++lane) {
    pool->post([&, lane] {
      fn(lane, share(lane));
      std::lock_guard lock(join.mu);
      if (--join.left == 0) join.cv.notify_one();
    });
  }
  fn(std::size_t{0}, share(0));
  std::unique_lock lock(join.mu);
  join.cv.wait(lock, [&] { return join.left == 0; });
}

// Calls fn(lane_index, item) for every item, the items of a lane in order.
template <class Item, class Fn>
void run_lanes(runtime::Executor* pool, std::size_t lanes, std::vector<Item>& items, Fn& fn) {
  auto per_share = [&](std::size_t lane, std::span<Item> share) {
    for (auto& item : share) fn(lane, item);
  };
  run_shares(pool, lanes, items, per_share);
}

}  // namespace kvcore::raftstore
