// Conformance: external-file ingestion, size estimates, health figures and
// checkpoints.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine_test_util.hpp"

namespace kvcore::test {
namespace {

std::string key_n(std::string_view prefix, int n) {
  std::string s = std::to_string(n);
  return std::string(prefix) + std::string(6 - std::min<std::size_t>(6, s.size()), '0') + s;
}

// Writes `entries` (ascending) to a new external file at `path`.
SstFileInfo write_file(Engine& e, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& entries) {
  auto writer = e.new_sst_writer(path);
  REQUIRE_OK(writer);
  for (const auto& [k, v] : entries) REQUIRE_OK((*writer)->put(k, v));
  auto info = (*writer)->finish();
  REQUIRE_OK(info);
  return *info;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

TEST_CASE("ingestion of external sorted files", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    put(e, CF::kWrite, key_n("i", 5), "old");
    put(e, CF::kWrite, "zzz", "untouched");
    put(e, CF::kDefault, key_n("i", 6), "other-cf");

    std::vector<std::pair<std::string, std::string>> entries;
    StoreModel model = dump_all(e);
    Rng rng(test_seed(11));
    for (int i = 0; i < 1000; ++i) {
      std::string v = "ingested-" + std::to_string(i);
      if (i == 500) v = rng.bytes(std::size_t{1} << 20);  // one large value
      entries.emplace_back(key_n("i", i), v);
      model[cf_index(CF::kWrite)][key_n("i", i)] = v;
    }
    const std::string path = store.sub("one.sst");
    const SstFileInfo info = write_file(e, path, entries);
    CHECK(info.path == path);
    CHECK(info.entries == 1000);
    CHECK(info.file_bytes > 0);
    CHECK(info.smallest_key == key_n("i", 0));
    CHECK(info.largest_key == key_n("i", 999));

    const std::vector<std::string> files = {path};
    REQUIRE_OK(e.ingest(CF::kWrite, files));
    CHECK(get(e, CF::kWrite, key_n("i", 5)) == "ingested-5");  // overwritten
    CHECK(dump_all(e) == model);

    // Two files in one call whose ranges interleave (keys do not repeat).
    std::vector<std::pair<std::string, std::string>> even;
    std::vector<std::pair<std::string, std::string>> odd;
    for (int i = 0; i < 200; ++i) {
      auto& side = i % 2 == 0 ? even : odd;
      side.emplace_back(key_n("j", i), "pair-" + std::to_string(i));
      model[cf_index(CF::kLock)][key_n("j", i)] = "pair-" + std::to_string(i);
    }
    const std::vector<std::string> pair = {write_file(e, store.sub("even.sst"), even).path,
                                           write_file(e, store.sub("odd.sst"), odd).path};
    REQUIRE_OK(e.ingest(CF::kLock, pair));
    CHECK(dump_all(e) == model);

    // Ingested data is durable and survives a reopen.
    store.reopen();
    CHECK(dump_all(store.engine()) == model);
  }
}

TEST_CASE("ingestion: bad writer input and damaged files", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    put(e, CF::kDefault, "before", "v");

    SECTION("out-of-order and duplicate keys are InvalidArgument") {
      auto writer = e.new_sst_writer(store.sub("order.sst"));
      REQUIRE_OK(writer);
      REQUIRE_OK((*writer)->put("b", "1"));
      CHECK_CODE((*writer)->put("a", "2"), Code::kInvalidArgument);
      auto dup = e.new_sst_writer(store.sub("dup.sst"));
      REQUIRE_OK(dup);
      REQUIRE_OK((*dup)->put("b", "1"));
      CHECK_CODE((*dup)->put("b", "2"), Code::kInvalidArgument);
    }
    SECTION("an empty file is InvalidArgument") {
      auto writer = e.new_sst_writer(store.sub("empty.sst"));
      REQUIRE_OK(writer);
      CHECK_CODE((*writer)->finish(), Code::kInvalidArgument);
    }
    SECTION("the writer's path must not exist") {
      write_bytes(store.sub("exists.sst"), "x");
      auto writer = e.new_sst_writer(store.sub("exists.sst"));
      INFO("new_sst_writer on an existing file -> " << writer.status().to_string());
      CHECK_FALSE(writer.is_ok());
      CHECK(read_file(store.sub("exists.sst")) == "x");
    }
    SECTION("a damaged or truncated file is rejected and nothing is ingested") {
      std::vector<std::pair<std::string, std::string>> good_entries;
      std::vector<std::pair<std::string, std::string>> bad_entries;
      for (int i = 0; i < 300; ++i) {
        good_entries.emplace_back(key_n("g", i), std::string(40, 'g'));
        bad_entries.emplace_back(key_n("h", i), std::string(40, 'h'));
      }
      const std::string good = write_file(e, store.sub("good.sst"), good_entries).path;
      const std::string bad = write_file(e, store.sub("bad.sst"), bad_entries).path;
      const std::string original = read_file(bad);
      REQUIRE(original.size() > 100);
      const StoreModel before = dump_all(e);

      auto expect_rejected = [&](const std::string& damaged, std::string_view what) {
        INFO(what);
        write_bytes(bad, damaged);
        const std::vector<std::string> files = {good, bad};
        const Status st = e.ingest(CF::kWrite, files);
        INFO("ingest -> " << st.to_string());
        CHECK_FALSE(st.is_ok());
        CHECK(dump_all(e) == before);
        const std::vector<std::string> alone = {bad};
        CHECK_FALSE(e.ingest(CF::kWrite, alone).is_ok());
        CHECK(dump_all(e) == before);
      };
      std::string flipped = original;
      for (std::size_t i = original.size() / 4; i < original.size() / 4 + 16; ++i) {
        flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
      }
      expect_rejected(flipped, "16 bytes flipped in the entries");
      expect_rejected(original.substr(0, original.size() / 2), "truncated to half");
      expect_rejected(original.substr(0, original.size() - 3), "last 3 bytes cut");
      expect_rejected(std::string(original.size(), '\x42'), "garbage of the same size");
      // The undamaged file still ingests on its own.
      const std::vector<std::string> files = {good};
      REQUIRE_OK(e.ingest(CF::kWrite, files));
      CHECK(dump(e, CF::kWrite).size() == 300);
    }
    SECTION("a missing file is an error") {
      const std::vector<std::string> files = {store.sub("no-such.sst")};
      CHECK_FALSE(e.ingest(CF::kWrite, files).is_ok());
    }
    CHECK(get(e, CF::kDefault, "before") == "v");
  }
}

TEST_CASE("approximate_size and approximate_keys are sane", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    auto size = [&](CF cf, KeyRange r) {
      auto s = e.approximate_size(cf, r);
      REQUIRE_OK(s);
      return *s;
    };
    auto keys = [&](CF cf, KeyRange r) {
      auto k = e.approximate_keys(cf, r);
      REQUIRE_OK(k);
      return *k;
    };
    for (CF cf : kAllCFs) {
      CHECK(size(cf, {}) == 0);
      CHECK(keys(cf, {}) == 0);
    }

    Rng rng(test_seed(5));
    constexpr int kKeys = 3000;
    constexpr std::uint64_t kEntryBytes = 8 + 200;
    auto fill = [&](CF cf, int from, int to) {
      auto batch = e.new_write_batch();
      for (int i = from; i < to; ++i) batch->put(cf, key_n("k", i), rng.bytes(200));
      REQUIRE_OK(e.write(*batch, {}));
    };
    fill(CF::kWrite, 0, kKeys);
    fill(CF::kDefault, 0, kKeys);
    // Before a flush the figures may lag, but reading them is fine.
    (void)size(CF::kWrite, {});
    (void)keys(CF::kWrite, {});
    REQUIRE_OK(e.flush());

    const std::uint64_t raw = kKeys * kEntryBytes;
    const std::uint64_t full = size(CF::kWrite, {});
    const std::uint64_t full_keys = keys(CF::kWrite, {});
    INFO("raw bytes " << raw << ", size " << full << ", keys " << full_keys);
    CHECK(full >= raw / 4);
    CHECK(full <= raw * 4);
    CHECK(full_keys >= kKeys / 4);
    CHECK(full_keys <= kKeys * 4);
    // Ranges without keys: empty, inverted, before and after the data.
    CHECK(size(CF::kWrite, {"k000100", "k000100"}) == 0);
    CHECK(keys(CF::kWrite, {"k000100", "k000100"}) == 0);
    CHECK(size(CF::kWrite, {"z", "zz"}) == 0);
    CHECK(keys(CF::kWrite, {"z", "zz"}) == 0);
    CHECK(size(CF::kWrite, {"a", "b"}) == 0);
    CHECK(keys(CF::kWrite, {"a", "b"}) == 0);
    // A CF without data reports 0 even with full neighbours.
    CHECK(size(CF::kLock, {}) == 0);
    CHECK(keys(CF::kLock, {}) == 0);
    // A sub-range is no larger than the whole.
    const std::uint64_t half = size(CF::kWrite, {key_n("k", 0), key_n("k", kKeys / 2)});
    CHECK(half <= full);
    CHECK(keys(CF::kWrite, {key_n("k", 0), key_n("k", kKeys / 2)}) <= full_keys);

    fill(CF::kWrite, kKeys, 2 * kKeys);
    REQUIRE_OK(e.flush());
    const std::uint64_t grown = size(CF::kWrite, {});
    const std::uint64_t grown_keys = keys(CF::kWrite, {});
    INFO("after doubling: size " << grown << ", keys " << grown_keys);
    CHECK(grown > full);
    CHECK(grown_keys > full_keys);
    CHECK(grown <= 2 * raw * 4);
  }
}

