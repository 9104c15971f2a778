// The sync forms of the Store API: run the async call and wait for its
// callback.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace kvcore::raftstore {

// Runs `call(callback)` and waits until the callback ran, returning what it
// got. REQUIRES: not on a store thread nor on a simulation's thread (see
// store.hpp). A mutex and a condition variable, not std::promise:
// libstdc++'s set_value makes a futex call every time.
template <class T, class Call>
T wait_for(Call&& call) {
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<T> value;
  };
  auto slot = std::make_shared<Slot>();
  call([slot](T v) {
    std::lock_guard lock(slot->mu);
    slot->value.emplace(std::move(v));
    slot->cv.notify_one();
  });
  std::unique_lock lock(slot->mu);
  slot->cv.wait(lock, [&] { return slot->value.has_value(); });
  return std::move(*slot->value);
}

}  // namespace kvcore::raftstore
