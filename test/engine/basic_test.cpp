// Conformance: point operations, batches, column families, binary keys,
// large values, multi_get and persistence across reopen.
#include <string>
#include <vector>

#include "engine_test_util.hpp"

namespace kvcore::test {
namespace {

// A batch of an engine type no engine knows: write() must refuse it.
class ForeignBatch final : public WriteBatch {
 public:
  void put(CF, std::string_view, std::string_view) override { ++count_; }
  void delete_key(CF, std::string_view) override { ++count_; }
  void delete_range(CF, std::string_view, std::string_view) override { ++count_; }
  [[nodiscard]] std::size_t count() const override { return count_; }
  [[nodiscard]] std::size_t byte_size() const override { return 0; }
  void clear() override { count_ = 0; }

 private:
  std::size_t count_ = 0;
};

std::string key_n(std::string_view prefix, int n) {
  std::string s = std::to_string(n);
  return std::string(prefix) + std::string(6 - std::min<std::size_t>(6, s.size()), '0') + s;
}

TEST_CASE("crud: put, get, overwrite, delete", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    CHECK(e.name() == to_string(kind));
    CHECK(e.path() == store.path());

    CHECK_FALSE(get(e, CF::kDefault, "missing").has_value());
    put(e, CF::kDefault, "a", "1");
    CHECK(get(e, CF::kDefault, "a") == "1");
    put(e, CF::kDefault, "a", "2");
    CHECK(get(e, CF::kDefault, "a") == "2");

    // An empty value is a present key, not an absent one.
    put(e, CF::kDefault, "empty", "");
    CHECK(get(e, CF::kDefault, "empty") == std::string());

    del(e, CF::kDefault, "a");
    CHECK_FALSE(get(e, CF::kDefault, "a").has_value());
    del(e, CF::kDefault, "never-written");  // deleting an absent key is fine
    put(e, CF::kDefault, "a", "3", /*sync=*/true);
    CHECK(get(e, CF::kDefault, "a") == "3");

    auto batch = e.new_write_batch();
    CHECK(batch->empty());
    REQUIRE_OK(e.write(*batch, {}));  // an empty batch is a no-op
    batch->put(CF::kDefault, "b", "x");
    batch->put(CF::kDefault, "b", "y");  // the later op of a batch wins
    batch->put(CF::kDefault, "c", "z");
    batch->delete_key(CF::kDefault, "c");
    CHECK(batch->count() == 4);
    CHECK(batch->byte_size() >= 6);
    REQUIRE_OK(e.write(*batch, {}));
    CHECK(get(e, CF::kDefault, "b") == "y");
    CHECK_FALSE(get(e, CF::kDefault, "c").has_value());

    // write() leaves the batch as it was: it can be written again.
    CHECK(batch->count() == 4);
    put(e, CF::kDefault, "b", "changed");
    REQUIRE_OK(e.write(*batch, {}));
    CHECK(get(e, CF::kDefault, "b") == "y");
    batch->clear();
    CHECK(batch->empty());
    CHECK(batch->count() == 0);

    ForeignBatch foreign;
    foreign.put(CF::kDefault, "f", "f");
    CHECK_CODE(e.write(foreign, {}), Code::kInvalidArgument);
    CHECK_FALSE(get(e, CF::kDefault, "f").has_value());

    CHECK(dump(e, CF::kDefault) == Model{{"a", "3"}, {"b", "y"}, {"empty", ""}});
  }
}

TEST_CASE("batch: atomic across column families", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    for (CF cf : kAllCFs) put(e, cf, "old", std::string(cf_name(cf)));
    auto before = e.snapshot();

    auto batch = e.new_write_batch();
    for (CF cf : kAllCFs) {
      for (int i = 0; i < 10; ++i) batch->put(cf, key_n("k", i), std::string(cf_name(cf)) + "-v1");
      batch->delete_key(cf, "old");
    }
    REQUIRE_OK(e.write(*batch, WriteOptions{.sync = true}));

    for (CF cf : kAllCFs) {
      INFO("cf " << cf_name(cf));
      const Model now = dump(e, cf);
      CHECK(now.size() == 10);
      for (const auto& [k, v] : now) CHECK(v == std::string(cf_name(cf)) + "-v1");
      // The snapshot from before the batch sees none of it.
      CHECK(dump(*before, cf) == Model{{"old", std::string(cf_name(cf))}});
    }
  }
}

