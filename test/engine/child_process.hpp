// Running test code in a forked child process, for what may crash or must be
// killed: the crash suite kills writers with SIGKILL, the bad-input suite
// opens damaged stores where a bug could end in a signal.
//
// The child reports to the parent through a pipe, line by line. It must not
// use Catch2 assertions (they belong to the parent); it writes what it found
// and ends with _exit(), so no destructor, atexit handler or stdio buffer of
// the parent's state runs twice.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvcore::test {

// How a child ended.
struct ChildExit {
  bool exited = false;  // by _exit/exit; then exit_code is set
  int exit_code = -1;
  int signal = 0;          // killed by this signal
  bool timed_out = false;  // the parent gave up waiting and killed it
  [[nodiscard]] std::string describe() const;
};

class Child {
 public:
  // Forks. The child runs `body` with the write end of the report pipe and
  // then _exit(0) (or _exit(3) if `body` threw). Flushes stdio first.
  static Child spawn(const std::function<void(int report_fd)>& body);

  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  // Kills and reaps a child still running.
  ~Child();

  [[nodiscard]] pid_t pid() const { return pid_; }
  // The next complete line (without '\n'), or nullopt at end of output or
  // when `timeout` passes first (then timed_out() is true).
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  [[nodiscard]] bool timed_out() const { return timed_out_; }
  void kill_now();
  // Reads the remaining output (until EOF or `timeout`; the child is killed
  // on timeout), then reaps the child.
  ChildExit finish(std::chrono::milliseconds timeout, std::vector<std::string>* rest_lines);

 private:
  Child(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  // Reads what is available within `timeout` into buf_; false at EOF or timeout.
  bool fill(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
  bool timed_out_ = false;
  bool reaped_ = false;
};

// Runs `body` in a child and returns its whole report and how it ended.
struct ChildResult {
  ChildExit exit;
  std::vector<std::string> lines;
};
ChildResult run_in_child(const std::function<void(int report_fd)>& body,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Writes `line` and a '\n' to `fd` (retrying short writes). For children.
void report(int fd, std::string_view line);

}  // namespace kvcore::test
