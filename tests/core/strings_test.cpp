// The string helpers every layer shares (one copy of each, in core/strings.hpp).
#include "uvgena/core/strings.hpp"

#include <doctest/doctest.h>

#include "uvgena/http/message.hpp"

using namespace uvgena;

TEST_SUITE("core.strings") {
    TEST_CASE("trim removes space, tab, CR and LF at both ends and nothing else") {
        CHECK(trim(" \t\r\n value \r\n\t ") == "value");
        CHECK(trim("a b\r\nc") == "a b\r\nc");  // inside: kept
        CHECK(trim("\v x \f") == "\v x \f");    // not whitespace of HTTP or XML
        CHECK(trim(" \r\n ").empty());
        CHECK(trim("").empty());
    }

    TEST_CASE("iequals and istarts_with ignore ASCII case only") {
        CHECK(iequals("Content-Length", "content-LENGTH"));
        CHECK_FALSE(iequals("content-length", "content-lengths"));
        CHECK_FALSE(iequals("\xc3\x84", "\xc3\xa4"));  // non-ASCII bytes compared as they are
        CHECK(http::iequals("NT", "nt"));              // the http spelling is the same function
        CHECK(istarts_with("Second-1800", "second-"));
        CHECK_FALSE(istarts_with("Sec", "second-"));
    }

    TEST_CASE("has_token trims each list item with the same whitespace set") {
        CHECK(http::has_token("close ,\tKeep-Alive \r\n", "keep-alive"));
        CHECK_FALSE(http::has_token("keep-alive-ish", "keep-alive"));
    }
}
