#include "uvgena/http/url.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "uvgena/core/error.hpp"
#include "uvgena/http/error.hpp"

using namespace uvgena::http;

namespace {

std::string resolved(std::string_view ref) {
    return resolve_reference("http://a/b/c/d;p?q", ref).value();
}

std::string parse_error(std::string_view text) {
    std::string reason;
    auto url = Url::try_parse(text, &reason);
    REQUIRE_FALSE(url.ok());
    CHECK(url.error() == make_error_code(errc::bad_url));
    return reason;
}

}  // namespace

TEST_SUITE("http.url") {
    TEST_CASE("an http URL is split into host, default port and target") {
        Url u = Url::parse("HTTP://192.168.1.20/MediaRenderer/Event?x=1#frag");
        CHECK(u.scheme == "http");
        CHECK(u.host == "192.168.1.20");
        CHECK(u.port == 80);
        CHECK_FALSE(u.explicit_port);
        CHECK(u.path == "/MediaRenderer/Event");
        CHECK(u.target() == "/MediaRenderer/Event?x=1");
        CHECK(u.host_header() == "192.168.1.20");
        CHECK(u.fragment == "frag");
        CHECK(u.to_string() == "http://192.168.1.20/MediaRenderer/Event?x=1#frag");
    }

    TEST_CASE("an IPv6 literal loses its brackets and keeps its zone") {
        Url u = Url::parse("http://[fe80::1%25eth0]:1400/desc.xml");
        CHECK(u.host == "fe80::1");
        CHECK(u.zone == "eth0");
        CHECK(u.port == 1400);
        CHECK(u.is_ipv6());
        CHECK(u.host_header() == "[fe80::1]:1400");
        CHECK(u.authority() == "[fe80::1]:1400");
        CHECK(u.to_string() == "http://[fe80::1%25eth0]:1400/desc.xml");
        Url loop = Url::parse("http://[::1]:8080");
        CHECK(loop.host == "::1");
        CHECK(loop.target() == "/");
        CHECK(Url::parse(loop.to_string()) == loop);
    }

    TEST_CASE("bad URLs give an error that says what is wrong") {
        CHECK(parse_error("").find("empty") != std::string::npos);
        CHECK(parse_error("192.168.1.1/x").find("scheme") != std::string::npos);
        CHECK(parse_error("http:/x").find("//host") != std::string::npos);
        CHECK(parse_error("http://:80/").find("empty host") != std::string::npos);
        CHECK(parse_error("http://h:99999/").find("port") != std::string::npos);
        CHECK(parse_error("http://h:8o/").find("port") != std::string::npos);
        CHECK(parse_error("http://[::1/").find("'['") != std::string::npos);
        CHECK(parse_error("http://[zz::1]/").find("IPv6") != std::string::npos);
        CHECK(parse_error("http://h/a b").find("space") != std::string::npos);
        CHECK(parse_error("foo://h/").find("default port") != std::string::npos);
        CHECK(parse_error("http://h<>/").find("host") != std::string::npos);
        CHECK_THROWS_AS(Url::parse("nope"), uvgena::Error);
    }

    TEST_CASE("RFC 3986 5.4.1 normal examples resolve as specified") {
        const std::vector<std::pair<std::string, std::string>> cases = {
            {"g:h", "g:h"},
            {"g", "http://a/b/c/g"},
            {"./g", "http://a/b/c/g"},
            {"g/", "http://a/b/c/g/"},
            {"/g", "http://a/g"},
            {"//g", "http://g"},
            {"?y", "http://a/b/c/d;p?y"},
            {"g?y", "http://a/b/c/g?y"},
            {"#s", "http://a/b/c/d;p?q#s"},
            {"g#s", "http://a/b/c/g#s"},
            {"g?y#s", "http://a/b/c/g?y#s"},
            {";x", "http://a/b/c/;x"},
            {"g;x", "http://a/b/c/g;x"},
            {"g;x?y#s", "http://a/b/c/g;x?y#s"},
            {"", "http://a/b/c/d;p?q"},
            {".", "http://a/b/c/"},
            {"./", "http://a/b/c/"},
            {"..", "http://a/b/"},
            {"../", "http://a/b/"},
            {"../g", "http://a/b/g"},
            {"../..", "http://a/"},
            {"../../", "http://a/"},
            {"../../g", "http://a/g"},
        };
        for (const auto& c : cases) {
            CAPTURE(c.first);
            CHECK(resolved(c.first) == c.second);
        }
    }

    TEST_CASE("RFC 3986 5.4.2 abnormal examples resolve as specified") {
        const std::vector<std::pair<std::string, std::string>> cases = {
            {"../../../g", "http://a/g"},
            {"../../../../g", "http://a/g"},
            {"/./g", "http://a/g"},
            {"/../g", "http://a/g"},
            {"g.", "http://a/b/c/g."},
            {".g", "http://a/b/c/.g"},
            {"g..", "http://a/b/c/g.."},
            {"..g", "http://a/b/c/..g"},
            {"./../g", "http://a/b/g"},
            {"./g/.", "http://a/b/c/g/"},
            {"g/./h", "http://a/b/c/g/h"},
            {"g/../h", "http://a/b/c/h"},
            {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
            {"g;x=1/../y", "http://a/b/c/y"},
            {"g?y/./x", "http://a/b/c/g?y/./x"},
            {"g?y/../x", "http://a/b/c/g?y/../x"},
            {"g#s/./x", "http://a/b/c/g#s/./x"},
            {"g#s/../x", "http://a/b/c/g#s/../x"},
            {"http:g", "http:g"},
        };
        for (const auto& c : cases) {
            CAPTURE(c.first);
            CHECK(resolved(c.first) == c.second);
        }
    }

    TEST_CASE("a device's relative eventSubURL resolves against URLBase into a Url") {
        Url base = Url::parse("http://192.168.1.20:1400/xml/device_description.xml");
        Url event = resolve(base, "/MediaRenderer/AVTransport/Event");
        CHECK(event.host == "192.168.1.20");
        CHECK(event.port == 1400);
        CHECK(event.target() == "/MediaRenderer/AVTransport/Event");
        CHECK(resolve(base, "scpd/rc.xml").target() == "/xml/scpd/rc.xml");
        Url v6 = Url::parse("http://[fe80::2%25eth1]:49152/");
        CHECK(resolve(v6, "evt").zone == "eth1");
        CHECK_THROWS_AS(resolve(base, "mailto:x"), uvgena::Error);
        CHECK_FALSE(resolve_reference("relative/only", "g").ok());
    }

    TEST_CASE("url_host brackets IPv6 literals and keeps their zone as %25") {
        CHECK(url_host("fe80::1%eth0") == "[fe80::1%25eth0]");
        CHECK(url_host("fd75:7667::1") == "[fd75:7667::1]");
        CHECK(url_host("10.0.0.2") == "10.0.0.2");
        CHECK(url_host("device.local") == "device.local");
        CHECK(url_host("[::1]") == "[::1]");
        // What it writes, the URL parser reads back with the same host and zone.
        Url u = Url::parse("http://" + url_host("fe80::1%eth0") + ":1400/cb");
        CHECK(u.host == "fe80::1");
        CHECK(u.zone == "eth0");
    }
}
