// The engine registry: the one place in kvcore that names every backend.
#include "kvcore/engine/registry.hpp"

#include <array>
#include <vector>

#include <fmt/format.h>

#include "kvcore/engine/adapter.hpp"
#include "kvcore/engine/memory_engine.hpp"
#if KVCORE_HAVE_ROCKSDB
#include "rocksdb/rocks_engine.hpp"
#endif
#if KVCORE_HAVE_LEVELDB
#include "leveldb/level_engine.hpp"
#endif
#if KVCORE_HAVE_LMDB
#include "lmdb/lmdb_engine.hpp"
#endif

namespace kvcore {
namespace {

constexpr std::array kBuilt = {
    EngineKind::kMemory,
#if KVCORE_HAVE_ROCKSDB
    EngineKind::kRocksDB,
#endif
#if KVCORE_HAVE_LEVELDB
    EngineKind::kLevelDB,
#endif
#if KVCORE_HAVE_LMDB
    EngineKind::kLmdb,
#endif
};

}  // namespace

std::span<const EngineKind> built_engines() noexcept { return kBuilt; }

bool engine_built(EngineKind kind) noexcept {
  for (auto k : kBuilt) {
    if (k == kind) return true;
  }
  return false;
}

Result<std::unique_ptr<Engine>> open_engine(EngineKind kind, const std::string& path,
                                            const EngineOptions& opts) {
  Result<std::unique_ptr<Engine>> opened = Status::not_supported(
      fmt::format("the {} engine is not part of this build of kvcore", to_string(kind)));
  switch (kind) {
    case EngineKind::kMemory: opened = open_engine_as<MemoryEngine>(path, opts); break;
    case EngineKind::kRocksDB:
#if KVCORE_HAVE_ROCKSDB
      opened = open_engine_as<RocksEngine>(path, opts);
#endif
      break;
    case EngineKind::kLevelDB:
#if KVCORE_HAVE_LEVELDB
      opened = open_engine_as<LevelEngine>(path, opts);
#endif
      break;
    case EngineKind::kLmdb:
#if KVCORE_HAVE_LMDB
      opened = open_engine_as<LmdbEngine>(path, opts);
#endif
      break;
  }
  if (!opened.is_ok()) {
    return opened.status().with_context(fmt::format("open {} engine", to_string(kind)));
  }
  return opened;
}

}  // namespace kvcore
