// Conformance: iterator order, bounds and seeks; snapshot isolation;
// delete_range (engine-level and in a batch).
#include <string>
#include <vector>

#include "engine_test_util.hpp"

namespace kvcore::test {
namespace {

std::string key_n(int n) {
  std::string s = std::to_string(n);
  return "k" + std::string(4 - std::min<std::size_t>(4, s.size()), '0') + s;
}

// Every seek of every probe, plus full walks both ways, against the model.
void check_iterator(const Reader& r, CF cf, const Model& model, const IterOptions& opts,
                    const std::vector<std::string>& probes) {
  INFO("bounds [" << printable(opts.lower_bound) << ", " << printable(opts.upper_bound) << ")");
  const auto expected = bounded(model, opts);
  Model expected_map(expected.begin(), expected.end());
  CHECK(dump(r, cf, opts) == expected_map);
  CHECK(dump_backward(r, cf, opts) == expected_map);

  auto it = r.new_iterator(cf, opts);
  ModelCursor ref(model, opts);
  it->seek_to_first();
  ref.seek_to_first();
  CHECK(same_position(*it, ref, "seek_to_first"));
  it->seek_to_last();
  ref.seek_to_last();
  CHECK(same_position(*it, ref, "seek_to_last"));
  for (const auto& p : probes) {
    it->seek(p);
    ref.seek(p);
    if (!same_position(*it, ref, "seek(" + printable(p) + ")")) continue;
    // Change direction right after a seek.
    if (ref.valid()) {
      it->prev();
      ref.prev();
      same_position(*it, ref, "seek(" + printable(p) + ") prev");
    }
    it->seek_for_prev(p);
    ref.seek_for_prev(p);
    if (!same_position(*it, ref, "seek_for_prev(" + printable(p) + ")")) continue;
    if (ref.valid()) {
      it->next();
      ref.next();
      same_position(*it, ref, "seek_for_prev(" + printable(p) + ") next");
    }
  }
}

TEST_CASE("iterator: order, bounds, reverse and seek_for_prev", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    // Probes at, between, before and after the keys, and at the bounds.
    std::vector<std::string> probes = {"",
                                       std::string(1, '\0'),
                                       "a",
                                       "k",
                                       "k0000",
                                       "k0005",
                                       "k0005\x01",
                                       "k0010",
                                       "k0011",
                                       "k0050",
                                       "k0099",
                                       "k01",
                                       "l",
                                       "zzzz",
                                       std::string(8, '\xff')};
    const std::vector<IterOptions> bounds = {
        {},
        {.lower_bound = "k0010", .upper_bound = {}},
        {.lower_bound = {}, .upper_bound = "k0050"},
        {.lower_bound = "k0010", .upper_bound = "k0050"},
        {.lower_bound = "k00105", .upper_bound = "k00495"},  // bounds between keys
        {.lower_bound = "k0010", .upper_bound = "k0011"},    // exactly one key
        {.lower_bound = "k0010", .upper_bound = "k0010"},    // empty
        {.lower_bound = "k0050", .upper_bound = "k0010"},    // inverted: empty
        {.lower_bound = "a", .upper_bound = "b"},            // nothing there
        {.lower_bound = "zzz", .upper_bound = {}},           // past the last key
    };
    Model model;

    SECTION("empty column family") {
      for (const auto& b : bounds) check_iterator(e, CF::kWrite, model, b, probes);
    }
    SECTION("single key") {
      put(e, CF::kWrite, "k0010", "only");
      model["k0010"] = "only";
      for (const auto& b : bounds) check_iterator(e, CF::kWrite, model, b, probes);
    }
    SECTION("full range, memtable and after flush") {
      auto batch = e.new_write_batch();
      for (int i = 0; i < 100; ++i) {
        batch->put(CF::kWrite, key_n(i), "v" + std::to_string(i));
        model[key_n(i)] = "v" + std::to_string(i);
        // Neighbours in other CFs that would show up if bounds leaked.
        batch->put(CF::kLock, key_n(i), "lock");
        batch->put(CF::kRaft, key_n(i), "raft");
      }
      REQUIRE_OK(e.write(*batch, {}));
      for (const auto& b : bounds) check_iterator(e, CF::kWrite, model, b, probes);
      REQUIRE_OK(e.flush());
      // Half the keys in a file, half overwritten in the memtable.
      for (int i = 0; i < 100; i += 2) {
        put(e, CF::kWrite, key_n(i), "w" + std::to_string(i));
        model[key_n(i)] = "w" + std::to_string(i);
      }
      del(e, CF::kWrite, key_n(11));
      model.erase(key_n(11));
      for (const auto& b : bounds) check_iterator(e, CF::kWrite, model, b, probes);
      auto snap = e.snapshot();
      for (const auto& b : bounds) check_iterator(*snap, CF::kWrite, model, b, probes);
    }
  }
}

TEST_CASE("iterator: key and value views stay valid until the iterator moves", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    for (int i = 0; i < 20; ++i) put(e, CF::kDefault, key_n(i), std::string(100, 'a' + i));
    auto it = e.new_iterator(CF::kDefault, {});
    it->seek(key_n(5));
    REQUIRE(it->valid());
    const std::string_view k = it->key();
    const std::string_view v = it->value();
    // Writes and a flush do not move the iterator.
    for (int i = 0; i < 20; ++i) put(e, CF::kDefault, key_n(i), "overwritten");
    REQUIRE_OK(e.flush());
    CHECK(k == key_n(5));
    CHECK(v == std::string(100, 'a' + 5));
  }
}

