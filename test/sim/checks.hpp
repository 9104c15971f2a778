// Checkers the cluster simulator runs over what it recorded, besides
// linearizability (test/support/linearizability.hpp): that no acknowledged
// write was lost by the end of a run, and that the regions the stores report
// tile the key space the way PD would accept.
//
// Both are pure functions of their arguments, deterministic, and safe to call
// from any thread. Neither stops at the first problem: the explanation lists
// every one found (up to a cap), one per line, each naming the operations or
// reports involved so a failure can be read without a debugger.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "linearizability.hpp"

namespace kvcore::sim {

struct CheckResult {
  bool ok = false;
  // Empty when ok; otherwise what is wrong, one problem per line.
  std::string explanation;
};
using Survival = CheckResult;

// Whether every acknowledged write survived to `final_values`.
//
// `history` is the run's history as check_linearizable takes it: writes
// (value nullopt = delete), successful compare-and-sets (kCas), reads, with
// ret = test::kUnknownReturn for writes and compare-and-sets of unknown
// outcome. Reads are ignored. `final_values` holds the value of each key read
// after the run settled (nullopt = absent).
//
// For every key, the final value must have been set by some write or
// compare-and-set w of that key, known or unknown, or be the initial absent
// value, such that no acknowledged (known-return) write or compare-and-set w'
// of the key was called after w returned (w'.call > w.ret; an unknown w
// never returned, the initial value returned before everything). Otherwise w'
// had to take effect after w and nothing concurrent with w' can explain the
// final value: w' was lost. Equal times count as concurrent, as in
// check_linearizable.
//
// This is weaker than linearizability (it looks at the last state only) and
// far cheaper: one pass per key.
//
// REQUIRES: final_values has an entry for every key that a write or
// compare-and-set of `history` touches; a missing one is reported as a
// failure, never taken as absent. Extra keys in final_values are checked too
// (present: some write must have set it).
[[nodiscard]] Survival check_acknowledged_writes(
    const std::vector<test::Operation>& history,
    const std::map<std::string, std::optional<std::string>>& final_values);

// One region as one store reports it (its local peer's view).
struct RegionReport {
  std::uint64_t store = 0;
  std::uint64_t region_id = 0;
  std::string start;  // inclusive; "" = the start of the key space
  std::string end;    // exclusive; "" = the end of the key space (+inf)
  std::uint64_t version = 0;
  std::uint64_t conf_ver = 0;  // for the explanation only: it never changes a range
};

// Whether `reports` (from any number of stores, in any order) are consistent
// with one tiling of the key space, by PD's rule that among overlapping
// ranges the higher epoch version wins:
//  - A region's range is a function of its version (every split and merge
//    bumps the version of the regions it changes), so two reports of
//    overlapping ranges at the same version must be the same region with the
//    same range; anything else (different ids, or one id with two ranges at
//    one version) is a violation. Reports of one region at one version with
//    one range from several stores count once.
//  - A report is stale, and dropped, when a report of an overlapping range or
//    of the same region has a higher version.
//  - With `require_cover`, the reports left must cover ["", +inf) exactly:
//    no gap (and, after the first rule, no overlap).
// Mid-run, with some stores down or behind, the regions of a range may be
// unreported: pass require_cover = false to check only the first rule. At
// the end of a run, with every store up and caught up, pass true.
//
// A report with an empty or inverted range (start >= end, end not "") is a
// violation too.
//
// REQUIRES: reports of initialized peers only (as Store::regions() gives
// them): an uninitialized peer has no range yet, and its placeholder would
// read as the whole key space at version 0.
[[nodiscard]] CheckResult check_tiling(const std::vector<RegionReport>& reports,
                                       bool require_cover);

}  // namespace kvcore::sim