TEST_CASE("health figures", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    // Which figures each engine has (kvcore/engine/types.hpp and the engine
    // headers): a figure it has must be reported, one it lacks must be absent.
    struct Expected {
      bool pending_compaction, l0_files, immutable_memtables, memtable_bytes, total_bytes;
    };
    Expected want{};
    switch (kind) {
      case EngineKind::kMemory: want = {false, false, false, false, true}; break;
      case EngineKind::kRocksDB: want = {true, true, true, true, true}; break;
      case EngineKind::kLevelDB: want = {false, true, false, false, true}; break;
      case EngineKind::kLmdb: want = {false, false, false, false, true}; break;
    }
    auto check_presence = [&](const EngineHealth& h) {
      CHECK(h.pending_compaction_bytes.has_value() == want.pending_compaction);
      CHECK(h.l0_files.has_value() == want.l0_files);
      CHECK(h.immutable_memtables.has_value() == want.immutable_memtables);
      CHECK(h.memtable_bytes.has_value() == want.memtable_bytes);
      CHECK(h.total_bytes.has_value() == want.total_bytes);
    };
    check_presence(e.health());

    Rng rng(test_seed(3));
    for (int b = 0; b < 8; ++b) {
      auto batch = e.new_write_batch();
      for (int i = 0; i < 256; ++i)
        batch->put(CF::kDefault, key_n("h", b * 256 + i), rng.bytes(512));
      REQUIRE_OK(e.write(*batch, {}));
    }
    const EngineHealth before_flush = e.health();
    check_presence(before_flush);
    if (before_flush.memtable_bytes) CHECK(*before_flush.memtable_bytes > 0);
    REQUIRE_OK(e.flush());
    const EngineHealth h = e.health();
    check_presence(h);
    if (h.total_bytes) {
      INFO("total_bytes " << *h.total_bytes);
      CHECK(*h.total_bytes >= 8 * 256 * 512 / 2);
    }
  }
}

