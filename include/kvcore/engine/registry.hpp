// Opening the engines kvcore was built with, by kind.
//
// Which engines exist is decided at build time (meson options `rocksdb`,
// `leveldb`, `lmdb`; the memory engine is always built), and so is
// kvcore::default_engine (meson option `default_engine`). Only this registry
// names a backend; the rest of kvcore sees kvcore::Engine.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "kvcore/build_config.hpp"
#include "kvcore/engine/engine.hpp"
#include "kvcore/engine/types.hpp"

namespace kvcore {

// The engine `default_engine` names, as chosen at build time.
inline constexpr EngineKind default_engine = EngineKind::KVCORE_DEFAULT_ENGINE_ENUM;

// Opens (or creates, per opts) the engine of `kind` at `path`.
// Errors: NotSupported when `kind` was not built; InvalidArgument when `path`
// is not a directory or holds another engine's files; Corruption when the
// engine's files are damaged; IOError when the directory is unreadable or
// unwritable; NotFound when it is missing and !opts.create_if_missing.
[[nodiscard]] Result<std::unique_ptr<Engine>> open_engine(EngineKind kind, const std::string& path,
                                                          const EngineOptions& opts = {});

// Every engine kind this build of kvcore can open, memory first.
[[nodiscard]] std::span<const EngineKind> built_engines() noexcept;
[[nodiscard]] bool engine_built(EngineKind kind) noexcept;

}  // namespace kvcore
