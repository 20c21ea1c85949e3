// Small string helpers shared by the protocol layers (ASCII only: protocol tokens are ASCII).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace uvgena {

/// ASCII lower-case of one character.
constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Case-insensitive ASCII equality (header names, tokens).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}

/// Case-insensitive ASCII prefix test.
constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

/// True for an ASCII letter.
constexpr bool is_ascii_alpha(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// True for an ASCII decimal digit.
constexpr bool is_ascii_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

/// True for an ASCII hexadecimal digit (either case).
constexpr bool is_ascii_hex(char c) noexcept {
    return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/// True for the optional whitespace of HTTP (space and horizontal tab).
constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

/// True for the whitespace that trim() removes: space, tab, CR and LF (XML's whitespace, and
/// HTTP's optional whitespace plus the line ends a lenient line splitter may leave).
constexpr bool is_trim_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/// Removes leading and trailing spaces, tabs, CRs and LFs. One set for every caller: header
/// values never hold CR or LF (the parsers refuse them), so the wider set changes nothing
/// there, while XML text (GENA values, description fields) and SSDP lines need it.
constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_trim_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_trim_space(s.back())) s.remove_suffix(1);
    return s;
}

/// Parses an unsigned decimal that must fill the whole string (no sign, no spaces); leading
/// zeros are allowed. Empty on anything else, including overflow of T.
template <typename T>
std::optional<T> parse_unsigned(std::string_view s) noexcept {
    if (s.empty()) return std::nullopt;
    T value{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return value;
}

}  // namespace uvgena
