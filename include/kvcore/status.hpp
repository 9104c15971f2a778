// kvcore::Status and kvcore::Result<T>: how every kvcore call reports failure.
//
// A Status is either OK or carries a Code (what the caller should do next), an
// optional SubCode (which region or transaction error it is), a message, and an
// optional typed detail (for example the leader hint of a NotLeader error).
// No exception crosses the kvcore API: every fallible call returns a Status or
// a Result<T>. A missing key is an empty std::optional, never an error.
//
// Thread-safety: a Status is an immutable value; distinct objects may be used
// from different threads, and a const Status may be shared between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace kvcore {

// What the caller should do. Modelled on the canonical codes of abseil status,
// narrowed to what a storage library returns.
enum class Code : std::uint8_t {
  kOk = 0,
  // The call itself is wrong (bad key range, bad option). Fix the call; retrying
  // the same call fails the same way.
  kInvalidArgument,
  // A named thing (a file, a region, a transaction) does not exist.
  kNotFound,
  // The thing the call wanted to create exists already.
  kAlreadyExists,
  // The system is not in the state the call requires (wrong region epoch, engine
  // closed, directory of another engine). Fix the state first, then retry.
  kFailedPrecondition,
  // A concurrency conflict ended the operation (write conflict, deadlock). Retry
  // the whole transaction, not just this call.
  kAborted,
  // The service is temporarily unable to serve (not leader, no leader yet,
  // region moving). Retry the same call, after re-routing if a hint is given.
  kUnavailable,
  // The deadline passed before the call finished. Its outcome is unknown.
  kDeadlineExceeded,
  // A limit was hit (server busy, flow control, disk full). Back off, then retry.
  kResourceExhausted,
  // Stored data or an input frame is damaged. Do not retry; repair or discard.
  kCorruption,
  // The operating system reported an I/O failure.
  kIOError,
  // The engine or build does not offer this operation.
  kNotSupported,
  // The call was cancelled by its owner.
  kCancelled,
  // An invariant of kvcore was broken. A bug: report it.
  kInternal,
};

// Which region or transaction error a Status is; kNone for everything else.
// The Code still says what to do; the SubCode says why.
enum class SubCode : std::uint8_t {
  kNone = 0,
  // Region errors (Code::kUnavailable or kFailedPrecondition).
  kNotLeader,        // detail: NotLeaderDetail with the leader hint, when known
  kEpochNotMatch,    // the request's region epoch is stale: re-route (EpochNotMatchDetail)
  kRegionNotFound,   // this store has no peer of the region (EpochNotMatchDetail when the
                     // request named keys)
  kKeyNotInRegion,   // the key is outside the region's range (EpochNotMatchDetail)
  kServerIsBusy,     // flow control or a full queue (Code::kResourceExhausted)
  kStaleCommand,     // the proposal was superseded by a newer term
  kProposalDropped,  // raft dropped the proposal (no leader, transfer in flight)
  kRegionMerging,    // the region is being merged away: retry shortly, then re-route
  // Transaction errors.
  kKeyIsLocked,    // another transaction's lock is in the way
  kWriteConflict,  // a newer commit conflicts (Code::kAborted)
  kTxnNotFound,    // the transaction's primary lock is gone
  kDeadlock,       // the lock wait would close a cycle (Code::kAborted)
  // Conditional writes.
  kConditionFailed,  // a RawBatch::expect() did not hold (Code::kFailedPrecondition,
                     // ConditionFailedDetail)
};

std::string_view to_string(Code code) noexcept;
std::string_view to_string(SubCode sub) noexcept;

// Base of the typed payloads a Status may carry. Later layers derive from it
// (region errors carry routing hints, transaction errors carry locks).
class StatusDetail {
 public:
  virtual ~StatusDetail() = default;
  // A short human-readable rendering, appended to Status::to_string().
  [[nodiscard]] virtual std::string describe() const = 0;
};

// Detail of SubCode::kNotLeader: which store likely leads the region (0: unknown).
struct NotLeaderDetail final : StatusDetail {
  std::uint64_t region_id = 0;
  std::uint64_t leader_store_id = 0;
  std::uint64_t leader_peer_id = 0;
  [[nodiscard]] std::string describe() const override;
};

// One region as a store knows it: enough to route a request to it again.
struct RegionInfo {
  std::uint64_t region_id = 0;
  std::string start_key;  // inclusive
  std::string end_key;    // exclusive; empty means "to the last key"
  std::uint64_t conf_ver = 0;
  std::uint64_t version = 0;
  std::uint64_t leader_store_id = 0;  // 0: unknown
  friend bool operator==(const RegionInfo&, const RegionInfo&) = default;
};

// Detail of a request that failed because the region it was routed to
// changed under it: SubCode::kEpochNotMatch (a split or merge changed the
// region's epoch), kKeyNotInRegion (a key left the region's range), and
// kRegionNotFound (the region is gone from the store). `current_regions` are
// the regions of the answering store that overlap the request's keys,
// ascending by start key, as that store knew them when it answered: route the
// request (or each part of it) to the region holding its keys and retry.
// Empty when the store holds none of the keys.
struct EpochNotMatchDetail final : StatusDetail {
  std::uint64_t region_id = 0;  // the region the request was routed to
  std::vector<RegionInfo> current_regions;
  [[nodiscard]] std::string describe() const override;
};

