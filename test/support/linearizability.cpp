#include "linearizability.hpp"

#include <algorithm>
#include <bit>
#include <map>
#include <set>
#include <span>
#include <string_view>
#include <tuple>
#include <utility>

#include "util/splitmix.hpp"

namespace kvcore::test {
namespace {

using ValueId = std::int32_t;  // per key; 0 = absent
constexpr ValueId kAbsent = 0;
constexpr ValueId kNone = -1;
constexpr std::int64_t kOptional = std::numeric_limits<std::int64_t>::max();

// An operation on one key with its times replaced by the positions of its
// call and return events in the key's event order. Positions are distinct, so
// the search needs no tie rule; the tie rule (calls before returns) is applied
// once when positions are assigned.
//
// Every kind is one rule: where placed, the register must hold `needs`
// (kNone: anything), and placing it sets the register to `sets` (kNone:
// leaves it as it was). A read needs its value and sets nothing; a write
// needs nothing and sets its value; a compare-and-set needs its expected
// value and sets its value.
struct KeyOp {
  ValueId needs = kNone;
  ValueId sets = kNone;
  std::int64_t call = 0;
  // kOptional: may take effect any time after call, or never. An optional
  // compare-and-set placed where the register does not hold `needs` would
  // change nothing, so the search only places it where it does.
  std::int64_t ret = kOptional;
  std::size_t source = 0;  // index into the key's operations
};

enum class Outcome { kOk, kFail, kBudget };

struct SearchResult {
  Outcome outcome = Outcome::kOk;
  std::size_t explored = 0;
  // On kFail: the latest return event at which some branch of the search was
  // stuck. Every prefix of the history ending before it is linearizable, the
  // one ending at it is not.
  std::int64_t furthest_return = -1;
};

// The (linearized set, register value) configurations already explored.
//
// Operations are numbered in call order, and the search only places an
// operation called before the earliest return still pending, so a linearized
// set is "everything below `limit`, except a few": the operations still open
// at the search front, and optional writes never placed. An entry stores that
// form, [hash lo, hash hi, value, limit, #zeros, zeros...], which stays small
// however long the history, in an open-addressed table of pool offsets.
class StateCache {
 public:
  // True when the configuration was not there before. `zeros`: the indices
  // below `limit` not in the set, ascending.
  bool insert(std::uint64_t hash, ValueId value, std::uint32_t limit,
              std::span<const std::uint32_t> zeros) {
    if ((used_ + 1) * 2 > slots_.size()) grow();
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      if (slots_[i] == 0) {
        slots_[i] = pool_.size() + 1;
        ++used_;
        pool_.push_back(static_cast<std::uint32_t>(hash));
        pool_.push_back(static_cast<std::uint32_t>(hash >> 32));
        pool_.push_back(static_cast<std::uint32_t>(value));
        pool_.push_back(limit);
        pool_.push_back(static_cast<std::uint32_t>(zeros.size()));
        pool_.insert(pool_.end(), zeros.begin(), zeros.end());
        return true;
      }
      const std::uint32_t* e = pool_.data() + (slots_[i] - 1);
      if (e[0] == static_cast<std::uint32_t>(hash) &&
          e[1] == static_cast<std::uint32_t>(hash >> 32) &&
          e[2] == static_cast<std::uint32_t>(value) && e[3] == limit && e[4] == zeros.size() &&
          std::equal(zeros.begin(), zeros.end(), e + 5)) {
        return false;
      }
    }
  }

