// A linearizability checker for key-value histories recorded by tests.
//
// Each key is an independent register, initially absent, offering read and
// write (a write of nullopt deletes). A history is linearizable when every
// operation can be given one instant between its call and its return such
// that, taken in the order of those instants, every read returns the value of
// the latest write before it. Keys are checked separately (linearizability is
// compositional), each by the Wing & Gong search as improved by Lowe and
// Porcupine: depth-first over the order of operations, remembering each
// (set of operations already placed, register value) it has explored so no
// configuration is searched twice.
//
// Times: any monotonic unit (the simulated clock's ns). Two operations whose
// return and call carry the same time count as concurrent (either order is
// accepted), so a coarse clock never produces a false failure.
//
// Unknown outcomes: a write that timed out or whose client crashed may or may
// not have taken effect, at any time after its call; record it with
// `ret = kUnknownReturn` and the checker tries both. A read whose outcome is
// unknown tells nothing: the caller must leave it out (the checker rejects a
// read with `ret = kUnknownReturn` as a malformed history).
//
// Cost: the search is exponential in the number of mutually concurrent
// operations on one key, and keeps about 40 bytes per explored state (plus 4
// per operation left behind the search front unplaced: unknown-outcome
// writes that never took effect). `max_states` bounds the states explored
// over all keys; past it the answer is "inconclusive", never success.
//
// Thread-safety: check_linearizable is a pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace kvcore::test {

// The return time of an operation whose outcome is unknown (writes only).
inline constexpr std::int64_t kUnknownReturn = std::numeric_limits<std::int64_t>::max();

struct Operation {
  std::uint64_t client = 0;  // for the explanation only
  enum class Kind { kRead, kWrite } kind = Kind::kRead;
  std::string key;
  // A write: the value written (nullopt = delete). A read: the value returned
  // (nullopt = absent).
  std::optional<std::string> value;
  std::int64_t call = 0;
  // REQUIRES: call <= ret. kUnknownReturn for a write of unknown outcome.
  std::int64_t ret = 0;
};

struct LinearizabilityResult {
  // True only when an order was found for every key.
  bool ok = false;
  // On failure, human readable: the key, the operation whose return the
  // search could not get past (the earliest point where the key's history
  // stops being linearizable), and a small window of the key's operations
  // that cannot be ordered: the history up to that return, shrunk while it
  // still fails (each step only drops constraints, so the window is a true
  // witness). Or why the check was inconclusive or the history malformed.
  // Empty on success.
  std::string explanation;
  // States the search explored (the explanation's own search not included).
  std::size_t states_explored = 0;
};

// Whether `history` (operations in any order) is linearizable.
[[nodiscard]] LinearizabilityResult check_linearizable(std::vector<Operation> history,
                                                       std::size_t max_states = 10'000'000);

}  // namespace kvcore::test
