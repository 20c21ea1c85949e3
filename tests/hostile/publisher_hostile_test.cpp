// Hostile requests against the Publisher (the device side) over real loopback sockets: a
// control point on the LAN that floods SUBSCRIBEs, renews SIDs it never got, or names a
// CALLBACK that hangs. Each case states the outcome the publisher's policy defines and
// checks that a well-behaved subscriber is still served meanwhile. The CallStranger case
// needs addresses on two networks and lives in publisher_callstranger_test.cpp (netns).
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/peers.hpp"
#include "support/publisher_support.hpp"
#include "support/test_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/net/tcp.hpp"
#include "uvgena/publisher/publisher.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

TEST_SUITE("hostile.publisher") {
    TEST_CASE("renewing or cancelling an unknown SID is answered 412 and changes nothing") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            uvtest::TestDevice device(l);
            pubtest::Receiver good(l);
            CHECK(co_await device.subscribe_from(good.url()) == 200);
            CHECK((co_await good.next()).seq == 0);
            std::vector<std::string> unknown{"uuid:00000000-0000-0000-0000-000000000000",
                                             "uuid:", "garbage", std::string(200, 'x')};
            for (const std::string& sid : unknown) {
                auto renew = co_await http::try_send(
                    l, device.address(), gena::make_renewal(device.event_url(), sid, 300s));
                REQUIRE(renew);
                CHECK(renew->status == 412);
                auto cancel = co_await http::try_send(
                    l, device.address(), gena::make_unsubscribe(device.event_url(), sid));
                REQUIRE(cancel);
                CHECK(cancel->status == 412);
            }
            CHECK(device.publisher().stats().rejected == 8);
            CHECK(device.publisher().subscriber_count() == 1);
            // The real subscriber is untouched.
            device.set("7");
            pubtest::Notify n = co_await good.next();
            CHECK(n.seq == 1);
            CHECK(n.properties.variables().at("Volume") == "7");
            co_await device.stop();
            co_await good.server().stop();
        }(loop));
    }

    TEST_CASE(
        "thousands of SUBSCRIBEs from one host: beyond the per-host limit 503, the "
        "subscription count stays bounded and another host is still served") {
        uvtest::TestLoop loop(60s);
        run(loop, [](uv_loop_t* l) -> Task<void> {
            gena::PublisherOptions options;
            options.max_subscriptions_per_host = 64;
            uvtest::TestDevice device(l, options);
            pubtest::Receiver flood_target(l);
            pubtest::Receiver other(l);
            constexpr int kFlood = 2000;
            int ok = 0, refused = 0, other_status = 0;
            for (int i = 0; i < kFlood; ++i) {
                int status = co_await device.subscribe_from(flood_target.url());
                if (status == 200) ++ok;
                if (status == 503) ++refused;
                // Halfway through, a second host subscribes and is served.
                if (i == kFlood / 2) {
                    other_status = co_await device.subscribe_from(other.url(), "127.0.0.2");
                }
            }
            CHECK(ok == 64);
            CHECK(refused == kFlood - 64);
            CHECK(other_status == 200);
            CHECK(device.publisher().stats().over_limit == kFlood - 64);
            CHECK(device.publisher().subscriber_count() == 65);  // memory bounded by the limit
            CHECK((co_await other.next()).seq == 0);
            device.set("9");
            pubtest::Notify n = co_await other.next();
            CHECK(n.seq == 1);
            CHECK(n.properties.variables().at("Volume") == "9");
            co_await device.stop();
            co_await flood_target.server().stop();
            co_await other.server().stop();
        }(loop));
    }

    TEST_CASE("a CALLBACK that hangs does not delay another subscriber's events") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            gena::PublisherOptions options;
            options.notify_timeout = 60s;  // the hanging NOTIFY stays in flight all along
            uvtest::TestDevice device(l, options);
            peers::SilentPeer hang(l, SocketAddress::ipv4_loopback(0));
            pubtest::Receiver good(l);
            CHECK(co_await device.subscribe_from(hang.url()) == 200);
            CHECK(co_await device.subscribe_from(good.url(), "127.0.0.2") == 200);
            CHECK((co_await good.next()).seq == 0);
            for (int i = 1; i <= 5; ++i) {
                device.set(std::to_string(i));
                pubtest::Notify n = co_await good.next();
                CHECK(n.seq == static_cast<std::uint32_t>(i));
                CHECK(n.properties.variables().at("Volume") == std::to_string(i));
            }
            // Meanwhile the hanging subscriber's initial NOTIFY is still in flight: nothing
            // delivered, nothing failed yet, the changes wait (coalesced) in its queue.
            std::vector<gena::SubscriberInfo> subs = device.publisher().subscribers();
            REQUIRE(subs.size() == 2);
            for (const auto& s : subs) {
                if (s.callbacks.front() != hang.url()) continue;
                CHECK(s.delivered == 0);
                CHECK(s.failed == 0);
                CHECK(s.queued >= 1);
            }
            CHECK(hang.connections() == 1);
            co_await device.stop();
            co_await hang.close();
            co_await good.server().stop();
        }(loop));
    }

    TEST_CASE(
        "a CALLBACK that hangs or never accepts times out, and after repeated failures "
        "the subscriber is dropped while others keep receiving") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            gena::PublisherOptions options;
            options.notify_timeout = 200ms;
            options.notify_connect_timeout = 200ms;
            options.max_consecutive_failures = 3;
            // Both bad callbacks are on 127.0.0.1: its back-off after timeouts, scaled like
            // the timeouts (1 s for 30 s by default), so that they fail 3 times quickly.
            options.host_backoff = 20ms;
            uvtest::TestDevice device(l, options);
            peers::SilentPeer hang(l, SocketAddress::ipv4_loopback(0));
            // Listening, never accepting: the kernel completes the handshake, nobody reads.
            TcpListener deaf = TcpListener::bind(l, SocketAddress::ipv4_loopback(0));
            std::string deaf_url = "http://" + deaf.local_address().to_string() + "/cb";
            pubtest::Receiver good(l);
            CHECK(co_await device.subscribe_from(hang.url()) == 200);
            CHECK(co_await device.subscribe_from(deaf_url) == 200);
            CHECK(co_await device.subscribe_from(good.url(), "127.0.0.2") == 200);
            CHECK((co_await good.next()).seq == 0);
            std::uint32_t seq = 0;
            // Keep changing until both bad subscribers were dropped (bounded: 3 failures of
            // 200 ms each; the loop gives up after 100 changes).
            for (int i = 1; i <= 100 && device.publisher().subscriber_count() > 1; ++i) {
                device.set(std::to_string(i));
                pubtest::Notify n = co_await good.next();
                CHECK(n.seq == ++seq);
                co_await sleep_for(l, 50ms);
            }
            CHECK(device.publisher().subscriber_count() == 1);
            CHECK(device.publisher().stats().subscribers_dropped == 2);
            CHECK(device.publisher().stats().callback_failures >= 6);
            // The good one never failed and still gets the next change.
            device.set("last");
            CHECK((co_await good.next()).properties.variables().at("Volume") == "last");
            co_await with_timeout(l, device.publisher().idle(), 10s);
            auto info = device.publisher().subscribers().front();
            CHECK(info.failed == 0);
            CHECK(info.delivered == seq + 2);
            co_await device.stop();
            deaf.close();
            co_await hang.close();
            co_await good.server().stop();
        }(loop));
    }
}
