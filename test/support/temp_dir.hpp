// A fresh directory per test (meson runs tests in parallel), removed at the
// end unless KVCORE_KEEP_TEMP is set.
#pragma once

#include <string>
#include <string_view>

namespace kvcore::test {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "kvcore");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  // path()/name (not created).
  [[nodiscard]] std::string sub(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace kvcore::test
