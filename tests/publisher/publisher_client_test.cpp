// The publisher against uvgena's own subscription client, over loopback.
#include "uvgena/publisher/publisher.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "demo_device.hpp"
#include "publisher/test_access.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace uvgena::gena;
using namespace std::chrono_literals;

using SeqAccess = uvgena::gena::detail::PublisherTestAccess;

namespace {

ListenerOptions loopback_listener() {
    ListenerOptions o;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    return o;
}

http::ServerOptions loopback_server() {
    http::ServerOptions o;
    o.address = SocketAddress::ipv4_loopback(0);
    return o;
}

ServiceConfig rendering_control() {
    ServiceConfig config;
    config.event_path = "/RenderingControl/event";
    config.variables = {{"Volume", "20"}, {"Mute", "0"}};
    return config;
}

std::string event_url(Publisher& publisher) {
    return "http://" + publisher.server()->local_address().to_string() + "/RenderingControl/event";
}

// The next event within a time limit, so that a missing event fails instead of hanging.
Task<Event> next_event(uv_loop_t* loop, Subscription& sub, std::chrono::milliseconds limit = 5s) {
    std::optional<Event> e = co_await with_timeout(
        loop,
        [](Subscription& s) -> Task<std::optional<Event>> {
            co_return co_await s.events().next();
        }(sub),
        limit);
    if (!e) throw Error(make_error_code(uvgena::errc::closed), "subscription ended");
    co_return std::move(*e);
}

SubscribeOptions options_for(EventListener& listener, std::chrono::seconds timeout = 300s) {
    SubscribeOptions o;
    o.requested_timeout = timeout;
    o.listener = &listener;
    return o;
}

}  // namespace

