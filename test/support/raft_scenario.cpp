#include "raft_scenario.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

#include "kvcore/logging.hpp"

namespace kvcore::raft::scenario {
namespace {

// A malformed command: reported as "error: ..." in the output.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      if (start < text.size()) lines.emplace_back(text.substr(start));
      break;
    }
    lines.emplace_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return std::string(s);
}

std::uint64_t to_u64(std::string_view s, std::string_view what) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    throw UsageError("bad number '" + std::string(s) + "' for " + std::string(what));
  }
  return v;
}

bool to_bool(std::string_view s) {
  if (s == "true" || s == "1" || s.empty()) return true;
  if (s == "false" || s == "0") return false;
  throw UsageError("bad boolean '" + std::string(s) + "'");
}

bool has(const Command& c, const std::string& key) { return c.args.count(key) != 0; }

std::string arg_str(const Command& c, const std::string& key, std::string fallback = {}) {
  auto it = c.args.find(key);
  if (it == c.args.end() || it->second.empty()) return fallback;
  return it->second.front();
}

std::uint64_t arg_u64(const Command& c, const std::string& key, std::uint64_t fallback) {
  auto it = c.args.find(key);
  if (it == c.args.end() || it->second.empty()) return fallback;
  return to_u64(it->second.front(), key);
}

bool arg_bool(const Command& c, const std::string& key, bool fallback) {
  auto it = c.args.find(key);
  if (it == c.args.end()) return fallback;
  return to_bool(it->second.empty() ? "" : it->second.front());
}

std::vector<NodeId> arg_ids(const Command& c, const std::string& key) {
  std::vector<NodeId> ids;
  auto it = c.args.find(key);
  if (it == c.args.end()) return ids;
  for (const auto& v : it->second) ids.push_back(to_u64(v, key));
  return ids;
}

NodeId pos_id(const Command& c, std::size_t i) {
  if (c.positional.size() <= i) throw UsageError(c.name + ": missing node id");
  return to_u64(c.positional[i], "node id");
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string s;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i != 0) s += sep;
    s += parts[i];
  }
  return s;
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> words;
  std::string cur;
  for (char ch : s) {
    if (ch == ' ' || ch == '\t') {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

std::optional<MessageType> message_type_named(std::string_view name) {
  for (int t = 0; t <= static_cast<int>(MessageType::kReadIndexResponse); ++t) {
    auto type = static_cast<MessageType>(t);
    auto s = to_string(type);
    if (s == name) return type;
    // Accept the name with or without a leading "k"/"Msg" decoration.
    if (s.size() > 1 && s.front() == 'k' && s.substr(1) == name) return type;
    if (s.size() > 3 && s.substr(0, 3) == "Msg" && s.substr(3) == name) return type;
  }
  return std::nullopt;
}

std::string role_membership(const ConfState& cs, NodeId id) {
  auto in = [id](const std::vector<NodeId>& v) {
    return std::find(v.begin(), v.end(), id) != v.end();
  };
  if (in(cs.voters) || in(cs.voters_outgoing)) return "Voter";
  if (in(cs.learners) || in(cs.learners_next)) return "Learner";
  return "Non-member";
}

}  // namespace

// ---------------------------------------------------------------------------
// Parsing

Result<Command> parse_command(std::string_view line) {
  Command cmd;
  std::vector<std::string> tokens;
  std::string cur;
  int depth = 0;
  for (char ch : line) {
    if ((ch == ' ' || ch == '\t') && depth == 0) {
      if (!cur.empty()) tokens.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    if (ch == '(') ++depth;
    if (ch == ')') --depth;
    cur += ch;
  }
  if (depth != 0) return Status::invalid_argument("unbalanced parentheses");
  if (!cur.empty()) tokens.push_back(std::move(cur));
  if (tokens.empty()) return Status::invalid_argument("empty command");
  cmd.name = tokens[0];
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const auto& tok = tokens[i];
    auto eq = tok.find('=');
    if (eq == std::string::npos) {
      cmd.positional.push_back(tok);
      continue;
    }
    std::string key = tok.substr(0, eq);
    std::string val = tok.substr(eq + 1);
    std::vector<std::string> vals;
    if (!val.empty() && val.front() == '(') {
      if (val.back() != ')') return Status::invalid_argument("bad list in " + tok);
      std::string inner = val.substr(1, val.size() - 2);
      for (char& ch : inner) {
        if (ch == ',') ch = ' ';
      }
      vals = split_words(inner);
    } else {
      vals.push_back(val);
    }
    cmd.args[key] = std::move(vals);
  }
  return cmd;
}

Result<std::vector<Block>> parse(std::string_view text) {
  auto lines = split_lines(text);
  std::vector<Block> blocks;
  std::size_t i = 0;
  while (i < lines.size()) {
    if (blank(lines[i]) || lines[i].front() == '#') {
      ++i;
      continue;
    }
    auto parsed = parse_command(lines[i]);
    if (!parsed) return parsed.status().with_context("line " + std::to_string(i + 1));
    Block b;
    b.command = std::move(parsed).value();
    b.command.line = static_cast<int>(i + 1);
    ++i;
    while (i < lines.size() && trim(lines[i]) != "----") {
      if (!blank(lines[i])) b.command.input.push_back(trim(lines[i]));
      ++i;
    }
    if (i == lines.size()) {
      return Status::invalid_argument("line " + std::to_string(b.command.line) +
                                      ": command without ---- separator");
    }
    ++i;
    b.expected_begin = i;
    std::vector<std::string> expected;
    while (i < lines.size() && !blank(lines[i])) expected.push_back(lines[i++]);
    b.expected_end = i;
    b.expected = join(expected, "\n");
    blocks.push_back(std::move(b));
  }
  return blocks;
}

// ---------------------------------------------------------------------------
// Env

struct Env::Node {
  Config config;
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> raw;
  // The application: applied payloads of normal entries, its membership.
  std::vector<std::string> app;
  ConfState conf;
  Index applied = 0;
};

// Captures the core's log lines into the output while a log level is set.
struct Env::LogCapture {
  LogLevel previous_level;
  std::string* out;
};

Env::Env() : log_(std::make_unique<LogCapture>()) {
  log_->previous_level = log_level();
  log_->out = &out_;
  set_log_level(LogLevel::kOff);
  set_log_sink([capture = log_.get()](LogLevel level, std::string_view, int, std::string_view msg) {
    *capture->out += std::string(to_string(level)) + " " + std::string(msg) + "\n";
  });
}

Env::~Env() {
  set_log_sink({});
  set_log_level(log_->previous_level);
}

Env::Node& Env::node(NodeId id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) throw UsageError("no node " + std::to_string(id));
  return *it->second;
}

