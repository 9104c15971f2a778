// Split checks: the pure key finder, and the store's side (which leaders to
// check, the check task off the raft thread, proposing the split).
#include "raftstore/split_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <utility>

#include "raftstore/store_impl.hpp"
#include "util/log.hpp"

namespace kvcore::raftstore {

namespace {

constexpr std::array kDataCfs = {CF::kDefault, CF::kLock, CF::kWrite};

IterOptions region_bounds(const RegionMeta& region) {
  IterOptions io;
  io.lower_bound = region.start_key;
  io.upper_bound = region.end_key;
  io.fill_cache = false;
  return io;
}

// The data CFs of a region merged in key order: at each step the smallest
// key any CF holds, with the bytes (key + value) it has across the CFs.
class MergedScan {
 public:
  MergedScan(const Reader& reader, const RegionMeta& region) {
    for (std::size_t i = 0; i < kDataCfs.size(); ++i) {
      its_[i] = reader.new_iterator(kDataCfs[i], region_bounds(region));
      its_[i]->seek_to_first();
    }
  }

  // Moves to the next key; false at the end (or on an error: see status()).
  bool next(std::string* key, std::uint64_t* bytes) {
    std::optional<std::string_view> least;
    for (auto& it : its_) {
      if (it->valid() && (!least || it->key() < *least)) least = it->key();
    }
    if (!least) return false;
    key->assign(*least);
    *bytes = 0;
    for (auto& it : its_) {
      if (it->valid() && it->key() == *key) {
        *bytes += it->key().size() + it->value().size();
        it->next();
      }
    }
    return true;
  }

  [[nodiscard]] Status status() const {
    for (const auto& it : its_) KVCORE_RETURN_IF_ERROR(it->status());
    return Status::ok();
  }