TEST_CASE("checkpoint opens as an equal store", "[engine]") {
  FOR_EACH_ENGINE(kind) {
    TestStore store(kind);
    Engine& e = store.engine();
    StoreModel model;
    Rng rng(test_seed(9));
    for (CF cf : kAllCFs) {
      for (int i = 0; i < 300; ++i) {
        const std::string v = rng.bytes(rng.uniform(64));
        put(e, cf, key_n("c", i), v);
        model[cf_index(cf)][key_n("c", i)] = v;
      }
    }
    REQUIRE_OK(e.flush());
    del(e, CF::kWrite, key_n("c", 3));
    model[cf_index(CF::kWrite)].erase(key_n("c", 3));
    put(e, CF::kRaft, "unflushed", "u");
    model[cf_index(CF::kRaft)]["unflushed"] = "u";
    auto live_snapshot = e.snapshot();  // a checkpoint with a snapshot held

    const std::string cp = store.sub("checkpoint");
    store.also_forget(cp);
    REQUIRE_OK(e.checkpoint(cp));
    // Writes after the checkpoint do not reach it.
    put(e, CF::kDefault, key_n("c", 0), "after");
    REQUIRE_OK(e.delete_range(CF::kLock, {key_n("c", 0), key_n("c", 100)}));

    const Status again = e.checkpoint(cp);
    INFO("checkpoint into an existing directory -> " << again.to_string());
    CHECK_FALSE(again.is_ok());

    {
      auto opened = open_engine(kind, cp, test_options());
      REQUIRE_OK(opened);
      Engine& copy = **opened;
      CHECK(dump_all(copy) == model);
      // The copy is a store of its own.
      put(copy, CF::kDefault, "only-in-copy", "x");
    }
    CHECK_FALSE(get(e, CF::kDefault, "only-in-copy").has_value());
    CHECK(get(e, CF::kDefault, key_n("c", 0)) == "after");
    live_snapshot.reset();

    auto reopened = open_engine(kind, cp, test_options());
    REQUIRE_OK(reopened);
    CHECK(get(**reopened, CF::kDefault, "only-in-copy") == "x");
    CHECK(get(**reopened, CF::kDefault, key_n("c", 0)) == model[0][key_n("c", 0)]);
  }
}

}  // namespace
}  // namespace kvcore::test
