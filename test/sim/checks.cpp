#include "checks.hpp"

#include <algorithm>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

namespace kvcore::sim {
namespace {

using test::kUnknownReturn;
using test::Operation;

// Past this many problems the explanation only counts the rest: the first
// ones are what a reader fixes first, and a broken run can produce thousands.
constexpr std::size_t kMaxProblems = 20;

class Problems {
 public:
  void add(std::string line) {
    if (lines_.size() < kMaxProblems) {
      lines_.push_back(std::move(line));
    } else {
      ++more_;
    }
  }

  [[nodiscard]] CheckResult result(std::string_view headline) const {
    if (lines_.empty()) return {true, {}};
    std::string out(headline);
    out += "\n";
    for (const std::string& line : lines_) out += "  " + line + "\n";
    if (more_ > 0) out += "  (" + std::to_string(more_) + " more problem(s) not shown)\n";
    return {false, std::move(out)};
  }

 private:
  std::vector<std::string> lines_;
  std::size_t more_ = 0;
};

// --- acknowledged writes -------------------------------------------------------

bool sets_value(const Operation& op) {
  return op.kind == Operation::Kind::kWrite || op.kind == Operation::Kind::kCas;
}

// What one key's history says about its final value.
struct KeyWrites {
  // The acknowledged write or compare-and-set called last: every candidate
  // for the final value must not have returned before it was called.
  const Operation* last_acknowledged = nullptr;
  // Per value set, the operation setting it that returned last (an unknown
  // return counts as latest of all): the best candidate for that value.
  std::map<std::optional<std::string>, const Operation*> last_setter;
};

std::string describe_found(const std::optional<std::string>& found) {
  return "found " + test::quote_value(found);
}

}  // namespace

Survival check_acknowledged_writes(
    const std::vector<Operation>& history,
    const std::map<std::string, std::optional<std::string>>& final_values) {
  std::map<std::string_view, KeyWrites> keys;
  for (const Operation& op : history) {
    if (!sets_value(op)) continue;
    KeyWrites& k = keys[op.key];
    if (op.ret != kUnknownReturn &&
        (k.last_acknowledged == nullptr || op.call > k.last_acknowledged->call)) {
      k.last_acknowledged = &op;
    }
    const Operation*& best = k.last_setter[op.value];
    if (best == nullptr || op.ret > best->ret) best = &op;
  }
  for (const auto& [key, value] : final_values) keys.try_emplace(key);

  Problems problems;
  for (const auto& [key, writes] : keys) {
    const std::string where = "key " + test::quote_value(std::string(key)) + ": ";
    const auto final_it = final_values.find(std::string(key));
    if (final_it == final_values.end()) {
      problems.add(where + "no final value given, yet the history writes it (last acknowledged: " +
                   (writes.last_acknowledged ? test::to_string(*writes.last_acknowledged)
                                             : std::string("none")) +
                   ")");
      continue;
    }
    const std::optional<std::string>& found = final_it->second;
    const auto setter_it = writes.last_setter.find(found);
    const Operation* setter = setter_it == writes.last_setter.end() ? nullptr : setter_it->second;
    if (setter == nullptr && found) {
      problems.add(where + describe_found(found) +
                   ", which no write or compare-and-set of the key wrote" +
                   (writes.last_acknowledged
                        ? " (last acknowledged: " + test::to_string(*writes.last_acknowledged) + ")"
                        : std::string()));
      continue;
    }
    if (writes.last_acknowledged == nullptr) continue;
    // No setter of an absent final value: the initial absent register, which
    // "returned" before every operation.
    if (setter != nullptr && writes.last_acknowledged->call <= setter->ret) continue;
    std::string line = where + "acknowledged " + test::to_string(*writes.last_acknowledged) +
                       " was lost: " + describe_found(found) + ", ";
    if (setter != nullptr) {
      line += "last set by " + test::to_string(*setter) +
              ", which returned before the lost one was called";
    } else {
      line += "the initial value: nothing in the history deletes the key";
    }
    problems.add(std::move(line));
  }
  return problems.result("acknowledged writes lost (or final values no write explains):");
}

// --- tiling --------------------------------------------------------------------

namespace {

// One region state, however many stores reported it.
struct Region {
  std::uint64_t id = 0;
  std::uint64_t version = 0;
  std::uint64_t conf_ver = 0;  // the highest reported
  std::string start;
  std::string end;  // "" = +inf
  std::set<std::uint64_t> stores;
  bool stale = false;
};

bool ends_at_infinity(const Region& r) { return r.end.empty(); }

// `key` < `end`, where an empty end is +inf.
bool before_end(std::string_view key, std::string_view end) { return end.empty() || key < end; }

std::string range_text(std::string_view start, std::string_view end) {
  return "[" + test::quote_value(std::string(start)) + ", " +
         (end.empty() ? std::string("+inf") : test::quote_value(std::string(end))) + ")";
}

std::string region_text(const Region& r) {
  std::string out = "region " + std::to_string(r.id) + " " + range_text(r.start, r.end) +
                    " version " + std::to_string(r.version) + " conf_ver " +
                    std::to_string(r.conf_ver) + " (store";
  if (r.stores.size() > 1) out += "s";
  const char* sep = " ";
  for (const std::uint64_t s : r.stores) {
    out += sep + std::to_string(s);
    sep = ", ";
  }
  return out + ")";
}

// Gaps in the cover by the regions not stale. Two of them overlapping is
// already a same-version violation (a lower version would be stale), but it
// is reported here too so the cover is checked on its own terms.
void check_cover(const std::vector<Region>& regions, Problems& problems) {
  std::vector<const Region*> winners;
  for (const Region& r : regions) {
    if (!r.stale) winners.push_back(&r);
  }
  // `regions` is sorted by start, so `winners` is too.
  auto report_gap = [&](std::string_view from, std::string_view to, const Region* prev,
                        const Region* next) {
    std::string line = "gap " + range_text(from, to) + ": no region covers it";
    line += prev ? " (after " + region_text(*prev) + ")" : std::string(" (at the start)");
    if (next) line += " (before " + region_text(*next) + ")";
    std::size_t stale_shown = 0;
    for (const Region& r : regions) {
      if (!r.stale || !before_end(r.start, to) || !before_end(from, r.end)) continue;
      if (stale_shown++ == 3) break;
      line += "; stale there: " + region_text(r);
    }
    problems.add(std::move(line));
  };
  // Invariant: the winners before `r` cover exactly ["", covered_to) (all of
  // it when covered_all), and `reach` is the one ending there.
  std::string covered_to;
  bool covered_all = false;
  const Region* reach = nullptr;
  for (const Region* r : winners) {
    if (covered_all || r->start < covered_to) {
      problems.add("overlap: " + region_text(*r) + " starts inside " + region_text(*reach));
    } else if (r->start > covered_to) {
      report_gap(covered_to, r->start, reach, r);
    }
    if (covered_all) continue;
    if (ends_at_infinity(*r)) {
      covered_all = true;
      reach = r;
    } else if (r->end > covered_to) {
      covered_to = r->end;
      reach = r;
    }
  }
  if (!covered_all) report_gap(covered_to, "", reach, nullptr);
}

}  // namespace

CheckResult check_tiling(const std::vector<RegionReport>& reports, bool require_cover) {
  Problems problems;
  std::map<std::tuple<std::uint64_t, std::uint64_t, std::string_view, std::string_view>,
           std::size_t>
      index;
  std::vector<Region> regions;
  for (const RegionReport& report : reports) {
    if (!report.end.empty() && report.start >= report.end) {
      problems.add("store " + std::to_string(report.store) + " reports region " +
                   std::to_string(report.region_id) + " with an empty or inverted range " +
                   range_text(report.start, report.end) + " at version " +
                   std::to_string(report.version));
      continue;
    }
    const auto [it, inserted] = index.try_emplace(
        {report.region_id, report.version, report.start, report.end}, regions.size());
    if (inserted) {
      regions.push_back(
          {report.region_id, report.version, report.conf_ver, report.start, report.end, {}, false});
    }
    Region& r = regions[it->second];
    r.conf_ver = std::max(r.conf_ver, report.conf_ver);
    r.stores.insert(report.store);
  }
  std::sort(regions.begin(), regions.end(), [](const Region& a, const Region& b) {
    return std::tie(a.start, a.end, a.id, a.version) < std::tie(b.start, b.end, b.id, b.version);
  });

  // One region: the highest version wins, and one version has one range.
  std::map<std::uint64_t, std::vector<Region*>> by_id;
  for (Region& r : regions) by_id[r.id].push_back(&r);
  for (auto& [id, states] : by_id) {
    std::uint64_t newest = 0;
    for (const Region* r : states) newest = std::max(newest, r->version);
    for (Region* r : states) r->stale = r->version < newest;
    std::stable_sort(states.begin(), states.end(),
                     [](const Region* a, const Region* b) { return a->version < b->version; });
    for (std::size_t i = 0; i + 1 < states.size(); ++i) {
      if (states[i]->version == states[i + 1]->version) {
        problems.add("region " + std::to_string(id) + " has two ranges at one version: " +
                     region_text(*states[i]) + " and " + region_text(*states[i + 1]));
      }
    }
  }

  // Overlapping pairs: sorted by start, the regions overlapping regions[i]
  // from the right are exactly those after it that start before its end.
  for (std::size_t i = 0; i < regions.size(); ++i) {
    Region& a = regions[i];
    for (std::size_t j = i + 1; j < regions.size() && before_end(regions[j].start, a.end); ++j) {
      Region& b = regions[j];
      if (a.version < b.version) {
        a.stale = true;
      } else if (b.version < a.version) {
        b.stale = true;
      } else if (a.id != b.id) {
        problems.add("overlap at the same version: " + region_text(a) + " and " + region_text(b));
      }
    }
  }

  if (require_cover) check_cover(regions, problems);
  return problems.result(require_cover ? "the regions reported do not tile the key space:"
                                       : "the regions reported conflict:");
}

}  // namespace kvcore::sim