 private:
  std::array<std::unique_ptr<Iterator>, kDataCfs.size()> its_;
};

}  // namespace

SplitCheckConfig SplitCheckConfig::from(const StoreOptions& o) {
  SplitCheckConfig c;
  c.max_bytes = o.region_max_bytes;
  c.split_bytes = o.region_split_bytes;
  c.max_keys = o.region_max_keys;
  c.split_keys = o.region_split_keys;
  c.prefix = o.split_prefix;
  return c;
}

Status check_split_options(const StoreOptions& o) {
  if (o.split_check_ticks <= 0) {
    return Status::invalid_argument("StoreOptions: split_check_ticks must be positive");
  }
  if (o.region_max_bytes != 0 &&
      (o.region_split_bytes == 0 || o.region_split_bytes > o.region_max_bytes)) {
    return Status::invalid_argument(
        "StoreOptions: need 0 < region_split_bytes <= region_max_bytes (or region_max_bytes 0)");
  }
  if (o.region_max_keys != 0 &&
      (o.region_split_keys == 0 || o.region_split_keys > o.region_max_keys)) {
    return Status::invalid_argument(
        "StoreOptions: need 0 < region_split_keys <= region_max_keys (or region_max_keys 0)");
  }
  return Status::ok();
}

Result<RegionFigures> approximate_figures(const Engine& engine, const RegionMeta& region) {
  const KeyRange range{region.start_key, region.end_key};
  RegionFigures f;
  for (CF cf : kDataCfs) {
    KVCORE_ASSIGN_OR_RETURN(std::uint64_t bytes, engine.approximate_size(cf, range));
    f.bytes += bytes;
  }
  KVCORE_ASSIGN_OR_RETURN(std::uint64_t default_keys, engine.approximate_keys(CF::kDefault, range));
  KVCORE_ASSIGN_OR_RETURN(std::uint64_t write_keys, engine.approximate_keys(CF::kWrite, range));
  f.keys = std::max(default_keys, write_keys);
  return f;
}

bool over_limits(const SplitCheckConfig& cfg, const RegionFigures& f) {
  return (cfg.max_bytes != 0 && f.bytes > cfg.max_bytes) ||
         (cfg.max_keys != 0 && f.keys > cfg.max_keys);
}

Result<bool> spans_prefixes(const Reader& reader, const RegionMeta& region,
                            const SplitCheckConfig& cfg) {
  if (!cfg.prefix) return false;
  std::optional<std::string> first;
  std::optional<std::string> last;
  for (CF cf : kDataCfs) {
    auto it = reader.new_iterator(cf, region_bounds(region));
    it->seek_to_first();
    if (it->valid() && (!first || it->key() < *first)) first = std::string(it->key());
    it->seek_to_last();
    if (it->valid() && (!last || it->key() > *last)) last = std::string(it->key());
    KVCORE_RETURN_IF_ERROR(it->status());
  }
  if (!first || *first == *last) return false;
  return cfg.prefix(*first) != cfg.prefix(*last);
}

Result<std::vector<std::string>> find_split_keys(const Reader& reader, const RegionMeta& region,
                                                 const SplitCheckConfig& cfg, bool by_size) {
  struct Part {
    std::uint64_t bytes = 0;
    std::uint64_t keys = 0;
  };
  const bool size_on = by_size && cfg.max_bytes != 0 && cfg.split_bytes != 0;
  const bool keys_on = by_size && cfg.max_keys != 0 && cfg.split_keys != 0;
  std::vector<std::string> out;
  bool last_by_size = false;  // how the last key of `out` was chosen
  Part part;                  // since the last split key
  Part before;                // the part that the last split key ended
  std::string prev_key;
  std::string prev_prefix;
  bool have_prev = false;

  const auto cut = [&](std::string at, bool by_size_now) {
    out.push_back(std::move(at));
    last_by_size = by_size_now;
    before = part;
    part = {};
  };

  MergedScan scan(reader, region);
  std::string key;
  std::uint64_t bytes = 0;
  while (out.size() < cfg.max_split_keys && scan.next(&key, &bytes)) {
    const bool inside = key > region.start_key && (out.empty() || key > out.back());
    std::string prefix;
    if (cfg.prefix) prefix = cfg.prefix(key);
    if (cfg.prefix && have_prev && prefix != prev_prefix && inside) {
      // The prefix is the better boundary: later keys of it sort after it.
      const bool use_prefix = key.compare(0, prefix.size(), prefix) == 0 && prefix > prev_key &&
                              prefix > region.start_key && (out.empty() || prefix > out.back());
      cut(use_prefix ? prefix : key, false);
    } else if (inside && part.keys > 0 &&
               ((size_on && part.bytes + bytes > cfg.split_bytes) ||
                (keys_on && part.keys + 1 > cfg.split_keys))) {
      cut(key, true);
    }
    part.bytes += bytes;
    part.keys += 1;
    prev_key = key;
    if (cfg.prefix) prev_prefix = std::move(prefix);
    have_prev = true;
  }
  KVCORE_RETURN_IF_ERROR(scan.status());
  const bool scanned_all = out.size() < cfg.max_split_keys || !scan.next(&key, &bytes);
  if (scanned_all && last_by_size && !out.empty()) {
    // A small last part stays with the part before it.
    const bool bytes_fit = !size_on || before.bytes + part.bytes <= cfg.max_bytes;
    const bool keys_fit = !keys_on || before.keys + part.keys <= cfg.max_keys;
    if (bytes_fit && keys_fit) out.pop_back();
  }
  return out;
}

SplitCheckMetrics::SplitCheckMetrics(metrics::Registry& r)
    : checks(r.counter("kvcore_split_checks_total", "Split checks run (regions checked)")),
      scans(r.counter("kvcore_split_check_scans_total",
                      "Split checks that scanned their region for split keys")),
      splits_proposed(r.counter("kvcore_split_check_splits_total",
                                "Batch splits proposed by the split checker")) {}

// --- the store's side ------------------------------------------------------

void StoreImpl::maybe_split_check() {
  if (++ticks_since_split_check_ < options_.split_check_ticks) return;
  ticks_since_split_check_ = 0;
  const SplitCheckConfig cfg = SplitCheckConfig::from(options_);
  if (!cfg.enabled() || !split_exec_) return;
  for (auto it = split_checks_.begin(); it != split_checks_.end();) {
    it = peers_.count(it->first) == 0 ? split_checks_.erase(it) : std::next(it);
  }
  for (auto& [id, peer] : peers_) {
    if (!peer->initialized() || !peer->is_leader()) continue;
    SplitCheckState& st = split_checks_[id];
    const std::uint64_t writes = peer->lease()->writes.load(std::memory_order_relaxed);
    if (st.in_flight || (st.checked && st.writes_seen == writes)) continue;
    st.checked = true;
    st.writes_seen = writes;
    st.in_flight = true;
    split_metrics_.checks.inc();
    split_exec_->post([this, region = peer->region(), cfg] { run_split_check(region, cfg); });
  }
}

void StoreImpl::run_split_check(const RegionMeta& region, const SplitCheckConfig& cfg) {
  SplitCheckDone done{region.id, region.epoch, {}};
  auto snap = kv_->snapshot();
  auto figures = approximate_figures(*kv_, region);
  auto spans = spans_prefixes(*snap, region, cfg);
  if (figures.is_ok() && spans.is_ok()) {
    const bool over = over_limits(cfg, *figures);
    if (over || *spans) {
      split_metrics_.scans.inc();
      auto keys = find_split_keys(*snap, region, cfg, over);
      if (keys.is_ok()) {
        done.keys = std::move(keys).value();
      } else {
        KVCORE_LOG_WARN("store {}: split check of region {}: {}", options_.store_id, region.id,
                        keys.status().to_string());
      }
    }
  } else {
    KVCORE_LOG_WARN("store {}: split check of region {}: {}", options_.store_id, region.id,
                    (figures.is_ok() ? spans.status() : figures.status()).to_string());
  }
  enqueue(std::move(done));
}

void StoreImpl::on_split_check_done(SplitCheckDone& done) {
  auto st = split_checks_.find(done.region);
  if (st != split_checks_.end()) st->second.in_flight = false;
  if (done.keys.empty()) return;
  auto it = peers_.find(done.region);
  // The region changed (or this peer stopped leading) since the check read
  // it: the keys may be stale. A later check runs on the new region.
  if (it == peers_.end() || !it->second->is_leader() ||
      !(it->second->region().epoch == done.epoch)) {
    if (st != split_checks_.end()) st->second.checked = false;
    return;
  }
  KVCORE_LOG_INFO("store {}: split check splits region {} at {} keys", options_.store_id,
                  done.region, done.keys.size());
  split_metrics_.splits_proposed.inc();
  const std::uint64_t store = options_.store_id;
  const std::uint64_t region = done.region;
  Input in =
      SplitInput{region, std::move(done.keys),
                 rt_->clock().now() + std::chrono::duration_cast<runtime::Duration>(
                                          options_.tick_interval * options_.election_ticks * 4),
                 [store, region](Status s) {
                   if (!s.is_ok()) {
                     KVCORE_LOG_INFO("store {}: checker's split of region {}: {}", store, region,
                                     s.to_string());
                   }
                 }};
  handle(in);
}

}  // namespace kvcore::raftstore