TEST_CASE("snapshot isolation", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    StoreModel old;
    for (int i = 0; i < 50; ++i) {
      for (CF cf : {CF::kDefault, CF::kWrite}) {
        put(e, cf, key_n(i), "old" + std::to_string(i));
        old[cf_index(cf)][key_n(i)] = "old" + std::to_string(i);
      }
    }
    auto snap = e.snapshot();
    // Iterators created before the writes: of the snapshot and of the engine.
    auto snap_it = snap->new_iterator(CF::kDefault, {});
    auto live_it = e.new_iterator(CF::kDefault, {});

    // Every kind of write, then a flush and a compaction.
    for (int i = 0; i < 50; i += 3) put(e, CF::kDefault, key_n(i), "new");
    for (int i = 1; i < 50; i += 7) del(e, CF::kDefault, key_n(i));
    put(e, CF::kDefault, "added", "new");
    REQUIRE_OK(e.delete_range(CF::kWrite, {key_n(10), key_n(40)}));
    auto batch = e.new_write_batch();
    batch->delete_range(CF::kDefault, key_n(20), key_n(30));
    batch->put(CF::kLock, "lock", "new");
    REQUIRE_OK(e.write(*batch, WriteOptions{.sync = true}));
    auto writer = e.new_sst_writer(store.sub("ingest.sst"));
    REQUIRE_OK(writer);
    REQUIRE_OK((*writer)->put(key_n(5), "ingested"));
    REQUIRE_OK((*writer)->put(key_n(45), "ingested"));
    auto info = (*writer)->finish();
    REQUIRE_OK(info);
    const std::vector<std::string> files = {info->path};
    REQUIRE_OK(e.ingest(CF::kWrite, files));
    REQUIRE_OK(e.flush());
    REQUIRE_OK(e.compact_range(CF::kDefault, {}));
    REQUIRE_OK(e.compact_range(CF::kWrite, {}));

    auto check_old = [&](const Reader& r) {
      for (CF cf : kAllCFs) {
        INFO("cf " << cf_name(cf));
        CHECK(dump(r, cf) == old[cf_index(cf)]);
        CHECK(dump_backward(r, cf) == old[cf_index(cf)]);
      }
      CHECK(get(r, CF::kDefault, key_n(3)) == "old3");
      CHECK(get(r, CF::kWrite, key_n(5)) == "old5");
      CHECK_FALSE(get(r, CF::kDefault, "added").has_value());
      const std::vector<std::string_view> ks = {"k0001", "k0021", "k0030"};
      auto many = r.multi_get(CF::kDefault, ks);
      REQUIRE_OK(many);
      CHECK((*many)[0] == "old1");
      CHECK((*many)[1] == "old21");
      CHECK((*many)[2] == "old30");
    };
    check_old(*snap);
    Model seen;
    for (snap_it->seek_to_first(); snap_it->valid(); snap_it->next()) {
      seen.emplace(snap_it->key(), snap_it->value());
    }
    REQUIRE_OK(snap_it->status());
    CHECK(seen == old[0]);
    seen.clear();
    for (live_it->seek_to_last(); live_it->valid(); live_it->prev()) {
      seen.emplace(live_it->key(), live_it->value());
    }
    REQUIRE_OK(live_it->status());
    CHECK(seen == old[0]);

    // The engine itself moved on.
    CHECK(get(e, CF::kDefault, key_n(3)) == "new");
    CHECK(get(e, CF::kWrite, key_n(5)) == "ingested");
    CHECK_FALSE(get(e, CF::kWrite, key_n(15)).has_value());
    CHECK(get(e, CF::kLock, "lock") == "new");

    // A second snapshot is independent of the first; releasing the first
    // leaves its iterator readable.
    auto snap2 = e.snapshot();
    const StoreModel now = dump_all(e);
    auto keep_it = snap->new_iterator(CF::kWrite, {});
    snap.reset();
    put(e, CF::kDefault, key_n(3), "newer");
    CHECK(dump_all(*snap2) == now);
    seen.clear();
    for (keep_it->seek_to_first(); keep_it->valid(); keep_it->next()) {
      seen.emplace(keep_it->key(), keep_it->value());
    }
    REQUIRE_OK(keep_it->status());
    CHECK(seen == old[cf_index(CF::kWrite)]);
  }
}

