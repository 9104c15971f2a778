#include "engine_test_util.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "kvcore/engine/memory_engine.hpp"

namespace kvcore::test {

std::vector<EngineKind> engines_under_test() {
  const char* env = std::getenv("KVCORE_TEST_ENGINES");
  const auto built = built_engines();
  if (env == nullptr || *env == '\0') return {built.begin(), built.end()};
  std::vector<EngineKind> out;
  std::string_view rest(env);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view name = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (name.empty()) continue;
    auto kind = parse_engine_kind(name);
    INFO("KVCORE_TEST_ENGINES names '" << name << "'");
    REQUIRE(kind.is_ok());
    INFO("engine '" << name << "' is not part of this build");
    REQUIRE(engine_built(*kind));
    out.push_back(*kind);
  }
  return out;
}

EngineOptions test_options() {
  EngineOptions opts;
  opts.block_cache_bytes = std::size_t{8} << 20;
  opts.write_buffer_bytes = std::size_t{1} << 20;
  opts.background_jobs = 2;
  // LMDB has two read paths: a map reserved whole at open (the default: reads
  // take no lock and return views) and a map that starts small and grows
  // (reads copy under a shared lock). KVCORE_TEST_LMDB_MAP=growing picks the
  // second; meson runs the LMDB suites both ways.
  const char* map_mode = std::getenv("KVCORE_TEST_LMDB_MAP");
  if (map_mode != nullptr && std::string_view(map_mode) == "growing") {
    opts.lmdb_initial_map_bytes = std::size_t{1} << 20;
    opts.lmdb_max_map_bytes = std::size_t{1} << 32;
  }
  return opts;
}

void forget_store(EngineKind kind, const std::string& path) {
  if (kind == EngineKind::kMemory) (void)MemoryEngine::destroy(path);
}

TestStore::TestStore(EngineKind kind, const EngineOptions& opts)
    : kind_(kind), opts_(opts), dir_("kvcore-engine"), path_(dir_.sub("db")) {
  auto opened = open_engine(kind_, path_, opts_);
  REQUIRE_OK(opened);
  engine_ = std::move(opened).value();
}

TestStore::~TestStore() {
  engine_.reset();
  forget_store(kind_, path_);
  for (const auto& p : extra_paths_) forget_store(kind_, p);
}

void TestStore::close() { engine_.reset(); }

void TestStore::reopen(const EngineOptions& opts) {
  engine_.reset();
  auto opened = open_engine(kind_, path_, opts);
  REQUIRE_OK(opened);
  engine_ = std::move(opened).value();
}

void put(Engine& engine, CF cf, std::string_view key, std::string_view value, bool sync) {
  auto batch = engine.new_write_batch();
  batch->put(cf, key, value);
  REQUIRE_OK(engine.write(*batch, WriteOptions{.sync = sync}));
}

void del(Engine& engine, CF cf, std::string_view key, bool sync) {
  auto batch = engine.new_write_batch();
  batch->delete_key(cf, key);
  REQUIRE_OK(engine.write(*batch, WriteOptions{.sync = sync}));
}

std::optional<std::string> get(const Reader& reader, CF cf, std::string_view key) {
  auto got = reader.get(cf, key);
  INFO("get(" << cf_name(cf) << ", " << printable(key) << ")");
  REQUIRE_OK(got);
  return std::move(got).value();
}

Model dump(const Reader& reader, CF cf, const IterOptions& opts) {
  Model out;
  auto it = reader.new_iterator(cf, opts);
  std::string last;
  for (it->seek_to_first(); it->valid(); it->next()) {
    std::string key(it->key());
    INFO("forward scan of " << cf_name(cf) << " at " << printable(key) << " after "
                            << printable(last));
    REQUIRE((out.empty() || key > last));
    out.emplace(key, std::string(it->value()));
    last = std::move(key);
  }
  REQUIRE_OK(it->status());
  return out;
}

Model dump_backward(const Reader& reader, CF cf, const IterOptions& opts) {
  Model out;
  auto it = reader.new_iterator(cf, opts);
  std::string last;
  for (it->seek_to_last(); it->valid(); it->prev()) {
    std::string key(it->key());
    INFO("backward scan of " << cf_name(cf) << " at " << printable(key) << " after "
                             << printable(last));
    REQUIRE((out.empty() || key < last));
    out.emplace(key, std::string(it->value()));
    last = std::move(key);
  }
  REQUIRE_OK(it->status());
  return out;
}

StoreModel dump_all(const Reader& reader) {
  StoreModel out;
  for (CF cf : kAllCFs) out[cf_index(cf)] = dump(reader, cf);
  return out;
}

std::string printable(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  const std::size_t shown = std::min<std::size_t>(bytes.size(), 48);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  if (shown < bytes.size()) out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return out + "\"";
}

std::vector<std::pair<std::string, std::string>> bounded(const Model& model,
                                                         const IterOptions& opts) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = model.lower_bound(opts.lower_bound); it != model.end(); ++it) {
    if (!opts.upper_bound.empty() && it->first >= opts.upper_bound) break;
    out.emplace_back(it->first, it->second);
  }
  return out;
}

void ModelCursor::seek(std::string_view key) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const auto& e, std::string_view k) { return e.first < k; });
  pos_ = it == entries_.end() ? kInvalid : static_cast<std::size_t>(it - entries_.begin());
}

void ModelCursor::seek_for_prev(std::string_view key) {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), key,
                             [](std::string_view k, const auto& e) { return k < e.first; });
  pos_ = it == entries_.begin() ? kInvalid : static_cast<std::size_t>(it - entries_.begin()) - 1;
}

bool same_position(const Iterator& it, const ModelCursor& ref, std::string_view step) {
  INFO("after " << step);
  const Status st = it.status();
  INFO("iterator status " << st.to_string());
  if (it.valid() != ref.valid() || !st.is_ok()) {
    FAIL_CHECK("iterator and model disagree: expected "
               << (ref.valid() ? printable(ref.key()) : "end") << ", got "
               << (it.valid() ? printable(it.key()) : "end"));
    return false;
  }
  if (!ref.valid()) return true;
  CHECK(printable(it.key()) == printable(ref.key()));
  CHECK(it.value() == ref.value());
  return it.key() == ref.key() && it.value() == ref.value();
}

}  // namespace kvcore::test
