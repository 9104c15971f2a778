// kvcore's sorted-run file: the external file format for bulk ingestion on
// engines without a native one (LevelDB, LMDB, memory). RocksDB uses real SST
// files instead.
//
// Layout (all integers little-endian):
//   "KVSORT01"                                     8-byte magic
//   { varint key_len, varint value_len, key, value }  per entry, keys strictly ascending
//   fixed64 entries, fixed32 crc32c(all entry bytes), "KVSORTND"   footer
// A reader checks the magic, the order, the count and the checksum, so a
// truncated or damaged file is Corruption before anything is ingested.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kvcore/engine/types.hpp"
#include "kvcore/status.hpp"

namespace kvcore::engine {

class SortedFileWriter {
 public:
  // Creates `path`, which must not exist (AlreadyExists otherwise).
  [[nodiscard]] static Result<SortedFileWriter> create(const std::string& path);

  SortedFileWriter(SortedFileWriter&&) noexcept;
  SortedFileWriter& operator=(SortedFileWriter&&) noexcept;
  ~SortedFileWriter();  // an unfinished file is removed

  // REQUIRES: key > the previous key (InvalidArgument otherwise).
  [[nodiscard]] Status put(std::string_view key, std::string_view value);
  // Writes the footer and fsyncs. InvalidArgument for a file with no entry.
  [[nodiscard]] Result<SstFileInfo> finish();

 private:
  struct State;
  explicit SortedFileWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Reads `path` start to end, calling `on_entry` for each entry in order (pass
// an empty function to only verify). Stops at the first error, including one
// returned by `on_entry`. Corruption for a damaged or truncated file; the
// callback may already have seen some entries by then, so callers that need
// atomicity verify first (pass no callback), then apply.
[[nodiscard]] Status scan_sorted_file(
    const std::string& path,
    const std::function<Status(std::string_view key, std::string_view value)>& on_entry);

}  // namespace kvcore::engine
