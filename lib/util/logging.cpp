#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "util/log.hpp"

namespace kvcore {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kWarn};

struct SinkHolder {
  std::mutex mu;
  std::shared_ptr<const LogSink> sink;  // guarded by mu; null: default sink
};

SinkHolder& holder() {
  static SinkHolder h;
  return h;
}

void default_sink(LogLevel level, std::string_view file, int line, std::string_view message) {
  const auto slash = file.rfind('/');
  if (slash != std::string_view::npos) file.remove_prefix(slash + 1);
  std::string text = fmt::format("[kvcore {}] {}:{} {}\n", to_string(level), file, line, message);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace: return "TRACE";
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
    case LogLevel::kOff: return "OFF";
  }
  return "?";
}

void set_log_sink(LogSink sink) {
  auto& h = holder();
  std::shared_ptr<const LogSink> next;
  if (sink) next = std::make_shared<const LogSink>(std::move(sink));
  std::lock_guard lock(h.mu);
  h.sink = std::move(next);
}

void set_log_level(LogLevel level) noexcept { g_level.store(level, std::memory_order_relaxed); }
LogLevel log_level() noexcept { return g_level.load(std::memory_order_relaxed); }

namespace util {

void emit_log(LogLevel level, const char* file, int line, std::string_view message) {
  std::shared_ptr<const LogSink> sink;
  {
    auto& h = holder();
    std::lock_guard lock(h.mu);
    sink = h.sink;
  }
  if (sink) {
    (*sink)(level, file, line, message);
  } else {
    default_sink(level, file, line, message);
  }
}

}  // namespace util
}  // namespace kvcore
