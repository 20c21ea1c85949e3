// The route lookup behind CALLBACK URLs, on loopback only.
#include "net/route.hpp"

#include <doctest/doctest.h>

#include "uvgena/core/error.hpp"

using namespace uvgena;

TEST_SUITE("net.route") {
    TEST_CASE("the address that reaches a loopback peer is a loopback address") {
        Result<SocketAddress> local =
            net::local_address_towards(SocketAddress::ipv4_loopback(1400));
        REQUIRE(local);
        CHECK(local->is_ipv4());
        CHECK(local->ip() == "127.0.0.1");
        CHECK(local->port() != 0);  // the probe's ephemeral port, never 1400's owner
    }

    TEST_CASE("a peer without a port is probed on a port of its own") {
        Result<SocketAddress> local =
            net::local_address_towards(SocketAddress::parse("127.0.0.2", 0));
        REQUIRE(local);
        CHECK(local->ip().starts_with("127."));
    }

    TEST_CASE("an unspecified peer is refused") {
        Result<SocketAddress> local = net::local_address_towards(SocketAddress());
        REQUIRE_FALSE(local);
        CHECK(local.error() == uvgena::errc::invalid_argument);
    }
}