void Env::write_lines(const std::string& text, const std::string& indent) {
  for (const auto& line : split_lines(text)) {
    if (blank(line)) continue;
    out_ += indent + line + "\n";
  }
}

std::string Env::run(const Command& cmd) {
  out_.clear();
  try {
    out_ += handle(cmd);
  } catch (const UsageError& e) {
    out_ += std::string("error: ") + e.what() + "\n";
  }
  std::vector<std::string> kept;
  for (auto& line : split_lines(out_)) {
    if (!blank(line)) kept.push_back(std::move(line));
  }
  for (auto& line : kept) {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  }
  out_.clear();
  return kept.empty() ? "ok" : join(kept, "\n");
}

std::string Env::handle(const Command& cmd) {
  const auto& n = cmd.name;
  if (n == "add-nodes") {
    add_nodes(cmd);
  } else if (n == "campaign") {
    auto s = node(pos_id(cmd, 0)).raw->campaign();
    if (!s) out_ += "error: " + s.to_string() + "\n";
  } else if (n == "propose") {
    if (cmd.positional.size() < 2) throw UsageError("propose ID DATA");
    auto s = node(pos_id(cmd, 0)).raw->propose(cmd.positional[1]);
    if (!s) out_ += "error: " + s.to_string() + "\n";
  } else if (n == "propose-conf-change") {
    propose_conf_change(cmd);
  } else if (n == "tick-election" || n == "tick-heartbeat" || n == "tick") {
    auto& nd = node(pos_id(cmd, 0));
    std::uint64_t ticks = 1;
    if (n == "tick-election") {
      // The randomized timeout lies in [election_tick, 2*election_tick).
      ticks = 2 * static_cast<std::uint64_t>(nd.config.election_tick);
    } else if (n == "tick-heartbeat") {
      ticks = static_cast<std::uint64_t>(nd.config.heartbeat_tick);
    } else if (cmd.positional.size() > 1) {
      ticks = to_u64(cmd.positional[1], "ticks");
    }
    if (n == "tick-election") {
      // Stop at the first change of role, leader or term, so one
      // tick-election causes at most one campaign (or one step-down).
      const auto role = nd.raw->role();
      const auto lead = nd.raw->leader_id();
      const auto term = nd.raw->term();
      for (std::uint64_t i = 0; i < ticks; ++i) {
        nd.raw->tick();
        if (nd.raw->role() != role || nd.raw->leader_id() != lead || nd.raw->term() != term) break;
      }
    } else {
      for (std::uint64_t i = 0; i < ticks; ++i) nd.raw->tick();
    }
  } else if (n == "deliver-msgs") {
    deliver_msgs(cmd);
  } else if (n == "process-ready") {
    if (cmd.positional.empty()) throw UsageError("process-ready ID...");
    const bool many = cmd.positional.size() > 1;
    for (std::size_t i = 0; i < cmd.positional.size(); ++i) {
      NodeId id = pos_id(cmd, i);
      if (many) out_ += "> " + std::to_string(id) + " handling Ready\n";
      if (!node(id).raw->has_ready()) {
        out_ += std::string(many ? "  " : "") + "<no Ready>\n";
        continue;
      }
      process_ready(id, many ? "  " : "");
    }
  } else if (n == "stabilize") {
    std::vector<NodeId> ids;
    for (std::size_t i = 0; i < cmd.positional.size(); ++i) ids.push_back(pos_id(cmd, i));
    if (ids.empty()) {
      for (auto& [id, _] : nodes_) ids.push_back(id);
    }
    stabilize(ids);
  } else if (n == "raft-log") {
    raft_log(pos_id(cmd, 0));
  } else if (n == "raft-state") {
    raft_state();
  } else if (n == "status") {
    write_lines(describe(node(pos_id(cmd, 0)).raw->status()), "");
  } else if (n == "transfer-leadership") {
    NodeId from = arg_u64(cmd, "from", 0);
    NodeId to = arg_u64(cmd, "to", 0);
    if (from == 0 || to == 0) throw UsageError("transfer-leadership from=ID to=ID");
    node(from).raw->transfer_leader(to);
  } else if (n == "read-index") {
    if (cmd.positional.size() < 2) throw UsageError("read-index ID CTX");
    node(pos_id(cmd, 0)).raw->read_index(cmd.positional[1]);
  } else if (n == "compact") {
    if (cmd.positional.size() < 2) throw UsageError("compact ID INDEX");
    auto& nd = node(pos_id(cmd, 0));
    auto s = nd.storage->compact(to_u64(cmd.positional[1], "index"));
    if (!s) out_ += "error: " + s.to_string() + "\n";
    raft_log(pos_id(cmd, 0));
  } else if (n == "report-unreachable") {
    if (cmd.positional.size() < 2) throw UsageError("report-unreachable ID TARGET");
    node(pos_id(cmd, 0)).raw->report_unreachable(pos_id(cmd, 1));
  } else if (n == "report-snapshot") {
    if (cmd.positional.size() < 2) throw UsageError("report-snapshot ID TARGET [failed]");
    bool failed = cmd.positional.size() > 2 && cmd.positional[2] == "failed";
    node(pos_id(cmd, 0)).raw->report_snapshot(pos_id(cmd, 1), failed);
  } else if (n == "restart") {
    restart(pos_id(cmd, 0));
  } else if (n == "log-level") {
    if (cmd.positional.empty()) throw UsageError("log-level LEVEL");
    const auto& l = cmd.positional[0];
    LogLevel level;
    if (l == "off" || l == "none")
      level = LogLevel::kOff;
    else if (l == "trace")
      level = LogLevel::kTrace;
    else if (l == "debug")
      level = LogLevel::kDebug;
    else if (l == "info")
      level = LogLevel::kInfo;
    else if (l == "warn")
      level = LogLevel::kWarn;
    else if (l == "error")
      level = LogLevel::kError;
    else
      throw UsageError("unknown log level " + l);
    set_log_level(level);
  } else {
    throw UsageError("unknown command " + n);
  }
  return {};
}

