// Internal logging: fmt-formatted lines delivered to the sink the application
// set with kvcore::set_log_sink(). Arguments are not evaluated when the level
// is filtered out.
#pragma once

#include <fmt/format.h>

#include <string_view>

#include "kvcore/logging.hpp"

namespace kvcore::util {

void emit_log(LogLevel level, const char* file, int line, std::string_view message);

}  // namespace kvcore::util

#define KVCORE_LOG(level, ...)                                                              \
  do {                                                                                      \
    if (::kvcore::log_level() <= (level)) {                                                 \
      ::kvcore::util::emit_log((level), __FILE__, __LINE__, ::fmt::format(__VA_ARGS__));    \
    }                                                                                       \
  } while (0)
#define KVCORE_LOG_DEBUG(...) KVCORE_LOG(::kvcore::LogLevel::kDebug, __VA_ARGS__)
#define KVCORE_LOG_INFO(...) KVCORE_LOG(::kvcore::LogLevel::kInfo, __VA_ARGS__)
#define KVCORE_LOG_WARN(...) KVCORE_LOG(::kvcore::LogLevel::kWarn, __VA_ARGS__)
#define KVCORE_LOG_ERROR(...) KVCORE_LOG(::kvcore::LogLevel::kError, __VA_ARGS__)
