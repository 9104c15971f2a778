// Synced appends to the raft log engine against the raw cost of the same
// bytes: write() + fdatasync() of a file. Each iteration appends one 100-byte
// entry to each of `regions` regions as one LogBatch and writes it synced;
// the baseline writes as many bytes as that batch's record with one write()
// and one fdatasync(). BM_RaftLogGroupCommit runs the engine's write from
// several threads at once (one region each) to show fsyncs being shared.
//
//   bench/raftlog_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "raftlog/engine.hpp"
#include "raftlog/format.hpp"

namespace {

using namespace kvcore;
using namespace kvcore::raftlog;

constexpr std::size_t kEntryBytes = 100;

std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "raftlog-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

LogBatch make_batch(std::uint64_t regions, raft::Index index) {
  LogBatch b;
  for (std::uint64_t r = 1; r <= regions; ++r) {
    raft::Entry e;
    e.index = index;
    e.term = 1;
    e.data.assign(kEntryBytes, 'x');
    if (!b.append(r, std::span<const raft::Entry>(&e, 1)).is_ok()) std::abort();
  }
  return b;
}

void set_counters(benchmark::State& state, std::uint64_t regions, std::uint64_t record_bytes) {
  const auto n = static_cast<double>(state.iterations());
  state.counters["batches"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  state.counters["entries"] = benchmark::Counter(n * regions, benchmark::Counter::kIsRate);
  state.counters["bytes"] = benchmark::Counter(n * record_bytes, benchmark::Counter::kIsRate,
                                               benchmark::Counter::kIs1024);
}

void BM_RaftLogSyncedAppend(benchmark::State& state) {
  const auto regions = static_cast<std::uint64_t>(state.range(0));
  const std::string dir = make_temp_dir();
  std::uint64_t record_bytes = 0;
  {
    auto eng = RaftLogEngine::open(dir + "/log", {});
    if (!eng.is_ok()) std::abort();
    raft::Index index = 1;
    for (auto _ : state) {
      LogBatch b = make_batch(regions, index++);
      record_bytes = b.byte_size() + kRecordHeaderSize;
      if (!(*eng)->write(b, true).is_ok()) std::abort();
    }
  }
  std::filesystem::remove_all(dir);
  set_counters(state, regions, record_bytes);
}
BENCHMARK(BM_RaftLogSyncedAppend)->Arg(1)->Arg(64)->UseRealTime();

void BM_RawWriteFdatasync(benchmark::State& state) {
  const auto regions = static_cast<std::uint64_t>(state.range(0));
  const std::string dir = make_temp_dir();
  const std::uint64_t record_bytes = make_batch(regions, 1).byte_size() + kRecordHeaderSize;
  const std::string buf(record_bytes, 'x');
  const std::string path = dir + "/raw";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) std::abort();
  for (auto _ : state) {
    if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) std::abort();
    if (::fdatasync(fd) != 0) std::abort();
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
  set_counters(state, regions, record_bytes);
}
BENCHMARK(BM_RawWriteFdatasync)->Arg(1)->Arg(64)->UseRealTime();

// Shared by the threads of BM_RaftLogGroupCommit.
std::unique_ptr<RaftLogEngine> g_engine;
std::string g_dir;

void BM_RaftLogGroupCommit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_dir = make_temp_dir();
    auto eng = RaftLogEngine::open(g_dir + "/log", {});
    if (!eng.is_ok()) std::abort();
    g_engine = std::move(eng).value();
  }
  // Google Benchmark starts the timed loop on all threads together, after
  // thread 0's setup above.
  const std::uint64_t region = 1000 + static_cast<std::uint64_t>(state.thread_index());
  raft::Index index = 1;
  for (auto _ : state) {
    LogBatch b;
    raft::Entry e;
    e.index = index++;
    e.term = 1;
    e.data.assign(kEntryBytes, 'x');
    if (!b.append(region, std::span<const raft::Entry>(&e, 1)).is_ok()) std::abort();
    if (!g_engine->write(b, true).is_ok()) std::abort();
  }
  if (state.thread_index() == 0) {
    state.counters["batches_per_fsync"] =
        static_cast<double>(g_engine->batches_written()) / static_cast<double>(g_engine->fsyncs());
    state.counters["batches"] = benchmark::Counter(static_cast<double>(g_engine->batches_written()),
                                                   benchmark::Counter::kIsRate);
    g_engine.reset();
    std::filesystem::remove_all(g_dir);
  }
}
BENCHMARK(BM_RaftLogGroupCommit)->Threads(8)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
