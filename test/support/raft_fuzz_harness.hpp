// The raft fuzz harness: decodes arbitrary bytes into a sequence of inputs to
// one RawNode of a small cluster (messages from its peers, ticks, proposals,
// reads, membership changes, Ready handling) and checks what must hold no
// matter what the peers send: the node does not crash, its term and commit
// index never go down, it applies a contiguous sequence of entries, and no
// entry at or below its persisted commit index is ever overwritten.
//
// Shared by the libFuzzer target (test/fuzz/raft_fuzz.cpp) and the plain
// build that replays seeded random inputs in normal CI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kvcore::raft::fuzz {

// Runs one input. Returns "" when every invariant held, else the violation.
// With `trace`, appends one line per operation to it.
[[nodiscard]] std::string run_input(const std::uint8_t* data, std::size_t size,
                                    std::string* trace = nullptr);

}  // namespace kvcore::raft::fuzz
