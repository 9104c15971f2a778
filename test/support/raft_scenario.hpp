// Text scenario runner for the raft core, in the style of etcd's interaction
// tests. A scenario file is a sequence of blocks:
//
//   # a comment
//   command positional key=value key=(a,b,c)
//   optional input lines
//   ----
//   expected output (ends at the first empty line)
//
// Each block runs one command against a ScenarioEnv (a set of RawNodes over
// MemoryStorage and an in-memory network whose messages are delivered only
// when a command says so) and compares the output with the expected text.
// Output is built from the stable describe() texts of the public API, so a
// change to it is a reviewable change of behaviour. Expected output never
// contains an empty line (the runner drops them); "ok" stands for nothing.
//
// Commands (node ids are the raft ids, 1-based):
//   add-nodes N [voters=(..)] [learners=(..)] [index=I] [content=S]
//       [pre-vote=b] [check-quorum=b] [read-only=safe|lease] [max-inflight=N]
//       [max-inflight-bytes=N] [election-tick=N] [heartbeat-tick=N]
//       [max-size-per-msg=N] [max-uncommitted-size=N] [disable-forwarding=b]
//   campaign ID | propose ID DATA | read-index ID CTX
//   propose-conf-change ID [transition=auto|implicit|explicit] [v1=true]
//       (input: tokens vN add voter, lN add learner, rN remove; none: leave joint)
//   tick-election ID (ticks until the node changes role, leader or term, at
//       most 2*election-tick) | tick-heartbeat ID | tick ID [N]
//   deliver-msgs [ID...] [drop=(..)] [type=T] [from=ID]
//   process-ready ID... | stabilize [ID...]
//   raft-log ID | raft-state | status ID
//   transfer-leadership from=ID to=ID
//   compact ID INDEX | report-unreachable ID TARGET | report-snapshot ID TARGET [failed]
//   restart ID | log-level off|trace|debug|info|warn|error
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kvcore/raft/raw_node.hpp"
#include "kvcore/raft/storage.hpp"
#include "kvcore/status.hpp"

namespace kvcore::raft::scenario {

struct Command {
  std::string name;
  std::vector<std::string> positional;
  // key -> values; `key=(a,b)` gives two values, `key=v` one.
  std::map<std::string, std::vector<std::string>> args;
  std::vector<std::string> input;
  int line = 0;  // 1-based line of the command in its file
};

struct Block {
  Command command;
  std::string expected;
  // Lines [expected_begin, expected_end) of the file hold the expected output.
  std::size_t expected_begin = 0;
  std::size_t expected_end = 0;
};

// Parses a scenario file. InvalidArgument (with the line) on a malformed block.
[[nodiscard]] Result<std::vector<Block>> parse(std::string_view text);

// Parses one command line (without input lines).
[[nodiscard]] Result<Command> parse_command(std::string_view line);

class Env {
 public:
  Env();
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  // Runs one command; returns its output ("ok" when it printed nothing,
  // "error: ..." when the command itself was malformed).
  std::string run(const Command& cmd);

 private:
  struct Node;
  struct LogCapture;

  std::string handle(const Command& cmd);
  void add_nodes(const Command& cmd);
  void process_ready(NodeId id, const std::string& indent);
  bool deliver_to(NodeId id, const Command* filter, const std::string& indent);
  void stabilize(const std::vector<NodeId>& ids);
  void deliver_msgs(const Command& cmd);
  void propose_conf_change(const Command& cmd);
  void raft_log(NodeId id);
  void raft_state();
  void restart(NodeId id);
  void write_lines(const std::string& text, const std::string& indent);
  Node& node(NodeId id);

  std::map<NodeId, std::unique_ptr<Node>> nodes_;
  std::vector<Message> network_;
  std::string out_;
  std::unique_ptr<LogCapture> log_;
};

struct FileResult {
  // The file's text with every expected output replaced by the actual one.
  std::string rewritten;
  // One entry per block whose output differs: "line N: <command>" plus both texts.
  std::vector<std::string> mismatches;
  int blocks = 0;
};

// Runs every block of a scenario file in a fresh Env.
[[nodiscard]] Result<FileResult> run_file(std::string_view text);

}  // namespace kvcore::raft::scenario
