// CallStranger (CVE-2020-12695) against the Publisher: a SUBSCRIBE whose CALLBACK names a
// host on another network must be refused (412) and that host must never get a byte. This
// needs addresses on two networks, so the test runs in a private network namespace
// (scripts/in-netns.sh; netns_guard refuses to run elsewhere) and gives its loopback device
// 10.9.0.1/24 and 10.9.0.2/24 (the "LAN" the device serves) and 10.8.0.1/24 (a third party).
// Nothing leaves the namespace.
#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "support/peers.hpp"
#include "support/test_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/net/tcp.hpp"
#include "uvgena/publisher/publisher.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

// The namespace's addresses, once per process (netns_guard already made sure this is a
// private namespace).
bool addresses_ready() {
    static const bool ready = [] {
        return std::system(
                   "ip addr add 10.9.0.1/24 dev lo && ip addr add 10.9.0.2/24 dev lo && "
                   "ip addr add 10.8.0.1/24 dev lo") == 0;
    }();
    return ready;
}

// Answers every NOTIFY 200 and counts them.
struct Sink {
    std::size_t notifies = 0;
    http::Server server;

    Sink(uv_loop_t* loop, const std::string& ip)
        : server(
              loop,
              [this](const http::Request& r, const http::RequestContext&) -> Task<http::Response> {
                  if (r.method == "NOTIFY") ++notifies;
                  co_return http::Response{};
              },
              options(ip)) {
        server.listen();
    }
    static http::ServerOptions options(const std::string& ip) {
        http::ServerOptions o;
        o.address = SocketAddress::parse(ip, 0);
        return o;
    }
    std::string url() const { return "http://" + server.local_address().to_string() + "/cb"; }
};

// The device serves the "LAN" from 10.9.0.1 (any port).
uvtest::TestDevice lan_device(uv_loop_t* loop, gena::PublisherOptions options) {
    return uvtest::TestDevice(loop, std::move(options), SocketAddress::parse("10.9.0.1", 0));
}

}  // namespace

TEST_SUITE("hostile.callstranger") {
    TEST_CASE(
        "a CALLBACK on another network is refused with 412 and that host gets nothing, "
        "while subscribers of the device's own segment are served") {
        REQUIRE(addresses_ready());
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            // CallbackScope::same_segment, the default.
            uvtest::TestDevice device = lan_device(l, {});
            peers::SilentPeer stranger(l, SocketAddress::parse("10.8.0.1", 0));
            Sink own(l, "10.9.0.1");
            Sink neighbour(l, "10.9.0.2");
            // The attacker on the LAN (10.9.0.2) names the third party alone: refused.
            CHECK(co_await device.subscribe_from(stranger.url(), "10.9.0.2") == 412);
            // ... or first in a list: only the allowed URL is kept.
            CHECK(co_await device.subscribe_from(stranger.url(), "10.9.0.2", neighbour.url()) ==
                  200);
            // A requester naming itself, and one naming another host of its segment: served.
            CHECK(co_await device.subscribe_from(own.url(), "10.9.0.1") == 200);
            CHECK(co_await device.subscribe_from(neighbour.url(), "10.9.0.1") == 200);
            CHECK(device.publisher().stats().refused_callbacks == 1);
            CHECK(device.publisher().subscriber_count() == 3);
            for (int i = 1; i <= 3; ++i) device.set(std::to_string(i));
            co_await with_timeout(l, device.publisher().idle(), 10s);
            CHECK(own.notifies >= 2);        // initial event + changes (coalescing may merge)
            CHECK(neighbour.notifies >= 4);  // two subscriptions
            CHECK(device.publisher().stats().notifies_failed == 0);
            // The third party was never contacted.
            co_await sleep_for(l, 100ms);
            CHECK(stranger.connections() == 0);
            co_await device.stop();
            co_await stranger.close();
            co_await own.server.stop();
            co_await neighbour.server.stop();
        }(loop));
    }

    TEST_CASE("same_host accepts only the requester's own address; any is the open hole") {
        REQUIRE(addresses_ready());
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Sink neighbour(l, "10.9.0.2");
            {
                gena::PublisherOptions strict;
                strict.callback_scope = gena::CallbackScope::same_host;
                uvtest::TestDevice device = lan_device(l, strict);
                CHECK(co_await device.subscribe_from(neighbour.url(), "10.9.0.1") == 412);
                CHECK(co_await device.subscribe_from(neighbour.url(), "10.9.0.2") == 200);
                co_await device.stop();
            }
            {
                // An explicitly allowed network opens exactly that network.
                gena::PublisherOptions routed;
                routed.allowed_callback_networks = {gena::IpNetwork::parse("10.8.0.0/24").value()};
                uvtest::TestDevice device = lan_device(l, routed);
                peers::SilentPeer allowed(l, SocketAddress::parse("10.8.0.1", 0));
                CHECK(co_await device.subscribe_from(allowed.url(), "10.9.0.2") == 200);
                co_await device.stop();
                co_await allowed.close();
            }
            co_await neighbour.server.stop();
        }(loop));
    }
}
