#include "kvcore/status.hpp"

#include <fmt/format.h>

namespace kvcore {

std::string_view to_string(Code code) noexcept {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kNotFound: return "NotFound";
    case Code::kAlreadyExists: return "AlreadyExists";
    case Code::kFailedPrecondition: return "FailedPrecondition";
    case Code::kAborted: return "Aborted";
    case Code::kUnavailable: return "Unavailable";
    case Code::kDeadlineExceeded: return "DeadlineExceeded";
    case Code::kResourceExhausted: return "ResourceExhausted";
    case Code::kCorruption: return "Corruption";
    case Code::kIOError: return "IOError";
    case Code::kNotSupported: return "NotSupported";
    case Code::kCancelled: return "Cancelled";
    case Code::kInternal: return "Internal";
  }
  return "Unknown";
}

std::string_view to_string(SubCode sub) noexcept {
  switch (sub) {
    case SubCode::kNone: return "";
    case SubCode::kNotLeader: return "NotLeader";
    case SubCode::kEpochNotMatch: return "EpochNotMatch";
    case SubCode::kRegionNotFound: return "RegionNotFound";
    case SubCode::kKeyNotInRegion: return "KeyNotInRegion";
    case SubCode::kServerIsBusy: return "ServerIsBusy";
    case SubCode::kStaleCommand: return "StaleCommand";
    case SubCode::kProposalDropped: return "ProposalDropped";
    case SubCode::kRegionMerging: return "RegionMerging";
    case SubCode::kKeyIsLocked: return "KeyIsLocked";
    case SubCode::kWriteConflict: return "WriteConflict";
    case SubCode::kTxnNotFound: return "TxnNotFound";
    case SubCode::kDeadlock: return "Deadlock";
    case SubCode::kConditionFailed: return "ConditionFailed";
  }
  return "Unknown";
}

std::string NotLeaderDetail::describe() const {
  if (leader_store_id == 0) return fmt::format("region {} has no known leader", region_id);
  return fmt::format("region {} leader: store {} peer {}", region_id, leader_store_id,
                     leader_peer_id);
}

std::string EpochNotMatchDetail::describe() const {
  std::string out = fmt::format("region {} changed; current regions:", region_id);
  if (current_regions.empty()) out += " none here";
  for (const auto& r : current_regions) {
    out += fmt::format(" [{} ver {}/{} {}B..{}B leader {}]", r.region_id, r.conf_ver, r.version,
                       r.start_key.size(), r.end_key.size(), r.leader_store_id);
  }
  return out;
}

std::string ConditionFailedDetail::describe() const {
  // Sizes, not bytes: keys and values are arbitrary binary.
  std::string out = "actual:";
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const auto& [key, value] = actual[i];
    out += value ? fmt::format(" #{} {}B key = {}B", i, key.size(), value->size())
                 : fmt::format(" #{} {}B key absent", i, key.size());
  }
  return out;
}

Status::Status(Code code, std::string_view message, SubCode sub,
               std::shared_ptr<const StatusDetail> detail) {
  if (code == Code::kOk) return;
  rep_ = std::make_shared<const Rep>(Rep{code, sub, std::string(message), std::move(detail)});
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  std::string out(kvcore::to_string(rep_->code));
  if (rep_->sub != SubCode::kNone) {
    out += '/';
    out += kvcore::to_string(rep_->sub);
  }
  if (!rep_->message.empty()) {
    out += ": ";
    out += rep_->message;
  }
  if (rep_->detail) {
    out += " [";
    out += rep_->detail->describe();
    out += ']';
  }
  return out;
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) return *this;
  return Status(rep_->code, fmt::format("{}: {}", context, rep_->message), rep_->sub,
                rep_->detail);
}

}  // namespace kvcore
