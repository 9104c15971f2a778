#include "kvcore/memory_network.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kvcore/store.hpp"
#include "runtime/runtime.hpp"

namespace kvcore {

using runtime::Duration;
using runtime::Instant;

// Everything the network knows, shared with the delivery timers so that a
// timer still queued in the runtime after the network is gone finds it closed
// instead of freed.
//
// Frames wait in their link's `pending` map, ordered by (deadline, send
// sequence); each has one timer, and a timer delivers the link's first frame
// rather than "its own". The first frame is always due when a timer of its
// link fires (earlier deadlines fire first), and among frames due at the same
// instant the oldest goes first whatever order the runtime runs the tied
// timers in: that is what keeps a link FIFO at equal delays.
class MemoryNetwork::Core : public std::enable_shared_from_this<MemoryNetwork::Core> {
 public:
  explicit Core(runtime::Runtime& rt) : rt_(rt), random_(rt.random().fork()) {}

  Transport& transport(std::uint64_t store_id) {
    std::lock_guard lock(mu_);
    return *node(store_id).endpoint;
  }

  void attach(std::uint64_t store_id, Store* store) {
    std::unique_lock lock(mu_);
    Node& n = node(store_id);
    if (n.store != store) wait_idle(lock, n);
    n.store = closed_ ? nullptr : store;
  }

  void detach(std::uint64_t store_id) {
    std::unique_lock lock(mu_);
    auto it = nodes_.find(store_id);
    if (it == nodes_.end()) return;
    it->second.store = nullptr;
    wait_idle(lock, it->second);
  }

  bool attached(std::uint64_t store_id) const {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(store_id);
    return it != nodes_.end() && it->second.store != nullptr;
  }

  void close() {
    std::unique_lock lock(mu_);
    closed_ = true;
    for (auto& [id, n] : nodes_) n.store = nullptr;
    for (auto& [key, link] : links_) {
      const auto n = static_cast<std::uint64_t>(link.pending.size());
      link.counts.dropped += n;
      link.counts.in_flight = 0;
      total_.dropped += n;
      total_.in_flight -= n;
      link.pending.clear();
    }
    for (auto& [id, n] : nodes_) wait_idle(lock, n);
  }

  void send(std::uint64_t from, std::uint64_t to, std::string frame);

  // --- faults ---

  void set_drop_rate(double p) {
    std::lock_guard lock(mu_);
    drop_rate_ = p;
  }
  void set_inline_delivery(bool on) {
    std::lock_guard lock(mu_);
    inline_ = on;
  }
  void set_duplicate_rate(double p) {
    std::lock_guard lock(mu_);
    duplicate_rate_ = p;
  }
  void set_delay(Duration min, Duration max) {
    std::lock_guard lock(mu_);
    min_delay_ = std::max(min, Duration::zero());
    max_delay_ = std::max(max, min_delay_);
  }
  void partition(const std::vector<std::vector<std::uint64_t>>& groups) {
    std::lock_guard lock(mu_);
    group_of_.clear();
    for (std::size_t g = 0; g < groups.size(); ++g) {
      for (std::uint64_t id : groups[g]) group_of_[id] = g;
    }
  }
  void isolate(std::uint64_t store_id) {
    std::lock_guard lock(mu_);
    isolated_.insert(store_id);
  }
  void block(std::uint64_t from, std::uint64_t to) {
    std::lock_guard lock(mu_);
    blocked_.insert({from, to});
  }
  void unblock(std::uint64_t from, std::uint64_t to) {
    std::lock_guard lock(mu_);
    blocked_.erase({from, to});
  }
  FilterId add_filter(Filter filter) {
    std::lock_guard lock(mu_);
    const FilterId id = next_filter_id_++;
    filters_.emplace_back(id, std::move(filter));
    return id;
  }
  bool remove_filter(FilterId id) {
    std::lock_guard lock(mu_);
    auto it = std::find_if(filters_.begin(), filters_.end(),
                           [id](const auto& f) { return f.first == id; });
    if (it == filters_.end()) return false;
    filters_.erase(it);
    return true;
  }
  void heal() {
    std::lock_guard lock(mu_);
    drop_rate_ = 0;
    duplicate_rate_ = 0;
    min_delay_ = max_delay_ = Duration::zero();
    group_of_.clear();
    isolated_.clear();
    blocked_.clear();
    filters_.clear();
  }

  Counters counters() const {
    std::lock_guard lock(mu_);
    return total_;
  }
  Counters link_counters(std::uint64_t from, std::uint64_t to) const {
    std::lock_guard lock(mu_);
    auto it = links_.find({from, to});
    return it == links_.end() ? Counters{} : it->second.counts;
  }

 private:
  class Endpoint final : public Transport {
   public:
    Endpoint(Core& core, std::uint64_t id) : core_(core), id_(id) {}
    void send(std::uint64_t to_store, std::string frame) override {
      core_.send(id_, to_store, std::move(frame));
    }

