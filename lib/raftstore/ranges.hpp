// Deleting key ranges whose end may be "to the last key" (an empty end key),
// which WriteBatch::delete_range cannot express on its own.
#pragma once

#include <string>
#include <string_view>

#include "kvcore/engine/engine.hpp"

namespace kvcore::raftstore {

// Above every key but those that start with it: a stand-in for "the last
// key" as a delete_range end.
inline const std::string& max_key_bound() {
  static const std::string bound(64, '\xff');
  return bound;
}

// Adds to `batch` the deletion of [begin, end) in `cf`; an empty end means
// "to the last key". Keys at or above max_key_bound() are found with an
// iterator over `kv` as it is now (they do not occur in practice: kvcore's
// own keys never start with 64 0xff bytes).
inline Status delete_range_in(const Engine& kv, WriteBatch& batch, CF cf, std::string_view begin,
                              std::string_view end) {
  if (!end.empty()) {
    batch.delete_range(cf, begin, end);
    return Status::ok();
  }
  const std::string& bound = max_key_bound();
  if (begin < std::string_view(bound)) batch.delete_range(cf, begin, bound);
  IterOptions io;
  io.lower_bound = std::max(std::string(begin), bound);
  auto it = kv.new_iterator(cf, io);
  for (it->seek_to_first(); it->valid(); it->next()) batch.delete_key(cf, it->key());
  return it->status();
}

}  // namespace kvcore::raftstore
