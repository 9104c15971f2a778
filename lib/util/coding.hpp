// Little-endian fixed-width and varint encodings used by kvcore's own file and
// wire formats. Decoders never read past the input and report failure by
// returning false, so they are safe on untrusted bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace kvcore::util {

inline void put_fixed32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
  out.append(b, 4);
}
inline void put_fixed64(std::string& out, std::uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
  out.append(b, 8);
}
inline std::uint32_t decode_fixed32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline std::uint64_t decode_fixed64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline void put_varint64(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7Fu) | 0x80u));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Consumes a varint from the front of `in`. False (and `in` unchanged) when it
// is truncated or longer than 10 bytes.
inline bool get_varint64(std::string_view& in, std::uint64_t& v) {
  std::uint64_t result = 0;
  for (std::size_t i = 0; i < in.size() && i < 10; ++i) {
    const auto byte = static_cast<unsigned char>(in[i]);
    result |= static_cast<std::uint64_t>(byte & 0x7Fu) << (7 * i);
    if ((byte & 0x80u) == 0) {
      v = result;
      in.remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}
inline bool get_fixed32(std::string_view& in, std::uint32_t& v) {
  if (in.size() < 4) return false;
  v = decode_fixed32(in.data());
  in.remove_prefix(4);
  return true;
}
inline bool get_fixed64(std::string_view& in, std::uint64_t& v) {
  if (in.size() < 8) return false;
  v = decode_fixed64(in.data());
  in.remove_prefix(8);
  return true;
}

// A varint length followed by that many bytes.
inline void put_length_prefixed(std::string& out, std::string_view s) {
  put_varint64(out, s.size());
  out.append(s);
}
inline bool get_length_prefixed(std::string_view& in, std::string_view& s) {
  std::string_view copy = in;
  std::uint64_t n = 0;
  if (!get_varint64(copy, n) || n > copy.size()) return false;
  s = copy.substr(0, n);
  copy.remove_prefix(n);
  in = copy;
  return true;
}

}  // namespace kvcore::util
