// Quorum arithmetic (commit index and vote outcome, majority and joint) checked
// against a deliberately dumb brute-force reference on many random configs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "raft/quorum.hpp"
#include "seed.hpp"

namespace kvcore::raft {
namespace {

std::uint64_t case_count() {
  if (const char* s = std::getenv("KVCORE_QUORUM_CASES")) return std::strtoull(s, nullptr, 10);
  return 60000;
}

// Every subset of `ids` (as vectors).
std::vector<std::vector<NodeId>> subsets(const std::set<NodeId>& ids) {
  std::vector<NodeId> v(ids.begin(), ids.end());
  std::vector<std::vector<NodeId>> out;
  for (std::uint32_t mask = 0; mask < (1u << v.size()); ++mask) {
    std::vector<NodeId> s;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if ((mask >> i) & 1u) s.push_back(v[i]);
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool is_majority(std::size_t part, std::size_t whole) { return part * 2 > whole; }

// Largest index i such that some majority of voters all acked >= i.
Index ref_committed(const std::set<NodeId>& voters, const std::map<NodeId, Index>& acked) {
  if (voters.empty()) return std::numeric_limits<Index>::max();
  Index best = 0;
  for (const auto& s : subsets(voters)) {
    if (!is_majority(s.size(), voters.size())) continue;
    Index lo = std::numeric_limits<Index>::max();
    for (NodeId id : s) {
      auto it = acked.find(id);
      lo = std::min(lo, it == acked.end() ? 0 : it->second);
    }
    best = std::max(best, lo);
  }
  return best;
}

bool ref_won(const std::set<NodeId>& voters, const std::map<NodeId, bool>& votes) {
  if (voters.empty()) return true;
  for (const auto& s : subsets(voters)) {
    if (!is_majority(s.size(), voters.size())) continue;
    bool all_yes = true;
    for (NodeId id : s) {
      auto it = votes.find(id);
      if (it == votes.end() || !it->second) all_yes = false;
    }
    if (all_yes) return true;
  }
  return false;
}

// Won now; lost when no completion of the missing votes can win; else pending.
VoteResult ref_vote(const std::set<NodeId>& voters, const std::map<NodeId, bool>& votes) {
  if (ref_won(voters, votes)) return VoteResult::kWon;
  std::map<NodeId, bool> optimistic = votes;
  for (NodeId id : voters) optimistic.emplace(id, true);
  return ref_won(voters, optimistic) ? VoteResult::kPending : VoteResult::kLost;
}

VoteResult ref_joint_vote(const std::set<NodeId>& in, const std::set<NodeId>& out,
                          const std::map<NodeId, bool>& votes) {
  // Won when both won; lost when either cannot win; else pending.
  const VoteResult a = ref_vote(in, votes);
  const VoteResult b = ref_vote(out, votes);
  if (a == VoteResult::kLost || b == VoteResult::kLost) return VoteResult::kLost;
  if (a == VoteResult::kWon && b == VoteResult::kWon) return VoteResult::kWon;
  return VoteResult::kPending;
}

std::set<NodeId> random_ids(test::Rng& rng, std::size_t max_n) {
  std::set<NodeId> ids;
  const std::size_t n = rng.uniform(max_n + 1);
  while (ids.size() < n) ids.insert(1 + rng.uniform(9));
  return ids;
}

std::string render(const std::set<NodeId>& ids) {
  std::string s = "(";
  for (NodeId id : ids) s += std::to_string(id) + " ";
  return s + ")";
}

}  // namespace

TEST_CASE("quorum: commit index and votes match a brute-force reference", "[raft][quorum]") {
  const std::uint64_t seed = test::test_seed(20261125);
  const std::uint64_t cases = case_count();
  INFO("seed " << seed << " (replay with KVCORE_SEED=" << seed << ")");
  test::Rng rng(seed);
  std::uint64_t joint_cases = 0;
  for (std::uint64_t c = 0; c < cases; ++c) {
    const std::set<NodeId> in = random_ids(rng, 7);
    const bool joint = rng.uniform(2) == 0;
    const std::set<NodeId> out = joint ? random_ids(rng, 7) : std::set<NodeId>{};
    if (joint) ++joint_cases;
    std::map<NodeId, Index> acked;
    std::map<NodeId, bool> votes;
    for (NodeId id = 1; id <= 9; ++id) {
      if (rng.uniform(5) != 0) acked[id] = rng.uniform(12);
      const auto v = rng.uniform(3);
      if (v == 1) votes[id] = true;
      if (v == 2) votes[id] = false;
    }
    JointConfig cfg;
    cfg.incoming = MajorityConfig(in);
    cfg.outgoing = MajorityConfig(out);
    auto fn = [&](NodeId id) -> std::optional<Index> {
      auto it = acked.find(id);
      if (it == acked.end()) return std::nullopt;
      return it->second;
    };

    const Index want_in = ref_committed(in, acked);
    const Index want = std::min(want_in, ref_committed(out, acked));
    const VoteResult want_vote_in = ref_vote(in, votes);
    const VoteResult want_vote = ref_joint_vote(in, out, votes);

    const Index got_in = cfg.incoming.committed_index(fn);
    const Index got = cfg.committed_index(fn);
    const VoteResult got_vote_in = cfg.incoming.vote_result(votes);
    const VoteResult got_vote = cfg.vote_result(votes);
    if (got_in != want_in || got != want || got_vote_in != want_vote_in || got_vote != want_vote) {
      FAIL("case " << c << " of seed " << seed << ": in=" << render(in) << " out=" << render(out)
                   << " committed got " << got << " want " << want << " (majority got " << got_in
                   << " want " << want_in << "), vote got " << static_cast<int>(got_vote)
                   << " want " << static_cast<int>(want_vote) << " (majority got "
                   << static_cast<int>(got_vote_in) << " want " << static_cast<int>(want_vote_in)
                   << ")");
    }
  }
  CHECK(joint_cases > cases / 3);
}

TEST_CASE("quorum: hand-picked majority and joint cases", "[raft][quorum]") {
  auto acked = [](std::map<NodeId, Index> m) {
    return [m](NodeId id) -> std::optional<Index> {
      auto it = m.find(id);
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
  };
  MajorityConfig three({1, 2, 3});
  CHECK(three.committed_index(acked({{1, 5}, {2, 3}, {3, 1}})) == 3);
  CHECK(three.committed_index(acked({{1, 5}})) == 0);
  CHECK(MajorityConfig().committed_index(acked({})) == std::numeric_limits<Index>::max());
  MajorityConfig four({1, 2, 3, 4});
  CHECK(four.committed_index(acked({{1, 5}, {2, 4}, {3, 3}, {4, 2}})) == 3);

  CHECK(three.vote_result({{1, true}, {2, true}}) == VoteResult::kWon);
  CHECK(three.vote_result({{1, true}, {2, false}}) == VoteResult::kPending);
  CHECK(three.vote_result({{1, false}, {2, false}}) == VoteResult::kLost);
  CHECK(MajorityConfig().vote_result({}) == VoteResult::kWon);

  JointConfig j;
  j.incoming = MajorityConfig({1, 2, 3});
  j.outgoing = MajorityConfig({4, 5, 6});
  CHECK(j.committed_index(acked({{1, 9}, {2, 9}, {4, 3}, {5, 4}})) == 3);
  CHECK(j.vote_result({{1, true}, {2, true}, {4, true}}) == VoteResult::kPending);
  CHECK(j.vote_result({{1, true}, {2, true}, {4, true}, {5, true}}) == VoteResult::kWon);
  CHECK(j.vote_result({{1, true}, {2, true}, {4, false}, {5, false}}) == VoteResult::kLost);
}

}  // namespace kvcore::raft
