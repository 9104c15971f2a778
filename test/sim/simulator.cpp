#include "simulator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>

#include "checks.hpp"
#include "kvcore/store.hpp"
#include "linearizability.hpp"
#include "local_cluster.hpp"

namespace kvcore::sim {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

// The freshest view of one region among the running stores: its leader's
// status when some store claims to lead it (in the highest term), else any.
struct RegionView {
  RegionStatus status;
  std::uint64_t leader = 0;  // store claiming leadership, 0 when none
};

class Simulator {
 public:
  explicit Simulator(const SimOptions& o) : o_(o), admin_rng_(o.seed ^ 0xad31'4e0bULL) {
    report_.options = o;
    test::Rng draw(o.seed ^ 0x5170'8e55ULL);
    report_.stores = o.stores != 0 ? o.stores : (draw.chance(0.2) ? 5 : 3);
    pre_split_ = draw.chance(0.6);
    report_.options.stores = report_.stores;
    for (std::size_t i = 0; i < o.keys; ++i) keys_.push_back(fmt::format("k{:02}", i));
    ScheduleOptions so;
    so.stores = report_.stores;
    so.keys = keys_;
    so.length = o.workload;
    so.faults = o.faults != 0 ? o.faults : 6 + draw.next() % 11;
    report_.schedule = draw_schedule(o.seed, so);
    report_.skipped = o.skip_faults;
  }

  ~Simulator() {
    // The stores answer their pending requests as they stop: the workload
    // must still be there to take the answers.
    cluster_.reset();
    workload_.reset();
  }

  SimReport run();

 private:
  void log(std::string line) {
    const double t = static_cast<double>((cluster_->sim().now() - start_).count()) / 1e9;
    line = fmt::format("{:8.3f}s {}", t, line);
    if (o_.trace) std::fprintf(stderr, "%s\n", line.c_str());
    report_.fault_log.push_back(std::move(line));
  }
  void fail(std::string what) { report_.failures.push_back(std::move(what)); }
  // Runs the simulation for `d`; false (and a failure recorded) once the
  // run has taken more tasks than any healthy run needs: a livelock must
  // fail the seed, not hang the runner.
  bool advance(runtime::Duration d);

  void begin(const Fault& f);
  void end(const Fault& f);
  void apply_network();
  void admin(const Fault& f);
  void membership_step(const RegionView& r);
  [[nodiscard]] std::map<std::uint64_t, RegionView> region_views();
  [[nodiscard]] std::optional<RegionView> region_of(const std::string& key);
  [[nodiscard]] bool over_budget() const { return cluster_->sim().tasks_run() > o_.max_tasks; }
  void sample_tiling(bool final_check);
  void heal_everything();
  void final_reads();
  // Each store's regions as it sees them, into the report (on failure).
  void describe_stores();
  void check_history();

  SimOptions o_;
  SimReport report_;
  std::vector<std::string> keys_;
  bool pre_split_ = false;
  test::Rng admin_rng_;
  test::Rng drop_rng_{0};
  std::unique_ptr<test::LocalCluster> cluster_;
  std::unique_ptr<Workload> workload_;
  runtime::Instant start_{};
  // Active network faults: filters by fault index; delays and duplicates
  // combine to the worst one active.
  std::map<std::size_t, MemoryNetwork::FilterId> filters_;
  std::map<std::size_t, milliseconds> delays_;
  std::map<std::size_t, double> duplicates_;
  std::map<std::size_t, std::pair<std::uint64_t, milliseconds>> slow_disks_;
  std::map<std::uint64_t, std::size_t> crashed_;  // store -> crash fault
  std::map<std::string, std::optional<std::string>> final_values_;
  std::set<std::uint64_t> failed_stores_;
};

constexpr milliseconds kBaseDelayMax{8};

std::string store_list(const std::vector<std::uint64_t>& ids) {
  std::string out;
  for (auto id : ids) out += fmt::format("{}{}", out.empty() ? "" : ",", id);
  return out;
}

SimReport Simulator::run() {
  test::LocalClusterOptions co;
  co.stores = report_.stores;
  co.bootstrapped = 3;
  co.seed = o_.seed;
  co.simulated_disk = true;
  co.tune = [](StoreOptions& s) {
    s.raft_log_gc_count_limit = 48;  // logs compact, lagging peers need snapshots
    s.raft_log_gc_ticks = 3;
    s.snapshot_chunk_bytes = 256;    // and snapshots travel in several chunks
    s.merge_max_log_gap = 64;
  };
  // Clocks drift against each other, well inside the lease margin.
  test::Rng skew(o_.seed ^ 0xc10c'4a11ULL);
  for (std::size_t i = 0; i < report_.stores; ++i) {
    co.clock_skews.push_back(
        {milliseconds(static_cast<std::int64_t>(skew.next() % 21) - 10),
         static_cast<std::int64_t>(skew.next() % 401) - 200});
  }
  cluster_ = std::make_unique<test::LocalCluster>(co);
  auto& c = *cluster_;
  drop_rng_ = test::Rng(o_.seed ^ 0xd50b'0000ULL);
  c.net().set_delay(1ms, kBaseDelayMax);
  if (c.wait_leader() == 0) {
    fail("no leader was elected before the workload started");
    return std::move(report_);
  }
  // Most runs start with two regions, so merges have a neighbour from the
  // start (splits in the schedule make more).
  if (pre_split_) {
    const auto leader = c.leader(1);
    auto split_done = std::make_shared<bool>(false);
    c.store(leader).async_split_region(1, {keys_[keys_.size() / 2]}, RequestOptions{5s},
                                       [split_done](const Status&) { *split_done = true; });
    c.sim().run_until([&] { return *split_done; }, 6s);
  }
  start_ = c.sim().now();

  WorkloadOptions wo;
  wo.clients = o_.clients;
  wo.keys = keys_;
  workload_ = std::make_unique<Workload>(c, o_.seed, wo);
  workload_->start();

  // Events in time order: fault starts and ends, and tiling samples.
  struct Event {
    milliseconds at;
    int order;  // ends before starts at the same time, samples last
    const Fault* fault;
  };
  std::vector<Event> events;
  for (const auto& f : report_.schedule) {
    if (o_.skip_faults.count(f.index) != 0) continue;
    events.push_back({f.at, 1, &f});
    if (f.duration.count() > 0) events.push_back({f.at + f.duration, 0, &f});
  }
  for (milliseconds t{0}; t < o_.workload; t += 200ms) events.push_back({t, 2, nullptr});
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return a.at != b.at ? a.at < b.at : a.order < b.order;
  });

  for (const auto& e : events) {
    const auto due = start_ + e.at;
    if (due > c.sim().now() && !advance(due - c.sim().now())) return std::move(report_);
    if (e.fault == nullptr) {
      sample_tiling(false);
    } else if (e.order == 1) {
      begin(*e.fault);
    } else {
      end(*e.fault);
    }
  }
  if (start_ + o_.workload > c.sim().now() && !advance(start_ + o_.workload - c.sim().now())) {
    return std::move(report_);
  }

  heal_everything();
  if (!advance(o_.settle)) return std::move(report_);
  workload_->stop();
  c.sim().run_until([&] { return workload_->outstanding() == 0 || over_budget(); }, 10s);
  if (over_budget()) {
    fail(fmt::format("livelock: more than {} simulated tasks", o_.max_tasks));
    return std::move(report_);
  }
  if (workload_->outstanding() != 0) {
    fail(fmt::format("{} requests were never answered (each has a timeout)",
                     workload_->outstanding()));
  }
  final_reads();
  if (!report_.failures.empty()) describe_stores();
  sample_tiling(true);
  check_history();
  report_.stats = workload_->stats();
  report_.frames_dropped = c.net().dropped();
  report_.tasks = c.sim().tasks_run();
  report_.sim_seconds = static_cast<double>((c.sim().now() - c.sim().start()).count()) / 1e9;
  report_.ok = report_.failures.empty();
  return std::move(report_);
}

bool Simulator::advance(runtime::Duration d) {
  auto& sim = cluster_->sim();
  sim.run_until([&] { return over_budget(); }, d);
  if (!over_budget()) return true;
  fail(fmt::format("livelock: more than {} simulated tasks by {:.3f}s", o_.max_tasks,
                   static_cast<double>((sim.now() - start_).count()) / 1e9));
  report_.stats = workload_->stats();
  report_.tasks = sim.tasks_run();
  return false;
}

void Simulator::begin(const Fault& f) {
  auto& c = *cluster_;
  auto& net = c.net();
  switch (f.kind) {
    case FaultKind::kDrop: {
      const double p = f.rate;
      filters_[f.index] = net.add_filter(
          [this, p](std::uint64_t, std::uint64_t, std::string_view) { return !drop_rng_.chance(p); });
      break;
    }
    case FaultKind::kDelay: delays_[f.index] = f.amount; apply_network(); break;
    case FaultKind::kDuplicate: duplicates_[f.index] = f.rate; apply_network(); break;
    case FaultKind::kPartition: {
      const auto side = f.group;
      const auto in = [side](std::uint64_t id) {
        return std::find(side.begin(), side.end(), id) != side.end();
      };
      filters_[f.index] = net.add_filter(
          [in](std::uint64_t from, std::uint64_t to, std::string_view) { return in(from) == in(to); });
      break;
    }
    case FaultKind::kOneWay: {
      const auto from_id = f.store;
      const auto to_id = f.other;
      filters_[f.index] = net.add_filter([from_id, to_id](std::uint64_t from, std::uint64_t to,
                                                          std::string_view) {
        return !(from == from_id && to == to_id);
      });
      break;
    }
    case FaultKind::kIsolate: {
      const auto id = f.store;
      filters_[f.index] = net.add_filter(
          [id](std::uint64_t from, std::uint64_t to, std::string_view) { return from != id && to != id; });
      break;
    }
    case FaultKind::kCrash:
      if (!c.running(f.store)) {
        log(f.describe() + ": already down");
        return;
      }
      c.crash(f.store);
      crashed_[f.store] = f.index;
      break;
    case FaultKind::kPause:
      if (!c.running(f.store)) return;
      c.pause(f.store, f.duration);
      break;
    case FaultKind::kClockJump: c.view(f.store).sim_clock().jump(f.amount); break;
    case FaultKind::kSlowDisk:
      slow_disks_[f.index] = {f.store, f.amount};
      c.set_disk_latency(f.store, f.amount);
      break;
    case FaultKind::kTransferLeader:
    case FaultKind::kSplit:
    case FaultKind::kMerge:
    case FaultKind::kMembership: admin(f); return;
  }
  log(f.describe());
}

void Simulator::end(const Fault& f) {
  auto& c = *cluster_;
  if (auto it = filters_.find(f.index); it != filters_.end()) {
    c.net().remove_filter(it->second);
    filters_.erase(it);
  }
  if (delays_.erase(f.index) + duplicates_.erase(f.index) != 0) apply_network();
  if (auto it = slow_disks_.find(f.index); it != slow_disks_.end()) {
    const auto id = it->second.first;
    slow_disks_.erase(it);
    milliseconds worst{0};
    for (const auto& [i, sd] : slow_disks_) {
      if (sd.first == id) worst = std::max(worst, sd.second);
    }
    c.set_disk_latency(id, worst);
  }
  if (f.kind == FaultKind::kCrash) {
    auto it = crashed_.find(f.store);
    if (it == crashed_.end() || it->second != f.index) return;
    crashed_.erase(it);
    if (Status s = c.restart(f.store); !s.is_ok()) {
      fail(fmt::format("store {} failed to restart after a crash: {}", f.store, s.to_string()));
    }
    log(fmt::format("store {} restarted", f.store));
  }
}

void Simulator::apply_network() {
  milliseconds delay = kBaseDelayMax;
  for (const auto& [i, d] : delays_) delay = std::max(delay, d);
  double dup = 0;
  for (const auto& [i, r] : duplicates_) dup = std::max(dup, r);
  cluster_->net().set_delay(1ms, delay);
  cluster_->net().set_duplicate_rate(dup);
}

void Simulator::heal_everything() {
  auto& c = *cluster_;
  for (const auto& [i, id] : filters_) c.net().remove_filter(id);
  filters_.clear();
  delays_.clear();
  duplicates_.clear();
  apply_network();
  for (const auto& [i, sd] : slow_disks_) c.set_disk_latency(sd.first, 0ms);
  slow_disks_.clear();
  for (const auto& [id, i] : crashed_) {
    if (Status s = c.restart(id); !s.is_ok()) {
      fail(fmt::format("store {} failed to restart after a crash: {}", id, s.to_string()));
    }
  }
  crashed_.clear();
  log("every fault healed");
}

std::map<std::uint64_t, RegionView> Simulator::region_views() {
  auto& c = *cluster_;
  std::map<std::uint64_t, RegionView> out;
  for (auto id : c.store_ids()) {
    if (!c.running(id)) continue;
    for (const auto& r : c.store(id).regions()) {
      auto [it, fresh] = out.try_emplace(r.region_id, RegionView{r, r.is_leader ? id : 0});
      if (fresh) continue;
      RegionView& v = it->second;
      const bool newer = r.version > v.status.version ||
                         (r.version == v.status.version && r.conf_ver > v.status.conf_ver);
      if (r.is_leader && (v.leader == 0 || r.term >= v.status.term)) {
        v = RegionView{r, id};
      } else if (v.leader == 0 && newer) {
        v.status = r;
      }
    }
  }
  return out;
}

std::optional<RegionView> Simulator::region_of(const std::string& key) {
  std::optional<RegionView> best;
  for (auto& [id, v] : region_views()) {
    const auto& r = v.status;
    if (key < r.start_key || (!r.end_key.empty() && key >= r.end_key)) continue;
    if (!best || (v.leader != 0 && best->leader == 0) || r.version > best->status.version) {
      best = v;
    }
  }
  return best;
}

void Simulator::admin(const Fault& f) {
  auto& c = *cluster_;
  auto r = region_of(f.key);
  if (!r || r->leader == 0 || !c.running(r->leader)) {
    log(f.describe() + ": no leader known, skipped");
    return;
  }
  Store& leader = c.store(r->leader);
  const auto region = r->status.region_id;
  const RequestOptions opts{3s};
  const auto done = [this, what = f.describe()](Status s) {
    log(fmt::format("{}: {}", what, s.is_ok() ? std::string("done") : s.to_string()));
  };
  switch (f.kind) {
    case FaultKind::kTransferLeader: {
      std::vector<std::uint64_t> to;
      for (auto id : r->status.voter_stores) {
        if (id != r->leader) to.push_back(id);
      }
      if (to.empty()) return;
      const auto target = to[admin_rng_.next() % to.size()];
      Status s = leader.transfer_leader(region, target);
      log(fmt::format("{}: region {} from {} to {}: {}", f.describe(), region, r->leader, target,
                      s.is_ok() ? std::string("asked") : s.to_string()));
      return;
    }
    case FaultKind::kSplit: {
      std::vector<std::string> at;
      for (const auto& k : {f.key, f.key2}) {
        if (!k.empty() && k > r->status.start_key &&
            (r->status.end_key.empty() || k < r->status.end_key)) {
          at.push_back(k);
        }
      }
      if (at.empty()) {
        log(f.describe() + ": already a boundary, skipped");
        return;
      }
      log(fmt::format("{}: region {} on store {}", f.describe(), region, r->leader));
      leader.async_split_region(region, at, opts, done);
      return;
    }
    case FaultKind::kMerge: {
      // A neighbour, as the leader's store knows it.
      std::vector<std::uint64_t> targets;
      for (const auto& n : leader.regions()) {
        if ((!r->status.end_key.empty() && n.start_key == r->status.end_key) ||
            (!n.end_key.empty() && n.end_key == r->status.start_key)) {
          targets.push_back(n.region_id);
        }
      }
      if (targets.empty()) {
        log(f.describe() + ": no neighbour, skipped");
        return;
      }
      const auto target = targets[admin_rng_.next() % targets.size()];
      log(fmt::format("{}: region {} into {}", f.describe(), region, target));
      leader.async_merge_region(region, target, opts, done);
      return;
    }
    case FaultKind::kMembership: membership_step(*r); return;
    default: return;
  }
}

void Simulator::membership_step(const RegionView& r) {
  auto& c = *cluster_;
  const auto& st = r.status;
  if (st.joint) return;
  using Kind = PeerChangeRequest::Kind;
  std::vector<std::uint64_t> free_stores;
  for (auto id : c.store_ids()) {
    const bool has = std::count(st.voter_stores.begin(), st.voter_stores.end(), id) != 0 ||
                     std::count(st.learner_stores.begin(), st.learner_stores.end(), id) != 0;
    if (!has) free_stores.push_back(id);
  }
  std::vector<std::uint64_t> followers;
  for (auto id : st.voter_stores) {
    if (id != r.leader) followers.push_back(id);
  }
  const auto pick = [&](const std::vector<std::uint64_t>& v) {
    return v[admin_rng_.next() % v.size()];
  };
  std::vector<PeerChangeRequest> changes;
  if (!st.learner_stores.empty()) {
    const auto learner = st.learner_stores.front();
    const auto roll = admin_rng_.next() % 3;
    if (roll == 0 || st.voter_stores.size() < 3) {
      changes.push_back({Kind::kAddVoter, learner});
    } else if (roll == 1 || followers.empty()) {
      changes.push_back({Kind::kRemove, learner});
    } else {
      // A joint step: the learner in, a follower out.
      changes.push_back({Kind::kAddVoter, learner});
      changes.push_back({Kind::kDemoteVoter, pick(followers)});
    }
  } else if (st.voter_stores.size() < 3 || (!free_stores.empty() && admin_rng_.chance(0.5))) {
    if (free_stores.empty()) return;
    changes.push_back({Kind::kAddLearner, pick(free_stores)});
  } else {
    if (followers.empty()) return;
    changes.push_back({Kind::kDemoteVoter, pick(followers)});
  }
  std::string what;
  for (const auto& ch : changes) {
    static constexpr const char* kNames[] = {"add-learner", "add-voter", "demote", "remove"};
    what += fmt::format(" {} {}", kNames[static_cast<int>(ch.kind)], ch.store_id);
  }
  log(fmt::format("membership: region {} (voters {} learners {}):{}", st.region_id,
                  store_list(st.voter_stores), store_list(st.learner_stores), what));
  c.store(r.leader).async_change_peers(
      st.region_id, std::move(changes), RequestOptions{3s},
      [this, region = st.region_id](Status s) {
        log(fmt::format("membership: region {}: {}", region,
                        s.is_ok() ? std::string("done") : s.to_string()));
      });
}

void Simulator::sample_tiling(bool final_check) {
  auto& c = *cluster_;
  std::vector<RegionReport> reports;
  for (auto id : c.store_ids()) {
    if (!c.running(id)) continue;
    // A store that stopped itself on an internal error (it logs why) is a
    // failed run, even when the others carry the cluster on.
    if (c.store(id).metric("kvcore_store_failures_total") != 0 && failed_stores_.insert(id).second) {
      fail(fmt::format("store {} stopped serving after an internal error (see its log)", id));
    }
    for (const auto& r : c.store(id).regions()) {
      reports.push_back({id, r.region_id, r.start_key, r.end_key, r.version, r.conf_ver});
    }
  }
  ++report_.tiling_samples;
  const auto result = check_tiling(reports, final_check);
  std::uint64_t distinct = 0;
  {
    std::set<std::uint64_t> ids;
    for (const auto& r : reports) ids.insert(r.region_id);
    distinct = ids.size();
  }
  report_.max_regions = std::max(report_.max_regions, distinct);
  if (final_check) report_.final_regions = distinct;
  if (!result.ok) {
    fail(fmt::format("regions do not tile the key space{}: {}",
                     final_check ? " after the run" : "", result.explanation));
  }
}

void Simulator::final_reads() {
  auto& c = *cluster_;
  for (const auto& key : keys_) {
    const auto call = c.sim().now().time_since_epoch().count();
    auto r = c.get_any(key, 20s);
    if (!r.is_ok()) {
      fail(fmt::format("after every fault healed, {:?} could not be read: {}", key,
                       r.status().to_string()));
      continue;
    }
    workload_->record_read(key, *r, call, c.sim().now().time_since_epoch().count());
    final_values_[key] = *r;
  }
}

void Simulator::describe_stores() {
  auto& c = *cluster_;
  for (auto id : c.store_ids()) {
    if (!c.running(id)) {
      report_.final_state.push_back(fmt::format("store {}: down", id));
      continue;
    }
    for (const auto& r : c.store(id).regions()) {
      report_.final_state.push_back(fmt::format(
          "store {}: region {} [{:?}, {:?}) v{} c{} voters {} learners {}{}{} term {} leader {} "
          "commit {} applied {} log [{}, {}]",
          id, r.region_id, r.start_key, r.end_key, r.version, r.conf_ver,
          store_list(r.voter_stores), store_list(r.learner_stores), r.joint ? " joint" : "",
          r.merging ? " merging" : "", r.term, r.leader_store, r.commit_index, r.applied_index,
          r.first_log_index, r.last_log_index));
    }
  }
}

void Simulator::check_history() {
  auto history = workload_->history();
  report_.history_ops = history.size();
  if (final_values_.size() == keys_.size()) {
    const auto survival = check_acknowledged_writes(history, final_values_);
    if (!survival.ok) fail("an acknowledged write was lost: " + survival.explanation);
  }
  const auto lin = test::check_linearizable(std::move(history), o_.max_check_states);
  report_.check_states = lin.states_explored;
  if (!lin.ok) fail("the history is not linearizable: " + lin.explanation);
}

}  // namespace

std::string SimReport::summary() const {
  return fmt::format(
      "seed {} ({} stores): {} — {} ops ({} writes, {} cas ok, {} cas failed, {} reads, {} scans, "
      "{} unknown, {} refused), {} faults, regions max {} final {}, {} check states, {} tasks",
      options.seed, stores, ok ? "ok" : "FAILED", history_ops, stats.writes_ok, stats.cas_ok,
      stats.cas_failed, stats.reads_ok, stats.scans_ok, stats.unknown, stats.refused,
      schedule.size() - skipped.size(), max_regions, final_regions, check_states, tasks);
}

std::string SimReport::replay_command() const {
  std::string cmd = fmt::format("kvcore-sim --seed {}", options.seed);
  const SimOptions defaults;
  if (options.faults != defaults.faults) cmd += fmt::format(" --faults {}", options.faults);
  if (options.workload != defaults.workload) {
    cmd += fmt::format(" --workload-ms {}", options.workload.count());
  }
  if (options.clients != defaults.clients) cmd += fmt::format(" --clients {}", options.clients);
  if (options.keys != defaults.keys) cmd += fmt::format(" --keys {}", options.keys);
  if (!skipped.empty()) {
    std::string list;
    for (auto i : skipped) list += fmt::format("{}{}", list.empty() ? "" : ",", i);
    cmd += " --skip-faults " + list;
  }
  return cmd;
}

std::string SimReport::details() const {
  std::string out = summary() + "\n";
  out += "fault schedule:\n";
  for (const auto& f : schedule) {
    out += fmt::format("  {}{}\n", f.describe(), skipped.count(f.index) ? "  (skipped)" : "");
  }
  out += "what happened:\n";
  for (const auto& l : fault_log) out += "  " + l + "\n";
  if (!stats.failures.empty()) {
    out += "request failures:";
    for (const auto& [what, n] : stats.failures) out += fmt::format(" [{}: {}]", what, n);
    out += "\n";
  }
  if (!final_state.empty()) {
    out += "stores at the end:\n";
    for (const auto& l : final_state) out += "  " + l + "\n";
  }
  for (const auto& f : failures) out += "FAILED: " + f + "\n";
  out += "replay: " + replay_command() + "\n";
  return out;
}

SimReport run_simulation(const SimOptions& options) {
  Simulator sim(options);
  return sim.run();
}

SimReport shrink_faults(const SimOptions& options, const SimReport& failing, int max_runs) {
  SimReport best = failing;
  SimOptions o = options;
  o.skip_faults = failing.skipped;
  int runs = 0;
  for (auto it = failing.schedule.rbegin(); it != failing.schedule.rend() && runs < max_runs; ++it) {
    if (o.skip_faults.count(it->index) != 0) continue;
    SimOptions trial = o;
    trial.skip_faults.insert(it->index);
    trial.trace = false;
    SimReport r = run_simulation(trial);
    ++runs;
    if (!r.ok) {
      o = trial;
      best = std::move(r);
    }
  }
  return best;
}

}  // namespace kvcore::sim
