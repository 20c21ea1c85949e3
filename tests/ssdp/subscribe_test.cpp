// From a description to an event URL: "<location>#<service>" and ServiceInfo.
#include "uvgena/subscriber/subscribe_device.hpp"

#include <doctest/doctest.h>

#include <string>

#include "support.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"

using namespace uvgena;
using namespace uvgena::ssdp;
using namespace std::chrono_literals;

namespace {

Task<std::string> failure_of(Task<std::string> task) {
    try {
        (void)co_await std::move(task);
    } catch (const Error& e) {
        co_return e.what();
    }
    co_return "(no error)";
}

}  // namespace

TEST_SUITE("ssdp.subscribe") {
    TEST_CASE("location#service resolves to the service's absolute event URL") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            auto http =
                ssdptest::description_server(l, ssdptest::description_xml("uuid:sub-test", "Sub"));
            std::string base = "http://127.0.0.1:" + std::to_string(http->port());
            std::string loc = base + "/desc.xml";
            CHECK(co_await resolve_event_url(l, loc + "#RenderingControl") == base + "/rc/event");
            CHECK(co_await resolve_event_url(l, loc + "#urn:upnp-org:serviceId:AVTransport") ==
                  base + "/avt/event");
            // An embedded device's service, found by its type at an older version.
            CHECK(co_await resolve_event_url(
                      l, loc + "#urn:schemas-upnp-org:service:ConnectionManager:1") ==
                  base + "/cm/event");
            // A plain event URL is taken as it is, without fetching anything.
            CHECK(co_await resolve_event_url(l, "http://192.0.2.1/evt") == "http://192.0.2.1/evt");

            std::string unknown = co_await failure_of(resolve_event_url(l, loc + "#Volume"));
            CHECK(unknown.find("no service 'Volume'") != std::string::npos);
            CHECK(unknown.find("RenderingControl, AVTransport, ConnectionManager") !=
                  std::string::npos);
            std::string empty = co_await failure_of(resolve_event_url(l, loc + "#"));
            CHECK(empty.find("no service name") != std::string::npos);
            std::string missing =
                co_await failure_of(resolve_event_url(l, base + "/nothing.xml#RenderingControl"));
            CHECK(missing.find("404") != std::string::npos);
            co_await http->stop(0ms);
        }(loop));
    }

    TEST_CASE("subscribing to a service without an eventSubURL fails before any request") {
        uvtest::TestLoop loop;
        ServiceInfo silent;
        silent.service_type = "urn:schemas-upnp-org:service:Silent:1";
        bool failed = false;
        try {
            (void)run(loop, uvgena::subscribe(loop.get(), silent));
        } catch (const Error& e) {
            failed = true;
            CHECK(e.code() == make_error_code(uvgena::errc::invalid_argument));
            CHECK(std::string(e.what()).find("Silent:1") != std::string::npos);
        }
        CHECK(failed);
    }
}
