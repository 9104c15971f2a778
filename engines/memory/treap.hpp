// A persistent (immutable, path-copying) treap: the memory engine's ordered
// map. Every update returns a new root and shares all untouched nodes with
// the old one, so a snapshot is just a copy of a root pointer. Nodes carry
// the count and byte sum of their subtree, so range figures are O(log n).
// Priorities are a hash of the key: the shape, like everything in the memory
// engine, is deterministic.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "kvcore/engine/memory_engine.hpp"

namespace kvcore::memory_detail {

// Keys and values live in an Item shared by every copy of a node, so copying
// a path copies pointers, not bytes.
struct Item {
  std::string key;
  std::string value;
};

struct Node {
  std::shared_ptr<const Item> item;
  std::uint64_t priority = 0;
  NodePtr left;
  NodePtr right;
  std::uint64_t count = 0;  // entries in this subtree
  std::uint64_t bytes = 0;  // key + value bytes in this subtree
};

[[nodiscard]] inline std::uint64_t subtree_count(const NodePtr& n) { return n ? n->count : 0; }
[[nodiscard]] inline std::uint64_t subtree_bytes(const NodePtr& n) { return n ? n->bytes : 0; }

// Returns `root` with key set to value (inserted or replaced).
[[nodiscard]] NodePtr treap_put(const NodePtr& root, std::string_view key, std::string_view value);
// Returns `root` without `key` (unchanged when absent).
[[nodiscard]] NodePtr treap_erase(const NodePtr& root, std::string_view key);
// Returns `root` without keys in [begin, end); an empty `end` means no upper limit.
[[nodiscard]] NodePtr treap_erase_range(const NodePtr& root, std::string_view begin,
                                        std::string_view end);

[[nodiscard]] const Node* treap_find(const NodePtr& root, std::string_view key);
// First node with key >= `key`, or nullptr.
[[nodiscard]] const Node* treap_lower_bound(const NodePtr& root, std::string_view key);
// First node with key > `key`, or nullptr.
[[nodiscard]] const Node* treap_upper_bound(const NodePtr& root, std::string_view key);
// Last node with key < `key`, or nullptr.
[[nodiscard]] const Node* treap_last_below(const NodePtr& root, std::string_view key);
// Last node with key <= `key`, or nullptr.
[[nodiscard]] const Node* treap_last_at_or_below(const NodePtr& root, std::string_view key);
[[nodiscard]] const Node* treap_first(const NodePtr& root);
[[nodiscard]] const Node* treap_last(const NodePtr& root);

// Count and bytes of the entries with key < `key`.
[[nodiscard]] std::pair<std::uint64_t, std::uint64_t> treap_rank(const NodePtr& root,
                                                                 std::string_view key);

}  // namespace kvcore::memory_detail
