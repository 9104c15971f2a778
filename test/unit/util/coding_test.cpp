#include <catch2/catch.hpp>

#include <limits>
#include <string>

#include "seed.hpp"
#include "util/coding.hpp"
#include "util/crc32c.hpp"

using namespace kvcore::util;

TEST_CASE("varints round-trip and reject truncation", "[coding]") {
  kvcore::test::Rng rng(kvcore::test::test_seed(1));
  std::string buf;
  std::vector<std::uint64_t> values = {0, 1, 127, 128, 300, std::numeric_limits<std::uint64_t>::max()};
  for (int i = 0; i < 1000; ++i) values.push_back(rng.next() >> rng.uniform(64));
  for (auto v : values) put_varint64(buf, v);
  std::string_view in = buf;
  for (auto v : values) {
    std::uint64_t got = 0;
    REQUIRE(get_varint64(in, got));
    CHECK(got == v);
  }
  CHECK(in.empty());

  std::string one;
  put_varint64(one, 1ull << 40);
  std::string_view cut = std::string_view(one).substr(0, one.size() - 1);
  std::uint64_t v = 0;
  CHECK_FALSE(get_varint64(cut, v));
  CHECK(cut.size() == one.size() - 1);

  std::string eleven(11, '\x80');
  std::string_view over = eleven;
  CHECK_FALSE(get_varint64(over, v));
}

TEST_CASE("fixed-width and length-prefixed fields round-trip", "[coding]") {
  std::string buf;
  put_fixed32(buf, 0xDEADBEEF);
  put_fixed64(buf, 0x0123456789ABCDEFull);
  put_length_prefixed(buf, std::string("a\0b", 3));
  std::string_view in = buf;
  std::uint32_t a = 0;
  std::uint64_t b = 0;
  std::string_view s;
  REQUIRE(get_fixed32(in, a));
  REQUIRE(get_fixed64(in, b));
  REQUIRE(get_length_prefixed(in, s));
  CHECK(a == 0xDEADBEEF);
  CHECK(b == 0x0123456789ABCDEFull);
  CHECK(s == std::string_view("a\0b", 3));
  CHECK(in.empty());

  std::string lying;
  put_varint64(lying, 100);
  lying += "short";
  std::string_view li = lying;
  CHECK_FALSE(get_length_prefixed(li, s));
  CHECK(li.size() == lying.size());
}

TEST_CASE("crc32c matches the standard check values", "[coding]") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string data = "the quick brown fox jumps over the lazy dog, twice over";
  std::uint32_t whole = crc32c(data);
  std::uint32_t split = crc32c_extend(crc32c(data.substr(0, 13)), data.data() + 13, data.size() - 13);
  CHECK(whole == split);
}
