// Split checks: deciding where a region that grew too big, or that holds
// keys of two split_prefix prefixes, should be split.
//
// The leader of a region runs them (decentralized, as TiKV does): every
// StoreOptions::split_check_ticks ticks the store picks the leader peers
// whose region took writes since its last check, and for each one a task on
// the store's split-check executor asks the engine for approximate figures
// and, when they are over the limits or the prefix rule is broken, scans an
// engine snapshot of the region for split keys (find_split_keys). The keys
// come back to the raft thread, which proposes one batch split when the
// region's epoch has not moved meanwhile.
//
// The functions here are pure over an engine or a snapshot: no raft, no
// threads, so they are tested on their own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/engine/engine.hpp"
#include "kvcore/store.hpp"
#include "raftstore/types.hpp"
#include "util/metrics.hpp"

namespace kvcore::raftstore {

// At most this many split keys come out of one check; a region needing more
// is split further by the next checks (the last part is a new region, which
// is always checked).
inline constexpr std::size_t kMaxSplitKeysPerCheck = 32;

struct SplitCheckConfig {
  std::uint64_t max_bytes = 0;  // 0: no size check
  std::uint64_t split_bytes = 0;
  std::uint64_t max_keys = 0;  // 0: no key-count check
  std::uint64_t split_keys = 0;
  std::function<std::string(std::string_view)> prefix;  // empty: no prefix rule
  std::size_t max_split_keys = kMaxSplitKeysPerCheck;

  [[nodiscard]] static SplitCheckConfig from(const StoreOptions& o);
  // Whether any check is on.
  [[nodiscard]] bool enabled() const { return max_bytes != 0 || max_keys != 0 || prefix; }
};

// InvalidArgument when the split-check options of `o` are inconsistent.
[[nodiscard]] Status check_split_options(const StoreOptions& o);

// A region's approximate figures from the engine: bytes of CF default, lock
// and write; keys, the larger of CF default's and CF write's counts.
struct RegionFigures {
  std::uint64_t bytes = 0;
  std::uint64_t keys = 0;
};
[[nodiscard]] Result<RegionFigures> approximate_figures(const Engine& engine,
                                                        const RegionMeta& region);

// Whether figures this big call for splitting by size or key count.
[[nodiscard]] bool over_limits(const SplitCheckConfig& cfg, const RegionFigures& f);

// Whether the region's first and last keys (over CF default, lock and write)
// have different prefixes under cfg.prefix. False without a prefix rule.
[[nodiscard]] Result<bool> spans_prefixes(const Reader& reader, const RegionMeta& region,
                                          const SplitCheckConfig& cfg);

// Scans the region's keys in `reader` (CF default, lock and write merged in
// key order; a key present in several CFs counts once, its bytes summed) and
// returns ascending split keys strictly inside the region, at most
// cfg.max_split_keys:
//  - with `by_size`: a key starts a new part whenever the current part would
//    pass split_bytes (key + value bytes) or split_keys (keys); a last part
//    small enough to stay with the one before it (together within max_bytes
//    and max_keys) does;
//  - with a prefix rule: each key whose prefix differs from the previous
//    key's starts a new part. The split key is the prefix itself when it is a
//    prefix of the key and above the previous key (so later keys of that
//    prefix land in the same region); otherwise the key.
[[nodiscard]] Result<std::vector<std::string>> find_split_keys(const Reader& reader,
                                                               const RegionMeta& region,
                                                               const SplitCheckConfig& cfg,
                                                               bool by_size);

// The split checker's counters.
struct SplitCheckMetrics {
  explicit SplitCheckMetrics(metrics::Registry& r);
  metrics::Counter& checks;           // checks run (one per region checked)
  metrics::Counter& scans;            // checks that scanned the region
  metrics::Counter& splits_proposed;  // batch splits the checker proposed
};

}  // namespace kvcore::raftstore
