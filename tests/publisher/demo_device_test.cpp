#include "demo_device.hpp"

#include <doctest/doctest.h>
#include <tinyxml2.h>

#include <string>
#include <vector>

#include "support/publisher_support.hpp"
#include "support/stop_teardown.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/ssdp/description.hpp"

using namespace uvgena;
using namespace uvgena::gena;
using namespace std::chrono_literals;
using pubtest::Notify;
using pubtest::Receiver;

namespace {

DemoDeviceOptions manual() {
    DemoDeviceOptions o;
    o.interval = 0ms;
    return o;
}

std::vector<std::string> one(std::string url) {
    return std::vector<std::string>{std::move(url)};
}

std::string soap(std::string_view service, std::string_view action, std::string_view args) {
    return "<?xml version=\"1.0\"?><s:Envelope "
           "xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
           "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:" +
           std::string(action) + " xmlns:u=\"urn:schemas-upnp-org:service:" + std::string(service) +
           ":1\"><InstanceID>0</InstanceID>" + std::string(args) + "</u:" + std::string(action) +
           "></s:Body></s:Envelope>";
}

Task<http::Response> post(uv_loop_t* loop, std::string url, std::string_view service,
                          std::string_view action, std::string_view args) {
    http::Headers h;
    h.add("Content-Type", "text/xml; charset=\"utf-8\"");
    h.add("SOAPACTION", "\"urn:schemas-upnp-org:service:" + std::string(service) + ":1#" +
                            std::string(action) + "\"");
    co_return co_await http::request(loop, "POST", url, h, soap(service, action, args));
}

}  // namespace

