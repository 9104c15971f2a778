#include "workload.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace kvcore::sim {

using test::Operation;

WriteOutcome classify_write_failure(const Status& s) {
  // Refusals made before the command could enter the log, or by the apply
  // of an entry that then changed nothing (store.hpp promises these had no
  // effect; a peer destroyed with a proposal in flight answers it with a
  // plain Unavailable instead, as its outcome is unknown).
  switch (s.sub_code()) {
    case SubCode::kNotLeader:
    case SubCode::kRegionNotFound:
    case SubCode::kKeyNotInRegion:
    case SubCode::kEpochNotMatch:
    case SubCode::kStaleCommand:
    case SubCode::kProposalDropped:
    case SubCode::kServerIsBusy:
    case SubCode::kRegionMerging:
    case SubCode::kConditionFailed:
      return WriteOutcome::kNoEffect;
    default: break;
  }
  if (s.code() == Code::kInvalidArgument) return WriteOutcome::kNoEffect;
  return WriteOutcome::kUnknown;
}

Workload::Workload(test::LocalCluster& cluster, std::uint64_t seed, WorkloadOptions options)
    : c_(cluster), rng_(seed ^ 0x0c11'e475ULL), o_(std::move(options)), clients_(o_.clients) {}

std::int64_t Workload::now() const { return c_.sim().now().time_since_epoch().count(); }

void Workload::start() {
  for (std::size_t i = 0; i < clients_.size(); ++i) schedule(i);
}

std::uint64_t Workload::pick_store(Client& cl) {
  if (cl.store == 0 || !c_.running(cl.store)) cl.store = 1 + rng_.next() % c_.size();
  return cl.store;
}

void Workload::follow_hint(Client& cl, const Status& s) {
  const auto* d = s.detail_as<NotLeaderDetail>();
  cl.store = (d != nullptr && d->leader_store_id != 0) ? d->leader_store_id
                                                       : 1 + rng_.next() % c_.size();
}

void Workload::schedule(std::size_t client) {
  if (stopped_) return;
  const auto think = std::chrono::milliseconds(
      1 + static_cast<std::int64_t>(rng_.next() % static_cast<std::uint64_t>(o_.max_think.count())));
  (void)c_.sim().timers().schedule_after(think, [this, client] { issue(client); });
}

RequestOptions Workload::request_options() {
  const auto span = static_cast<std::uint64_t>((o_.max_timeout - o_.min_timeout).count() + 1);
  return RequestOptions{o_.min_timeout + std::chrono::milliseconds(rng_.next() % span)};
}

std::string Workload::fresh_value(std::size_t client) {
  return fmt::format("c{}v{}", client, next_value_++);
}

std::vector<std::size_t> Workload::begin_writes(
    std::size_t client, const std::vector<std::pair<std::string, std::optional<std::string>>>& kv,
    const std::vector<std::optional<std::string>>* expected) {
  std::vector<std::size_t> slots;
  for (std::size_t i = 0; i < kv.size(); ++i) {
    Operation op;
    op.client = client;
    op.kind = expected != nullptr ? Operation::Kind::kCas : Operation::Kind::kWrite;
    op.key = kv[i].first;
    op.value = kv[i].second;
    if (expected != nullptr) op.expected = (*expected)[i];
    op.call = now();
    slots.push_back(ops_.size());
    ops_.push_back(std::move(op));
    dead_.push_back(false);
  }
  return slots;
}

void Workload::issue(std::size_t client) {
  if (stopped_) return;
  Client& cl = clients_[client];
  const std::uint64_t id = pick_store(cl);
  if (!c_.running(id)) {
    schedule(client);
    return;
  }
  Store& store = c_.store(id);
  const RequestOptions opts = request_options();
  const auto& keys = o_.keys;
  const std::size_t k = rng_.next() % keys.size();
  // Batches take neighbouring keys, which more often share a region.
  const std::size_t k2 = std::min(keys.size() - 1, k + 1 + rng_.next() % 2);
  ++stats_.issued;
  ++outstanding_;
  const std::uint64_t pick = rng_.next() % 100;

  if (pick < 28) {  // get
    const std::size_t slot = ops_.size();
    Operation op;
    op.client = client;
    op.kind = Operation::Kind::kRead;
    op.key = keys.at(k);
    op.call = now();
    ops_.push_back(std::move(op));
    dead_.push_back(false);
    store.async_get(keys.at(k), opts,
                    [this, client, slot](Result<std::optional<std::string>> r) {
                      finish_get(client, slot, r);
                    });
    return;
  }
  if (pick < 43) {  // scan
    std::size_t a = rng_.next() % keys.size();
    std::size_t b = rng_.next() % (keys.size() + 1);
    if (b < a) std::swap(a, b);
    const std::string start = a == 0 && rng_.chance(0.3) ? std::string() : keys.at(a);
    const std::string end = b == keys.size() ? std::string() : keys.at(b);
    const std::size_t limit = rng_.chance(0.5) ? 0 : 1 + rng_.next() % 4;
    const bool reverse = rng_.chance(0.3);
    const std::int64_t call = now();
    store.async_scan(start, end, limit, reverse, opts,
                     [this, client, call, start, end, limit,
                      reverse](Result<std::vector<KvPair>> r) {
                       finish_scan(client, call, start, end, limit, reverse, r);
                     });
    return;
  }

  RawBatch batch;
  std::vector<std::pair<std::string, std::optional<std::string>>> kv;
  std::vector<std::optional<std::string>> expected;
  bool conditional = false;
  if (pick < 63) {  // put
    kv.emplace_back(keys.at(k), fresh_value(client));
  } else if (pick < 68) {  // delete
    kv.emplace_back(keys.at(k), std::nullopt);
  } else if (pick < 76) {  // atomic batch of puts
    kv.emplace_back(keys.at(k), fresh_value(client));
    if (k2 != k) kv.emplace_back(keys.at(k2), fresh_value(client));
  } else if (pick < 97) {  // conditional batch: compare-and-set per key
    conditional = true;
    kv.emplace_back(keys.at(k), rng_.chance(0.15) ? std::nullopt
                                                 : std::optional<std::string>(fresh_value(client)));
    if (k2 != k && rng_.chance(0.4)) kv.emplace_back(keys.at(k2), fresh_value(client));
    for (const auto& [key, v] : kv) {
      auto it = cl.seen.find(key);
      expected.push_back(it == cl.seen.end() ? std::nullopt : it->second);
    }
  } else {  // delete_range over a few keys
    const std::string start = keys.at(k);
    const std::string end = k2 + 1 < keys.size() ? keys.at(k2 + 1) : std::string();
    for (std::size_t i = k; i < keys.size() && (end.empty() || keys[i] < end); ++i) {
      kv.emplace_back(keys[i], std::nullopt);
    }
    auto slots = begin_writes(client, kv, nullptr);
    store.async_delete_range(start, end, opts, [this, client, slots](Status s) {
      // Parts over several regions are atomic one by one: a part's failure
      // says nothing about the others (see Store::delete_range), except for
      // NotLeader, which the store checks for every part before proposing
      // any. (A RegionNotFound may come from a part whose peer was merged
      // away after another part was proposed.)
      const bool whole = s.is_ok() || s.sub_code() == SubCode::kNotLeader;
      finish_write(client, slots, whole ? s : Status::unavailable("part of a delete_range failed"));
    });
    return;
  }
  for (std::size_t i = 0; i < kv.size(); ++i) {
    if (conditional) batch.expect(kv[i].first, expected[i]);
    if (kv[i].second) {
      batch.put(kv[i].first, *kv[i].second);
    } else {
      batch.del(kv[i].first);
    }
  }
  auto slots = begin_writes(client, kv, conditional ? &expected : nullptr);
  store.async_write(std::move(batch), opts,
                    [this, client, slots](Status s) { finish_write(client, slots, s); });
}

void Workload::count_failure(const char* what, const Status& s) {
  // Without a sub-code the message says what happened (a stopping store, a
  // destroyed peer, ...): keep its start, numbers out, so kinds add up.
  std::string why;
  if (s.sub_code() == SubCode::kNone) {
    for (char ch : s.message().substr(0, 48)) {
      if (ch < '0' || ch > '9') why += ch;
    }
    why = " (" + why + ")";
  }
  ++stats_.failures[fmt::format("{} {}/{}{}", what, to_string(s.code()), to_string(s.sub_code()),
                                why)];
}

void Workload::finish_write(std::size_t client, const std::vector<std::size_t>& slots,
                            const Status& s) {
  --outstanding_;
  Client& cl = clients_[client];
  const std::int64_t t = now();
  if (s.is_ok()) {
    for (auto slot : slots) {
      ops_[slot].ret = t;
      cl.seen[ops_[slot].key] = ops_[slot].value;
    }
    if (!slots.empty() && ops_[slots.front()].kind == Operation::Kind::kCas) {
      ++stats_.cas_ok;
    } else {
      ++stats_.writes_ok;
    }
  } else if (const auto* d = s.detail_as<ConditionFailedDetail>();
             d != nullptr && s.sub_code() == SubCode::kConditionFailed) {
    // The batch read its keys and wrote nothing: reads of what it found.
    ++stats_.cas_failed;
    for (auto slot : slots) {
      Operation& op = ops_[slot];
      const auto it = std::find_if(d->actual.begin(), d->actual.end(),
                                   [&](const auto& a) { return a.first == op.key; });
      if (it == d->actual.end()) {
        dead_[slot] = true;
        continue;
      }
      op.kind = Operation::Kind::kRead;
      op.value = it->second;
      op.expected.reset();
      op.ret = t;
      cl.seen[op.key] = op.value;
    }
  } else {
    count_failure("write", s);
    if (classify_write_failure(s) == WriteOutcome::kNoEffect) {
      ++stats_.refused;
      for (auto slot : slots) dead_[slot] = true;
    } else {
      ++stats_.unknown;
      for (auto slot : slots) {
        ops_[slot].ret = test::kUnknownReturn;
        cl.seen.erase(ops_[slot].key);
      }
    }
    follow_hint(cl, s);
  }
  schedule(client);
}

void Workload::finish_get(std::size_t client, std::size_t slot,
                          const Result<std::optional<std::string>>& r) {
  --outstanding_;
  Client& cl = clients_[client];
  if (r.is_ok()) {
    ops_[slot].value = *r;
    ops_[slot].ret = now();
    cl.seen[ops_[slot].key] = *r;
    ++stats_.reads_ok;
  } else {
    count_failure("get", r.status());
    dead_[slot] = true;
    follow_hint(cl, r.status());
  }
  schedule(client);
}

void Workload::finish_scan(std::size_t client, std::int64_t call, const std::string& start,
                           const std::string& end, std::size_t limit, bool reverse,
                           const Result<std::vector<KvPair>>& r) {
  --outstanding_;
  Client& cl = clients_[client];
  if (!r.is_ok()) {
    count_failure("scan", r.status());
    follow_hint(cl, r.status());
    schedule(client);
    return;
  }
  ++stats_.scans_ok;
  const auto& pairs = *r;
  // The keys the scan speaks for: the whole range, unless it stopped at its
  // limit; then only up to (from the end: down to) its last key.
  std::string lo = start;
  std::string hi = end;  // exclusive; empty: no bound
  bool hi_inclusive = false;
  if (limit != 0 && pairs.size() == limit && !pairs.empty()) {
    if (reverse) {
      lo = pairs.back().key;
    } else {
      hi = pairs.back().key;
      hi_inclusive = true;
    }
  }
  const std::int64_t t = now();
  for (const auto& key : o_.keys) {
    if (key < lo) continue;
    if (!hi.empty() && (hi_inclusive ? key > hi : key >= hi)) continue;
    Operation op;
    op.client = client;
    op.kind = Operation::Kind::kRead;
    op.key = key;
    const auto it =
        std::find_if(pairs.begin(), pairs.end(), [&](const KvPair& p) { return p.key == key; });
    if (it != pairs.end()) op.value = it->value;
    op.call = call;
    op.ret = t;
    cl.seen[key] = op.value;
    ops_.push_back(std::move(op));
    dead_.push_back(false);
  }
  schedule(client);
}

void Workload::record_read(const std::string& key, std::optional<std::string> value,
                           std::int64_t call, std::int64_t ret) {
  Operation op;
  op.client = clients_.size();  // the checker after the run
  op.kind = Operation::Kind::kRead;
  op.key = key;
  op.value = std::move(value);
  op.call = call;
  op.ret = ret;
  ops_.push_back(std::move(op));
  dead_.push_back(false);
}

std::vector<Operation> Workload::history() const {
  std::vector<Operation> out;
  out.reserve(ops_.size());
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (dead_[i]) continue;
    Operation op = ops_[i];
    if (op.ret == 0) {
      if (op.kind == Operation::Kind::kRead) continue;  // never answered: tells nothing
      op.ret = test::kUnknownReturn;
    }
    out.push_back(std::move(op));
  }
  return out;
}

}  // namespace kvcore::sim
