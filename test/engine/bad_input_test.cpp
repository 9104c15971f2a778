// Bad input to open_engine(): wrong kinds of path, other engines' and other
// programs' directories, damaged data files, unwritable directories, and the
// create_if_missing / error_if_exists options. Every failure must be a clear
// non-OK Status, never a crash: opens that might crash run in a forked child,
// and a child that dies by a signal fails the test.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "engine/fs.hpp"
#include "engine_test_util.hpp"

namespace kvcore::test {
namespace {

namespace fs = std::filesystem;

std::string key_n(int n) {
  std::string s = std::to_string(n);
  return "key" + std::string(6 - std::min<std::size_t>(6, s.size()), '0') + s;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// Opens `path` expecting `code`; closes (and forgets) whatever did open.
void expect_open_fails(EngineKind kind, const std::string& path, const EngineOptions& opts,
                       Code code) {
  auto opened = open_engine(kind, path, opts);
  INFO("open " << to_string(kind) << " at " << path << " -> " << opened.status().to_string());
  CHECK(opened.status().code() == code);
  if (!opened.is_ok()) {
    CHECK(opened.status().message().find(path) != std::string_view::npos);
  } else {
    opened.value().reset();
    forget_store(kind, path);
  }
}

TEST_CASE("bad input: a regular file is not a store", "[engine][bad]") {
  FOR_EACH_ENGINE(kind) {
    TempDir dir("kvcore-bad");
    const std::string file = dir.sub("plain-file");
    write_all(file, "not a store");
    expect_open_fails(kind, file, test_options(), Code::kInvalidArgument);
    CHECK(read_all(file) == "not a store");
  }
}

TEST_CASE("bad input: another engine's directory", "[engine][bad]") {
  FOR_EACH_ENGINE(kind) {
    for (const EngineKind other : built_engines()) {
      if (other == kind) continue;
      INFO("other engine " << to_string(other));
      TempDir dir("kvcore-bad");
      const std::string theirs = dir.sub("theirs");
      {
        auto opened = open_engine(other, theirs, test_options());
        REQUIRE_OK(opened);
        put(**opened, CF::kDefault, "k", "v");
      }
      expect_open_fails(kind, theirs, test_options(), Code::kInvalidArgument);
      const std::string ours = dir.sub("ours");
      {
        auto opened = open_engine(kind, ours, test_options());
        REQUIRE_OK(opened);
        put(**opened, CF::kDefault, "k", "v");
      }
      expect_open_fails(other, ours, test_options(), Code::kInvalidArgument);
      // Both stores are unharmed.
      auto again = open_engine(kind, ours, test_options());
      REQUIRE_OK(again);
      CHECK(get(**again, CF::kDefault, "k") == "v");
      again.value().reset();
      forget_store(kind, ours);
      forget_store(other, theirs);
    }
    // A marker naming an engine kvcore does not know.
    TempDir dir("kvcore-bad");
    const std::string odd = dir.sub("odd");
    fs::create_directories(odd);
    write_all(odd + "/" + std::string(engine::kMarkerFile), "cassandra\n");
    expect_open_fails(kind, odd, test_options(), Code::kInvalidArgument);
  }
}

TEST_CASE("bad input: a non-empty directory without kvcore's marker", "[engine][bad]") {
  FOR_EACH_ENGINE(kind) {
    TempDir dir("kvcore-bad");
    const std::string foreign = dir.sub("foreign");
    fs::create_directories(foreign + "/sub");
    write_all(foreign + "/photo.jpg", "\xff\xd8\xff");
    expect_open_fails(kind, foreign, test_options(), Code::kInvalidArgument);
    CHECK(read_all(foreign + "/photo.jpg") == "\xff\xd8\xff");
    CHECK_FALSE(fs::exists(foreign + "/" + std::string(engine::kMarkerFile)));
  }
}

TEST_CASE("bad input: create_if_missing and error_if_exists", "[engine][bad]") {
  FOR_EACH_ENGINE(kind) {
    TempDir dir("kvcore-bad");
    EngineOptions no_create = test_options();
    no_create.create_if_missing = false;
    expect_open_fails(kind, dir.sub("missing"), no_create, Code::kNotFound);
    CHECK_FALSE(fs::exists(dir.sub("missing")));
    fs::create_directories(dir.sub("empty"));
    expect_open_fails(kind, dir.sub("empty"), no_create, Code::kNotFound);

    EngineOptions exclusive = test_options();
    exclusive.error_if_exists = true;
    const std::string path = dir.sub("db");
    {
      auto opened = open_engine(kind, path, exclusive);  // a new store: fine
      REQUIRE_OK(opened);
      put(**opened, CF::kDefault, "k", "v");
    }
    expect_open_fails(kind, path, exclusive, Code::kAlreadyExists);
    auto opened = open_engine(kind, path, no_create);  // it exists now
    REQUIRE_OK(opened);
    CHECK(get(**opened, CF::kDefault, "k") == "v");

    // A second open of a store already open in this process fails cleanly
    // and leaves the first one working.
    auto twice = open_engine(kind, path, test_options());
    INFO("second open -> " << twice.status().to_string());
    CHECK_FALSE(twice.is_ok());
    put(**opened, CF::kDefault, "k2", "v2");
    CHECK(get(**opened, CF::kDefault, "k2") == "v2");
    opened.value().reset();
    forget_store(kind, path);
  }
}

// ---- damaged data files -------------------------------------------------------

// A store with data in every CF, part flushed to files and part only in the
// log, closed. Returns what it holds.
StoreModel make_store(EngineKind kind, const std::string& path) {
  StoreModel model;
  auto opened = open_engine(kind, path, test_options());
  REQUIRE_OK(opened);
  Engine& e = **opened;
  Rng rng(test_seed(17));
  for (CF cf : kAllCFs) {
    auto batch = e.new_write_batch();
    for (int i = 0; i < 1500; ++i) {
      const std::string v = rng.bytes(200);
      batch->put(cf, key_n(i), v);
      model[cf_index(cf)][key_n(i)] = v;
    }
    REQUIRE_OK(e.write(*batch, WriteOptions{.sync = true}));
  }
  REQUIRE_OK(e.flush());
  for (int i = 0; i < 50; ++i) {
    put(e, CF::kWrite, "late" + key_n(i), "late", true);
    model[cf_index(CF::kWrite)]["late" + key_n(i)] = "late";
  }
  return model;
}

// Files of the store whose name ends with `suffix` (or starts with it, for
// names like MANIFEST-000005), largest first.
std::vector<std::string> files_like(const std::string& dir, std::string_view part) {
  std::vector<std::pair<std::uintmax_t, std::string>> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && (name.ends_with(part) || name.starts_with(part))) {
      found.emplace_back(entry.file_size(), entry.path().string());
    }
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> out;
  for (auto& [size, p] : found) out.push_back(std::move(p));
  return out;
}

// Opens the damaged store in a child and reads everything back. The child
// says "open-failed", "read-error", "wrong-data" (a value differs or a key
// is missing with no error: damage went unnoticed) or "all-data".
void check_damage_detected(EngineKind kind, const std::string& path, const StoreModel& model,
                           std::string_view damage) {
  INFO(to_string(kind) << ": " << damage);
  const ChildResult result = run_in_child([&](int fd) {
    auto opened = open_engine(kind, path, test_options());
    if (!opened.is_ok()) {
      report(fd, "open-failed " + opened.status().to_string());
      return;
    }
    // The engine is never closed here: the child ends with _exit(), and a
    // close could wait on background threads that fork did not copy.
    Engine& e = *opened.value().release();
    for (CF cf : kAllCFs) {
      auto it = e.new_iterator(cf, {});
      std::size_t seen = 0;
      for (it->seek_to_first(); it->valid(); it->next()) {
        const auto m = model[cf_index(cf)].find(std::string(it->key()));
        if (m == model[cf_index(cf)].end() || m->second != it->value()) {
          report(fd, "wrong-data unexpected entry " + printable(it->key()) + " in " +
                         std::string(cf_name(cf)));
          return;
        }
        ++seen;
      }
      if (!it->status().is_ok()) {
        report(fd, "read-error " + it->status().to_string());
        return;
      }
      if (seen != model[cf_index(cf)].size()) {
        report(fd, "wrong-data " + std::string(cf_name(cf)) + " has " + std::to_string(seen) +
                       " of " + std::to_string(model[cf_index(cf)].size()) + " keys, no error");
        return;
      }
      for (const auto& [k, v] : model[cf_index(cf)]) {
        auto got = e.get(cf, k);
        if (!got.is_ok()) {
          report(fd, "read-error " + got.status().to_string());
          return;
        }
        if (*got != v) {
          report(fd, "wrong-data get " + printable(k));
          return;
        }
      }
    }
    report(fd, "all-data");
  });
  INFO("child " << result.exit.describe());
  std::string said;
  for (const auto& line : result.lines) said += line + "\n";
  INFO("child output:\n" << said);
  CHECK((result.exit.exited && result.exit.exit_code == 0));
  REQUIRE(result.lines.size() == 1);
  const std::string& verdict = result.lines[0];
  CHECK((verdict.starts_with("open-failed") || verdict.starts_with("read-error")));
  if (verdict.starts_with("open-failed")) CHECK(verdict.find(path) != std::string::npos);
}

void flip_bytes(const std::string& file, double at, std::size_t n) {
  std::string bytes = read_all(file);
  REQUIRE(bytes.size() > n);
  const auto start = std::min(static_cast<std::size_t>(bytes.size() * at), bytes.size() - n);
  for (std::size_t i = start; i < start + n; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0xA5);
  write_all(file, bytes);
}

void truncate_to(const std::string& file, double fraction) {
  const auto size = fs::file_size(file);
  fs::resize_file(file, static_cast<std::uintmax_t>(static_cast<double>(size) * fraction));
}

TEST_CASE("bad input: damaged data files give a clear error, never a crash", "[engine][bad]") {
  FOR_EACH_ENGINE(kind) {
    TempDir dir("kvcore-damage");
    const std::string path = dir.sub("db");
    struct Damage {
      std::string what;
      std::function<void()> apply;
    };
    std::vector<Damage> damages;
    auto first = [&](std::string_view part) {
      auto files = files_like(path, part);
      INFO("no file like " << part << " in " << path);
      REQUIRE_FALSE(files.empty());
      return files.front();
    };
    auto garbage = [](const std::string& f) {
      Rng rng(99);
      write_all(f, rng.bytes(std::max<std::uintmax_t>(fs::file_size(f), 64)));
    };
    // Outlives the damage lambdas that capture it.
    const std::string table = kind == EngineKind::kRocksDB ? ".sst" : ".ldb";
    switch (kind) {
      case EngineKind::kMemory: break;  // no data files: the data lives in memory
      case EngineKind::kRocksDB:
      case EngineKind::kLevelDB: {
        damages.push_back(
            {"garbage in CURRENT", [&] { write_all(path + "/CURRENT", "garbage\x01\x02"); }});
        damages.push_back({"CURRENT names a missing MANIFEST",
                           [&] { write_all(path + "/CURRENT", "MANIFEST-999999\n"); }});
        damages.push_back(
            {"MANIFEST truncated to half", [&] { truncate_to(first("MANIFEST-"), 0.5); }});
        damages.push_back({"MANIFEST replaced by garbage", [&] { garbage(first("MANIFEST-")); }});
        damages.push_back(
            {"table file with flipped bytes", [&] { flip_bytes(first(table), 0.3, 64); }});
        damages.push_back(
            {"table file truncated to half", [&] { truncate_to(first(table), 0.5); }});
        damages.push_back({"table file replaced by garbage", [&] { garbage(first(table)); }});
        break;
      }
      case EngineKind::kLmdb:
        damages.push_back({"data.mdb replaced by garbage", [&] { garbage(first(".mdb")); }});
        damages.push_back({"data.mdb truncated to half", [&] { truncate_to(first(".mdb"), 0.5); }});
        damages.push_back(
            {"data.mdb truncated to 100 bytes", [&] { fs::resize_file(first(".mdb"), 100); }});
        damages.push_back({"data.mdb emptied", [&] { fs::resize_file(first(".mdb"), 0); }});
        break;
    }
    for (const auto& d : damages) {
      fs::remove_all(path);
      const StoreModel model = make_store(kind, path);
      d.apply();
      check_damage_detected(kind, path, model, d.what);
    }
  }
}

// ---- unwritable directories ---------------------------------------------------

// In a child: drops root to nobody (a directory's mode binds nobody, while
// root may write anywhere), then opens `path`.
void open_as_nobody(int fd, EngineKind kind, const std::string& path) {
  if (::getuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
    report(fd, "error: cannot drop privileges");
    return;
  }
  auto opened = open_engine(kind, path, test_options());
  if (opened.is_ok()) {
    (void)opened.value().release();  // see check_damage_detected: never close in a child
    report(fd, "opened");
  } else {
    report(fd, "failed " + std::to_string(static_cast<int>(opened.status().code())) + " " +
                   opened.status().to_string());
  }
}

TEST_CASE("bad input: a directory the process cannot write", "[engine][bad]") {
  FOR_EACH_ENGINE(kind) {
    TempDir dir("kvcore-ro");
    const bool root = ::getuid() == 0;
    // Root owns everything with mode 0755: nobody can enter but not write.
    // Without root, the directory is made read-only instead.
    const auto ro = fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                    fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec;
    const auto rw = ro | fs::perms::owner_write;
    const std::string parent = dir.sub("parent");
    fs::create_directories(parent);
    const std::string existing = dir.sub("existing");
    {
      auto opened = open_engine(kind, existing, test_options());
      REQUIRE_OK(opened);
      put(**opened, CF::kDefault, "k", "v", true);
      REQUIRE_OK((*opened)->flush());
    }
    fs::permissions(dir.path(), rw);
    if (!root) {
      fs::permissions(parent, ro);
      for (const auto& entry : fs::recursive_directory_iterator(existing)) {
        fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::remove);
      }
      fs::permissions(existing, ro);
    }

    auto run = [&](const std::string& path) {
      const ChildResult r =
          run_in_child([&](int fd) { open_as_nobody(fd, kind, path); }, std::chrono::seconds(30));
      INFO("child " << r.exit.describe());
      CHECK((r.exit.exited && r.exit.exit_code == 0));
      REQUIRE(r.lines.size() == 1);
      return r.lines[0];
    };
    const std::string fresh = run(parent + "/db");
    INFO("new store in an unwritable directory: " << fresh);
    CHECK(fresh.starts_with("failed "));
    CHECK(fresh.find("IOError") != std::string::npos);
    if (kind != EngineKind::kMemory) {
      // An existing store whose files cannot be written. (The memory engine
      // keeps its data in memory: with the marker present it writes nothing.)
      const std::string old = run(existing);
      INFO("existing store in an unwritable directory: " << old);
      CHECK(old.starts_with("failed "));
    }
    if (!root) {
      fs::permissions(parent, rw);
      fs::permissions(existing, rw);
      for (const auto& entry : fs::recursive_directory_iterator(existing)) {
        fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::add);
      }
    }
    forget_store(kind, existing);
  }
}

}  // namespace
}  // namespace kvcore::test
