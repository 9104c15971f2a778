// StoreImpl: requests over several regions (scan, delete_range), requests
// routed by the caller (RequestOptions::region_*), and the detail of region
// errors (EpochNotMatchDetail).
//
// Region errors raised after routing (a split applied between routing and
// proposing, applying or serving a request) are raised inside a round, when
// the routes do not yet show the round's splits. They are answered when the
// round ends (RoundScope), so the regions they name are the current ones.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>

#include "raftstore/store_impl.hpp"

namespace kvcore::raftstore {

namespace {

// The store whose round this thread is running, if any.
thread_local const StoreImpl* tl_round_store = nullptr;

// How often a multi-region scan re-routes a part whose region changed under
// it before it gives up and returns the error.
constexpr int kMaxScanReroutes = 8;

bool span_in_region(const RegionMeta& r, std::string_view start, std::string_view end) {
  return start >= r.start_key && (r.end_key.empty() || (!end.empty() && end <= r.end_key));
}

}  // namespace

// --- region errors -------------------------------------------------------------

StoreImpl::RoundScope::RoundScope(StoreImpl& store) : store_(store), outer_(tl_round_store) {
  tl_round_store = &store;
}

StoreImpl::RoundScope::~RoundScope() {
  tl_round_store = outer_;
  for (;;) {
    std::vector<UniqueFunction<void()>> answers;
    {
      std::lock_guard lock(store_.deferred_mu_);
      answers.swap(store_.deferred_);
    }
    if (answers.empty()) break;
    for (auto& a : answers) a();
  }
}

StoreImpl::LaneMark::LaneMark(const StoreImpl& store) : outer_(tl_round_store) {
  tl_round_store = &store;
}

StoreImpl::LaneMark::~LaneMark() { tl_round_store = outer_; }

std::vector<RegionInfo> StoreImpl::regions_overlapping(const KeySpan& span) const {
  std::vector<RegionInfo> out;
  std::shared_lock lock(routes_mu_);
  auto it = by_start_key_.upper_bound(span.start);
  if (it != by_start_key_.begin()) --it;
  for (; it != by_start_key_.end() && (span.end.empty() || it->first < span.end); ++it) {
    const LeaseState& lease = *it->second;
    std::lock_guard l(lease.mu);
    const RegionMeta& r = lease.region;
    if (!r.end_key.empty() && r.end_key <= span.start) continue;
    out.push_back(RegionInfo{r.id, r.start_key, r.end_key, r.epoch.conf_ver, r.epoch.version,
                             lease.leader_store});
  }
  return out;
}

Status StoreImpl::region_error(const Status& s, std::uint64_t region, const KeySpan& span,
                               bool moved) const {
  auto d = std::make_shared<EpochNotMatchDetail>();
  d->region_id = region;
  d->current_regions = regions_overlapping(span);
  return {moved ? Code::kUnavailable : s.code(), s.message(), s.sub_code(), std::move(d)};
}

void StoreImpl::answer_region_error(Status s, std::uint64_t region, KeySpan span,
                                    UniqueFunction<void(Status)> answer) {
  if (tl_round_store != this) {
    answer(region_error(s, region, span, true));
    return;
  }
  std::lock_guard lock(deferred_mu_);
  deferred_.push_back(
      [this, s = std::move(s), region, span = std::move(span),
       answer = std::move(answer)]() mutable { answer(region_error(s, region, span, true)); });
}

// --- routing ---------------------------------------------------------------------

Result<std::shared_ptr<LeaseState>> StoreImpl::route_context(const RequestOptions& opts,
                                                             const KeySpan& span) const {
  std::shared_ptr<LeaseState> lease;
  {
    std::shared_lock lock(routes_mu_);
    if (auto it = by_region_.find(opts.region_id); it != by_region_.end()) lease = it->second;
  }
  if (!lease) return region_error(region_not_found(opts.region_id), opts.region_id, span, false);
  Status err;
  {
    std::lock_guard lock(lease->mu);
    const RegionEpoch want{opts.region_conf_ver, opts.region_version};
    if (!epoch_matches(lease->region, want)) {
      err = epoch_not_match(lease->region, want);
    } else if (!span_in_region(lease->region, span.start, span.end)) {
      err = Status(Code::kInvalidArgument,
                   fmt::format("the request's keys are not all in region {}", opts.region_id),
                   SubCode::kKeyNotInRegion);
    }
  }
  if (!err.is_ok()) return region_error(err, opts.region_id, span, false);
  return lease;
}

std::shared_ptr<LeaseState> StoreImpl::route_before(std::string_view end) const {
  std::shared_lock lock(routes_mu_);
  if (by_start_key_.empty()) return nullptr;
  std::shared_ptr<LeaseState> lease;
  if (end.empty()) {
    lease = std::prev(by_start_key_.end())->second;
  } else {
    auto it = by_start_key_.lower_bound(end);
    if (it == by_start_key_.begin()) return nullptr;
    lease = std::prev(it)->second;
  }
  std::lock_guard l(lease->mu);
  const RegionMeta& r = lease->region;
  const bool reaches = r.end_key.empty() || (!end.empty() && r.end_key >= end);
  return reaches && (end.empty() || r.start_key < end) ? lease : nullptr;
}

// --- scan ----------------------------------------------------------------------------

// One Store::scan: a read of each region of the range in turn. Parts that
// complete on the calling thread (lease reads) are taken in a loop, not by
// recursion, so a scan over many regions keeps a flat stack.
class StoreImpl::ScanWalk : public std::enable_shared_from_this<StoreImpl::ScanWalk> {
 public:
  ScanWalk(StoreImpl& store, ScanArgs whole, const RequestOptions& opts, ScanCallback done)
      : store_(store),
        whole_(std::move(whole)),
        opts_(opts),
        start_(store.rt_->clock().now()),
        deadline_(request_deadline(store.rt_->clock(), opts)),
        cursor_(whole_.reverse ? whole_.end : whole_.start),
        done_(std::move(done)) {}

