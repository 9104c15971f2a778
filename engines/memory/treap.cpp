#include "memory/treap.hpp"

namespace kvcore::memory_detail {
namespace {

std::uint64_t key_priority(std::string_view key) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a splitmix finalizer
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

NodePtr make_node(std::shared_ptr<const Item> item, std::uint64_t priority, NodePtr left,
                  NodePtr right) {
  auto n = std::make_shared<Node>();
  const std::uint64_t own = item->key.size() + item->value.size();
  n->count = 1 + subtree_count(left) + subtree_count(right);
  n->bytes = own + subtree_bytes(left) + subtree_bytes(right);
  n->item = std::move(item);
  n->priority = priority;
  n->left = std::move(left);
  n->right = std::move(right);
  return n;
}

NodePtr with_children(const Node& proto, NodePtr left, NodePtr right) {
  return make_node(proto.item, proto.priority, std::move(left), std::move(right));
}

// Splits into (keys < key, keys >= key), or (keys <= key, keys > key) when
// `inclusive`.
std::pair<NodePtr, NodePtr> split(const NodePtr& t, std::string_view key, bool inclusive) {
  if (!t) return {};
  const std::string_view k = t->item->key;
  const bool goes_left = inclusive ? k <= key : k < key;
  if (goes_left) {
    auto [a, b] = split(t->right, key, inclusive);
    return {with_children(*t, t->left, std::move(a)), std::move(b)};
  }
  auto [a, b] = split(t->left, key, inclusive);
  return {std::move(a), with_children(*t, std::move(b), t->right)};
}

// REQUIRES: every key of `a` is below every key of `b`.
NodePtr merge(const NodePtr& a, const NodePtr& b) {
  if (!a) return b;
  if (!b) return a;
  if (a->priority > b->priority) return with_children(*a, a->left, merge(a->right, b));
  return with_children(*b, merge(a, b->left), b->right);
}

// Path-copies down to `key` (which exists) and swaps its item.
NodePtr replace(const NodePtr& t, std::string_view key, const std::shared_ptr<const Item>& item) {
  const std::string_view k = t->item->key;
  if (key < k) return with_children(*t, replace(t->left, key, item), t->right);
  if (k < key) return with_children(*t, t->left, replace(t->right, key, item));
  return make_node(item, t->priority, t->left, t->right);
}

}  // namespace

NodePtr treap_put(const NodePtr& root, std::string_view key, std::string_view value) {
  auto item = std::make_shared<const Item>(Item{std::string(key), std::string(value)});
  if (treap_find(root, key) != nullptr) return replace(root, key, item);
  auto [left, right] = split(root, key, false);
  auto leaf = make_node(std::move(item), key_priority(key), nullptr, nullptr);
  return merge(merge(left, leaf), right);
}

NodePtr treap_erase(const NodePtr& root, std::string_view key) {
  if (treap_find(root, key) == nullptr) return root;
  auto [left, rest] = split(root, key, false);
  auto [mid, right] = split(rest, key, true);
  return merge(left, right);
}

NodePtr treap_erase_range(const NodePtr& root, std::string_view begin, std::string_view end) {
  if (!end.empty() && begin >= end) return root;
  auto [left, rest] = split(root, begin, false);
  if (end.empty()) return left;
  auto [mid, right] = split(rest, end, false);
  if (!mid) return root;
  return merge(left, right);
}

const Node* treap_find(const NodePtr& root, std::string_view key) {
  const Node* n = root.get();
  while (n != nullptr) {
    const std::string_view k = n->item->key;
    if (key < k) {
      n = n->left.get();
    } else if (k < key) {
      n = n->right.get();
    } else {
      return n;
    }
  }
  return nullptr;
}

const Node* treap_lower_bound(const NodePtr& root, std::string_view key) {
  const Node* best = nullptr;
  for (const Node* n = root.get(); n != nullptr;) {
    if (std::string_view(n->item->key) >= key) {
      best = n;
      n = n->left.get();
    } else {
      n = n->right.get();
    }
  }
  return best;
}

const Node* treap_upper_bound(const NodePtr& root, std::string_view key) {
  const Node* best = nullptr;
  for (const Node* n = root.get(); n != nullptr;) {
    if (std::string_view(n->item->key) > key) {
      best = n;
      n = n->left.get();
    } else {
      n = n->right.get();
    }
  }
  return best;
}

const Node* treap_last_below(const NodePtr& root, std::string_view key) {
  const Node* best = nullptr;
  for (const Node* n = root.get(); n != nullptr;) {
    if (std::string_view(n->item->key) < key) {
      best = n;
      n = n->right.get();
    } else {
      n = n->left.get();
    }
  }
  return best;
}

const Node* treap_last_at_or_below(const NodePtr& root, std::string_view key) {
  const Node* best = nullptr;
  for (const Node* n = root.get(); n != nullptr;) {
    if (std::string_view(n->item->key) <= key) {
      best = n;
      n = n->right.get();
    } else {
      n = n->left.get();
    }
  }
  return best;
}

const Node* treap_first(const NodePtr& root) {
  const Node* n = root.get();
  while (n != nullptr && n->left) n = n->left.get();
  return n;
}

const Node* treap_last(const NodePtr& root) {
  const Node* n = root.get();
  while (n != nullptr && n->right) n = n->right.get();
  return n;
}

std::pair<std::uint64_t, std::uint64_t> treap_rank(const NodePtr& root, std::string_view key) {
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
  for (const Node* n = root.get(); n != nullptr;) {
    if (std::string_view(n->item->key) < key) {
      count += 1 + subtree_count(n->left);
      bytes += n->item->key.size() + n->item->value.size() + subtree_bytes(n->left);
      n = n->right.get();
    } else {
      n = n->left.get();
    }
  }
  return {count, bytes};
}

}  // namespace kvcore::memory_detail
