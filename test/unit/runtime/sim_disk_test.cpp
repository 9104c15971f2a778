// SimDisk: the synced-length ledger, crash(), and sync latency as a pause of
// the bound view; the disk() of each runtime.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "runtime/real_runtime.hpp"
#include "runtime/sim_disk.hpp"
#include "runtime/sim_runtime.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;
using kvcore::runtime::ClockSkew;
using kvcore::runtime::Duration;
using kvcore::runtime::SimDisk;
using kvcore::runtime::SimRuntime;

namespace {

namespace fs = std::filesystem;

// A file being written as a log would be: append, then sync what is there.
class File {
 public:
  File(SimDisk& disk, std::string path) : disk_(disk), path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd_ >= 0);
    disk_.created(path_);
  }
  ~File() { ::close(fd_); }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  void append(const std::string& data) {
    REQUIRE(::write(fd_, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    size_ += data.size();
  }
  void sync() { REQUIRE(disk_.sync_file(fd_, path_, size_).is_ok()); }

 private:
  SimDisk& disk_;
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

std::string contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("simdisk: crash cuts files to their synced length, drops never-synced ones") {
  kvcore::test::TempDir tmp("simdisk");
  SimDisk disk;
  const std::string synced = tmp.sub("synced");
  const std::string never = tmp.sub("never");
  const std::string stranger = tmp.sub("stranger");
  {
    File a(disk, synced);
    a.append("durable|");
    a.sync();
    a.append("lost");
    File b(disk, never);
    b.append("all of it lost");
  }
  std::ofstream(stranger) << "unknown to the disk";
  CHECK(disk.synced_length(synced) == 8u);
  CHECK_FALSE(disk.synced_length(never).has_value());
  CHECK(disk.knows(never));
  CHECK_FALSE(disk.knows(stranger));
  CHECK(disk.syncs() == 1);

  REQUIRE(disk.crash().is_ok());
  CHECK(contents(synced) == "durable|");
  CHECK_FALSE(fs::exists(never));
  CHECK_FALSE(disk.knows(never));
  CHECK(contents(stranger) == "unknown to the disk");

  // A second crash with nothing new written changes nothing.
  REQUIRE(disk.crash().is_ok());
  CHECK(contents(synced) == "durable|");
}

TEST_CASE("simdisk: a synced truncation is kept; removals are forgotten; names reused start over") {
  kvcore::test::TempDir tmp("simdisk");
  SimDisk disk;
  const std::string path = tmp.sub("f");
  {
    File f(disk, path);
    f.append("0123456789");
    f.sync();
  }
  fs::resize_file(path, 4);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(disk.sync_file(fd, path, 4).is_ok());
  ::close(fd);
  REQUIRE(disk.crash().is_ok());
  CHECK(contents(path) == "0123");

  fs::remove(path);
  disk.removed(path);
  CHECK_FALSE(disk.knows(path));
  REQUIRE(disk.crash().is_ok());
  CHECK_FALSE(fs::exists(path));

  {
    File again(disk, path);  // created() again: nothing of it is durable
    again.append("new");
  }
  REQUIRE(disk.crash().is_ok());
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("simdisk: each runtime names its disk") {
  SimRuntime sim(1);
  SimDisk disk;
  kvcore::runtime::RealRuntime real(1);
  CHECK(&real.disk() == &kvcore::runtime::real_disk());
  CHECK(&sim.disk() == &kvcore::runtime::real_disk());
  auto plain = sim.make_view(ClockSkew{});
  CHECK(&plain->disk() == &kvcore::runtime::real_disk());
  CHECK(plain->sim_disk() == nullptr);
  {
    auto first = sim.make_view(ClockSkew{}, &disk);
    CHECK(&first->disk() == &disk);
    CHECK(disk.bound_view() == first.get());
    // A restart: the new view takes over the disk, the old one lets go.
    auto second = sim.make_view(ClockSkew{}, &disk);
    CHECK(disk.bound_view() == second.get());
    first.reset();
    CHECK(disk.bound_view() == second.get());
  }
  CHECK(disk.bound_view() == nullptr);
}

TEST_CASE("simdisk: sync latency stalls the bound view; syncs queue") {
  kvcore::test::TempDir tmp("simdisk");
  SimRuntime sim(1);
  SimDisk disk;
  auto view = sim.make_view(ClockSkew{}, &disk);
  auto other = sim.make_view(ClockSkew{});
  auto exec = view->make_executor("io", 1);
  auto other_exec = other->make_executor("other", 1);
  File f(disk, tmp.sub("log"));
  const auto t0 = sim.now();
  auto since = [&] { return sim.now() - t0; };

  // Free syncs stall nothing.
  Duration done_at{-1};
  exec->post([&] {
    f.append("a");
    f.sync();
  });
  exec->post([&] { done_at = since(); });
  sim.run_until_idle();
  CHECK(done_at == Duration::zero());

  disk.set_sync_latency(10ms);
  CHECK(disk.sync_latency() == 10ms);
  Duration other_at{-1};
  exec->post([&] {
    f.append("b");
    f.sync();
    f.append("c");
    f.sync();  // behind the first: 20ms in all
  });
  exec->post([&] { done_at = since(); });
  other_exec->post([&] { other_at = since(); });
  sim.run_for(100ms);
  CHECK(done_at == 20ms);
  CHECK(other_at == Duration::zero());  // another machine is not slowed
  CHECK(disk.synced_length(tmp.sub("log")) == 3u);

  // Without a bound view a latency slows nothing.
  SimDisk loose;
  loose.set_sync_latency(1s);
  File g(loose, tmp.sub("loose"));
  g.append("x");
  g.sync();
  CHECK(loose.synced_length(tmp.sub("loose")) == 1u);
  CHECK(sim.ready_count() == 0);
}
