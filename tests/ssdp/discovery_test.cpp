// SSDP over real sockets: search, advertiser, advertisement listener, descriptions. Runs
// inside a private network namespace (scripts/in-netns.sh): multicast never leaves it.
#include "uvgena/ssdp/discovery.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/ssdp/advertiser.hpp"

using namespace uvgena;
using namespace uvgena::ssdp;
using namespace std::chrono_literals;

namespace {

const std::string kUdn = "uuid:11111111-2222-3333-4444-555555555555";
const std::string kUdn2 = "uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

bool contains(const std::vector<std::string>& v, std::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// A fake device on port 1900: answers every M-SEARCH with `replies`, in order.
Task<void> fake_device(uv_loop_t* loop, std::vector<std::string> replies) {
    UdpSocket s = UdpSocket::bind(loop, SocketAddress::ipv4_any(kPort), {.reuse_address = true});
    s.join_group(kMulticastV4, "127.0.0.1");
    for (;;) {
        UdpPacket p = co_await s.receive();
        auto d = parse_datagram(p.data);
        if (!d || d->kind != Kind::search) continue;
        for (const std::string& r : replies) co_await s.send_to(r, p.sender);
    }
}

std::string response_for(const std::string& udn, const std::string& st) {
    Advertisement ad;
    ad.location = "http://127.0.0.1:1/x.xml";
    ad.usn = udn + "::" + st;
    ad.target = st;
    ad.server = "Fake/1 UPnP/1.1 fake/1";
    ad.boot_id = 7;
    return build_response(ad, "Sun, 22 Nov 2026 18:00:00 GMT");
}

}  // namespace

TEST_SUITE("ssdp.discovery") {
    TEST_CASE("discover finds an advertised device with its location, server and targets") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            auto http = ssdptest::description_server(l, ssdptest::description_xml(kUdn, "Kitchen"));
            Advertiser adv =
                Advertiser::start(l, ssdptest::advertiser_options(kUdn, "Kitchen", http->port()));
            std::vector<DiscoveredDevice> found = co_await discover(l, ssdptest::quick_search());
            REQUIRE(found.size() == 2);  // the root device and its embedded device
            const DiscoveredDevice& d = found[0].udn == kUdn ? found[0] : found[1];
            CHECK(d.udn == kUdn);
            CHECK(d.location == "http://127.0.0.1:" + std::to_string(http->port()) + "/desc.xml");
            CHECK(d.server == default_product_token());
            CHECK(d.responder.ip() == "127.0.0.1");
            CHECK(d.responder.port() == kPort);
            CHECK(d.boot_id == 1u);
            CHECK(d.config_id == 1u);
            CHECK(d.interface == "lo");
            CHECK(contains(d.targets, "upnp:rootdevice"));
            CHECK(contains(d.targets, kUdn));
            CHECK(contains(d.targets, "urn:schemas-upnp-org:device:MediaRenderer:1"));
            CHECK(contains(d.targets, "urn:schemas-upnp-org:service:RenderingControl:1"));
            CHECK(contains(d.targets, "urn:schemas-upnp-org:service:AVTransport:1"));
            CHECK(adv.searches_answered() >= 1);
            co_await adv.stop();
            co_await http->stop(0ms);
        }(loop));
    }

    TEST_CASE("a search for a service type finds only the devices that have it") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            AdvertiserOptions o1 = ssdptest::advertiser_options(kUdn, "One", 1);
            AdvertiserOptions o2 = ssdptest::advertiser_options(kUdn2, "Two", 2);
            // The second device has no RenderingControl.
            o2.device.services.erase(o2.device.services.begin());
            Advertiser a1 = Advertiser::start(l, o1);
            Advertiser a2 = Advertiser::start(l, o2);

            auto rc = co_await discover(
                l, ssdptest::quick_search("urn:schemas-upnp-org:service:RenderingControl:1"));
            REQUIRE(rc.size() == 1);
            CHECK(rc[0].udn == kUdn);
            CHECK(rc[0].targets ==
                  std::vector<std::string>{"urn:schemas-upnp-org:service:RenderingControl:1"});
            CHECK(rc[0].usn == kUdn + "::urn:schemas-upnp-org:service:RenderingControl:1");

            auto roots = co_await discover(l, ssdptest::quick_search("upnp:rootdevice"));
            CHECK(roots.size() == 2);

            auto by_uuid = co_await discover(l, ssdptest::quick_search(kUdn2));
            REQUIRE(by_uuid.size() == 1);
            CHECK(by_uuid[0].udn == kUdn2);

            // A search for an older version of a type the device has in version 2 is answered
            // with the version asked for.
            auto cm1 = co_await discover(
                l, ssdptest::quick_search("urn:schemas-upnp-org:service:ConnectionManager:1"));
            REQUIRE(cm1.size() == 2);
            CHECK(cm1[0].targets[0] == "urn:schemas-upnp-org:service:ConnectionManager:1");
            auto none = co_await discover(
                l, ssdptest::quick_search("urn:schemas-upnp-org:service:ConnectionManager:3"));
            CHECK(none.empty());
            a1.close();
            a2.close();
        }(loop));
    }

    TEST_CASE("the stream form yields a device as soon as it answers, and stop ends it") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Advertiser adv = Advertiser::start(l, ssdptest::advertiser_options(kUdn, "S", 1));
            DiscoverOptions o = ssdptest::quick_search("upnp:rootdevice");
            o.timeout = 10s;  // far longer than the test: stop() must end it
            Search search = Search::start(l, o);
            auto started = Clock::now();
            std::optional<DiscoveredDevice> first = co_await search.next();
            REQUIRE(first);
            CHECK(first->udn == kUdn);
            CHECK(Clock::now() - started < 5s);
            search.stop();
            CHECK_FALSE(co_await search.next());
            CHECK(search.devices().size() == 1);
            CHECK(search.interfaces().size() == 1);
            adv.close();
        }(loop));
    }

    TEST_CASE("malformed responses are counted and skipped, and valid ones still count") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Scope scope(l);
            std::string no_usn =
                "HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nLOCATION: http://x/\r\n\r\n";
            std::string garbage(3000, '\x01');
            std::string too_big = "HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
            scope.spawn(fake_device(l, {garbage, no_usn, "NOT HTTP AT ALL", too_big,
                                        response_for(kUdn, "upnp:rootdevice"), ""}));
            co_await sleep_for(l, 5ms);
            Search search = Search::start(l, ssdptest::quick_search());
            while (co_await search.next()) {
            }
            REQUIRE(search.devices().size() == 1);
            CHECK(search.devices()[0].boot_id == 7u);
            CHECK(search.devices()[0].server == "Fake/1 UPnP/1.1 fake/1");
            // Five bad datagrams per M-SEARCH, two M-SEARCHes.
            CHECK(search.malformed() == 10);
            scope.request_stop();
        }(loop));
    }

    TEST_CASE("the number of devices collected is bounded") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Scope scope(l);
            std::vector<std::string> replies;
            for (int i = 0; i < 20; ++i) {
                replies.push_back(response_for("uuid:dev-" + std::to_string(i), "upnp:rootdevice"));
            }
            scope.spawn(fake_device(l, replies));
            co_await sleep_for(l, 5ms);
            DiscoverOptions o = ssdptest::quick_search();
            o.max_devices = 5;
            o.sends = 1;
            Search search = Search::start(l, o);
            while (co_await search.next()) {
            }
            CHECK(search.devices().size() == 5);
            CHECK(search.overflowed() == 15);
            scope.request_stop();
        }(loop));
    }

    TEST_CASE("searching on an unknown interface fails with a clear error") {
        uvtest::TestLoop loop;
        DiscoverOptions o = ssdptest::quick_search();
        o.interface = "nosuch0";
        bool failed = false;
        try {
            (void)Search::start(loop, o);
        } catch (const Error& e) {
            failed = true;
            CHECK(std::string(e.what()).find("nosuch0") != std::string::npos);
        }
        CHECK(failed);
        o.interface = "lo";
        Search s = Search::start(loop, o);
        CHECK(s.interfaces().at(0).name == "lo");
        s.stop();
    }

    TEST_CASE("a device description is fetched and parsed with URLs made absolute") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            auto http = ssdptest::description_server(l, ssdptest::description_xml(kUdn, "Den"));
            std::string base = "http://127.0.0.1:" + std::to_string(http->port());
            DeviceDescription desc = co_await fetch_description(l, base + "/desc.xml");
            CHECK(desc.root.friendly_name == "Den");
            CHECK(desc.root.udn == kUdn);
            const ServiceInfo* rc = desc.service("RenderingControl");
            REQUIRE(rc != nullptr);
            CHECK(rc->event_sub_url == base + "/rc/event");
            const ServiceInfo* avt = desc.service("urn:schemas-upnp-org:service:AVTransport:1");
            REQUIRE(avt != nullptr);
            CHECK(avt->event_sub_url == base + "/avt/event");
            REQUIRE(desc.root.devices.size() == 1);
            CHECK(desc.service("ConnectionManager")->event_sub_url == base + "/cm/event");
            co_await http->stop(0ms);
        }(loop));
    }

    TEST_CASE("fetching a missing, broken or unreachable description names the location") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            auto http = ssdptest::description_server(l, "unused");
            std::string base = "http://127.0.0.1:" + std::to_string(http->port());
            auto failure = [&](std::string location) -> Task<std::error_code> {
                try {
                    (void)co_await fetch_description(l, location, {.timeout = 2s});
                } catch (const Error& e) {
                    CHECK(std::string(e.what()).find(location) != std::string::npos);
                    co_return e.code();
                }
                FAIL("no error for " << location);
                co_return std::error_code{};
            };
            CHECK(co_await failure(base + "/missing.xml") == http::status_error(404));
            CHECK(co_await failure(base + "/broken.xml") == make_error_code(ssdp::errc::bad_xml));
            co_await http->stop(0ms);
            std::error_code refused = co_await failure(base + "/desc.xml");
            CHECK(refused == uv_error(UV_ECONNREFUSED));
            CHECK(co_await failure("not a url") == http::make_error_code(http::errc::bad_url));
        }(loop));
    }

    TEST_CASE("the listener reports a device appearing, rebooting and leaving") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            AdvertisementListener listener = AdvertisementListener::start(l);
            AdvertiserOptions o = ssdptest::advertiser_options(kUdn, "Bedroom", 4000);
            o.device.devices.clear();  // one UDN only
            Advertiser adv = Advertiser::start(l, o);
            std::optional<DeviceChange> c = co_await listener.next();
            REQUIRE(c);
            CHECK(c->event == DeviceEvent::appeared);
            CHECK(c->udn == kUdn);
            CHECK(c->location == "http://127.0.0.1:4000/desc.xml");
            CHECK(c->boot_id == 1u);
            CHECK(c->from.ip() == "127.0.0.1");
            // The device restarts: its next alive carries a higher BOOTID.
            adv.close();
            o.boot_id = 2;
            Advertiser again = Advertiser::start(l, o);
            c = co_await listener.next();
            REQUIRE(c);
            CHECK(c->event == DeviceEvent::rebooted);
            CHECK(c->boot_id == 2u);
            CHECK(c->previous_boot_id == 1u);
            co_await again.stop();
            c = co_await listener.next();
            REQUIRE(c);
            CHECK(c->event == DeviceEvent::left);
            CHECK(c->udn == kUdn);
            CHECK(listener.known_devices() == 0);
            listener.close();
            CHECK_FALSE(co_await listener.next());
        }(loop));
    }

    TEST_CASE("the listener skips malformed advertisements and expires silent devices") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            AdvertisementListenerOptions lo;
            lo.expiry_check = 20ms;
            AdvertisementListener listener = AdvertisementListener::start(l, lo);
            UdpSocket s = UdpSocket::bind(l, SocketAddress::ipv4_loopback(0));
            s.set_multicast_interface("127.0.0.1");
            SocketAddress group = SocketAddress::parse(kMulticastV4, kPort);
            co_await s.send_to("NOTIFY * HTTP/1.1\r\nNTS: ssdp:alive\r\n\r\n", group);
            co_await s.send_to(std::string(100, '\0'), group);
            Notify alive;
            alive.type = NotifyType::alive;
            alive.location = "http://127.0.0.1:9/d.xml";
            alive.usn = "uuid:short-lived::upnp:rootdevice";
            alive.target = "upnp:rootdevice";
            alive.max_age = 1s;
            co_await s.send_to(build_notify(alive), group);
            std::optional<DeviceChange> c = co_await listener.next();
            REQUIRE(c);
            CHECK(c->event == DeviceEvent::appeared);
            CHECK(c->udn == "uuid:short-lived");
            c = co_await listener.next();
            REQUIRE(c);
            CHECK(c->event == DeviceEvent::expired);
            CHECK(c->udn == "uuid:short-lived");
            CHECK(listener.malformed() == 2);
        }(loop));
    }

    TEST_CASE("the advertiser says byebye for every target when it stops") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            UdpSocket watcher =
                UdpSocket::bind(l, SocketAddress::ipv4_any(kPort), {.reuse_address = true});
            watcher.join_group(kMulticastV4, "127.0.0.1");
            AdvertiserOptions o = ssdptest::advertiser_options(kUdn, "Bye", 1);
            Advertiser adv = Advertiser::start(l, o);
            // 3 for the root, 2 per embedded device, 1 per service type of each device.
            const std::size_t n = adv.targets().size();
            CHECK(n == 3 + 2 + 3);
            std::vector<std::string> alive_nts, bye_usns;
            while (alive_nts.size() < n) {
                auto notify =
                    read_notify(parse_datagram((co_await watcher.receive()).data).value());
                REQUIRE(notify);
                CHECK(notify->type == NotifyType::alive);
                CHECK(notify->max_age == 1800s);
                alive_nts.push_back(notify->target);
            }
            CHECK(contains(alive_nts, "upnp:rootdevice"));
            CHECK(contains(alive_nts, kUdn + "-sub"));
            CHECK(contains(alive_nts, "urn:schemas-upnp-org:service:ConnectionManager:2"));
            co_await adv.stop();
            while (bye_usns.size() < n) {
                auto notify =
                    read_notify(parse_datagram((co_await watcher.receive()).data).value());
                REQUIRE(notify);
                CHECK(notify->type == NotifyType::byebye);
                bye_usns.push_back(notify->usn);
            }
            CHECK(contains(bye_usns, kUdn + "::upnp:rootdevice"));
            CHECK(contains(bye_usns, kUdn + "-sub::urn:schemas-upnp-org:device:Embedded:1"));
        }(loop));
    }

    TEST_CASE("an advertiser refuses a device without a uuid UDN or a location") {
        uvtest::TestLoop loop;
        AdvertiserOptions o = ssdptest::advertiser_options(kUdn, "Bad", 1);
        o.device.udn = "not-a-uuid";
        CHECK_THROWS_AS((void)Advertiser::start(loop, o), Error);
        o = ssdptest::advertiser_options(kUdn, "Bad", 1);
        o.location.clear();
        CHECK_THROWS_AS((void)Advertiser::start(loop, o), Error);
    }
}
