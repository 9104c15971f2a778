// The persistent state a raft node reads: hard state, membership, log entries
// and the latest snapshot. The application implements Storage over its own
// persistence; MemoryStorage is the in-memory reference (tests, and the
// model of what the store's raft log engine must do).
//
// Thread-safety: the raft core calls Storage from the thread that drives its
// RawNode only. MemoryStorage is not synchronized.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kvcore/raft/types.hpp"
#include "kvcore/status.hpp"

namespace kvcore::raft {

// Why a Storage call could not return what was asked; carried as the detail
// of the returned Status so the core can tell the cases apart.
struct StorageErrorDetail final : StatusDetail {
  enum class Kind : std::uint8_t {
    kCompacted,                 // the index is below first_index()
    kUnavailable,               // the index is above last_index()
    kSnapshotOutOfDate,         // a newer snapshot is already applied
    kSnapshotTemporarilyUnavailable,  // try again later (being generated)
  };
  Kind kind = Kind::kCompacted;
  explicit StorageErrorDetail(Kind k) : kind(k) {}
  [[nodiscard]] std::string describe() const override;
};
[[nodiscard]] Status storage_error(StorageErrorDetail::Kind kind);
// True when `s` carries a StorageErrorDetail of `kind`.
[[nodiscard]] bool is_storage_error(const Status& s, StorageErrorDetail::Kind kind);

struct RaftState {
  HardState hard_state;
  ConfState conf_state;
};

class Storage {
 public:
  virtual ~Storage() = default;
  [[nodiscard]] virtual Result<RaftState> initial_state() const = 0;
  // Entries [lo, hi), at most max_bytes of them but always at least one when
  // lo < hi. Compacted when lo < first_index(); Unavailable when hi > last_index()+1.
  [[nodiscard]] virtual Result<std::vector<Entry>> entries(Index lo, Index hi,
                                                           std::uint64_t max_bytes) const = 0;
  // The term of entry i, for i in [first_index()-1, last_index()] (the entry
  // just before first_index() is known from the snapshot).
  [[nodiscard]] virtual Result<Term> term(Index i) const = 0;
  // The index of the first entry available (older ones are compacted).
  [[nodiscard]] virtual Result<Index> first_index() const = 0;
  [[nodiscard]] virtual Result<Index> last_index() const = 0;
  // The most recent snapshot. SnapshotTemporarilyUnavailable while one is being
  // made; the core retries later.
  [[nodiscard]] virtual Result<Snapshot> snapshot() const = 0;
};

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();
  // A storage whose initial membership is `voters` (and `learners`), as if a
  // snapshot at index 0 held that ConfState; used to bootstrap a group.
  static MemoryStorage with_conf_state(ConfState cs);

  [[nodiscard]] Result<RaftState> initial_state() const override;
  [[nodiscard]] Result<std::vector<Entry>> entries(Index lo, Index hi,
                                                   std::uint64_t max_bytes) const override;
  [[nodiscard]] Result<Term> term(Index i) const override;
  [[nodiscard]] Result<Index> first_index() const override;
  [[nodiscard]] Result<Index> last_index() const override;
  [[nodiscard]] Result<Snapshot> snapshot() const override;

  void set_hard_state(const HardState& hs) { hard_state_ = hs; }
  [[nodiscard]] const HardState& hard_state() const { return hard_state_; }
  void set_conf_state(const ConfState& cs) { snapshot_.metadata.conf_state = cs; }
  // Replaces the whole state with the snapshot. SnapshotOutOfDate when it is
  // older than the current one.
  [[nodiscard]] Status apply_snapshot(Snapshot snap);
  // Makes a snapshot at index i (<= last index) holding `data` and `cs`
  // (the current ConfState when absent). SnapshotOutOfDate when i is not
  // newer than the current snapshot.
  [[nodiscard]] Result<Snapshot> create_snapshot(Index i, std::optional<ConfState> cs,
                                                 std::string data);
  // Discards entries before `compact_index`. Compacted when already
  // compacted; Unavailable when beyond the last index.
  [[nodiscard]] Status compact(Index compact_index);
  // Appends entries, truncating any conflicting suffix first. Entries below
  // first_index() are ignored. InvalidArgument when they leave a gap.
  [[nodiscard]] Status append(const std::vector<Entry>& entries);

 private:
  HardState hard_state_;
  Snapshot snapshot_;
  // entries_[0] is a dummy holding the snapshot's index and term.
  std::vector<Entry> entries_;
};

}  // namespace kvcore::raft
