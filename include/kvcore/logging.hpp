// Where kvcore's log lines go.
//
// kvcore never writes to a file of its own: every line goes to one process-wide
// sink. The default sink writes warnings and errors to stderr. An application
// that has its own logger installs a sink that forwards to it.
//
// Thread-safety: set_log_sink() and set_log_level() may be called from any
// thread at any time; a sink may be called from any kvcore thread, concurrently,
// so it must be thread-safe itself.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace kvcore {

enum class LogLevel : std::uint8_t { kTrace, kDebug, kInfo, kWarn, kError, kOff };

std::string_view to_string(LogLevel level) noexcept;

// Receives one finished line, without a trailing newline. `file` and `line`
// name the kvcore source position. The views are valid only during the call.
using LogSink =
    std::function<void(LogLevel level, std::string_view file, int line, std::string_view message)>;

// Replaces the sink. An empty function restores the default (stderr) sink.
void set_log_sink(LogSink sink);

// Lines below `level` are not formatted and not delivered. Default: kWarn.
void set_log_level(LogLevel level) noexcept;
[[nodiscard]] LogLevel log_level() noexcept;

}  // namespace kvcore