TEST_CASE("delete_range: engine-level and in a batch", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    StoreModel model;
    auto fill = [&](CF cf, int from, int to) {
      auto batch = e.new_write_batch();
      for (int i = from; i < to; ++i) {
        batch->put(cf, key_n(i), "v");
        model[cf_index(cf)][key_n(i)] = "v";
      }
      REQUIRE_OK(e.write(*batch, {}));
    };
    auto erase = [&](CF cf, const std::string& begin, const std::string& end) {
      auto& m = model[cf_index(cf)];
      if (begin < end) m.erase(m.lower_bound(begin), m.lower_bound(end));
    };
    for (CF cf : kAllCFs) fill(cf, 0, 100);
    REQUIRE_OK(e.flush());
    for (CF cf : kAllCFs) fill(cf, 100, 200);  // half in files, half in memtables

    SECTION("engine-level") {
      REQUIRE_OK(e.delete_range(CF::kDefault, {key_n(50), key_n(150)}));
      erase(CF::kDefault, key_n(50), key_n(150));
      // Bounds that are not keys.
      REQUIRE_OK(e.delete_range(CF::kDefault, {"k00155", "k01605"}));
      erase(CF::kDefault, "k00155", "k01605");
      // begin == end deletes nothing; begin > end deletes nothing (an error
      // is tolerated: the engine-level contract does not say).
      REQUIRE_OK(e.delete_range(CF::kDefault, {key_n(10), key_n(10)}));
      const Status inverted = e.delete_range(CF::kDefault, {key_n(30), key_n(20)});
      INFO("inverted range -> " << inverted.to_string());
      CHECK((inverted.is_ok() || inverted.code() == Code::kInvalidArgument));
      // An empty end is InvalidArgument and deletes nothing.
      CHECK_CODE(e.delete_range(CF::kDefault, {key_n(0), ""}), Code::kInvalidArgument);
      // An empty start means from the first key.
      REQUIRE_OK(e.delete_range(CF::kLock, {"", key_n(5)}));
      erase(CF::kLock, "", key_n(5));
      CHECK(dump_all(e) == model);
    }
    SECTION("in a batch, with keys put earlier in the same batch") {
      auto batch = e.new_write_batch();
      batch->put(CF::kWrite, "k0150x", "in-batch");    // inside the range: deleted
      batch->put(CF::kWrite, "zz", "in-batch");        // outside: kept
      batch->put(CF::kDefault, "k0150x", "other-cf");  // other CF: kept
      batch->delete_range(CF::kWrite, key_n(50), key_n(160));
      batch->put(CF::kWrite, key_n(60), "after-range");  // added after the range: kept
      const std::size_t counted = batch->count();
      // begin == end, begin > end or an empty end: nothing deleted, not counted.
      batch->delete_range(CF::kWrite, key_n(10), key_n(10));
      batch->delete_range(CF::kWrite, key_n(30), key_n(20));
      batch->delete_range(CF::kWrite, key_n(30), "");
      CHECK(batch->count() == counted);
      batch->delete_key(CF::kWrite, key_n(0));
      CHECK(batch->count() == counted + 1);
      REQUIRE_OK(e.write(*batch, {}));
      erase(CF::kWrite, key_n(50), key_n(160));
      model[cf_index(CF::kWrite)]["zz"] = "in-batch";
      model[cf_index(CF::kWrite)][key_n(60)] = "after-range";
      model[cf_index(CF::kWrite)].erase(key_n(0));
      model[cf_index(CF::kDefault)]["k0150x"] = "other-cf";
      CHECK(dump_all(e) == model);

      // Ranges of several CFs in one batch, and a put then a range over it.
      auto second = e.new_write_batch();
      second->put(CF::kRaft, "k9999", "gone");
      second->delete_range(CF::kRaft, key_n(0), "l");
      second->delete_range(CF::kLock, key_n(199), "l");
      REQUIRE_OK(e.write(*second, WriteOptions{.sync = true}));
      model[cf_index(CF::kRaft)].clear();
      erase(CF::kLock, key_n(199), "l");
      CHECK(dump_all(e) == model);
    }
    // Deleted stays deleted after a flush, a compaction and a reopen.
    REQUIRE_OK(e.flush());
    for (CF cf : kAllCFs) REQUIRE_OK(e.compact_range(cf, {}));
    CHECK(dump_all(e) == model);
    store.reopen();
    CHECK(dump_all(store.engine()) == model);
  }
}

}  // namespace
}  // namespace kvcore::test
