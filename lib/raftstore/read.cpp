// Reading user data from a kv engine snapshot, and the region errors.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "raftstore/requests.hpp"

namespace kvcore::raftstore {

Status not_leader_status(std::uint64_t region, std::uint64_t leader_store,
                         std::uint64_t leader_peer) {
  auto d = std::make_shared<NotLeaderDetail>();
  d->region_id = region;
  d->leader_store_id = leader_store;
  d->leader_peer_id = leader_peer;
  return {Code::kUnavailable, fmt::format("not the leader of region {}", region),
          SubCode::kNotLeader, std::move(d)};
}

Status key_not_in_region(std::string_view key, const RegionMeta& region) {
  return {Code::kInvalidArgument,
          fmt::format("key of {} bytes is outside region {}", key.size(), region.id),
          SubCode::kKeyNotInRegion};
}

Status region_not_found(std::uint64_t region) {
  return {Code::kUnavailable, fmt::format("no peer of region {} on this store", region),
          SubCode::kRegionNotFound};
}

Status epoch_not_match(const RegionMeta& region, const RegionEpoch& expected) {
  return {
      Code::kUnavailable,
      fmt::format("region {} is at epoch {}/{}, the request expected {}/{}", region.id,
                  region.epoch.conf_ver, region.epoch.version, expected.conf_ver, expected.version),
      SubCode::kEpochNotMatch};
}

Status stale_command(std::uint64_t region, std::uint64_t index) {
  return {Code::kUnavailable,
          fmt::format("region {}: proposal at {} superseded by a newer term", region, index),
          SubCode::kStaleCommand};
}

Status region_merging(std::uint64_t region) {
  return {Code::kUnavailable, fmt::format("region {} is being merged", region),
          SubCode::kRegionMerging};
}

void ReadRequest::fail(const Status& s) {
  if (get_done) {
    auto cb = std::move(get_done);
    cb(s);
  } else if (scan_done) {
    auto cb = std::move(scan_done);
    cb(s);
  }
}

namespace {

Result<std::vector<KvPair>> scan_region(const Reader& reader, const RegionMeta& region,
                                        const ScanArgs& a) {
  const bool covered = a.start >= region.start_key &&
                       (region.end_key.empty() || (!a.end.empty() && a.end <= region.end_key));
  if (!covered) return key_not_in_region(a.start, region);
  IterOptions io;
  io.lower_bound = a.start;
  io.upper_bound = a.end;
  std::vector<KvPair> out;
  if (!io.upper_bound.empty() && io.lower_bound >= io.upper_bound) return out;
  auto it = reader.new_iterator(CF::kDefault, io);
  const auto more = [&] { return it->valid() && (a.limit == 0 || out.size() < a.limit); };
  if (a.reverse) {
    for (it->seek_to_last(); more(); it->prev()) {
      out.push_back({std::string(it->key()), std::string(it->value())});
    }
  } else {
    for (it->seek_to_first(); more(); it->next()) {
      out.push_back({std::string(it->key()), std::string(it->value())});
    }
  }
  KVCORE_RETURN_IF_ERROR(it->status());
  return out;
}

}  // namespace

void execute_read(const Reader& reader, const RegionMeta& region, ReadRequest& req) {
  if (req.expect_epoch && !epoch_matches(region, *req.expect_epoch)) {
    req.fail(epoch_not_match(region, *req.expect_epoch));
    return;
  }
  if (const auto* g = std::get_if<GetArgs>(&req.args)) {
    auto cb = std::move(req.get_done);
    if (!region.contains(g->key)) {
      cb(key_not_in_region(g->key, region));
      return;
    }
    cb(reader.get(CF::kDefault, g->key));
    return;
  }
  const auto& a = std::get<ScanArgs>(req.args);
  auto cb = std::move(req.scan_done);
  cb(scan_region(reader, region, a));
}

}  // namespace kvcore::raftstore
