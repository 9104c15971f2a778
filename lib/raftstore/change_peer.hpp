// Membership changes (ChangePeerV2) as pure functions of a region: turning a
// change_peers() request into a ChangePeerCmd, and applying a ChangePeerCmd
// to a region's peer list. Peer (change_peer.cpp) wires them to raft.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kvcore/raft/types.hpp"
#include "kvcore/status.hpp"
#include "kvcore/store.hpp"
#include "raftstore/types.hpp"

namespace kvcore::raftstore {

// The ChangePeerCmd for `requests` against `region`, whose leader is peer
// `leader_peer`. New peers (a learner, or a voter on a store without a peer)
// take ids from `alloc_id`, called only once the request is valid.
//   InvalidArgument: no changes, store id 0, two changes for one store, a
//     learner added where the store has a peer, a voter added where it is
//     one, a demotion of a non-voter, a removal where there is no peer.
//   FailedPrecondition: a voter removed directly (demote it first, as TiKV
//     requires), or the leader demoted (transfer leadership first).
[[nodiscard]] Result<ChangePeerCmd> plan_change_peers(
    const RegionMeta& region, std::uint64_t leader_peer,
    const std::vector<PeerChangeRequest>& requests,
    const std::function<Result<std::uint64_t>()>& alloc_id);

// `region` with the peers of `cmd` changed (the epoch is the caller's):
// kAddNode adds a voter or promotes the learner of that id, kAddLearnerNode
// adds a learner or demotes the voter of that id, kRemoveNode removes it.
// InvalidArgument when a change does not fit (an id on another store, a
// second peer on one store, removing an unknown peer, no voter left). In a
// joint state the list shows the incoming configuration: a voter being
// demoted is already a learner in it.
[[nodiscard]] Result<RegionMeta> apply_peer_changes(const RegionMeta& region,
                                                    const ChangePeerCmd& cmd);

// The raft change carrying `cmd`: one change applies directly, several (or
// none: the leave) use a joint configuration left explicitly by the store.
[[nodiscard]] raft::ConfChangeV2 to_conf_change(const ChangePeerCmd& cmd, std::string context);

// Whether a ConfChangeV2 lists exactly the changes of `cmd` (types and ids).
[[nodiscard]] bool same_changes(const raft::ConfChangeV2& cc, const ChangePeerCmd& cmd);

}  // namespace kvcore::raftstore