void Env::add_nodes(const Command& cmd) {
  if (cmd.positional.empty()) throw UsageError("add-nodes N ...");
  const auto count = to_u64(cmd.positional[0], "count");
  ConfState cs;
  cs.voters = arg_ids(cmd, "voters");
  cs.learners = arg_ids(cmd, "learners");
  const Index index = arg_u64(cmd, "index", 0);
  const std::string content = arg_str(cmd, "content");
  for (std::uint64_t i = 0; i < count; ++i) {
    const NodeId id = nodes_.empty() ? 1 : nodes_.rbegin()->first + 1;
    auto nd = std::make_unique<Node>();
    if (index > 0) {
      nd->storage = std::make_unique<MemoryStorage>();
      Snapshot snap;
      snap.data = content;
      snap.metadata.conf_state = cs;
      snap.metadata.index = index;
      snap.metadata.term = 1;
      auto s = nd->storage->apply_snapshot(snap);
      if (!s) throw UsageError("apply_snapshot: " + s.to_string());
      if (!content.empty()) nd->app = split_words(content);
    } else if (!cs.voters.empty() || !cs.learners.empty()) {
      nd->storage = std::make_unique<MemoryStorage>(MemoryStorage::with_conf_state(cs));
    } else {
      nd->storage = std::make_unique<MemoryStorage>();
    }
    nd->conf = cs;
    nd->applied = index;
    Config& c = nd->config;
    c.id = id;
    c.applied = index;
    c.seed = id;
    c.election_tick = static_cast<int>(arg_u64(cmd, "election-tick", 10));
    c.heartbeat_tick = static_cast<int>(arg_u64(cmd, "heartbeat-tick", 1));
    c.pre_vote = arg_bool(cmd, "pre-vote", false);
    c.check_quorum = arg_bool(cmd, "check-quorum", false);
    auto ro = arg_str(cmd, "read-only", "safe");
    if (ro == "lease")
      c.read_only_option = ReadOnlyOption::kLeaseBased;
    else if (ro != "safe")
      throw UsageError("read-only=safe|lease");
    c.max_inflight_msgs = arg_u64(cmd, "max-inflight", c.max_inflight_msgs);
    c.max_inflight_bytes = arg_u64(cmd, "max-inflight-bytes", c.max_inflight_bytes);
    c.max_size_per_msg = arg_u64(cmd, "max-size-per-msg", c.max_size_per_msg);
    c.max_uncommitted_entries_size =
        arg_u64(cmd, "max-uncommitted-size", c.max_uncommitted_entries_size);
    c.disable_proposal_forwarding = arg_bool(cmd, "disable-forwarding", false);
    auto raw = RawNode::create(c, *nd->storage);
    if (!raw) {
      out_ += "error: " + raw.status().to_string() + "\n";
      return;
    }
    nd->raw = std::move(raw).value();
    nodes_[id] = std::move(nd);
    out_ += "node " + std::to_string(id) + " added\n";
  }
  raft_state();
}