// With CF raft empty and its neighbours full: an empty CF yields nothing
// from any seek, and the first and last keys of a CF are its own.
void check_edges(const Reader& r) {
  auto it = r.new_iterator(CF::kRaft, {});
  it->seek_to_first();
  CHECK_FALSE(it->valid());
  it->seek_to_last();
  CHECK_FALSE(it->valid());
  it->seek("a");
  CHECK_FALSE(it->valid());
  it->seek_for_prev(std::string(8, '\xff'));
  CHECK_FALSE(it->valid());
  REQUIRE_OK(it->status());

  auto last = r.new_iterator(CF::kDefault, {});
  last->seek_to_last();
  REQUIRE(last->valid());
  CHECK(last->key() == std::string(3, '\xff'));
  CHECK(last->value() == "default:" + std::string(3, '\xff'));
  auto first = r.new_iterator(CF::kLock, {});
  first->seek_to_first();
  REQUIRE(first->valid());
  CHECK(first->key() == std::string(1, '\0'));
  CHECK(first->value() == "lock:" + std::string(1, '\0'));
}

TEST_CASE("column families are isolated", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    // The same keys in every CF, each with the CF's own value; "\xff" keys sit
    // at the edge where a prefixed layout puts the next CF.
    const std::vector<std::string> keys = {std::string(1, '\0'), "a", "m", "z",
                                           std::string(3, '\xff')};
    StoreModel model;
    for (CF cf : kAllCFs) {
      for (const auto& k : keys) {
        put(e, cf, k, std::string(cf_name(cf)) + ":" + k);
        model[cf_index(cf)][k] = std::string(cf_name(cf)) + ":" + k;
      }
    }
    CHECK(dump_all(e) == model);

    del(e, CF::kLock, "m");
    model[cf_index(CF::kLock)].erase("m");
    REQUIRE_OK(e.delete_range(CF::kWrite, {"a", "zz"}));
    model[cf_index(CF::kWrite)].erase("a");
    model[cf_index(CF::kWrite)].erase("m");
    model[cf_index(CF::kWrite)].erase("z");
    auto batch = e.new_write_batch();
    batch->delete_range(CF::kRaft, std::string(1, '\0'), std::string(4, '\xff'));
    REQUIRE_OK(e.write(*batch, {}));
    model[cf_index(CF::kRaft)].clear();

    for (CF cf : kAllCFs) {
      INFO("cf " << cf_name(cf));
      CHECK(dump(e, cf) == model[cf_index(cf)]);
      CHECK(dump_backward(e, cf) == model[cf_index(cf)]);
      CHECK(get(e, cf, "m") ==
            (cf == CF::kDefault ? std::optional<std::string>("default:m") : std::nullopt));
    }

    check_edges(e);
    store.reopen();
    CHECK(dump_all(store.engine()) == model);
    check_edges(store.engine());
  }
}

