// A linearizability checker for key-value histories recorded by tests.
//
// Each key is an independent register, initially absent, offering read,
// write (a write of nullopt deletes) and compare-and-set. A history is
// linearizable when every operation can be given one instant between its call
// and its return such that, taken in the order of those instants, every read
// returns, and every compare-and-set expects, the value of the latest write or
// compare-and-set before it. Keys are checked separately (linearizability
// is compositional), each by the Wing & Gong search as improved by Lowe and
// Porcupine: depth-first over the order of operations, remembering each
// (set of operations already placed, register value) it has explored so no
// configuration is searched twice. That pair is the whole state: what may
// still be placed, and whether it may, depends on nothing else.
//
// Times: any monotonic unit (the simulated clock's ns). Two operations whose
// return and call carry the same time count as concurrent (either order is
// accepted), so a coarse clock never produces a false failure.
//
// Compare-and-set: record only the ones that succeeded (swapped) as kCas; a
// compare-and-set that failed observed the register, so record it as a kRead
// of the value it reported finding.
//
// Unknown outcomes: a write or compare-and-set that timed out or whose client
// crashed may or may not have taken effect, at any time after its call;
// record it with `ret = kUnknownReturn` and the checker tries both. (An
// unknown compare-and-set that ran while the register held something else
// changed nothing, which is the same as not taking effect.) A read whose
// outcome is unknown tells nothing: the caller must leave it out (the checker
// rejects a read with `ret = kUnknownReturn` as a malformed history).
//
// Cost: the search is exponential in the number of mutually concurrent
// operations on one key, and keeps about 40 bytes per explored state (plus 4
// per operation left behind the search front unplaced: unknown-outcome
// writes and compare-and-sets that never took effect). `max_states` bounds
// the states explored over all keys; past it the answer is "inconclusive",
// never success.
//
// Thread-safety: every function here is pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace kvcore::test {

// The return time of an operation whose outcome is unknown (writes and
// compare-and-sets only).
inline constexpr std::int64_t kUnknownReturn = std::numeric_limits<std::int64_t>::max();

struct Operation {
  std::uint64_t client = 0;  // for the explanation only
  enum class Kind { kRead, kWrite, kCas } kind = Kind::kRead;
  std::string key;
  // A write or compare-and-set: the value written (nullopt = delete). A read:
  // the value returned (nullopt = absent).
  std::optional<std::string> value;
  // A compare-and-set: the value the register had to hold for the swap
  // (nullopt = absent). REQUIRES: nullopt for reads and writes (a history
  // where it is set on them is rejected as malformed: most likely a
  // compare-and-set recorded under the wrong kind).
  std::optional<std::string> expected;
  std::int64_t call = 0;
  // REQUIRES: call <= ret. kUnknownReturn for a write or compare-and-set of
  // unknown outcome.
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

// `op` as the explanations print it, e.g. `client 3 cas "a" -> "b" [10, 20]`
// or `client 1 write "x" [5, unknown]`, for other checkers' messages.
[[nodiscard]] std::string to_string(const Operation& op);

// A value for a message: quoted with non-printable bytes escaped and long
// values cut, or `absent` for nullopt.
[[nodiscard]] std::string quote_value(const std::optional<std::string>& value);

}  // namespace kvcore::test
