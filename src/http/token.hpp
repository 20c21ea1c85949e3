// The token characters of HTTP (RFC 9110 5.6.2 tchar), as one table for every parser and
// serialiser of header names and methods (http message and parser, ssdp datagrams).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace uvgena::http::detail {

constexpr std::array<bool, 256> make_token_table() {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}

/// tchar membership, byte by byte (a table: header names are checked on every message).
inline constexpr std::array<bool, 256> kTokenTable = make_token_table();

/// True if `c` is a tchar.
constexpr bool is_token_char(char c) noexcept {
    return kTokenTable[static_cast<unsigned char>(c)];
}

/// True if `s` is a token: one or more tchars.
constexpr bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s) {
        if (!is_token_char(c)) return false;
    }
    return true;
}

}  // namespace uvgena::http::detail
