#include "raftstore/region_init.hpp"

#include "raftlog/storage.hpp"
#include "raftstore/codec.hpp"
#include "raftstore/keys.hpp"

namespace kvcore::raftstore {

raft::ConfState conf_state_of(const RegionMeta& region) {
  raft::ConfState cs;
  for (const auto& p : region.peers) (p.learner ? cs.learners : cs.voters).push_back(p.id);
  return cs;
}

ApplyState initial_apply_state(const RegionMeta& region) {
  ApplyState a;
  a.applied_index = kInitIndex;
  a.applied_term = kInitTerm;
  a.truncated_index = kInitIndex;
  a.truncated_term = kInitTerm;
  a.region = region;
  a.conf_state = conf_state_of(region);
  return a;
}

Status write_initial_raft_state(raftlog::RaftLogEngine& engine, const RegionMeta& region) {
  const raft::ConfState cs = conf_state_of(region);
  raftlog::RaftLogStorage log(engine, region.id);
  raftlog::LogBatch lb;
  KVCORE_RETURN_IF_ERROR(log.apply_snapshot(lb, raft::SnapshotMetadata{cs, kInitIndex, kInitTerm}));
  log.set_conf_state(lb, cs);
  // A peer of this region may have existed here before the region did (made
  // by a leader's message) and voted: its term and vote stand.
  raft::HardState hs{kInitTerm, raft::kNoNode, kInitIndex};
  if (auto old = engine.hard_state(region.id); old && old->term > kInitTerm) {
    hs.term = old->term;
    hs.vote = old->vote;
  }
  log.set_hard_state(lb, hs);
  lb.put_state(region.id, kRegionStateKey,
               encode_region_state(RegionLocalState{PeerState::kNormal, region, std::nullopt}));
  return engine.write(lb, true);
}

}  // namespace kvcore::raftstore