void Env::process_ready(NodeId id, const std::string& indent) {
  auto& nd = node(id);
  Ready rd = nd.raw->ready();
  write_lines(describe(rd), indent);
  if (!rd.snapshot.empty()) {
    auto s = nd.storage->apply_snapshot(rd.snapshot);
    if (!s) out_ += indent + "error: apply_snapshot: " + s.to_string() + "\n";
    nd.app = split_words(rd.snapshot.data);
    nd.conf = rd.snapshot.metadata.conf_state;
    nd.applied = rd.snapshot.metadata.index;
  }
  if (!rd.entries.empty()) {
    auto s = nd.storage->append(rd.entries);
    if (!s) out_ += indent + "error: append: " + s.to_string() + "\n";
  }
  if (rd.hard_state) nd.storage->set_hard_state(*rd.hard_state);
  for (const auto& m : rd.messages) network_.push_back(m);
  for (const auto& m : rd.persisted_messages) network_.push_back(m);
  for (const auto& e : rd.committed_entries) {
    if (e.type == EntryType::kConfChange) {
      auto cc = decode_conf_change(e.data);
      if (!cc) {
        out_ += indent + "error: decode conf change: " + cc.status().to_string() + "\n";
      } else {
        Status err;
        nd.conf = nd.raw->apply_conf_change(*cc, &err);
        out_ += indent + "conf state: " + describe(nd.conf) + "\n";
        if (!err) out_ += indent + "apply_conf_change: " + err.to_string() + "\n";
      }
    } else if (!e.data.empty()) {
      nd.app.push_back(e.data);
    }
    nd.applied = e.index;
  }
  if (!rd.committed_entries.empty()) {
    // The application snapshots its state after every apply, so a restart
    // resumes from here and a compacted log can be served by snapshot.
    auto snap = nd.storage->create_snapshot(nd.applied, nd.conf, join(nd.app, " "));
    if (!snap && !is_storage_error(snap.status(), StorageErrorDetail::Kind::kSnapshotOutOfDate)) {
      out_ += indent + "error: create_snapshot: " + snap.status().to_string() + "\n";
    }
  }
  nd.raw->advance(rd);
}