TEST_SUITE("gena.demo_device") {
    TEST_CASE("the description is a valid UPnP device description with both services") {
        uvtest::TestLoop loop;
        DemoDevice device(loop, manual());
        device.start();
        auto test = [&]() -> Task<void> {
            http::Response r = co_await http::request(loop, "GET", device.description_url());
            CHECK(r.status == 200);
            auto d = ssdp::parse_description(r.body, device.description_url());
            REQUIRE(d.ok());
            CHECK(d->root.device_type == "urn:schemas-upnp-org:device:MediaRenderer:1");
            CHECK(d->root.udn == device.udn());
            const ssdp::ServiceInfo* rc = d->service("RenderingControl");
            const ssdp::ServiceInfo* avt = d->service("AVTransport");
            REQUIRE(rc != nullptr);
            REQUIRE(avt != nullptr);
            CHECK(rc->event_sub_url == device.rendering_control_event_url());
            CHECK(avt->event_sub_url == device.av_transport_event_url());
            for (const ssdp::ServiceInfo* s : {rc, avt}) {
                http::Response scpd = co_await http::request(loop, "GET", s->scpd_url);
                CHECK(scpd.status == 200);
                tinyxml2::XMLDocument doc;
                REQUIRE(doc.Parse(scpd.body.data(), scpd.body.size()) == tinyxml2::XML_SUCCESS);
                CHECK(std::string(doc.RootElement()->Name()) == "scpd");
                CHECK(scpd.body.find("<stateVariable sendEvents=\"yes\"><name>LastChange</name>") !=
                      std::string::npos);
            }
            CHECK((co_await http::request(loop, "GET", device.base_url() + "/nothing")).status ==
                  404);
            co_await device.stop();
        };
        run(loop, test());
    }

    TEST_CASE("SOAP actions drive the device and its subscribers see LastChange events") {
        uvtest::TestLoop loop;
        Receiver receiver(loop);
        DemoDevice device(loop, manual());
        device.start();
        auto test = [&]() -> Task<void> {
            http::Url rc_event = http::Url::parse(device.rendering_control_event_url());
            CHECK((co_await pubtest::subscribe(loop, rc_event, one(receiver.url()))).status == 200);
            Notify initial = co_await receiver.next();
            CHECK(initial.seq == 0);
            CHECK(initial.properties.state("Volume") == "20");
            CHECK(initial.properties.state("Mute") == "0");

            std::string control = device.base_url() + "/RenderingControl/control";
            http::Response set =
                co_await post(loop, control, "RenderingControl", "SetVolume",
                              "<Channel>Master</Channel><DesiredVolume>42</DesiredVolume>");
            CHECK(set.status == 200);
            CHECK(device.volume() == 42);
            Notify change = co_await receiver.next();
            CHECK(change.seq == 1);
            REQUIRE(change.properties.last_change().ok());
            const LastChangeValue* v =
                change.properties.last_change().value().instance("0")->find("Volume", "Master");
            REQUIRE(v != nullptr);
            CHECK(v->value == "42");

            http::Response get = co_await post(loop, control, "RenderingControl", "GetVolume",
                                               "<Channel>Master</Channel>");
            CHECK(get.status == 200);
            CHECK(get.body.find("<CurrentVolume>42</CurrentVolume>") != std::string::npos);
            http::Response bad = co_await post(loop, control, "RenderingControl", "SetVolume",
                                               "<DesiredVolume>400</DesiredVolume>");
            CHECK(bad.status == 500);
            CHECK(bad.body.find("<errorCode>601</errorCode>") != std::string::npos);
            CHECK(bad.body.find("Argument Value Out of Range") != std::string::npos);
            http::Response not_a_number =
                co_await post(loop, control, "RenderingControl", "SetVolume",
                              "<DesiredVolume>loud</DesiredVolume>");
            CHECK(not_a_number.status == 500);
            CHECK(not_a_number.body.find("<errorCode>402</errorCode>") != std::string::npos);
            http::Response unknown =
                co_await post(loop, control, "RenderingControl", "Explode", "");
            CHECK(unknown.status == 500);
            CHECK(unknown.body.find("<errorCode>401</errorCode>") != std::string::npos);
            http::Response garbage = co_await http::request(loop, "POST", control, {}, "<not soap");
            CHECK(garbage.status == 500);

            std::string avt_control = device.base_url() + "/AVTransport/control";
            CHECK((co_await post(loop, avt_control, "AVTransport", "Play", "<Speed>1</Speed>"))
                      .status == 200);
            CHECK(device.transport_state() == "PLAYING");
            http::Response info =
                co_await post(loop, avt_control, "AVTransport", "GetTransportInfo", "");
            CHECK(info.body.find("<CurrentTransportState>PLAYING</CurrentTransportState>") !=
                  std::string::npos);
            co_await device.stop();
        };
        run(loop, test());
        run(loop, receiver.server().stop());
    }

    TEST_CASE("ticks change volume, transport state and track with DIDL-Lite metadata") {
        uvtest::TestLoop loop;
        Receiver receiver(loop);
        DemoDevice device(loop, manual());
        device.start();
        auto test = [&]() -> Task<void> {
            http::Url avt_event = http::Url::parse(device.av_transport_event_url());
            CHECK((co_await pubtest::subscribe(loop, avt_event, one(receiver.url()))).status ==
                  200);
            Notify initial = co_await receiver.next();
            CHECK(initial.properties.state("TransportState") == "STOPPED");
            int before = device.volume();
            device.tick();
            CHECK(device.volume() != before);
            CHECK(device.transport_state() == "PLAYING");
            Notify change = co_await receiver.next();
            CHECK(change.seq == 1);
            CHECK(change.properties.state("TransportState") == "PLAYING");
            const auto& didl = change.properties.didl("CurrentTrackMetaData");
            REQUIRE(didl.ok());
            REQUIRE_FALSE(didl.value().objects.empty());
            CHECK(didl.value().objects[0].title == "Blue in Green");
            CHECK(didl.value().objects[0].artist == "Bill Evans Trio");
            co_await device.stop();
        };
        run(loop, test());
        run(loop, receiver.server().stop());
    }

    TEST_CASE("the timer keeps the device changing until it is stopped") {
        uvtest::TestLoop loop;
        Receiver receiver(loop);
        DemoDeviceOptions options;
        options.interval = 10ms;
        DemoDevice device(loop, options);
        device.start();
        auto test = [&]() -> Task<void> {
            http::Url rc_event = http::Url::parse(device.rendering_control_event_url());
            CHECK((co_await pubtest::subscribe(loop, rc_event, one(receiver.url()))).status == 200);
            for (std::uint32_t seq = 0; seq < 4; ++seq)
                CHECK((co_await receiver.next()).seq == seq);
            co_await device.stop();
            CHECK(device.ticks() >= 3);
        };
        run(loop, test());
        run(loop, receiver.server().stop());
    }

    // Issue 17, bug 3 in the demo renderer: stop() used the device's Impl after resuming from
    // the server's drain, so destroying the device meanwhile left it touching freed memory.
    TEST_CASE("destroying the device while its stop() calls wait for a connection is safe") {
        uvtest::TestLoop loop;
        auto device = std::make_unique<DemoDevice>(loop, manual());
        device->start();
        http::Server& server = *device->server();
        std::string partial = "GET /description.xml HTTP/1.1\r\n";
        CHECK(run(loop, uvtest::destroy_while_stopping(loop, std::move(device), server, partial)) ==
              "0|2|");
    }

    TEST_CASE("a second stop() of the device returns only when the first has finished") {
        uvtest::TestLoop loop;
        DemoDevice device(loop, manual());
        device.start();
        std::string partial = "GET /description.xml HTTP/1.1\r\n";
        CHECK(run(loop, uvtest::second_stop_waits(loop, device, *device.server(), partial)) ==
              "first done|0");
    }
}