   private:
    Core& core_;  // owns this endpoint
    const std::uint64_t id_;
  };

  struct Node {
    std::unique_ptr<Endpoint> endpoint;
    Store* store = nullptr;
    // Calls into `store` in progress (outside the lock); detach waits for 0.
    int busy = 0;
  };

  using LinkKey = std::pair<std::uint64_t, std::uint64_t>;  // (from, to)
  struct Link {
    Counters counts;
    std::map<std::pair<Instant, std::uint64_t>, std::string> pending;  // by (deadline, seq)
    bool report_pending = false;  // a report_unreachable timer is queued
  };

  // REQUIRES: mu_ held.
  Node& node(std::uint64_t id) {
    Node& n = nodes_[id];
    if (!n.endpoint) n.endpoint = std::make_unique<Endpoint>(*this, id);
    return n;
  }

  void wait_idle(std::unique_lock<std::mutex>& lock, const Node& n) {
    // Nodes are never erased, so `n` stays valid across the wait.
    idle_.wait(lock, [&n] { return n.busy == 0; });
  }

  // REQUIRES: mu_ held.
  bool cut(std::uint64_t from, std::uint64_t to) const {
    if (from == to) return false;
    if (isolated_.contains(from) || isolated_.contains(to)) return true;
    if (blocked_.contains({from, to})) return true;
    if (group_of_.empty()) return false;
    auto f = group_of_.find(from);
    auto t = group_of_.find(to);
    return f == group_of_.end() || t == group_of_.end() || f->second != t->second;
  }

  // REQUIRES: mu_ held.
  Duration draw_delay() {
    if (max_delay_ <= min_delay_) return min_delay_;
    const auto span = static_cast<std::uint64_t>((max_delay_ - min_delay_).count());
    return min_delay_ + Duration(static_cast<Duration::rep>(random_.uniform_between(0, span)));
  }

  // REQUIRES: mu_ held.
  void count_drop(Link& link, std::uint64_t n = 1) {
    link.counts.dropped += n;
    total_.dropped += n;
  }

  void deliver_first(std::uint64_t from, std::uint64_t to);
  void report_unreachable(std::uint64_t from, std::uint64_t to);

  runtime::Runtime& rt_;

