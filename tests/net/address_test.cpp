#include "uvgena/net/address.hpp"

#include <doctest/doctest.h>

#include <sstream>

using namespace uvgena;

TEST_SUITE("co.address") {
    TEST_CASE("IPv4 literals parse and print with their port") {
        auto a = SocketAddress::parse("192.168.1.20", 1400);
        CHECK(a.is_ipv4());
        CHECK(a.family() == AF_INET);
        CHECK(a.port() == 1400);
        CHECK(a.ip() == "192.168.1.20");
        CHECK(a.to_string() == "192.168.1.20:1400");
        CHECK_FALSE(a.is_loopback());
        CHECK(SocketAddress::parse("127.0.0.5", 1).is_loopback());
    }

    TEST_CASE("IPv6 literals print in brackets") {
        auto a = SocketAddress::parse("::1", 1400);
        CHECK(a.is_ipv6());
        CHECK(a.to_string() == "[::1]:1400");
        CHECK(a.is_loopback());
        auto b = SocketAddress::parse("2001:db8::1", 80);
        CHECK(b.to_string() == "[2001:db8::1]:80");
    }

    TEST_CASE("an IPv6 scope is kept by number or by interface name") {
        auto a = SocketAddress::parse("fe80::1%7", 80);
        CHECK(a.scope_id() == 7);
        auto lo = SocketAddress::try_parse("fe80::1%lo", 80);
        REQUIRE(lo.ok());
        CHECK(lo->scope_id() != 0);
        CHECK(lo->ip() == "fe80::1%lo");
        CHECK(lo->to_string() == "[fe80::1%lo]:80");
        CHECK_FALSE(SocketAddress::try_parse("fe80::1%", 80).ok());
        CHECK_FALSE(SocketAddress::try_parse("fe80::1%no-such-if0", 80).ok());
    }

    TEST_CASE("host:port strings parse for both families") {
        CHECK(SocketAddress::parse("1.2.3.4:1400") == SocketAddress::parse("1.2.3.4", 1400));
        CHECK(SocketAddress::parse("[::1]:1400") == SocketAddress::ipv6_loopback(1400));
        CHECK(SocketAddress::parse("[fe80::1%7]:80").scope_id() == 7);
        for (const char* bad :
             {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:x", "::1:80", "[::1]", "[::1]80",
              "[::1:80", "host:80", "1.2.3.4:80x", "300.1.1.1:80"}) {
            CAPTURE(bad);
            CHECK_FALSE(SocketAddress::try_parse(std::string_view(bad)).ok());
        }
    }

    TEST_CASE("invalid literals throw with the input in the message") {
        CHECK_THROWS_WITH_AS(SocketAddress::parse("not-an-ip", 1), doctest::Contains("not-an-ip"),
                             Error);
        try {
            (void)SocketAddress::parse("nope:1");
        } catch (const Error& e) {
            CHECK(e.code() == errc::invalid_argument);
        }
    }

    TEST_CASE("conversion to and from sockaddr round-trips") {
        auto a = SocketAddress::parse("10.0.0.1", 5);
        auto b = SocketAddress::from_sockaddr(a.sockaddr_ptr());
        REQUIRE(b.ok());
        CHECK(*b == a);
        CHECK(a.sockaddr_len() == sizeof(sockaddr_in));
        auto c = SocketAddress::ipv6_any(9);
        CHECK(c.sockaddr_len() == sizeof(sockaddr_in6));
        CHECK(*SocketAddress::from_sockaddr(c.sockaddr_ptr()) == c);
        sockaddr unix_addr{};
        unix_addr.sa_family = AF_UNIX;
        CHECK_FALSE(SocketAddress::from_sockaddr(&unix_addr).ok());
        CHECK_FALSE(SocketAddress().valid());
        CHECK(SocketAddress().to_string() == "(unspecified)");
    }

    TEST_CASE("set_port changes only the port; equality needs every field") {
        auto a = SocketAddress::ipv4_loopback(1);
        a.set_port(2);
        CHECK(a.port() == 2);
        CHECK(a == SocketAddress::parse("127.0.0.1:2"));
        CHECK_FALSE(a == SocketAddress::parse("127.0.0.1:3"));
        CHECK_FALSE(SocketAddress::ipv4_any(2) == SocketAddress::ipv6_any(2));
        std::ostringstream out;
        out << SocketAddress::ipv4_any(80);
        CHECK(out.str() == "0.0.0.0:80");
    }

    TEST_CASE("an IPv4-mapped IPv6 address unmaps to its IPv4 form, port kept") {
        auto mapped = SocketAddress::parse("::ffff:10.0.0.1", 1400);
        CHECK(mapped.is_ipv4_mapped());
        CHECK(mapped.unmapped() == SocketAddress::parse("10.0.0.1", 1400));
        // Anything else is left as it is, including IPv4-compatible and plain IPv6 addresses.
        for (const char* ip : {"10.0.0.1", "::1", "::10.0.0.1", "fe80::1%7", "2001:db8::ffff:1"}) {
            auto a = SocketAddress::parse(ip, 80);
            CHECK_FALSE(a.is_ipv4_mapped());
            CHECK(a.unmapped() == a);
        }
    }
}
