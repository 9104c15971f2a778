#include "raftstore/sabotage.hpp"

#include <atomic>

namespace kvcore::raftstore::testing {

namespace {
std::atomic<Sabotage> g_sabotage{Sabotage::kNone};
}  // namespace

void set_sabotage(Sabotage s) { g_sabotage.store(s, std::memory_order_relaxed); }

bool sabotaged(Sabotage s) { return g_sabotage.load(std::memory_order_relaxed) == s; }

}  // namespace kvcore::raftstore::testing
