// Against a real device that nobody here wrote: gmediarender (libupnp), started by
// scripts/test-gmediarender.sh in a private network namespace. The script passes the
// interface to search on, the device's UDN and its description URL in the environment.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "support.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/channel.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/ssdp/discovery.hpp"
#include "uvgena/subscriber/subscribe_device.hpp"

using namespace uvgena;
using namespace uvgena::ssdp;
using namespace std::chrono_literals;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    REQUIRE_MESSAGE(v != nullptr, name << " is not set: run scripts/test-gmediarender.sh");
    return v;
}

DiscoverOptions search_on_device_link(std::string target) {
    DiscoverOptions o;
    o.search_target = std::move(target);
    o.interface = env("UVGENA_DEVICE_IF");
    o.timeout = 2500ms;
    o.mx = 1;
    return o;
}

}  // namespace

TEST_SUITE("ssdp.device") {
    TEST_CASE("gmediarender is discovered, described, subscribed to, and sends its first events") {
        uvtest::TestLoop loop(30s);
        run(loop, [](uv_loop_t* l) -> Task<void> {
            const std::string udn = env("UVGENA_DEVICE_UDN");

            // Discover: the renderer answers a search for its device type.
            auto found = co_await discover(
                l, search_on_device_link("urn:schemas-upnp-org:device:MediaRenderer:1"));
            auto it = std::find_if(found.begin(), found.end(),
                                   [&](const DiscoveredDevice& d) { return d.udn == udn; });
            REQUIRE(it != found.end());
            CHECK(it->location == env("UVGENA_DEVICE_LOCATION"));
            CHECK(it->server.find("UPnP/1") != std::string::npos);
            CHECK(it->targets.front() == "urn:schemas-upnp-org:device:MediaRenderer:1");

            // Describe.
            DeviceDescription desc = co_await fetch_description(l, it->location);
            CHECK(desc.root.friendly_name == "uvgena device test");
            CHECK(desc.root.udn == udn);
            const ServiceInfo* rc = desc.service("RenderingControl");
            REQUIRE(rc != nullptr);
            CHECK(rc->event_sub_url.rfind("http://10.204.0.1:", 0) == 0);
            REQUIRE(desc.service("urn:schemas-upnp-org:service:AVTransport:1") != nullptr);

            // Subscribe to the service directly: the callback address is the interface that
            // routes to the device (our end of the veth pair).
            gena::Subscription sub = co_await uvgena::subscribe(
                l, *rc, {.requested_timeout = std::chrono::seconds(300)});
            CHECK(sub.sid().rfind("uuid:", 0) == 0);
            CHECK(sub.service_url() == rc->event_sub_url);
            CHECK(sub.callback_url().rfind("http://10.204.0.2:", 0) == 0);

            // The device sends the initial event (SEQ 0): RenderingControl's LastChange.
            auto first = co_await with_timeout(
                l,
                [](gena::Subscription& s) -> Task<std::optional<gena::Event>> {
                    co_return co_await s.events().next();
                }(sub),
                10s);
            REQUIRE(first);
            CHECK(first->sid == sub.sid());
            CHECK(first->seq == 0u);
            CHECK(first->variables().contains("LastChange"));
            co_await sub.unsubscribe();
            CHECK_FALSE(sub.is_subscribed());

            // The same through "<location>#<service>", as `uvgena subscribe` takes it.
            gena::Subscription avt = co_await ssdp::subscribe_target(
                l, it->location + "#AVTransport", {.requested_timeout = std::chrono::seconds(300)});
            CHECK(avt.service_url() == desc.service("AVTransport")->event_sub_url);
            auto avt_first = co_await with_timeout(
                l,
                [](gena::Subscription& s) -> Task<std::optional<gena::Event>> {
                    co_return co_await s.events().next();
                }(avt),
                10s);
            REQUIRE(avt_first);
            CHECK(avt_first->seq == 0u);
            co_await avt.unsubscribe();
        }(loop));
    }

    TEST_CASE("a search for everything lists the renderer's root, type and services") {
        uvtest::TestLoop loop(30s);
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Search search = Search::start(l, search_on_device_link("ssdp:all"));
            while (co_await search.next()) {
            }
            const std::string udn = env("UVGENA_DEVICE_UDN");
            auto it = std::find_if(search.devices().begin(), search.devices().end(),
                                   [&](const DiscoveredDevice& d) { return d.udn == udn; });
            REQUIRE(it != search.devices().end());
            auto has = [&](std::string_view t) {
                return std::find(it->targets.begin(), it->targets.end(), t) != it->targets.end();
            };
            CHECK(has("upnp:rootdevice"));
            CHECK(has(udn));
            CHECK(has("urn:schemas-upnp-org:service:RenderingControl:1"));
            CHECK(has("urn:schemas-upnp-org:service:AVTransport:1"));
            CHECK(has("urn:schemas-upnp-org:service:ConnectionManager:1"));
            CHECK(search.malformed() == 0);
        }(loop));
    }
}