// Detail of SubCode::kConditionFailed: a conditional write (RawBatch::expect)
// found its expected keys holding other values, and wrote nothing. `actual`
// has one entry per expect() of the batch, in the order of the calls: the
// key and its value (nullopt: absent) as read at the point in the region's
// log where the write applied, so the caller learns what it raced with and
// can retry from there.
struct ConditionFailedDetail final : StatusDetail {
  std::vector<std::pair<std::string, std::optional<std::string>>> actual;
  [[nodiscard]] std::string describe() const override;
};

class [[nodiscard]] Status {
 public:
  // OK.
  Status() noexcept = default;
  Status(Code code, std::string_view message, SubCode sub = SubCode::kNone,
         std::shared_ptr<const StatusDetail> detail = nullptr);

  static Status ok() noexcept { return {}; }
  static Status invalid_argument(std::string_view m) { return {Code::kInvalidArgument, m}; }
  static Status not_found(std::string_view m) { return {Code::kNotFound, m}; }
  static Status already_exists(std::string_view m) { return {Code::kAlreadyExists, m}; }
  static Status failed_precondition(std::string_view m) { return {Code::kFailedPrecondition, m}; }
  static Status aborted(std::string_view m) { return {Code::kAborted, m}; }
  static Status unavailable(std::string_view m) { return {Code::kUnavailable, m}; }
  static Status deadline_exceeded(std::string_view m) { return {Code::kDeadlineExceeded, m}; }
  static Status resource_exhausted(std::string_view m) { return {Code::kResourceExhausted, m}; }
  static Status corruption(std::string_view m) { return {Code::kCorruption, m}; }
  static Status io_error(std::string_view m) { return {Code::kIOError, m}; }
  static Status not_supported(std::string_view m) { return {Code::kNotSupported, m}; }
  static Status cancelled(std::string_view m) { return {Code::kCancelled, m}; }
  static Status internal(std::string_view m) { return {Code::kInternal, m}; }

  [[nodiscard]] bool is_ok() const noexcept { return rep_ == nullptr; }
  explicit operator bool() const noexcept { return is_ok(); }
  [[nodiscard]] Code code() const noexcept { return rep_ ? rep_->code : Code::kOk; }
  [[nodiscard]] SubCode sub_code() const noexcept { return rep_ ? rep_->sub : SubCode::kNone; }
  // Valid as long as this Status (or a copy of it) lives.
  [[nodiscard]] std::string_view message() const noexcept {
    return rep_ ? std::string_view(rep_->message) : std::string_view();
  }
  [[nodiscard]] const StatusDetail* detail() const noexcept {
    return rep_ ? rep_->detail.get() : nullptr;
  }
  // The detail as type T, or nullptr when it is absent or of another type.
  template <class T>
  [[nodiscard]] const T* detail_as() const noexcept {
    return dynamic_cast<const T*>(detail());
  }
  // "OK", or "<Code>[/<SubCode>]: <message> [<detail>]".
  [[nodiscard]] std::string to_string() const;

  // A copy with `context + ": "` prepended to the message; code, sub-code and
  // detail are kept. An OK status stays OK.
  [[nodiscard]] Status with_context(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) noexcept {
    return a.code() == b.code() && a.sub_code() == b.sub_code();
  }

 private:
  struct Rep {
    Code code;
    SubCode sub;
    std::string message;
    std::shared_ptr<const StatusDetail> detail;
  };
  // Shared and immutable: copying a Status never allocates.
  std::shared_ptr<const Rep> rep_;
};

// A value of type T, or the Status that explains why there is none.
// REQUIRES: a Result is never constructed from an OK Status.
template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>, "Result<Status> is meaningless");

 public:
  using value_type = T;

  Result(const T& value) : v_(std::in_place_index<0>, value) {}            // NOLINT
  Result(T&& value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT
  Result(Status status) : v_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    if (std::get<1>(v_).is_ok()) {
      v_.template emplace<1>(Code::kInternal, "Result constructed from an OK Status");
    }
  }
  template <class U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, T> &&
           !std::is_same_v<std::remove_cvref_t<U>, Status> &&
           !std::is_same_v<std::remove_cvref_t<U>, Result>) Result(U&& value)
      : v_(std::in_place_index<0>, std::forward<U>(value)) {}  // NOLINT

  [[nodiscard]] bool is_ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return is_ok(); }

  // OK when a value is present.
  [[nodiscard]] Status status() const { return is_ok() ? Status() : std::get<1>(v_); }

  // REQUIRES: is_ok().
  [[nodiscard]] T& value() & { return std::get<0>(v_); }
  [[nodiscard]] const T& value() const& { return std::get<0>(v_); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <class U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return is_ok() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Status> v_;
};

namespace detail {
inline Status status_of(const Status& s) { return s; }
template <class T>
Status status_of(const Result<T>& r) {
  return r.status();
}
}  // namespace detail

}  // namespace kvcore

// Returns from the enclosing function when `expr` (a Status or Result) failed.
#define KVCORE_RETURN_IF_ERROR(expr)                                                        \
  do {                                                                                      \
    if (auto kvcore_status_ = ::kvcore::detail::status_of(expr); !kvcore_status_.is_ok()) { \
      return kvcore_status_;                                                                \
    }                                                                                       \
  } while (0)

#define KVCORE_CONCAT_INNER_(a, b) a##b
#define KVCORE_CONCAT_(a, b) KVCORE_CONCAT_INNER_(a, b)
#define KVCORE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.is_ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

// `KVCORE_ASSIGN_OR_RETURN(auto x, make_x());` assigns the value of a Result or
// returns its Status from the enclosing function.
#define KVCORE_ASSIGN_OR_RETURN(lhs, expr) \
  KVCORE_ASSIGN_OR_RETURN_IMPL_(KVCORE_CONCAT_(kvcore_result_, __LINE__), lhs, expr)