  void run() {
    for (;;) {
      phase_.store(kIssuing);
      if (!issue()) return;
      if (phase_.exchange(kReturned) != kDone) return;  // the callback resumes
      if (!advance()) return;
    }
  }

 private:
  enum Phase : int { kIssuing, kReturned, kDone };
  using R = Result<std::vector<KvPair>>;

  // Issues the next part; false when the walk is over (answered).
  bool issue() {
    std::shared_ptr<LeaseState> lease;
    const bool pinned = opts_.region_id != 0;
    if (pinned) {
      auto routed = store_.route_context(opts_, KeySpan{whole_.start, whole_.end});
      if (!routed.is_ok()) return finish(routed.status());
      lease = std::move(routed).value();
    } else {
      lease = whole_.reverse ? store_.route_before(cursor_) : store_.route(cursor_);
      if (!lease) {
        const KeySpan span =
            whole_.reverse ? KeySpan{whole_.start, cursor_} : KeySpan{cursor_, whole_.end};
        return finish(store_.region_error(
            Status(Code::kUnavailable, "no region here holds the keys", SubCode::kRegionNotFound),
            0, span, false));
      }
    }
    RegionMeta region;
    {
      std::lock_guard lock(lease->mu);
      region = lease->region;
    }
    if (pinned) {
      part_start_ = whole_.start;
      part_end_ = whole_.end;
    } else if (whole_.reverse) {
      part_end_ = cursor_;
      part_start_ = std::max(whole_.start, region.start_key);
    } else {
      part_start_ = cursor_;
      part_end_ = whole_.end;
      if (!region.end_key.empty() && (part_end_.empty() || region.end_key < part_end_)) {
        part_end_ = region.end_key;
      }
    }
    ReadRequest req;
    if (pinned) req.expect_epoch = RegionEpoch{opts_.region_conf_ver, opts_.region_version};
    const std::size_t left = whole_.limit == 0 ? 0 : whole_.limit - out_.size();
    req.args = ScanArgs{part_start_, part_end_, left, whole_.reverse};
    req.start = start_;
    req.deadline = deadline_;
    req.scan_done = store_.guard_region_errors<R>(
        [self = shared_from_this()](R r) {
          self->part_.emplace(std::move(r));
          if (self->phase_.exchange(kDone) == kReturned && self->advance()) self->run();
        },
        region.id, KeySpan{part_start_, part_end_});
    store_.read_routed(std::move(req), lease);
    return true;
  }

