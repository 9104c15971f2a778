// Small filesystem checks shared by the engines' open() paths, so every
// engine reports a bad directory the same way.
#pragma once

#include <string>
#include <string_view>

#include "kvcore/engine/types.hpp"
#include "kvcore/status.hpp"

namespace kvcore::engine {

// Name of the marker file every kvcore engine writes into its directory; it
// holds the engine's name, so opening a directory with another engine is a
// clear InvalidArgument instead of a confusing failure deep in a library.
inline constexpr std::string_view kMarkerFile = "KVCORE_ENGINE";

// Prepares `dir` for engine `name`:
// - a regular file at `dir`: InvalidArgument;
// - missing: created when opts.create_if_missing, else NotFound;
// - holds a marker of another engine: InvalidArgument naming both;
// - holds a marker of this engine and opts.error_if_exists: AlreadyExists;
// - not empty and holds no marker (another program's files): InvalidArgument;
// - not writable: IOError.
// Writes the marker when absent. `fresh` is set when the directory was empty.
[[nodiscard]] Status prepare_engine_dir(const std::string& dir, std::string_view name,
                                        const EngineOptions& opts, bool* fresh);

// Writes the marker of engine `name` into `dir` (after a checkpoint, say).
[[nodiscard]] Status write_engine_marker(const std::string& dir, std::string_view name);

// Fails with AlreadyExists if `path` exists; used by checkpoint() and
// new_sst_writer().
[[nodiscard]] Status require_absent(const std::string& path);

// A Status for a failed system call on `path`, from errno.
[[nodiscard]] Status errno_status(std::string_view what, const std::string& path, int err);

}  // namespace kvcore::engine
