#include "faults.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

#include "seed.hpp"

namespace kvcore::sim {

const char* to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::kDrop: return "drop";
    case FaultKind::kDelay: return "delay";
    case FaultKind::kDuplicate: return "duplicate";
    case FaultKind::kPartition: return "partition";
    case FaultKind::kOneWay: return "one-way";
    case FaultKind::kIsolate: return "isolate";
    case FaultKind::kCrash: return "crash";
    case FaultKind::kPause: return "pause";
    case FaultKind::kClockJump: return "clock-jump";
    case FaultKind::kSlowDisk: return "slow-disk";
    case FaultKind::kTransferLeader: return "transfer-leader";
    case FaultKind::kSplit: return "split";
    case FaultKind::kMerge: return "merge";
    case FaultKind::kMembership: return "membership";
  }
  return "?";
}

std::string Fault::describe() const {
  std::string what;
  switch (kind) {
    case FaultKind::kDrop: what = fmt::format("drop {:.0f}% of frames", rate * 100); break;
    case FaultKind::kDelay: what = fmt::format("delay frames up to {}ms", amount.count()); break;
    case FaultKind::kDuplicate:
      what = fmt::format("duplicate {:.0f}% of frames", rate * 100);
      break;
    case FaultKind::kPartition: {
      std::string side;
      for (auto id : group) side += fmt::format("{}{}", side.empty() ? "" : ",", id);
      what = fmt::format("partition {{{}}} from the rest", side);
      break;
    }
    case FaultKind::kOneWay: what = fmt::format("lose frames {} -> {}", store, other); break;
    case FaultKind::kIsolate: what = fmt::format("isolate store {}", store); break;
    case FaultKind::kCrash: what = fmt::format("crash store {}, then restart", store); break;
    case FaultKind::kPause: what = fmt::format("pause store {}", store); break;
    case FaultKind::kClockJump:
      what = fmt::format("clock of store {} jumps {}ms", store, amount.count());
      break;
    case FaultKind::kSlowDisk:
      what = fmt::format("store {}'s syncs take {}ms", store, amount.count());
      break;
    case FaultKind::kTransferLeader:
      what = fmt::format("transfer leader of the region of {:?}", key);
      break;
    case FaultKind::kSplit:
      what = key2.empty() ? fmt::format("split at {:?}", key)
                          : fmt::format("split at {:?} and {:?}", key, key2);
      break;
    case FaultKind::kMerge: what = fmt::format("merge the region of {:?}", key); break;
    case FaultKind::kMembership:
      what = fmt::format("membership step on the region of {:?}", key);
      break;
  }
  const double start = static_cast<double>(at.count()) / 1000;
  if (duration.count() == 0) return fmt::format("#{} at {:.3f}s: {}", index, start, what);
  return fmt::format("#{} at {:.3f}s for {:.3f}s: {}", index, start,
                     static_cast<double>(duration.count()) / 1000, what);
}

namespace {

using std::chrono::milliseconds;

// Relative weights of the kinds, in FaultKind order.
constexpr std::array<int, 14> kWeights = {
    6,  // drop
    5,  // delay
    4,  // duplicate
    6,  // partition
    4,  // one-way
    4,  // isolate
    7,  // crash
    4,  // pause
    3,  // clock jump
    3,  // slow disk
    6,  // transfer leader
    6,  // split
    6,  // merge
    6,  // membership
};

FaultKind draw_kind(test::Rng& rng) {
  int total = 0;
  for (int w : kWeights) total += w;
  int pick = static_cast<int>(rng.next() % static_cast<std::uint64_t>(total));
  for (std::size_t i = 0; i < kWeights.size(); ++i) {
    if (pick < kWeights[i]) return static_cast<FaultKind>(i);
    pick -= kWeights[i];
  }
  return FaultKind::kDrop;
}

milliseconds between(test::Rng& rng, std::int64_t lo_ms, std::int64_t hi_ms) {
  return milliseconds(lo_ms + static_cast<std::int64_t>(
                                  rng.next() % static_cast<std::uint64_t>(hi_ms - lo_ms + 1)));
}

}  // namespace

std::vector<Fault> draw_schedule(std::uint64_t seed, const ScheduleOptions& o) {
  test::Rng rng(seed ^ 0xfa17'5c4e'd01eULL);
  std::vector<Fault> out;
  std::vector<milliseconds> jumps;
  const auto store = [&] { return 1 + rng.next() % o.stores; };
  const auto key = [&](std::size_t from) {
    return o.keys[from + rng.next() % (o.keys.size() - from)];
  };
  while (out.size() < o.faults) {
    Fault f;
    f.kind = draw_kind(rng);
    f.at = between(rng, 0, o.length.count() - 1);
    switch (f.kind) {
      case FaultKind::kDrop:
        f.duration = between(rng, 200, 2000);
        f.rate = 0.05 + static_cast<double>(rng.next() % 30) / 100;
        break;
      case FaultKind::kDelay:
        f.duration = between(rng, 200, 2000);
        f.amount = between(rng, 20, 300);
        break;
      case FaultKind::kDuplicate:
        f.duration = between(rng, 200, 2000);
        f.rate = 0.05 + static_cast<double>(rng.next() % 30) / 100;
        break;
      case FaultKind::kPartition: {
        f.duration = between(rng, 300, 3000);
        // A random non-empty proper subset of the stores.
        while (f.group.empty() || f.group.size() == o.stores) {
          f.group.clear();
          for (std::uint64_t id = 1; id <= o.stores; ++id) {
            if (rng.chance(0.5)) f.group.push_back(id);
          }
        }
        break;
      }
      case FaultKind::kOneWay:
        f.duration = between(rng, 300, 3000);
        f.store = store();
        do {
          f.other = store();
        } while (f.other == f.store);
        break;
      case FaultKind::kIsolate:
        f.duration = between(rng, 300, 3000);
        f.store = store();
        break;
      case FaultKind::kCrash:
        f.duration = between(rng, 100, 3000);
        f.store = store();
        break;
      case FaultKind::kPause:
        f.duration = between(rng, 50, 2000);
        f.store = store();
        break;
      case FaultKind::kClockJump: {
        f.store = store();
        f.amount = between(rng, 50, 2500);
        const bool crowded = std::any_of(jumps.begin(), jumps.end(), [&](milliseconds j) {
          return (j > f.at ? j - f.at : f.at - j) < o.min_jump_gap;
        });
        if (crowded) continue;  // drawn again: two clocks must not jump together
        jumps.push_back(f.at);
        break;
      }
      case FaultKind::kSlowDisk:
        f.duration = between(rng, 200, 3000);
        f.store = store();
        f.amount = between(rng, 1, 40);
        break;
      case FaultKind::kTransferLeader: f.key = key(0); break;
      case FaultKind::kSplit:
        f.key = key(1);
        if (rng.chance(0.3)) {
          f.key2 = key(1);
          if (f.key2 == f.key) f.key2.clear();
          if (!f.key2.empty() && f.key2 < f.key) std::swap(f.key, f.key2);
        }
        break;
      case FaultKind::kMerge: f.key = key(0); break;
      case FaultKind::kMembership: f.key = key(0); break;
    }
    out.push_back(std::move(f));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Fault& a, const Fault& b) { return a.at < b.at; });
  for (std::size_t i = 0; i < out.size(); ++i) out[i].index = i;
  return out;
}

}  // namespace kvcore::sim
