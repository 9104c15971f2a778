#include "kvcore/engine/types.hpp"

#include <string>

namespace kvcore {

std::string_view cf_name(CF cf) noexcept {
  switch (cf) {
    case CF::kDefault: return "default";
    case CF::kLock: return "lock";
    case CF::kWrite: return "write";
    case CF::kRaft: return "raft";
  }
  return "?";
}

std::string_view to_string(EngineKind kind) noexcept {
  switch (kind) {
    case EngineKind::kMemory: return "memory";
    case EngineKind::kRocksDB: return "rocksdb";
    case EngineKind::kLevelDB: return "leveldb";
    case EngineKind::kLmdb: return "lmdb";
  }
  return "?";
}

Result<EngineKind> parse_engine_kind(std::string_view name) {
  for (auto kind : {EngineKind::kMemory, EngineKind::kRocksDB, EngineKind::kLevelDB,
                    EngineKind::kLmdb}) {
    if (to_string(kind) == name) return kind;
  }
  return Status::invalid_argument("unknown engine '" + std::string(name) +
                                  "' (expected memory, rocksdb, leveldb or lmdb)");
}

}  // namespace kvcore
