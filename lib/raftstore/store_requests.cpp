// StoreImpl: the request API. Reads under a valid lease are served here, on
// the caller's thread; everything else is queued for the raft thread.
#include <fmt/format.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>

#include "raftstore/sabotage.hpp"
#include "raftstore/store_impl.hpp"
#include "raftstore/wait_for.hpp"

namespace kvcore::raftstore {


std::shared_ptr<LeaseState> StoreImpl::route(std::string_view key) const {
  std::shared_lock lock(routes_mu_);
  auto it = by_start_key_.upper_bound(key);
  if (it == by_start_key_.begin()) return nullptr;
  --it;
  std::lock_guard l(it->second->mu);
  return it->second->region.contains(key) ? it->second : nullptr;
}

Status StoreImpl::refuse_not_leader(const LeaseState& lease) {
  metrics_.not_leader.inc();
  return not_leader_status(lease.region.id, lease.leader_store, lease.leader_peer);
}

bool StoreImpl::lease_holds(const LeaseState& lease) const {
  std::lock_guard lock(lease.mu);
  return lease.leader && lease.applied_current_term && !lease.merging &&
         rt_->clock().now() < lease.lease_until;
}

std::optional<Result<std::optional<std::string>>> StoreImpl::lease_get(std::string_view key,
                                                                       std::uint64_t* region_id) {
  auto lease = route(key);
  if (!lease) {
    return Result<std::optional<std::string>>(
        Status(Code::kUnavailable, "no region here holds the key", SubCode::kRegionNotFound));
  }
  {
    std::lock_guard lock(lease->mu);
    *region_id = lease->region.id;
    if (!lease->leader) return Result<std::optional<std::string>>(refuse_not_leader(*lease));
    if (lease->merging) return Result<std::optional<std::string>>(region_merging(*region_id));
    if (lease->lease_until == Instant::min() || !lease->applied_current_term) return std::nullopt;
  }
  // The read first, the clock second: the read sees the engine as of some
  // moment before the check, and if the lease holds at the check it held
  // then (the same argument as a snapshot taken before the check).
  auto value = kv_->get(CF::kDefault, key);
  if (!lease_holds(*lease)) return std::nullopt;
  metrics_.lease_reads.inc();
  return value;
}

void StoreImpl::queue_get(std::string_view key, std::uint64_t region_id, const RequestOptions& opts,
                          GetCallback done) {
  ReadRequest req;
  req.region_id = region_id;
  req.args = GetArgs{std::string(key)};
  req.start = rt_->clock().now();
  req.deadline = request_deadline(rt_->clock(), opts);
  req.get_done = std::move(done);
  enqueue(ReadInput{std::move(req)});
}

void StoreImpl::read_routed(ReadRequest req, const std::shared_ptr<LeaseState>& lease) {
  RegionMeta region;
  bool try_local = false;
  {
    std::lock_guard lock(lease->mu);
    req.region_id = lease->region.id;
    if (!lease->leader) {
      req.fail(refuse_not_leader(*lease));
      return;
    }
    if (lease->merging) {
      req.fail(region_merging(req.region_id));
      return;
    }
    if (lease->lease_until != Instant::min() && lease->applied_current_term) {
      try_local = true;
      region = lease->region;
    }
  }
  if (try_local) {
    // The snapshot first, the clock second: if the lease still holds after
    // the snapshot was taken, it held when it was taken.
    auto snap = kv_->snapshot();
    if (lease_holds(*lease)) {
      metrics_.lease_reads.inc();
      metrics_.read_seconds.observe(
          std::chrono::duration<double>(rt_->clock().now() - req.start).count());
      execute_read(*snap, region, req);
      return;
    }
  }
  enqueue(ReadInput{std::move(req)});
}

void StoreImpl::async_get(std::string_view key, const RequestOptions& opts, GetCallback done) {
  using R = Result<std::optional<std::string>>;
  if (opts.region_id != 0) {
    auto span = KeySpan::point(key);
    auto lease = route_context(opts, span);
    if (!lease.is_ok()) {
      done(lease.status());
      return;
    }
    ReadRequest req;
    req.expect_epoch = RegionEpoch{opts.region_conf_ver, opts.region_version};
    req.args = GetArgs{std::string(key)};
    req.start = rt_->clock().now();
    req.deadline = request_deadline(rt_->clock(), opts);
    req.get_done = guard_region_errors<R>(std::move(done), opts.region_id, std::move(span));
    read_routed(std::move(req), *lease);
    return;
  }
  if (testing::sabotaged(testing::Sabotage::kFollowerReads)) {
    if (auto lease = route(key)) {
      done(kv_->get(CF::kDefault, key));
      return;
    }
  }
  std::uint64_t region_id = 0;
  if (auto local = lease_get(key, &region_id)) {
    if (!local->is_ok() && local->status().sub_code() == SubCode::kRegionNotFound) {
      done(region_error(local->status(), 0, KeySpan::point(key), false));
      return;
    }
    done(std::move(*local));
    return;
  }
  queue_get(key, region_id, opts,
            guard_region_errors<R>(std::move(done), region_id, KeySpan::point(key)));
}

void StoreImpl::async_write(RawBatch batch, const RequestOptions& opts, WriteCallback done) {
  async_write_impl(std::move(batch), opts, std::move(done), false);
}

void StoreImpl::write_routed(WriteRequest req, const std::shared_ptr<LeaseState>& lease,
                             bool run_here) {
  {
    std::lock_guard lock(lease->mu);
    if (!lease->leader) {
      req.done(refuse_not_leader(*lease));
      return;
    }
    if (lease->merging) {
      req.done(region_merging(lease->region.id));
      return;
    }
    req.region_id = lease->region.id;
  }
  lease->writes.fetch_add(1, std::memory_order_relaxed);
  enqueue(WriteInput{std::move(req)}, run_here);
}

void StoreImpl::async_write_impl(RawBatch batch, const RequestOptions& opts, WriteCallback done,
                                 bool run_here) {
  if (batch.empty()) {
    done(Status::invalid_argument("empty write batch"));
    return;
  }
  WriteRequest req;
  req.ops.reserve(batch.ops().size());
  // The batch's span, for routing and its errors: its lowest key to just
  // past its highest (a delete-range's end; empty: to the last key).
  KeySpan span{batch.ops().front().key, {}};
  bool open_end = false;
  for (const auto& op : batch.ops()) {
    WriteOp w;
    w.cf = CF::kDefault;
    w.key = op.key;
    w.value = op.value;
    switch (op.kind) {
      case RawBatch::OpKind::kPut: w.kind = WriteOpKind::kPut; break;
      case RawBatch::OpKind::kDelete: w.kind = WriteOpKind::kDelete; break;
      case RawBatch::OpKind::kDeleteRange: w.kind = WriteOpKind::kDeleteRange; break;
    }
    span.start = std::min(span.start, w.key);
    if (w.kind == WriteOpKind::kDeleteRange) {
      if (w.value.empty()) open_end = true;
      if (w.value > span.end) span.end = w.value;
    } else if (w.key >= span.end) {
      span.end = w.key + '\0';
    }
    req.ops.push_back(std::move(w));
  }
  if (open_end) span.end.clear();

  std::shared_ptr<LeaseState> lease;
  if (opts.region_id != 0) {
    auto routed = route_context(opts, span);
    if (!routed.is_ok()) {
      done(routed.status());
      return;
    }
    lease = std::move(routed).value();
    req.expect_epoch = RegionEpoch{opts.region_conf_ver, opts.region_version};
  } else {
    lease = route(span.start);
    if (!lease) {
      done(region_error(
          Status(Code::kUnavailable, "no region here holds the key", SubCode::kRegionNotFound), 0,
          span, false));
      return;
    }
    std::uint64_t spanning = 0;
    {
      std::lock_guard lock(lease->mu);
      for (const auto& w : req.ops) {
        if (!op_in_region(w, lease->region)) spanning = lease->region.id;
      }
    }
    if (spanning != 0) {
      // Routed just now: the batch itself does not fit one region.
      done(region_error(Status(Code::kInvalidArgument,
                               fmt::format("the write batch spans regions (region {} holds "
                                           "only part of it)",
                                           spanning),
                               SubCode::kKeyNotInRegion),
                        spanning, span, false));
      return;
    }
  }
  std::uint64_t region_id = 0;
  {
    std::lock_guard lock(lease->mu);
    region_id = lease->region.id;
  }
  req.start = rt_->clock().now();
  req.deadline = request_deadline(rt_->clock(), opts);
  req.done = guard_region_errors<Status>(std::move(done), region_id, std::move(span));
  write_routed(std::move(req), lease, run_here);
}

void StoreImpl::async_split_region(std::uint64_t region_id, std::vector<std::string> split_keys,
                                   const RequestOptions& opts, WriteCallback done) {
  if (split_keys.empty()) {
    done(Status::invalid_argument("split: no split keys"));
    return;
  }
  enqueue(SplitInput{region_id, std::move(split_keys), request_deadline(rt_->clock(), opts),
                     std::move(done)});
}

Status StoreImpl::split_region(std::uint64_t region_id, std::vector<std::string> split_keys,
                               const RequestOptions& opts) {
  return wait_for<Status>(
      [&](auto cb) { async_split_region(region_id, std::move(split_keys), opts, std::move(cb)); });
}

Result<std::optional<std::string>> StoreImpl::get(std::string_view key,
                                                  const RequestOptions& opts) {
  std::uint64_t region_id = 0;
  if (auto local = lease_get(key, &region_id)) return std::move(*local);
  using R = Result<std::optional<std::string>>;
  return wait_for<R>([&](auto cb) { queue_get(key, region_id, opts, std::move(cb)); });
}

Result<std::vector<KvPair>> StoreImpl::scan(std::string_view start, std::string_view end,
                                            std::size_t limit, bool reverse,
                                            const RequestOptions& opts) {
  using R = Result<std::vector<KvPair>>;
  return wait_for<R>([&](auto cb) { async_scan(start, end, limit, reverse, opts, std::move(cb)); });
}

Status StoreImpl::write(RawBatch batch, const RequestOptions& opts) {
  return wait_for<Status>(
      [&](auto cb) { async_write_impl(std::move(batch), opts, std::move(cb), /*run_here=*/true); });
}

Status StoreImpl::put(std::string_view key, std::string_view value, const RequestOptions& opts) {
  RawBatch b;
  b.put(key, value);
  return write(std::move(b), opts);
}

Status StoreImpl::del(std::string_view key, const RequestOptions& opts) {
  RawBatch b;
  b.del(key);
  return write(std::move(b), opts);
}

Status StoreImpl::delete_range(std::string_view start, std::string_view end,
                               const RequestOptions& opts) {
  return wait_for<Status>([&](auto cb) { async_delete_range(start, end, opts, std::move(cb)); });
}

}  // namespace kvcore::raftstore