bool Env::deliver_to(NodeId id, const Command* filter, const std::string& indent) {
  std::optional<MessageType> type;
  NodeId from = 0;
  std::vector<NodeId> drop;
  if (filter != nullptr) {
    if (has(*filter, "type")) {
      type = message_type_named(arg_str(*filter, "type"));
      if (!type) throw UsageError("unknown message type " + arg_str(*filter, "type"));
    }
    from = arg_u64(*filter, "from", 0);
    drop = arg_ids(*filter, "drop");
  }
  const bool dropping = std::find(drop.begin(), drop.end(), id) != drop.end();
  std::vector<Message> take;
  std::vector<Message> keep;
  for (auto& m : network_) {
    bool match = m.to == id && (!type || m.type == *type) && (from == 0 || m.from == from);
    (match ? take : keep).push_back(std::move(m));
  }
  network_ = std::move(keep);
  if (take.empty()) return false;
  for (auto& m : take) {
    if (dropping) {
      out_ += indent + "dropped: " + describe(m) + "\n";
      continue;
    }
    out_ += indent + describe(m) + "\n";
    auto s = node(id).raw->step(std::move(m));
    if (!s) out_ += indent + "  error: " + s.to_string() + "\n";
  }
  return true;
}

void Env::deliver_msgs(const Command& cmd) {
  std::vector<NodeId> ids;
  for (std::size_t i = 0; i < cmd.positional.size(); ++i) ids.push_back(pos_id(cmd, i));
  for (NodeId d : arg_ids(cmd, "drop")) {
    if (std::find(ids.begin(), ids.end(), d) == ids.end()) ids.push_back(d);
  }
  if (ids.empty()) {
    for (auto& [id, _] : nodes_) ids.push_back(id);
  }
  bool any = false;
  for (NodeId id : ids) {
    if (nodes_.count(id) == 0) {
      // Messages to a node that does not exist are lost.
      auto it = std::remove_if(network_.begin(), network_.end(),
                               [id](const Message& m) { return m.to == id; });
      for (auto j = it; j != network_.end(); ++j) out_ += "dropped: " + describe(*j) + "\n";
      network_.erase(it, network_.end());
      continue;
    }
    any = deliver_to(id, &cmd, "") || any;
  }
  if (!any && out_.empty()) out_ += "no messages\n";
}

void Env::stabilize(const std::vector<NodeId>& ids) {
  for (int round = 0; round < 1000; ++round) {
    bool progress = false;
    for (NodeId id : ids) {
      if (!node(id).raw->has_ready()) continue;
      out_ += "> " + std::to_string(id) + " handling Ready\n";
      process_ready(id, "  ");
      progress = true;
    }
    for (NodeId id : ids) {
      bool pending = std::any_of(network_.begin(), network_.end(),
                                 [id](const Message& m) { return m.to == id; });
      if (!pending) continue;
      out_ += "> " + std::to_string(id) + " receiving messages\n";
      deliver_to(id, nullptr, "  ");
      progress = true;
    }
    if (!progress) return;
  }
  out_ += "error: not stable after 1000 rounds\n";
}

