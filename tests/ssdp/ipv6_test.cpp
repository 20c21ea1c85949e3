// SSDP and multicast eventing over IPv6, over a real link: scripts/in-netns.sh --veth6 makes
// a private namespace with a veth pair uvg6a (fd75:7667::1) <-> uvg6b (fd75:7667::2), IPv6
// only (Linux does not loop IPv6 multicast over lo). The device side uses uvg6a, the control
// point side uvg6b, so every multicast datagram crosses the link (unicast replies between
// two addresses of this one namespace take the local route).
#include <doctest/doctest.h>

#include <cstdlib>
#include <sstream>
#include <string>

#include "support.hpp"
#include "support/peers.hpp"
#include "support/test_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/ssdp/advertiser.hpp"
#include "uvgena/ssdp/discovery.hpp"
#include "uvgena/ssdp/multicast_events.hpp"
#include "uvgena/subscriber/device_follower.hpp"
#include "uvgena/subscriber/listener.hpp"

using namespace uvgena;
using namespace uvgena::ssdp;
using namespace std::chrono_literals;

namespace {

const std::string kUdn = "uuid:66666666-7777-8888-9999-000000000006";
const std::string kDeviceIp = "fd75:7667::1";

struct Link {
    std::string device_side;   // uvg6a
    std::string control_side;  // uvg6b
};

Link veth() {
    const char* names = std::getenv("UVGENA_VETH6");
    REQUIRE_MESSAGE(names != nullptr, "UVGENA_VETH6 is not set: run through in-netns.sh --veth6");
    std::istringstream in(names);
    Link link;
    in >> link.device_side >> link.control_side;
    REQUIRE(!link.control_side.empty());
    return link;
}

// The test device's description over HTTP on every IPv6 address.
std::unique_ptr<http::Server> description_server_v6(uv_loop_t* loop) {
    auto server = std::make_unique<http::Server>(
        loop,
        [xml = ssdptest::description_xml(kUdn, "Six")](
            const http::Request& req, const http::RequestContext&) -> Task<http::Response> {
            http::Response r;
            if (req.target == "/desc.xml") {
                r.headers.add("Content-Type", "text/xml");
                r.body = xml;
            } else {
                r.status = 404;
            }
            co_return r;
        },
        http::ServerOptions{.address = SocketAddress::ipv6_any(0)});
    server->listen();
    return server;
}

std::string property_set(int value) {
    return R"(<?xml version="1.0"?><e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">)"
           "<e:property><Level>" +
           std::to_string(value) + "</Level></e:property></e:propertyset>";
}

// next() as a task, for with_timeout.
template <typename Listener>
auto next_of(Listener& listener) -> Task<decltype(listener.next().await_resume())> {
    co_return co_await listener.next();
}

}  // namespace