 private:
  void grow() {
    std::vector<std::uint64_t> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
    const std::size_t mask = slots_.size() - 1;
    for (const std::uint64_t s : old) {
      if (s == 0) continue;
      const std::uint32_t* e = pool_.data() + (s - 1);
      const std::uint64_t hash = e[0] | (std::uint64_t{e[1]} << 32);
      std::size_t i = hash & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  std::vector<std::uint32_t> pool_;
  std::vector<std::uint64_t> slots_;  // pool offset + 1; 0 = empty
  std::size_t used_ = 0;
};

std::uint64_t mix(std::uint64_t x) { return util::splitmix64_next(x); }

// Lowe's depth-first search with Porcupine's memoization over one register
// history. Events sit in a doubly linked list in position order; linearizing
// an operation unlinks its call and return ("lift"), backtracking relinks
// them in reverse order. The search succeeds once no return event is left:
// every operation with a known return is placed, and the optional writes and
// compare-and-sets still unplaced are taken never to have happened.
SearchResult search(std::span<const KeyOp> input, ValueId initial, std::size_t budget) {
  // Numbered in call order (see StateCache).
  std::vector<KeyOp> ops(input.begin(), input.end());
  std::sort(ops.begin(), ops.end(), [](const KeyOp& a, const KeyOp& b) { return a.call < b.call; });

  struct Node {
    std::int32_t op = -1;
    bool call = false;
    std::int32_t match = -1;  // call: its return node, or -1 when optional
    std::int32_t prev = -1;
    std::int32_t next = -1;
  };
  std::vector<std::tuple<std::int64_t, bool, std::int32_t>> events;  // (position, is_return, op)
  events.reserve(ops.size() * 2);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const auto op = static_cast<std::int32_t>(i);
    events.emplace_back(ops[i].call, false, op);
    if (ops[i].ret != kOptional) events.emplace_back(ops[i].ret, true, op);
  }
  std::sort(events.begin(), events.end());

  // nodes[0] is the head sentinel; -1 ends the list.
  std::vector<Node> nodes(events.size() + 1);
  std::vector<std::int32_t> call_node(ops.size(), -1);
  for (std::size_t k = 0; k < events.size(); ++k) {
    const auto idx = static_cast<std::int32_t>(k + 1);
    auto& n = nodes[k + 1];
    n.op = std::get<2>(events[k]);
    n.call = !std::get<1>(events[k]);
    n.prev = idx - 1;
    n.next = k + 1 < events.size() ? idx + 1 : -1;
    if (n.call) {
      call_node[n.op] = idx;
    } else {
      nodes[call_node[n.op]].match = idx;
    }
  }
  nodes[0].next = events.empty() ? -1 : 1;

  auto unlink = [&](std::int32_t i) {
    nodes[nodes[i].prev].next = nodes[i].next;
    if (nodes[i].next != -1) nodes[nodes[i].next].prev = nodes[i].prev;
  };
  auto relink = [&](std::int32_t i) {
    nodes[nodes[i].prev].next = i;
    if (nodes[i].next != -1) nodes[nodes[i].next].prev = i;
  };
  auto lift = [&](std::int32_t c) {
    unlink(c);
    if (nodes[c].match != -1) unlink(nodes[c].match);
  };
  auto unlift = [&](std::int32_t c) {
    if (nodes[c].match != -1) relink(nodes[c].match);
    relink(c);
  };

  // The linearized set as a bitset, with its Zobrist hash and the number of
  // leading all-ones words kept current in O(1) per change.
  constexpr std::uint64_t kFull = ~std::uint64_t{0};
  std::vector<std::uint64_t> op_key(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) op_key[i] = mix(i);
  std::vector<std::uint64_t> bits((ops.size() + 63) / 64);
  std::size_t full_words = 0;
  std::uint64_t set_hash = 0;
  auto flip = [&](std::int32_t op) {
    const auto i = static_cast<std::size_t>(op);
    const std::size_t w = i / 64;
    bits[w] ^= std::uint64_t{1} << (i % 64);
    set_hash ^= op_key[i];
    if (bits[w] != kFull) {
      full_words = std::min(full_words, w);
    } else {
      while (full_words < bits.size() && bits[full_words] == kFull) ++full_words;
    }
  };
  std::vector<std::uint32_t> zeros;
  auto zeros_below = [&](std::uint32_t limit) {
    zeros.clear();
    for (std::size_t w = full_words; w * 64 < limit; ++w) {
      for (std::uint64_t z = ~bits[w]; z != 0; z &= z - 1) {
        const auto i =
            static_cast<std::uint32_t>(w * 64 + static_cast<std::size_t>(std::countr_zero(z)));
        if (i >= limit) break;
        zeros.push_back(i);
      }
    }
  };

  StateCache cache;
  struct Frame {
    std::int32_t call_node;
    ValueId prev_value;
    std::uint32_t limit;  // 1 + the highest operation placed so far on this path
  };
  std::vector<Frame> stack;
  SearchResult result;
  ValueId value = initial;
  std::int32_t node = nodes[0].next;
  while (node != -1) {
    const Node& n = nodes[node];
    if (n.call) {
      const KeyOp& op = ops[n.op];
      if (op.needs == kNone || op.needs == value) {
        const ValueId next_value = op.sets == kNone ? value : op.sets;
        const std::uint32_t limit =
            std::max(stack.empty() ? 0u : stack.back().limit, static_cast<std::uint32_t>(n.op) + 1);
        flip(n.op);
        zeros_below(limit);
        const std::uint64_t hash =
            set_hash ^ mix(0x5eed0000'00000000ull + static_cast<std::uint32_t>(next_value));
        if (cache.insert(hash, next_value, limit, zeros)) {
          if (++result.explored > budget) {
            result.outcome = Outcome::kBudget;
            return result;
          }
          stack.push_back({node, value, limit});
          value = next_value;
          lift(node);
          node = nodes[0].next;
          continue;
        }
        flip(n.op);
      }
      node = n.next;
    } else {
      result.furthest_return = std::max(result.furthest_return, ops[n.op].ret);
      if (stack.empty()) {
        result.outcome = Outcome::kFail;
        return result;
      }
      const Frame f = stack.back();
      stack.pop_back();
      value = f.prev_value;
      flip(nodes[f.call_node].op);
      unlift(f.call_node);
      node = nodes[f.call_node].next;
    }
  }
  result.outcome = Outcome::kOk;
  return result;
}

// --- explanation ---------------------------------------------------------------

// Budgets of the shrinking search: it only sharpens the message, so it gives
// up early and keeps the smallest failing history found so far.
constexpr std::size_t kShrinkCheckStates = 100'000;
constexpr std::size_t kShrinkTotalStates = 5'000'000;
constexpr std::size_t kMaxLines = 80;

// Which operations of `kept` a shrinking step drops when it tries to drop
// those in [start, end): never `stuck`, and only a set after which no
// remaining operation needs a value that a dropped one sets. That keeps the
// step sound: in any order of the larger history, the latest operation
// setting the register before a remaining one set the value it needs, so
// that setter remains, and the order restricted to the remaining operations
// still explains each of them.
//
// First the range grows by everything that (transitively) needs a value it
// sets; when that would take the stuck operation, the range shrinks instead
// by every setter a remaining operation needs. Either may come out empty.
std::vector<bool> plan_drop(std::span<const KeyOp> kept, std::size_t start, std::size_t end,
                            std::size_t stuck) {
  ValueId max_value = kAbsent;
  for (const KeyOp& op : kept) max_value = std::max({max_value, op.sets, op.needs});
  const auto values = static_cast<std::size_t>(max_value) + 1;
  auto in_range = [&] {
    std::vector<bool> drop(kept.size(), false);
    for (std::size_t j = start; j < end; ++j) drop[j] = j != stuck;
    return drop;
  };

  std::vector<bool> drop = in_range();
  std::vector<bool> dropped_value(values, false);
  for (std::size_t j = 0; j < kept.size(); ++j) {
    if (drop[j] && kept[j].sets != kNone) dropped_value[kept[j].sets] = true;
  }
  bool takes_stuck = false;
  for (bool grew = true; grew && !takes_stuck;) {
    grew = false;
    for (std::size_t j = 0; j < kept.size() && !takes_stuck; ++j) {
      if (drop[j] || kept[j].needs == kNone || !dropped_value[kept[j].needs]) continue;
      takes_stuck = j == stuck;
      drop[j] = true;
      if (kept[j].sets != kNone && !dropped_value[kept[j].sets]) {
        dropped_value[kept[j].sets] = true;
        grew = true;
      }
    }
  }
  if (!takes_stuck) return drop;

  drop = in_range();
  std::vector<bool> needed(values, false);
  for (std::size_t j = 0; j < kept.size(); ++j) {
    if (!drop[j] && kept[j].needs != kNone) needed[kept[j].needs] = true;
  }
  for (bool shrank = true; shrank;) {
    shrank = false;
    for (std::size_t j = start; j < end; ++j) {
      if (!drop[j] || kept[j].sets == kNone || !needed[kept[j].sets]) continue;
      drop[j] = false;
      if (kept[j].needs != kNone && !needed[kept[j].needs]) {
        needed[kept[j].needs] = true;
        shrank = true;
      }
    }
  }
  return drop;
}

// The failing history of one key, shrunk to a small set of operations that
// still cannot be ordered, for a human to read.
//
// Every step keeps a witness: if the smaller history cannot be ordered, the
// full one cannot either, because each step only removes constraints.
//  1. Cut at the furthest stuck return: keep the operations called before it;
//     writes and compare-and-sets still pending there become optional,
//     pending reads go (the operations a linearization of the whole history
//     places before that return, in its order, linearize this prefix: every
//     one of them was called before it).
//  2. Drop operations, in chunks halving down to one (delta debugging), while
//     the rest still fails, as plan_drop allows.
// The operation whose return stopped the search stays: without it the prefix
// is linearizable.
std::string explain(const std::string& key, std::span<const Operation* const> originals,
                    std::span<const KeyOp> ops, std::int64_t furthest) {
  std::vector<KeyOp> kept;
  std::size_t stuck_source = 0;
  for (const KeyOp& op : ops) {
    if (op.call >= furthest) continue;
    if (op.ret <= furthest) {
      kept.push_back(op);
      if (op.ret == furthest) stuck_source = op.source;
    } else if (op.sets != kNone) {
      KeyOp pending = op;
      pending.ret = kOptional;
      kept.push_back(pending);
    }
  }
  std::sort(kept.begin(), kept.end(),
            [](const KeyOp& a, const KeyOp& b) { return a.call < b.call; });
  const std::size_t prefix_size = kept.size();

  std::size_t spent = 0;
  auto still_fails = [&](const std::vector<KeyOp>& h) {
    const SearchResult r = search(h, kAbsent, kShrinkCheckStates);
    spent += r.explored;
    return r.outcome == Outcome::kFail;
  };
  std::size_t chunk = std::max<std::size_t>(kept.size() / 2, 1);
  while (spent < kShrinkTotalStates) {
    bool removed_any = false;
    for (std::size_t start = 0; start < kept.size() && spent < kShrinkTotalStates;) {
      const std::size_t end = std::min(start + chunk, kept.size());
      const auto stuck = static_cast<std::size_t>(
          std::find_if(kept.begin(), kept.end(),
                       [&](const KeyOp& op) { return op.source == stuck_source; }) -
          kept.begin());
      const std::vector<bool> drop = plan_drop(kept, start, end, stuck);
      if (std::find(drop.begin(), drop.end(), true) != drop.end()) {
        std::vector<KeyOp> trial;
        for (std::size_t j = 0; j < kept.size(); ++j) {
          if (!drop[j]) trial.push_back(kept[j]);
        }
        if (still_fails(trial)) {
          kept = std::move(trial);
          removed_any = true;
          continue;  // the next chunk now starts at `start`
        }
      }
      start = end;
    }
    if (!removed_any) {
      if (chunk == 1) break;
      chunk /= 2;
    } else {
      chunk = std::min(chunk, std::max<std::size_t>(kept.size() / 2, 1));
    }
  }

  std::string out = "key " + quote_value(key) + " is not linearizable: the " +
                    std::to_string(kept.size()) +
                    " operation(s) below cannot be ordered so that each takes effect between its "
                    "call and return, starting from an absent register. The history of the key "
                    "up to just before the return marked <- can be ordered.";
  if (kept.size() < prefix_size) {
    out += " The other " + std::to_string(prefix_size - kept.size()) +
           " operation(s) called before that return are left out: leaving operations out "
           "only makes ordering easier.";
  }
  if (std::any_of(kept.begin(), kept.end(),
                  [](const KeyOp& op) { return op.needs != kNone && op.sets != kNone; })) {
    out +=
        " A cas line is a compare-and-set that succeeded (or, with an unknown return, may "
        "have): it found the first value and wrote the second.";
  }
  out += "\n";
  std::size_t hidden = 0;
  for (std::size_t k = 0; k < kept.size(); ++k) {
    const bool stuck = kept[k].source == stuck_source;
    if (k >= kMaxLines && !stuck) {
      ++hidden;
      continue;
    }
    out += "  " + to_string(*originals[kept[k].source]);
    if (stuck) out += "  <-";
    out += "\n";
  }
  if (hidden > 0) out += "  (" + std::to_string(hidden) + " more not shown)\n";
  return out;
}

}  // namespace

LinearizabilityResult check_linearizable(std::vector<Operation> history, std::size_t max_states) {
  LinearizabilityResult result;
  std::map<std::string_view, std::vector<const Operation*>> by_key;
  for (std::size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    if (op.ret < op.call) {
      result.explanation = "malformed history: operation #" + std::to_string(i) + " (" +
                           to_string(op) + ") returns before it is called";
      return result;
    }
    if (op.kind == Operation::Kind::kRead && op.ret == kUnknownReturn) {
      result.explanation = "malformed history: operation #" + std::to_string(i) + " (" +
                           to_string(op) +
                           ") is a read of unknown outcome; leave such reads out of the history";
      return result;
    }
    if (op.kind != Operation::Kind::kCas && op.expected) {
      result.explanation = "malformed history: operation #" + std::to_string(i) + " (" +
                           to_string(op) + ") has an expected value " + quote_value(op.expected) +
                           " but is not a compare-and-set";
      return result;
    }
    by_key[op.key].push_back(&op);
  }

  // Small keys first: when the budget runs out on a large key, the smaller
  // ones have been decided, so a definite failure is still reported.
  std::vector<std::pair<std::string_view, std::vector<const Operation*>*>> keys;
  for (auto& [key, ops] : by_key) keys.emplace_back(key, &ops);
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return a.second->size() < b.second->size();
  });

