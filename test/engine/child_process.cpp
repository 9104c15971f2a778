#include "child_process.hpp"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace kvcore::test {

std::string ChildExit::describe() const {
  if (timed_out) return "timed out (killed by the parent)";
  if (exited) return "exited with code " + std::to_string(exit_code);
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "did not end";
}

Child Child::spawn(const std::function<void(int report_fd)>& body) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(fds[0]);
    int code = 0;
    try {
      body(fds[1]);
    } catch (const std::exception& ex) {
      report(fds[1], std::string("error: exception in child: ") + ex.what());
      code = 3;
    } catch (...) {
      report(fds[1], "error: unknown exception in child");
      code = 3;
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  return Child(pid, fds[0]);
}

Child::Child(Child&& other) noexcept
    : pid_(other.pid_),
      fd_(other.fd_),
      buf_(std::move(other.buf_)),
      eof_(other.eof_),
      timed_out_(other.timed_out_),
      reaped_(other.reaped_) {
  other.pid_ = -1;
  other.fd_ = -1;
  other.reaped_ = true;
}

Child::~Child() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (fd_ >= 0) ::close(fd_);
}

bool Child::fill(std::chrono::milliseconds timeout) {
  if (eof_) return false;
  pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
  int ready = 0;
  do {
    ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) {
    timed_out_ = true;
    return false;
  }
  char chunk[4096];
  ssize_t n = 0;
  do {
    n = ::read(fd_, chunk, sizeof(chunk));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buf_.append(chunk, static_cast<std::size_t>(n));
  return true;
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  timed_out_ = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) {
      timed_out_ = true;
      return std::nullopt;
    }
    if (!fill(left)) {
      if (eof_ && !buf_.empty()) {
        std::string line = std::move(buf_);
        buf_.clear();
        return line;
      }
      return std::nullopt;
    }
  }
}

void Child::kill_now() {
  if (!reaped_ && pid_ > 0) ::kill(pid_, SIGKILL);
}

ChildExit Child::finish(std::chrono::milliseconds timeout, std::vector<std::string>* rest_lines) {
  ChildExit out;
  for (;;) {
    auto line = read_line(timeout);
    if (!line) break;
    if (rest_lines != nullptr) rest_lines->push_back(std::move(*line));
  }
  if (timed_out_) {
    out.timed_out = true;
    kill_now();
  }
  int status = 0;
  pid_t r = 0;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  if (r == pid_) {
    if (WIFEXITED(status)) {
      out.exited = true;
      out.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      out.signal = WTERMSIG(status);
    }
  }
  return out;
}

ChildResult run_in_child(const std::function<void(int report_fd)>& body,
                         std::chrono::milliseconds timeout) {
  Child child = Child::spawn(body);
  ChildResult result;
  result.exit = child.finish(timeout, &result.lines);
  return result;
}

void report(int fd, std::string_view line) {
  std::string text(line);
  text += '\n';
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace kvcore::test