  mutable std::mutex mu_;
  std::condition_variable idle_;                      // a Node's busy dropped to 0
  runtime::Random random_;                            // guarded by mu_
  std::map<std::uint64_t, Node> nodes_;               // guarded by mu_; never erased
  std::map<LinkKey, Link> links_;                     // guarded by mu_
  Counters total_;                                    // guarded by mu_
  std::uint64_t next_seq_ = 0;                        // guarded by mu_
  bool closed_ = false;                               // guarded by mu_
  double drop_rate_ = 0;                              // guarded by mu_
  double duplicate_rate_ = 0;                         // guarded by mu_
  Duration min_delay_{0};                             // guarded by mu_
  Duration max_delay_{0};                             // guarded by mu_
  std::map<std::uint64_t, std::size_t> group_of_;     // guarded by mu_; empty: no partition
  std::set<std::uint64_t> isolated_;                  // guarded by mu_
  std::set<LinkKey> blocked_;                         // guarded by mu_
  std::vector<std::pair<FilterId, Filter>> filters_;  // guarded by mu_
  FilterId next_filter_id_ = 1;                       // guarded by mu_
  bool inline_ = false;                               // guarded by mu_
};

void MemoryNetwork::Core::send(std::uint64_t from, std::uint64_t to, std::string frame) {
  std::array<Instant, 2> deadlines{};
  std::size_t copies = 0;
  bool report = false;
  Store* inline_to = nullptr;
  {
    std::lock_guard lock(mu_);
    Link& link = links_[{from, to}];
    ++link.counts.sent;
    ++total_.sent;

    auto dest = nodes_.find(to);
    if (closed_) {
      count_drop(link);
      return;
    }
    if (dest == nodes_.end() || dest->second.store == nullptr) {
      count_drop(link);
      auto src = nodes_.find(from);
      if (src != nodes_.end() && src->second.store != nullptr && !link.report_pending) {
        link.report_pending = true;
        report = true;
      }
    } else if (cut(from, to) ||
               !std::all_of(filters_.begin(), filters_.end(),
                            [&](const auto& f) { return f.second(from, to, frame); }) ||
               (drop_rate_ > 0 && random_.chance(drop_rate_))) {
      count_drop(link);
    } else if (inline_ && max_delay_ == Duration::zero() && duplicate_rate_ == 0 &&
               link.pending.empty()) {
      // Inline delivery: straight into the destination on this thread.
      ++link.counts.delivered;
      ++total_.delivered;
      inline_to = dest->second.store;
      ++dest->second.busy;
    } else {
      copies = (duplicate_rate_ > 0 && random_.chance(duplicate_rate_)) ? 2 : 1;
      const Instant now = rt_.clock().now();
      for (std::size_t i = 0; i < copies; ++i) {
        deadlines[i] = now + draw_delay();
        if (i + 1 < copies) {
          link.pending.emplace(std::pair{deadlines[i], next_seq_++}, frame);
        } else {
          link.pending.emplace(std::pair{deadlines[i], next_seq_++}, std::move(frame));
        }
      }
      if (copies == 2) {
        ++link.counts.duplicated;
        ++total_.duplicated;
      }
      link.counts.in_flight += copies;
      total_.in_flight += copies;
    }
  }
  if (inline_to != nullptr) {
    static_cast<void>(inline_to->deliver(frame));
    std::lock_guard lock(mu_);
    if (--node(to).busy == 0) idle_.notify_all();
    return;
  }
  // Scheduled outside the lock: a real timer thread takes its own mutex, and
  // its tasks take ours.
  auto self = shared_from_this();
  for (std::size_t i = 0; i < copies; ++i) {
    rt_.timers().schedule_at(deadlines[i], [self, from, to] { self->deliver_first(from, to); });
  }
  if (report) {
    rt_.timers().schedule_after(Duration::zero(),
                                [self, from, to] { self->report_unreachable(from, to); });
  }
}

void MemoryNetwork::Core::deliver_first(std::uint64_t from, std::uint64_t to) {
  std::unique_lock lock(mu_);
  auto lit = links_.find({from, to});
  if (lit == links_.end() || lit->second.pending.empty()) return;  // discarded by close()
  Link& link = lit->second;
  std::string frame = std::move(link.pending.extract(link.pending.begin()).mapped());
  --link.counts.in_flight;
  --total_.in_flight;
  Node& dest = node(to);
  if (dest.store == nullptr) {
    count_drop(link);
    return;
  }
  ++link.counts.delivered;
  ++total_.delivered;
  Store* store = dest.store;
  ++dest.busy;
  lock.unlock();
  static_cast<void>(store->deliver(frame));
  lock.lock();
  if (--dest.busy == 0) idle_.notify_all();
}

void MemoryNetwork::Core::report_unreachable(std::uint64_t from, std::uint64_t to) {
  std::unique_lock lock(mu_);
  links_[{from, to}].report_pending = false;
  Node& src = node(from);
  if (src.store == nullptr) return;
  Store* store = src.store;
  ++src.busy;
  lock.unlock();
  store->report_unreachable(to);
  lock.lock();
  if (--src.busy == 0) idle_.notify_all();
}

// --- MemoryNetwork ----------------------------------------------------------

MemoryNetwork::MemoryNetwork(runtime::Runtime& rt) : core_(std::make_shared<Core>(rt)) {}

MemoryNetwork::~MemoryNetwork() { core_->close(); }

Transport& MemoryNetwork::transport(std::uint64_t store_id) { return core_->transport(store_id); }
void MemoryNetwork::attach(std::uint64_t store_id, Store* store) { core_->attach(store_id, store); }
void MemoryNetwork::detach(std::uint64_t store_id) { core_->detach(store_id); }
bool MemoryNetwork::attached(std::uint64_t store_id) const { return core_->attached(store_id); }

void MemoryNetwork::set_drop_rate(double p) { core_->set_drop_rate(p); }
void MemoryNetwork::set_duplicate_rate(double p) { core_->set_duplicate_rate(p); }
void MemoryNetwork::set_inline_delivery(bool on) { core_->set_inline_delivery(on); }
void MemoryNetwork::set_delay(std::chrono::nanoseconds min, std::chrono::nanoseconds max) {
  core_->set_delay(std::chrono::duration_cast<Duration>(min),
                   std::chrono::duration_cast<Duration>(max));
}
void MemoryNetwork::partition(std::vector<std::vector<std::uint64_t>> groups) {
  core_->partition(groups);
}
void MemoryNetwork::isolate(std::uint64_t store_id) { core_->isolate(store_id); }
void MemoryNetwork::block(std::uint64_t from, std::uint64_t to) { core_->block(from, to); }
void MemoryNetwork::unblock(std::uint64_t from, std::uint64_t to) { core_->unblock(from, to); }
MemoryNetwork::FilterId MemoryNetwork::add_filter(Filter filter) {
  return core_->add_filter(std::move(filter));
}
bool MemoryNetwork::remove_filter(FilterId id) { return core_->remove_filter(id); }
void MemoryNetwork::heal() { core_->heal(); }

MemoryNetwork::Counters MemoryNetwork::counters() const { return core_->counters(); }
MemoryNetwork::Counters MemoryNetwork::link(std::uint64_t from, std::uint64_t to) const {
  return core_->link_counters(from, to);
}

}  // namespace kvcore