  std::string inconclusive;
  for (auto& [key, originals] : keys) {
    // An operation of unknown outcome that sets a value no operation ever
    // needs (no read returned it, no compare-and-set expected it) can be
    // left out: placing it is never needed, since a write that nothing
    // observes can be taken out of any order without changing what the
    // others see. Writes of unique values that timed out are the common
    // case, and each one kept would multiply the search. A delete (absent)
    // stays: an absent read may be its doing.
    std::set<std::string_view> needed;
    for (const Operation* op : *originals) {
      if (op->kind == Operation::Kind::kRead && op->value) needed.insert(*op->value);
      if (op->kind == Operation::Kind::kCas && op->expected) needed.insert(*op->expected);
    }
    std::erase_if(*originals, [&](const Operation* op) {
      return op->ret == kUnknownReturn && op->kind != Operation::Kind::kRead && op->value &&
             needed.count(*op->value) == 0;
    });
    std::map<std::string_view, ValueId> ids;
    auto id_of = [&](const std::optional<std::string>& v) -> ValueId {
      if (!v) return kAbsent;
      return ids.try_emplace(*v, static_cast<ValueId>(ids.size() + 1)).first->second;
    };
    // Positions: by time, a call before a return at the same time (so the
    // two operations count as concurrent), then by input order.
    std::vector<std::tuple<std::int64_t, bool, std::size_t>> events;
    for (std::size_t j = 0; j < originals->size(); ++j) {
      const Operation& op = *(*originals)[j];
      events.emplace_back(op.call, false, j);
      if (op.ret != kUnknownReturn) events.emplace_back(op.ret, true, j);
    }
    std::sort(events.begin(), events.end());
    std::vector<KeyOp> ops(originals->size());
    for (std::size_t p = 0; p < events.size(); ++p) {
      const auto& [time, is_return, j] = events[p];
      (is_return ? ops[j].ret : ops[j].call) = static_cast<std::int64_t>(p);
    }
    for (std::size_t j = 0; j < ops.size(); ++j) {
      const Operation& op = *(*originals)[j];
      switch (op.kind) {
        case Operation::Kind::kRead: ops[j].needs = id_of(op.value); break;
        case Operation::Kind::kWrite: ops[j].sets = id_of(op.value); break;
        case Operation::Kind::kCas:
          ops[j].needs = id_of(op.expected);
          ops[j].sets = id_of(op.value);
          break;
      }
      ops[j].source = j;
    }

    const std::size_t remaining =
        max_states > result.states_explored ? max_states - result.states_explored : 0;
    const SearchResult r = search(ops, kAbsent, remaining);
    result.states_explored += std::min(r.explored, remaining);
    switch (r.outcome) {
      case Outcome::kOk: break;
      case Outcome::kFail:
        result.explanation = explain(std::string(key), *originals, ops, r.furthest_return);
        return result;
      case Outcome::kBudget:
        if (inconclusive.empty()) {
          inconclusive = "inconclusive: checking key " + quote_value(std::string(key)) + " (" +
                         std::to_string(ops.size()) +
                         " operations) needed more than max_states=" + std::to_string(max_states) +
                         " states; linearizability was neither shown nor refuted (raise "
                         "max_states or shorten the history)";
        }
        break;
    }
  }
  if (!inconclusive.empty()) {
    result.explanation = std::move(inconclusive);
    return result;
  }
  result.ok = true;
  return result;
}

std::string quote_value(const std::optional<std::string>& value) {
  if (!value) return "absent";
  constexpr std::size_t kShown = 32;
  std::string out = "\"";
  for (std::size_t i = 0; i < value->size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>((*value)[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (value->size() > kShown) out += "...(" + std::to_string(value->size()) + " bytes)";
  return out;
}

std::string to_string(const Operation& op) {
  std::string out = "client " + std::to_string(op.client) + " ";
  switch (op.kind) {
    case Operation::Kind::kRead: out += "read -> " + quote_value(op.value); break;
    case Operation::Kind::kWrite:
      out += op.value ? "write " + quote_value(op.value) : "delete";
      break;
    case Operation::Kind::kCas:
      out += "cas " + quote_value(op.expected) + " -> " +
             (op.value ? quote_value(op.value) : std::string("delete"));
      break;
  }
  out += " [" + std::to_string(op.call) + ", " +
         (op.ret == kUnknownReturn ? std::string("unknown") : std::to_string(op.ret)) + "]";
  return out;
}

}  // namespace kvcore::test
