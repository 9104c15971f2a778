// White-box check of the memory engine's persistent treap against std::map.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "memory/treap.hpp"
#include "seed.hpp"

using namespace kvcore::memory_detail;

TEST_CASE("persistent treap matches an ordered map and keeps old versions", "[memory]") {
  for (auto seed : kvcore::test::test_seeds(100, 20)) {
    INFO(kvcore::test::replay_hint(seed));
    kvcore::test::Rng rng(seed);
    std::map<std::string, std::string> model;
    NodePtr root;
    NodePtr old_root;
    std::map<std::string, std::string> old_model;
    auto key = [&] { return "k" + std::to_string(rng.uniform(300)); };
    for (int op = 0; op < 2000; ++op) {
      if (op == 1000) {
        old_root = root;
        old_model = model;
      }
      const auto r = rng.uniform(10);
      if (r < 6) {
        auto k = key();
        auto v = std::to_string(rng.next());
        root = treap_put(root, k, v);
        model[k] = v;
      } else if (r < 9) {
        auto k = key();
        root = treap_erase(root, k);
        model.erase(k);
      } else {
        auto a = key();
        auto b = key();
        if (a > b) std::swap(a, b);
        root = treap_erase_range(root, a, b);
        model.erase(model.lower_bound(a), model.lower_bound(b));
      }
      REQUIRE(subtree_count(root) == model.size());
    }
    auto check = [&](const NodePtr& r, const std::map<std::string, std::string>& m) {
      std::uint64_t bytes = 0;
      for (const auto& [k, v] : m) {
        const Node* n = treap_find(r, k);
        REQUIRE(n != nullptr);
        CHECK(n->item->value == v);
        bytes += k.size() + v.size();
      }
      CHECK(subtree_bytes(r) == bytes);
      const Node* n = treap_first(r);
      for (const auto& [k, v] : m) {
        REQUIRE(n != nullptr);
        CHECK(n->item->key == k);
        n = treap_upper_bound(r, n->item->key);
      }
      CHECK(n == nullptr);
      for (int i = 0; i < 50; ++i) {
        auto probe = "k" + std::to_string(rng.uniform(300));
        auto lb = m.lower_bound(probe);
        const Node* got = treap_lower_bound(r, probe);
        CHECK((got == nullptr) == (lb == m.end()));
        if (got && lb != m.end()) CHECK(got->item->key == lb->first);
        auto [cnt, b] = treap_rank(r, probe);
        CHECK(cnt == static_cast<std::uint64_t>(std::distance(m.begin(), lb)));
      }
    };
    check(root, model);
    check(old_root, old_model);
  }
}