TEST_CASE("binary keys with 0x00 and 0xFF bytes", "[engine]") {
  using namespace std::string_literals;
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    // Keys that are prefixes of each other, embedded zeros, and an all-0xFF
    // key (the last possible key of a CF).
    const std::vector<std::string> keys = {"\x00"s,
                                           "\x00\x00"s,
                                           "\x00\x01"s,
                                           "\x01"s,
                                           "a"s,
                                           "a\x00"s,
                                           "a\x00\x00"s,
                                           "a\x00\xff"s,
                                           "a\x01"s,
                                           "a\xff"s,
                                           "a\xff\xff"s,
                                           "ab"s,
                                           "\x7f"s,
                                           "\x80"s,
                                           "\xfe\xff"s,
                                           "\xff"s,
                                           "\xff\x00"s,
                                           "\xff\xfe"s,
                                           std::string(16, '\xff')};
    Model model;
    auto batch = e.new_write_batch();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const std::string value = "v\x00"s + keys[i] + "\xff"s;
      batch->put(CF::kWrite, keys[i], value);
      model[keys[i]] = value;
    }
    // Neighbours in the adjacent CFs must not leak in.
    batch->put(CF::kLock, "\x00"s, "lock");
    batch->put(CF::kRaft, "\x00"s, "raft");
    batch->put(CF::kLock, std::string(16, '\xff'), "lock-last");
    REQUIRE_OK(e.write(*batch, {}));

    auto check_model = [&](const Reader& r) {
      for (const auto& [k, v] : model) {
        INFO("key " << printable(k));
        CHECK(get(r, CF::kWrite, k) == v);
      }
      CHECK_FALSE(get(r, CF::kWrite, "a\x00\x01"s).has_value());
      CHECK_FALSE(get(r, CF::kWrite, std::string(15, '\xff')).has_value());
      CHECK_FALSE(get(r, CF::kWrite, std::string(17, '\xff')).has_value());
      CHECK(dump(r, CF::kWrite) == model);
      CHECK(dump_backward(r, CF::kWrite) == model);
      CHECK(dump(r, CF::kLock) == Model{{"\x00"s, "lock"}, {std::string(16, '\xff'), "lock-last"}});
      CHECK(dump(r, CF::kRaft) == Model{{"\x00"s, "raft"}});
    };
    auto check_all = [&](const Reader& r) {
      check_model(r);
      auto it = r.new_iterator(CF::kWrite, {});
      it->seek_to_last();
      REQUIRE(it->valid());
      CHECK(it->key() == std::string(16, '\xff'));
      it->seek_for_prev(std::string(20, '\xff'));
      REQUIRE(it->valid());
      CHECK(it->key() == std::string(16, '\xff'));
      it->seek("a\x00\x00\x00"s);
      REQUIRE(it->valid());
      CHECK(printable(it->key()) == printable("a\x00\xff"s));
      it->seek_for_prev("a\x00\x00\x00"s);
      REQUIRE(it->valid());
      CHECK(printable(it->key()) == printable("a\x00\x00"s));
      it->seek(""s);
      REQUIRE(it->valid());
      CHECK(printable(it->key()) == printable("\x00"s));
      REQUIRE_OK(it->status());

      // Binary bounds: ["a\x00", "a\xff") (5 keys, "ab" among them) and
      // [all-0xFF, unbounded).
      IterOptions mid{.lower_bound = "a\x00"s, .upper_bound = "a\xff"s};
      CHECK(dump(r, CF::kWrite, mid).size() == 5);
      CHECK(dump_backward(r, CF::kWrite, mid).size() == 5);
      IterOptions edge{.lower_bound = std::string(16, '\xff'), .upper_bound = {}};
      CHECK(dump(r, CF::kWrite, edge) ==
            Model{{std::string(16, '\xff'), model[std::string(16, '\xff')]}});
      IterOptions below_edge{.lower_bound = "\xff"s, .upper_bound = std::string(16, '\xff')};
      CHECK(dump(r, CF::kWrite, below_edge).size() == 3);
      auto b = r.new_iterator(CF::kWrite, below_edge);
      b->seek_for_prev(std::string(20, '\xff'));
      REQUIRE(b->valid());
      CHECK(printable(b->key()) == printable("\xff\xfe"s));
    };
    check_all(e);
    check_all(*e.snapshot());

    // delete_range with binary ends, up to the all-0xFF key (exclusive).
    REQUIRE_OK(e.delete_range(CF::kWrite, {"a\x00"s, "a\x01"s}));
    for (const auto& k : {"a\x00"s, "a\x00\x00"s, "a\x00\xff"s}) model.erase(k);
    auto range_batch = e.new_write_batch();
    range_batch->delete_range(CF::kWrite, "\xff"s, std::string(16, '\xff'));
    REQUIRE_OK(e.write(*range_batch, {}));
    for (const auto& k : {"\xff"s, "\xff\x00"s, "\xff\xfe"s}) model.erase(k);
    CHECK(dump(e, CF::kWrite) == model);
    CHECK(get(e, CF::kLock, std::string(16, '\xff')) == "lock-last");

    check_model(e);

    REQUIRE_OK(e.flush());
    store.reopen();
    check_model(store.engine());
    auto last = store->new_iterator(CF::kWrite, {});
    last->seek_to_last();
    REQUIRE(last->valid());
    CHECK(last->key() == std::string(16, '\xff'));
    last->prev();
    REQUIRE(last->valid());
    CHECK(printable(last->key()) == printable("\xfe\xff"s));
  }
}

TEST_CASE("values of 1 MiB and more", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    Rng rng(test_seed(7));
    const std::string one = rng.bytes(std::size_t{1} << 20);
    const std::string odd = rng.bytes((std::size_t{2} << 20) + 1);
    const std::string big = rng.bytes(std::size_t{5} << 20);

    put(e, CF::kDefault, "one", one);
    auto batch = e.new_write_batch();
    batch->put(CF::kDefault, "odd", odd);
    batch->put(CF::kWrite, "big", big);
    batch->put(CF::kDefault, "small", "s");
    REQUIRE_OK(e.write(*batch, WriteOptions{.sync = true}));
    auto snap = e.snapshot();

    auto check = [&](const Reader& r) {
      CHECK(get(r, CF::kDefault, "one") == one);
      CHECK(get(r, CF::kDefault, "odd") == odd);
      CHECK(get(r, CF::kWrite, "big") == big);
      const std::vector<std::string_view> ks = {"odd", "small", "one", "none"};
      auto many = r.multi_get(CF::kDefault, ks);
      REQUIRE_OK(many);
      REQUIRE(many->size() == 4);
      CHECK((*many)[0] == odd);
      CHECK((*many)[1] == "s");
      CHECK((*many)[2] == one);
      CHECK_FALSE((*many)[3].has_value());
      const Model expected{{"odd", odd}, {"one", one}, {"small", "s"}};
      CHECK(dump(r, CF::kDefault) == expected);
      CHECK(dump_backward(r, CF::kDefault) == expected);
    };
    check(e);

    // Overwrite a large value with a small one and delete another: the
    // snapshot keeps the large ones.
    put(e, CF::kDefault, "one", "tiny");
    del(e, CF::kWrite, "big");
    check(*snap);
    snap.reset();
    CHECK(get(e, CF::kDefault, "one") == "tiny");
    CHECK_FALSE(get(e, CF::kWrite, "big").has_value());

    put(e, CF::kDefault, "one", one);
    put(e, CF::kWrite, "big", big);
    REQUIRE_OK(e.flush());
    store.reopen();
    check(store.engine());
  }
}