void Env::propose_conf_change(const Command& cmd) {
  auto& nd = node(pos_id(cmd, 0));
  ConfChangeV2 cc;
  auto tr = arg_str(cmd, "transition", "auto");
  if (tr == "auto")
    cc.transition = ConfChangeTransition::kAuto;
  else if (tr == "implicit")
    cc.transition = ConfChangeTransition::kJointImplicit;
  else if (tr == "explicit")
    cc.transition = ConfChangeTransition::kJointExplicit;
  else
    throw UsageError("transition=auto|implicit|explicit");
  for (const auto& line : cmd.input) {
    for (const auto& tok : split_words(line)) {
      if (tok.size() < 2) throw UsageError("bad change " + tok);
      ConfChangeSingle ch;
      switch (tok[0]) {
        case 'v': ch.type = ConfChangeType::kAddNode; break;
        case 'l': ch.type = ConfChangeType::kAddLearnerNode; break;
        case 'r': ch.type = ConfChangeType::kRemoveNode; break;
        default: throw UsageError("bad change " + tok + " (vN, lN or rN)");
      }
      ch.node_id = to_u64(std::string_view(tok).substr(1), "change");
      cc.changes.push_back(ch);
    }
  }
  if (arg_bool(cmd, "v1", false)) {
    // A v1 change is exactly one simple change applied directly.
    if (cc.changes.size() != 1 || cc.transition != ConfChangeTransition::kAuto) {
      throw UsageError("v1 takes exactly one change and no transition");
    }
  }
  auto s = nd.raw->propose_conf_change(cc);
  if (!s) out_ += "error: " + s.to_string() + "\n";
}

void Env::raft_log(NodeId id) {
  auto& st = *node(id).storage;
  auto first = st.first_index();
  auto last = st.last_index();
  if (!first || !last) {
    out_ += "error: storage index: " + (first ? last.status() : first.status()).to_string() + "\n";
    return;
  }
  if (*last < *first) {
    out_ += "log is empty: first index=" + std::to_string(*first) +
            ", last index=" + std::to_string(*last) + "\n";
    return;
  }
  auto ents = st.entries(*first, *last + 1, std::numeric_limits<std::uint64_t>::max());
  if (!ents) {
    out_ += "error: entries: " + ents.status().to_string() + "\n";
    return;
  }
  for (const auto& e : *ents) out_ += describe(e) + "\n";
}

void Env::raft_state() {
  for (auto& [id, nd] : nodes_) {
    auto st = nd->raw->status();
    out_ += std::to_string(id) + ": " + std::string(to_string(st.soft_state.role)) + " (" +
            role_membership(st.conf_state, id) + ") Term:" + std::to_string(st.hard_state.term) +
            " Lead:" + std::to_string(st.soft_state.leader_id) + "\n";
  }
}

void Env::restart(NodeId id) {
  auto& nd = node(id);
  // Everything not in storage (the unstable log, unsent Ready) is lost; the
  // application resumes from its last snapshot.
  nd.raw.reset();
  auto snap = nd.storage->snapshot();
  if (!snap) throw UsageError("snapshot: " + snap.status().to_string());
  nd.app = split_words(snap->data);
  nd.conf = snap->metadata.conf_state;
  nd.applied = snap->metadata.index;
  nd.config.applied = nd.applied;
  auto raw = RawNode::create(nd.config, *nd.storage);
  if (!raw) throw UsageError("restart: " + raw.status().to_string());
  nd.raw = std::move(raw).value();
  raft_state();
}

// ---------------------------------------------------------------------------

Result<FileResult> run_file(std::string_view text) {
  auto blocks = parse(text);
  if (!blocks) return blocks.status();
  auto lines = split_lines(text);
  FileResult res;
  Env env;
  std::vector<std::string> out_lines;
  std::size_t copied = 0;
  for (const auto& b : *blocks) {
    std::string actual = env.run(b.command);
    ++res.blocks;
    if (actual != b.expected) {
      std::string cmd_line = lines[static_cast<std::size_t>(b.command.line - 1)];
      res.mismatches.push_back("line " + std::to_string(b.command.line) + ": " + cmd_line +
                               "\n--- expected:\n" + b.expected + "\n--- actual:\n" + actual);
    }
    for (; copied < b.expected_begin; ++copied) out_lines.push_back(lines[copied]);
    for (auto& l : split_lines(actual)) out_lines.push_back(std::move(l));
    copied = b.expected_end;
  }
  for (; copied < lines.size(); ++copied) out_lines.push_back(lines[copied]);
  res.rewritten = join(out_lines, "\n") + "\n";
  return res;
}

}  // namespace kvcore::raft::scenario