TEST_SUITE("ssdp.ipv6") {
    TEST_CASE("discover over [FF02::C] finds an IPv6 advertiser with a bracketed LOCATION") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l, Link veth_pair) -> Task<void> {
            auto http = description_server_v6(l);
            AdvertiserOptions ao = ssdptest::advertiser_options(kUdn, "Six", http->port());
            ao.interface = veth_pair.device_side;
            ao.ipv4 = false;
            ao.ipv6 = true;
            Advertiser adv = Advertiser::start(l, ao);

            DiscoverOptions so = ssdptest::quick_search("upnp:rootdevice");
            so.interface = veth_pair.control_side;
            so.ipv4 = false;
            so.ipv6 = true;
            Search search = Search::start(l, so);
            // One search endpoint per interface, from its unique-local address.
            REQUIRE(search.interfaces().size() == 1);
            CHECK(search.interfaces()[0].address.ip() == "fd75:7667::2");
            while (co_await search.next()) {
            }
            REQUIRE(search.devices().size() == 1);
            const DiscoveredDevice& d = search.devices()[0];
            std::string base = "http://[" + kDeviceIp + "]:" + std::to_string(http->port());
            CHECK(d.udn == kUdn);
            CHECK(d.location == base + "/desc.xml");
            CHECK(d.responder.is_ipv6());
            CHECK(d.interface == veth_pair.control_side);
            CHECK(d.targets == std::vector<std::string>{"upnp:rootdevice"});

            // The LOCATION is usable as it is: the description is read over IPv6.
            DeviceDescription desc = co_await fetch_description(l, d.location);
            REQUIRE(desc.service("RenderingControl") != nullptr);
            CHECK(desc.service("RenderingControl")->event_sub_url == base + "/rc/event");
            co_await adv.stop();
            co_await http->stop(0ms);
        }(loop, veth()));
    }

    TEST_CASE("an advertisement listener on IPv6 sees the device's alive and byebye") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l, Link veth_pair) -> Task<void> {
            AdvertisementListener listener = AdvertisementListener::start(
                l, {.interface = veth_pair.control_side, .ipv4 = false, .ipv6 = true});
            AdvertiserOptions ao = ssdptest::advertiser_options(kUdn, "Six", 8080);
            ao.device.devices.clear();  // one UDN only
            ao.interface = veth_pair.device_side;
            // Both families asked for, on a link that has only IPv6: IPv6 alone is used.
            ao.ipv6 = true;
            Advertiser adv = Advertiser::start(l, ao);
            std::optional<DeviceChange> c = co_await with_timeout(l, next_of(listener), 10s);
            REQUIRE(c);
            CHECK(c->event == DeviceEvent::appeared);
            CHECK(c->udn == kUdn);
            CHECK(c->location == "http://[" + kDeviceIp + "]:8080/desc.xml");
            CHECK(c->from.ip() == kDeviceIp);
            co_await adv.stop();
            c = co_await with_timeout(l, next_of(listener), 10s);
            REQUIRE(c);
            CHECK(c->event == DeviceEvent::left);
            CHECK(c->udn == kUdn);
            listener.close();
        }(loop, veth()));
    }

    TEST_CASE(
        "a DeviceFollower on IPv6 resubscribes an IPv6 device that says byebye, restarts and "
        "says alive, at once (its grant is 300 s)") {
        uvtest::TestLoop loop(30s);
        run(loop, [](uv_loop_t* l, Link veth_pair) -> Task<void> {
            gena::PublisherOptions po;
            po.policy.min_timeout = 300s;
            po.policy.max_timeout = 300s;
            uvtest::TestDevice device(l, po, SocketAddress::parse(kDeviceIp, 0), "Volume", "0");
            gena::ListenerOptions lo;
            lo.listen_host = "fd75:7667::2";
            lo.port = 0;
            gena::EventListener listener(l, lo);
            AdvertiserOptions ao =
                ssdptest::advertiser_options(kUdn, "Six", device.address().port());
            ao.device.devices.clear();
            ao.interface = veth_pair.device_side;
            ao.ipv4 = false;
            ao.ipv6 = true;
            std::optional<Advertiser> adv;
            adv.emplace(Advertiser::start(l, ao));
            DeviceFollower follower(
                l, {.interface = veth_pair.control_side, .ipv4 = false, .ipv6 = true});
            gena::SubscribeOptions so;
            so.listener = &listener;
            so.requested_timeout = 300s;
            so.auto_renew = true;
            so.auto_resubscribe = true;
            so.backoff.initial = 100ms;
            gena::Subscription sub = co_await gena::subscribe(l, device.url(), so);
            CHECK(sub.timeout().seconds == 300s);
            std::string first_sid = sub.sid();
            follower.follow(sub, kUdn);
            co_await sleep_for(l, 300ms);
            co_await adv->stop();  // byebye over [FF02::C]
            adv.reset();
            co_await device.restart("back");
            auto back = Clock::now();
            adv.emplace(Advertiser::start(l, ao));
            CHECK(co_await peers::eventually(
                l, [&] { return sub.stats().resubscriptions == 1 && sub.is_subscribed(); }, 5s));
            CHECK(Clock::now() - back < 3s);
            CHECK(sub.sid() != first_sid);
            CHECK(follower.resubscriptions() == 1);
            co_await sub.unsubscribe();
            co_await follower.close();
            adv->close();
            co_await listener.stop();
            co_await device.stop();
        }(loop, veth()));
    }

    TEST_CASE("an advertiser over IPv4 only on an IPv6-only link fails naming the interface") {
        Link link = veth();
        uvtest::TestLoop loop;
        AdvertiserOptions ao = ssdptest::advertiser_options(kUdn, "Six", 8080);
        ao.interface = link.device_side;
        bool failed = false;
        try {
            (void)Advertiser::start(loop, ao);
        } catch (const Error& e) {
            failed = true;
            CHECK(std::string(e.what()).find(link.device_side) != std::string::npos);
        }
        CHECK(failed);
    }

    TEST_CASE("multicast events over [FF02::130] reach a listener across the link") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l, Link veth_pair) -> Task<void> {
            MulticastEventListenerOptions lo;
            lo.interface = veth_pair.control_side;
            lo.ipv4 = false;
            lo.ipv6 = true;
            MulticastEventListener listener = MulticastEventListener::start(l, lo);
            MulticastEventSenderOptions so;
            so.usn = kUdn + "::urn:schemas-upnp-org:service:Level:1";
            so.service_id = "urn:upnp-org:serviceId:Level";
            so.interface = veth_pair.device_side;
            so.ipv4 = false;
            so.ipv6 = true;
            MulticastEventSender sender = MulticastEventSender::create(l, so);
            for (int i = 0; i < 3; ++i) co_await sender.send(property_set(i));
            for (std::uint32_t i = 0; i < 3; ++i) {
                auto e = co_await with_timeout(l, next_of(listener), 10s);
                REQUIRE(e);
                CHECK(e->event.seq == i);
                CHECK(e->event.usn == so.usn);
                CHECK(e->event.host == "[FF02::130]:7900");
                CHECK(e->event.body == property_set(static_cast<int>(i)));
                CHECK(e->from.ip() == kDeviceIp);
            }
            // One address per interface: no event was sent twice.
            CHECK(listener.duplicates() == 0);
            listener.close();
            sender.close();
        }(loop, veth()));
    }
}