TEST_CASE("multi_get", "[engine]") {
  using namespace std::string_literals;
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    for (int i = 0; i < 100; i += 2) put(e, CF::kLock, key_n("k", i), "v" + std::to_string(i));
    put(e, CF::kDefault, key_n("k", 1), "other-cf");
    put(e, CF::kLock, "\x00\xff"s, "bin");

    std::vector<std::string> owned;
    for (int i = 99; i >= 0; i -= 3) owned.push_back(key_n("k", i));
    owned.push_back(key_n("k", 0));  // duplicates are answered twice
    owned.push_back(key_n("k", 0));
    owned.push_back("\x00\xff"s);
    owned.push_back("\x00"s);
    const std::vector<std::string_view> keys(owned.begin(), owned.end());

    auto check = [&](const Reader& r) {
      auto got = r.multi_get(CF::kLock, keys);
      REQUIRE_OK(got);
      REQUIRE(got->size() == keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) {
        INFO("key " << printable(keys[i]));
        CHECK((*got)[i] == get(r, CF::kLock, keys[i]));
      }
      CHECK((*got)[keys.size() - 4] == "v0");
      CHECK((*got)[keys.size() - 2] == "bin");
      CHECK_FALSE((*got)[keys.size() - 1].has_value());
      auto none = r.multi_get(CF::kLock, {});
      REQUIRE_OK(none);
      CHECK(none->empty());
    };
    check(e);
    auto snap = e.snapshot();
    for (int i = 0; i < 100; ++i) put(e, CF::kLock, key_n("k", i), "new");
    auto old = snap->multi_get(CF::kLock, keys);
    REQUIRE_OK(old);
    CHECK((*old)[0] == std::nullopt);  // k000099 is odd: absent in the snapshot
    check(*snap);
    auto now = e.multi_get(CF::kLock, keys);
    REQUIRE_OK(now);
    CHECK((*now)[0] == "new");
    // Keys of another CF are not found.
    auto other = e.multi_get(CF::kDefault, keys);
    REQUIRE_OK(other);
    for (const auto& v : *other) CHECK_FALSE(v.has_value());
  }
}

TEST_CASE("persistence across reopen", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    StoreModel model;
    auto apply_put = [&](CF cf, const std::string& k, const std::string& v, bool sync) {
      put(store.engine(), cf, k, v, sync);
      model[cf_index(cf)][k] = v;
    };
    for (int i = 0; i < 200; ++i) apply_put(CF::kDefault, key_n("d", i), "unsynced", false);
    for (int i = 0; i < 50; ++i) apply_put(CF::kRaft, key_n("r", i), "synced", true);
    del(store.engine(), CF::kDefault, key_n("d", 7));
    model[0].erase(key_n("d", 7));
    REQUIRE_OK(store->delete_range(CF::kDefault, {key_n("d", 100), key_n("d", 150)}));
    for (int i = 100; i < 150; ++i) model[0].erase(key_n("d", i));
    auto batch = store->new_write_batch();
    batch->put(CF::kWrite, "w", "batch");
    batch->delete_range(CF::kRaft, key_n("r", 0), key_n("r", 10));
    REQUIRE_OK(store->write(*batch, {}));
    model[cf_index(CF::kWrite)]["w"] = "batch";
    for (int i = 0; i < 10; ++i) model[cf_index(CF::kRaft)].erase(key_n("r", i));

    store.reopen();
    CHECK(dump_all(store.engine()) == model);

    // A second generation of writes, this time flushed, then reopened with
    // create_if_missing off (the store exists).
    apply_put(CF::kLock, "l", "after-reopen", false);
    REQUIRE_OK(store->flush());
    apply_put(CF::kDefault, key_n("d", 7), "back", false);
    EngineOptions existing = test_options();
    existing.create_if_missing = false;
    store.reopen(existing);
    CHECK(dump_all(store.engine()) == model);
    store.reopen();
    CHECK(dump_all(store.engine()) == model);
  }
}

}  // namespace
}  // namespace kvcore::test