  // Takes the finished part; false when the walk is over (answered).
  bool advance() {
    R r = std::move(*part_);
    part_.reset();
    if (!r.is_ok()) {
      // The part's region changed under it: route the part again.
      if (opts_.region_id == 0 && is_region_change(r.status()) && ++reroutes_ <= kMaxScanReroutes) {
        return true;
      }
      return finish(r.status());
    }
    for (auto& kv : *r) out_.push_back(std::move(kv));
    if (whole_.limit != 0 && out_.size() >= whole_.limit) return finish(std::move(out_));
    if (whole_.reverse) {
      if (part_start_ <= whole_.start) return finish(std::move(out_));
      cursor_ = part_start_;
    } else {
      if (part_end_.empty() || (!whole_.end.empty() && part_end_ >= whole_.end)) {
        return finish(std::move(out_));
      }
      cursor_ = part_end_;
    }
    return true;
  }

  bool finish(R r) {
    auto cb = std::move(done_);
    cb(std::move(r));
    return false;
  }

  StoreImpl& store_;
  const ScanArgs whole_;
  const RequestOptions opts_;
  const Instant start_;
  const Instant deadline_;
  // Forward: the next part's start. Reverse: the next part's end (empty: to
  // the last key).
  std::string cursor_;
  std::string part_start_;
  std::string part_end_;
  std::vector<KvPair> out_;
  ScanCallback done_;
  int reroutes_ = 0;
  std::atomic<int> phase_{kIssuing};
  std::optional<R> part_;  // written before phase_ becomes kDone
};

void StoreImpl::async_scan(std::string_view start, std::string_view end, std::size_t limit,
                           bool reverse, const RequestOptions& opts, ScanCallback done) {
  if (!end.empty() && start >= end) {
    done(std::vector<KvPair>{});
    return;
  }
  auto walk = std::make_shared<ScanWalk>(
      *this, ScanArgs{std::string(start), std::string(end), limit, reverse}, opts, std::move(done));
  walk->run();
}

// --- delete_range ------------------------------------------------------------------

void StoreImpl::async_delete_range(std::string_view start, std::string_view end,
                                   const RequestOptions& opts, WriteCallback done) {
  if (opts.region_id != 0) {
    RawBatch b;
    b.delete_range(start, end);
    async_write_impl(std::move(b), opts, std::move(done), false);
    return;
  }
  if (!end.empty() && start >= end) {
    done(Status::ok());
    return;
  }
  // Every region of the range, each led here, before anything is proposed.
  struct Part {
    std::shared_ptr<LeaseState> lease;
    WriteOp op;
  };
  std::vector<Part> parts;
  std::string cursor(start);
  for (;;) {
    auto lease = route(cursor);
    if (!lease) {
      done(region_error(
          Status(Code::kUnavailable, "no region here holds the keys", SubCode::kRegionNotFound), 0,
          KeySpan{cursor, std::string(end)}, false));
      return;
    }
    std::string part_end(end);
    Status refused;
    {
      std::lock_guard lock(lease->mu);
      const std::string& region_end = lease->region.end_key;
      if (!lease->leader) {
        refused = refuse_not_leader(*lease);
      } else if (!region_end.empty() && (part_end.empty() || region_end < part_end)) {
        part_end = region_end;
      }
    }
    if (!refused.is_ok()) {
      done(std::move(refused));
      return;
    }
    const bool last = part_end == end;
    parts.push_back({lease, WriteOp{WriteOpKind::kDeleteRange, CF::kDefault, cursor, part_end}});
    if (last) break;
    cursor = std::move(part_end);
  }

  struct Join {
    std::mutex mu;
    std::size_t left = 0;
    Status first;  // guarded by mu
    WriteCallback done;
  };
  auto join = std::make_shared<Join>();
  join->left = parts.size();
  join->done = std::move(done);
  const Instant now = rt_->clock().now();
  const Instant deadline = request_deadline(rt_->clock(), opts);
  for (auto& p : parts) {
    WriteRequest req;
    KeySpan span{p.op.key, p.op.value};
    req.ops.push_back(std::move(p.op));
    req.start = now;
    req.deadline = deadline;
    std::uint64_t region_id = 0;
    {
      std::lock_guard lock(p.lease->mu);
      region_id = p.lease->region.id;
    }
    req.done = guard_region_errors<Status>(
        [join](Status s) {
          std::unique_lock lock(join->mu);
          if (!s.is_ok() && join->first.is_ok()) join->first = std::move(s);
          if (--join->left > 0) return;
          Status result = join->first;
          auto cb = std::move(join->done);
          lock.unlock();
          cb(std::move(result));
        },
        region_id, std::move(span));
    write_routed(std::move(req), p.lease, false);
  }
}

}  // namespace kvcore::raftstore