TEST_SUITE("gena.publisher.client") {
    TEST_CASE("the client gets the initial event, then every change in order") {
        uvtest::TestLoop loop;
        Publisher publisher(loop);
        Service& rc = publisher.add_service(rendering_control());
        publisher.listen(loopback_server());
        EventListener listener(loop, loopback_listener());
        auto test = [&]() -> Task<void> {
            Subscription sub =
                co_await subscribe(loop, event_url(publisher), options_for(listener));
            CHECK(sub.timeout() == Timeout{false, 300s});
            Event initial = co_await next_event(loop, sub);
            CHECK(initial.seq == 0);
            CHECK(initial.sid == sub.sid());
            CHECK(initial.variables().at("Volume") == "20");
            for (int v = 1; v <= 20; ++v) rc.set("Volume", std::to_string(v));
            for (std::uint32_t seq = 1; seq <= 20; ++seq) {
                Event e = co_await next_event(loop, sub);
                CHECK(e.seq == seq);
                CHECK(e.seq_status == SeqStatus::ok);
                CHECK(e.variables().at("Volume") == std::to_string(seq));
            }
            CHECK(sub.stats().events_missed == 0);
            co_await sub.unsubscribe();
            CHECK(publisher.subscriber_count() == 0);
            co_await listener.stop();
            co_await publisher.stop();
        };
        run(loop, test());
        CHECK(publisher.stats().unsubscribes == 1);
    }

    TEST_CASE("the client sees the SEQ wrap from 4294967295 to 1 as no loss") {
        uvtest::TestLoop loop;
        Publisher publisher(loop);
        Service& rc = publisher.add_service(rendering_control());
        publisher.listen(loopback_server());
        EventListener listener(loop, loopback_listener());
        auto test = [&]() -> Task<void> {
            Subscription sub =
                co_await subscribe(loop, event_url(publisher), options_for(listener));
            CHECK((co_await next_event(loop, sub)).seq == 0);
            co_await publisher.idle();
            // Jumps of at most 2^31 are gaps to the client (farther would be stale): reach
            // the wrap point in two of them.
            REQUIRE(SeqAccess::set_next_seq(publisher, sub.sid(), 2147483648u));
            rc.set("Volume", "1");
            CHECK((co_await next_event(loop, sub)).seq == 2147483648u);
            co_await publisher.idle();
            REQUIRE(SeqAccess::set_next_seq(publisher, sub.sid(), 4294967295u));
            rc.set("Volume", "2");
            rc.set("Volume", "3");
            Event before = co_await next_event(loop, sub);
            CHECK(before.seq == 4294967295u);
            CHECK(before.seq_status == SeqStatus::gap);
            std::uint64_t missed = sub.stats().events_missed;
            Event after = co_await next_event(loop, sub);
            CHECK(after.seq == 1);
            CHECK(after.seq_status == SeqStatus::ok);
            CHECK(after.variables().at("Volume") == "3");
            CHECK(sub.stats().events_missed == missed);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await publisher.stop();
        };
        run(loop, test());
    }

    TEST_CASE("renewal by the client extends the subscription on the publisher") {
        uvtest::TestLoop loop;
        Publisher publisher(loop);
        publisher.add_service(rendering_control());
        publisher.listen(loopback_server());
        EventListener listener(loop, loopback_listener());
        auto test = [&]() -> Task<void> {
            Subscription sub =
                co_await subscribe(loop, event_url(publisher), options_for(listener));
            co_await next_event(loop, sub);
            auto before = publisher.subscriber(sub.sid());
            REQUIRE(before);
            co_await sub.renew(900s);
            CHECK(sub.timeout() == Timeout{false, 900s});
            auto after = publisher.subscriber(sub.sid());
            REQUIRE(after);
            CHECK(after->timeout == 900s);
            CHECK(after->expires > before->expires);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await publisher.stop();
        };
        run(loop, test());
        CHECK(publisher.stats().renewals == 1);
    }

    TEST_CASE("an expired subscription is gone: the client's renewal gets 412") {
        uvtest::TestLoop loop;
        PublisherOptions options;
        options.policy.min_timeout = 1s;
        options.sweep_interval = 20ms;
        Publisher publisher(loop, options);
        publisher.add_service(rendering_control());
        publisher.listen(loopback_server());
        EventListener listener(loop, loopback_listener());
        auto test = [&]() -> Task<void> {
            Subscription sub =
                co_await subscribe(loop, event_url(publisher), options_for(listener, 1s));
            co_await next_event(loop, sub);
            while (publisher.subscriber_count() > 0) co_await sleep_for(loop, 20ms);
            // The client may notice the expiry itself first; either way the renewal fails.
            CHECK(publisher.subscriber_count() == 0);
            bool refused = false;
            try {
                co_await sub.renew();
            } catch (const Error&) {
                refused = true;
            }
            CHECK(refused);
            co_await listener.stop();
            co_await publisher.stop();
        };
        run(loop, test());
        CHECK(publisher.stats().expired == 1);
    }

    TEST_CASE("a client advertising a foreign CALLBACK host is refused (CallStranger)") {
        uvtest::TestLoop loop;
        Publisher publisher(loop);
        publisher.add_service(rendering_control());
        publisher.listen(loopback_server());
        ListenerOptions lo = loopback_listener();
        lo.advertise_host = "8.8.8.8";
        EventListener listener(loop, lo);
        auto test = [&]() -> Task<void> {
            bool refused = false;
            try {
                Subscription sub =
                    co_await subscribe(loop, event_url(publisher), options_for(listener));
            } catch (const Error& e) {
                refused = e.code() == make_error_code(gena::errc::precondition_failed);
            }
            CHECK(refused);
            co_await listener.stop();
            co_await publisher.stop();
        };
        run(loop, test());
        CHECK(publisher.stats().refused_callbacks == 1);
        CHECK(publisher.stats().notifies_sent == 0);
    }

    TEST_CASE("events dropped by a full queue show up as a SEQ gap at the client") {
        uvtest::TestLoop loop;
        PublisherOptions options;
        options.max_queued_events = 2;
        options.overflow = QueueOverflow::drop_oldest;
        Publisher publisher(loop, options);
        Service& rc = publisher.add_service(rendering_control());
        publisher.listen(loopback_server());
        EventListener listener(loop, loopback_listener());
        auto test = [&]() -> Task<void> {
            Subscription sub =
                co_await subscribe(loop, event_url(publisher), options_for(listener));
            co_await next_event(loop, sub);
            co_await publisher.idle();
            // Ten changes at once: the queue keeps two, the others are dropped.
            for (int v = 1; v <= 10; ++v) rc.set("Volume", std::to_string(v));
            co_await publisher.idle();
            std::uint32_t missed = 0;
            std::string last;
            while (last != "10") {
                Event e = co_await next_event(loop, sub);
                missed += e.missed;
                last = std::string(e.variables().at("Volume"));
            }
            CHECK(missed == 8);
            CHECK(sub.stats().events_missed == 8);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await publisher.stop();
        };
        run(loop, test());
        CHECK(publisher.stats().events_dropped == 8);
    }

    TEST_CASE("the demo device's LastChange events reach the client with DIDL-Lite metadata") {
        uvtest::TestLoop loop;
        DemoDeviceOptions o;
        o.interval = 0ms;
        DemoDevice device(loop, o);
        device.start();
        EventListener listener(loop, loopback_listener());
        auto test = [&]() -> Task<void> {
            Subscription avt =
                co_await subscribe(loop, device.av_transport_event_url(), options_for(listener));
            Subscription rc = co_await subscribe(loop, device.rendering_control_event_url(),
                                                 options_for(listener));
            Event avt0 = co_await next_event(loop, avt);
            CHECK(avt0.state("TransportState") == "STOPPED");
            Event rc0 = co_await next_event(loop, rc);
            CHECK(rc0.state("Volume") == "20");
            device.tick();
            Event avt1 = co_await next_event(loop, avt);
            CHECK(avt1.seq == 1);
            CHECK(avt1.state("TransportState") == "PLAYING");
            REQUIRE(avt1.didl("CurrentTrackMetaData").ok());
            CHECK(avt1.didl("CurrentTrackMetaData").value().objects.at(0).album ==
                  "Portrait in Jazz");
            Event rc1 = co_await next_event(loop, rc);
            CHECK(rc1.state("Volume") == std::to_string(device.volume()));
            co_await avt.unsubscribe();
            co_await rc.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        };
        run(loop, test());
    }
}
