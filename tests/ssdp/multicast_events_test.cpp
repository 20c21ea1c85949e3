// Multicast eventing over real sockets, inside a private network namespace.
#include "uvgena/ssdp/multicast_events.hpp"

#include <doctest/doctest.h>

#include <string>

#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/net/udp.hpp"
#include "uvgena/publisher/publisher.hpp"

using namespace uvgena;
using namespace uvgena::ssdp;
using namespace std::chrono_literals;

namespace {

const std::string kUsn = "uuid:mc-device::urn:schemas-upnp-org:service:Thermo:1";
const std::string kSvc = "urn:upnp-org:serviceId:Thermo";

std::string property_set(int value) {
    return R"(<?xml version="1.0"?><e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">)"
           "<e:property><Temperature>" +
           std::to_string(value) + "</Temperature></e:property></e:propertyset>";
}

MulticastEventSenderOptions sender_options(std::uint32_t boot = 1) {
    MulticastEventSenderOptions o;
    o.usn = kUsn;
    o.service_id = kSvc;
    o.boot_id = boot;
    return o;
}

// Sends hand-made events (for replays and stale boots the real sender never produces).
Task<void> send_raw(UdpSocket& s, MulticastEvent e) {
    co_await s.send_to(build_multicast_event(e),
                       SocketAddress::parse(kEventMulticastV4, kEventPort));
}

}  // namespace

TEST_SUITE("ssdp.multicast_events") {
    TEST_CASE("a listener receives the sender's events in order, with SEQ counting up") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            MulticastEventListener listener = MulticastEventListener::start(l);
            MulticastEventSender sender = MulticastEventSender::create(l, sender_options());
            CHECK(sender.next_seq() == 0);
            for (int i = 0; i < 3; ++i)
                co_await sender.send(property_set(20 + i), EventLevel::info);
            for (std::uint32_t i = 0; i < 3; ++i) {
                auto e = co_await listener.next();
                REQUIRE(e);
                CHECK(e->event.seq == i);
                CHECK(e->event.usn == kUsn);
                CHECK(e->event.service_id == kSvc);
                CHECK(e->event.level == EventLevel::info);
                CHECK(e->event.boot_id == 1u);
                CHECK(e->event.body == property_set(20 + static_cast<int>(i)));
                CHECK(e->from.ip() == "127.0.0.1");
                CHECK_FALSE(e->rebooted);
            }
            CHECK(sender.next_seq() == 3);
            listener.close();
            CHECK_FALSE(co_await listener.next());
        }(loop));
    }

    TEST_CASE("resends, backward SEQs and stale BOOTIDs are discarded and counted") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            MulticastEventListener listener = MulticastEventListener::start(l);
            UdpSocket s = UdpSocket::bind(l, SocketAddress::ipv4_loopback(0));
            s.set_multicast_interface("127.0.0.1");
            MulticastEvent e;
            e.usn = kUsn;
            e.service_id = kSvc;
            e.boot_id = 5;
            e.body = property_set(1);
            e.seq = 10;
            co_await send_raw(s, e);  // accepted
            co_await send_raw(s, e);  // duplicate
            e.seq = 9;
            co_await send_raw(s, e);  // old SEQ
            e.boot_id = 4;
            e.seq = 11;
            co_await send_raw(s, e);  // stale boot
            co_await s.send_to("NOTIFY * HTTP/1.0\r\nNT: upnp:event\r\n\r\n",
                               SocketAddress::parse(kEventMulticastV4, kEventPort));  // malformed
            e.boot_id = 6;
            e.seq = 0;
            co_await send_raw(s, e);  // the device rebooted
            auto first = co_await listener.next();
            REQUIRE(first);
            CHECK(first->event.seq == 10u);
            auto second = co_await listener.next();
            REQUIRE(second);
            CHECK(second->event.boot_id == 6u);
            CHECK(second->rebooted);
            CHECK(listener.duplicates() == 1);
            CHECK(listener.stale() == 2);
            CHECK(listener.malformed() == 1);
            CHECK(listener.dropped() == 0);
        }(loop));
    }

    TEST_CASE("a reader too slow loses the oldest events, and the loss is counted") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            MulticastEventListenerOptions o;
            o.max_queued = 2;
            MulticastEventListener listener = MulticastEventListener::start(l, o);
            MulticastEventSender sender = MulticastEventSender::create(l, sender_options());
            for (int i = 0; i < 5; ++i) co_await sender.send(property_set(i));
            while (listener.dropped() < 3) co_await sleep_for(l, 1ms);
            CHECK((co_await listener.next())->event.seq == 3u);
            CHECK((co_await listener.next())->event.seq == 4u);
        }(loop));
    }

    TEST_CASE("a new BOOTID restarts SEQ and the listener flags the reboot") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            MulticastEventListener listener = MulticastEventListener::start(l);
            MulticastEventSender sender = MulticastEventSender::create(l, sender_options(1));
            co_await sender.send(property_set(1));
            co_await sender.send(property_set(2));
            sender.set_boot_id(2);
            CHECK(sender.next_seq() == 0);
            co_await sender.send(property_set(3));
            CHECK((co_await listener.next())->event.seq == 0u);
            CHECK((co_await listener.next())->event.seq == 1u);
            auto after = co_await listener.next();
            REQUIRE(after);
            CHECK(after->rebooted);
            CHECK(after->event.seq == 0u);
            CHECK(after->event.boot_id == 2u);
        }(loop));
    }

    TEST_CASE("a publisher multicasts the changes of the variables marked multicast") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            MulticastEventListener listener = MulticastEventListener::start(l);
            MulticastEventSender sender = MulticastEventSender::create(l, sender_options());
            gena::Publisher publisher(l);
            gena::ServiceConfig config;
            config.event_path = "/thermo/event";
            config.variables.emplace_back("Temperature", "20");
            config.variables.back().multicast = true;
            config.variables.emplace_back("Setpoint", "18");
            config.multicast_sink = sender.sink(EventLevel::info);
            gena::Service& service = publisher.add_service(std::move(config));
            service.set("Setpoint", "19");  // GENA only
            service.set("Temperature", "21");
            service.set_many({{"Temperature", "22"}, {"Setpoint", "20"}});
            auto first = co_await listener.next();
            REQUIRE(first);
            CHECK(first->event.seq == 0u);
            CHECK(first->event.level == EventLevel::info);
            CHECK(first->event.body.find("<Temperature>21</Temperature>") != std::string::npos);
            CHECK(first->event.body.find("Setpoint") == std::string::npos);
            auto second = co_await listener.next();
            REQUIRE(second);
            CHECK(second->event.seq == 1u);
            CHECK(second->event.body.find("<Temperature>22</Temperature>") != std::string::npos);
            CHECK(second->event.body.find("Setpoint") == std::string::npos);
            co_await publisher.stop(0ms);
            // The sink outliving its sender does nothing.
            auto orphan = sender.sink();
            { MulticastEventSender gone = std::move(sender); }
            orphan("<x/>");
        }(loop));
    }

    TEST_CASE("a sender needs a uuid USN and a service id") {
        uvtest::TestLoop loop;
        MulticastEventSenderOptions o = sender_options();
        o.usn = "device";
        CHECK_THROWS_AS((void)MulticastEventSender::create(loop, o), Error);
        o = sender_options();
        o.service_id.clear();
        CHECK_THROWS_AS((void)MulticastEventSender::create(loop, o), Error);
    }
}
