// Action handlers on the Publisher (issue 22, part 2), called by uvgena's own control point
// (control::call_action) over loopback: out arguments in order, UPnP errors of handlers
// arriving as ActionError, the SCPD's checks, escaping both ways, malformed POSTs, handlers
// that suspend, and a Publisher stopped or destroyed under a suspended handler.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

#include "http/support.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/control/client.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/net/tcp.hpp"
#include "uvgena/publisher/publisher.hpp"

using namespace uvgena;
using namespace uvgena::gena;
using namespace std::chrono_literals;
using control::Arguments;

namespace {

const std::string rc_type = "urn:schemas-upnp-org:service:RenderingControl:2";

// A RenderingControl-like SCPD: Volume 0..100, Channel only "Master", and a few test actions.
const std::string test_scpd = R"(<?xml version="1.0"?>
<scpd xmlns="urn:schemas-upnp-org:service-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<actionList>
 <action><name>GetVolume</name><argumentList>
  <argument><name>InstanceID</name><direction>in</direction><relatedStateVariable>A_ARG_TYPE_InstanceID</relatedStateVariable></argument>
  <argument><name>Channel</name><direction>in</direction><relatedStateVariable>A_ARG_TYPE_Channel</relatedStateVariable></argument>
  <argument><name>CurrentVolume</name><direction>out</direction><relatedStateVariable>Volume</relatedStateVariable></argument>
 </argumentList></action>
 <action><name>SetVolume</name><argumentList>
  <argument><name>InstanceID</name><direction>in</direction><relatedStateVariable>A_ARG_TYPE_InstanceID</relatedStateVariable></argument>
  <argument><name>Channel</name><direction>in</direction><relatedStateVariable>A_ARG_TYPE_Channel</relatedStateVariable></argument>
  <argument><name>DesiredVolume</name><direction>in</direction><relatedStateVariable>Volume</relatedStateVariable></argument>
 </argumentList></action>
 <action><name>Describe</name><argumentList>
  <argument><name>First</name><direction>out</direction><relatedStateVariable>Text</relatedStateVariable></argument>
  <argument><name>Second</name><direction>out</direction><relatedStateVariable>Text</relatedStateVariable></argument>
  <argument><name>Third</name><direction>out</direction><relatedStateVariable>Text</relatedStateVariable></argument>
 </argumentList></action>
 <action><name>Echo</name><argumentList>
  <argument><name>Text</name><direction>in</direction><relatedStateVariable>Text</relatedStateVariable></argument>
  <argument><name>Echoed</name><direction>out</direction><relatedStateVariable>Text</relatedStateVariable></argument>
 </argumentList></action>
 <action><name>Slow</name></action>
 <action><name>Unimplemented</name></action>
 <action><name>Broken</name><argumentList>
  <argument><name>Result</name><direction>out</direction><relatedStateVariable>Text</relatedStateVariable></argument>
 </argumentList></action>
</actionList>
<serviceStateTable>
 <stateVariable sendEvents="no"><name>Volume</name><dataType>ui2</dataType>
  <allowedValueRange><minimum>0</minimum><maximum>100</maximum><step>1</step></allowedValueRange></stateVariable>
 <stateVariable sendEvents="no"><name>A_ARG_TYPE_Channel</name><dataType>string</dataType>
  <allowedValueList><allowedValue>Master</allowedValue></allowedValueList></stateVariable>
 <stateVariable sendEvents="no"><name>A_ARG_TYPE_InstanceID</name><dataType>ui4</dataType></stateVariable>
 <stateVariable sendEvents="no"><name>Text</name><dataType>string</dataType></stateVariable>
 <stateVariable sendEvents="yes"><name>Mute</name><dataType>boolean</dataType></stateVariable>
</serviceStateTable>
</scpd>
)";

// Arguments from "Name=value;Name=value" (braced lists cannot be used inside coroutines with
// GCC 12: the temporary array of an initializer_list across a co_await is refused).
Arguments args(std::string_view spec) {
    Arguments out;
    while (!spec.empty()) {
        std::string_view item = spec.substr(0, spec.find(';'));
        spec.remove_prefix(std::min(spec.size(), item.size() + 1));
        std::size_t eq = item.find('=');
        out.emplace_back(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
    }
    return out;
}

http::ServerOptions loopback() {
    http::ServerOptions o;
    o.address = SocketAddress::ipv4_loopback(0);
    return o;
}

// A Publisher on loopback with one service; `checked` says whether calls are checked
// against test_scpd.
struct Device {
    explicit Device(uv_loop_t* loop, bool checked = true) : publisher(loop) {
        ServiceConfig config;
        config.event_path = "/rc/event";
        config.variables.emplace_back("Mute", "0");
        config.control_path = "/rc/control";
        config.service_type = rc_type;
        config.scpd = test_scpd;
        config.scpd_path = "/rc/scpd.xml";
        config.check_actions = checked;
        service = &publisher.add_service(std::move(config));
        publisher.listen(loopback());
    }

    std::string url(std::string_view path) {
        return "http://127.0.0.1:" + std::to_string(publisher.server()->port()) + std::string(path);
    }
    std::string control_url() { return url("/rc/control"); }

    Publisher publisher;
    Service* service = nullptr;
};

Task<Arguments> call(uv_loop_t* loop, Device& device, std::string action, Arguments in,
                     std::string type = rc_type) {
    co_return co_await control::call_action(loop, device.control_url(), std::move(type),
                                            std::move(action), std::move(in));
}

// The UPnP error code a call ends with (0: success), and its description in `description`.
Task<int> fault_of(Task<Arguments> call, std::string* description = nullptr) {
    try {
        co_await std::move(call);
    } catch (const control::ActionError& e) {
        if (description != nullptr) *description = e.error_description();
        co_return e.error_code();
    }
    co_return 0;
}

// A POST to the control URL with the given SOAPACTION (none when empty) and body.
Task<http::Response> post(uv_loop_t* loop, Device& device, std::string soap_action,
                          std::string body) {
    http::Headers h;
    h.add("Content-Type", "text/xml; charset=\"utf-8\"");
    if (!soap_action.empty()) h.add("SOAPACTION", std::move(soap_action));
    co_return co_await http::request(loop, "POST", device.control_url(), h, std::move(body));
}

// The errorCode of a fault body, or -1.
int fault_code(const http::Response& r) {
    auto fault = control::parse_fault(r.body);
    return fault ? fault->error_code : -1;
}

std::string envelope(std::string_view inner) {
    return "<?xml version=\"1.0\"?><s:Envelope "
           "xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>" +
           std::string(inner) + "</s:Body></s:Envelope>";
}

}  // namespace

TEST_SUITE("publisher.actions") {
    TEST_CASE("call_action gets the handlers' out arguments, in the SCPD's order") {
        uvtest::TestLoop loop;
        Device device(loop);
        int volume = 20;
        Arguments seen_in;
        device.service->on_action("GetVolume", [&](const ActionCall& c) -> Arguments {
            seen_in = c.arguments;
            CHECK(c.action == "GetVolume");
            CHECK(c.service_type.starts_with("urn:schemas-upnp-org:service:RenderingControl:"));
            CHECK(c.context.peer.ip() == "127.0.0.1");
            return {{"CurrentVolume", std::to_string(volume)}};
        });
        device.service->on_action("SetVolume", [&](const ActionCall& c) -> Arguments {
            volume = std::stoi(std::string(*c.argument("DesiredVolume")));
            return {};
        });
        // Answered in another order than declared: the Publisher sends the SCPD's order.
        device.service->on_action("Describe", [](const ActionCall&) -> Arguments {
            return args("Third=3;First=1;Second=2");
        });
        auto test = [&]() -> Task<void> {
            // In arguments given out of order reach the handler in the SCPD's order.
            CHECK((co_await call(loop, device, "SetVolume",
                                 args("DesiredVolume=33;Channel=Master;InstanceID=0")))
                      .empty());
            CHECK(volume == 33);
            Arguments out =
                co_await call(loop, device, "GetVolume", args("Channel=Master;InstanceID=0"));
            CHECK(out == args("CurrentVolume=33"));
            CHECK(seen_in == args("InstanceID=0;Channel=Master"));
            out = co_await call(loop, device, "Describe", {});
            CHECK(out == args("First=1;Second=2;Third=3"));
            // A control point may use a lower version of the service type.
            out = co_await call(loop, device, "GetVolume", args("InstanceID=0;Channel=Master"),
                                "urn:schemas-upnp-org:service:RenderingControl:1");
            CHECK(out == args("CurrentVolume=33"));
            CHECK(device.publisher.stats().actions == 4);
            CHECK(device.publisher.stats().action_faults == 0);
            co_await device.publisher.stop();
        };
        run(loop, test());
    }

    TEST_CASE("a handler's UPnP error arrives as an ActionError with its code and description") {
        uvtest::TestLoop loop;
        Device device(loop);
        device.service->on_action("Echo", [](const ActionCall& c) -> Arguments {
            std::string text(c.argument("Text").value_or(""));
            if (text == "714") throw control::ActionError(714, "Illegal MIME-type <&>", "test");
            if (text == "error") throw uvgena::Error(control::upnp_error(718));
            if (text == "runtime") throw std::runtime_error("disk on fire");
            return {{"Echoed", text}};
        });
        auto test = [&]() -> Task<void> {
            std::string description;
            CHECK(co_await fault_of(call(loop, device, "Echo", args("Text=714")), &description) ==
                  714);
            CHECK(description == "Illegal MIME-type <&>");
            CHECK(co_await fault_of(call(loop, device, "Echo", args("Text=error")), &description) ==
                  718);
            CHECK(description == "Action specific error");
            CHECK(co_await fault_of(call(loop, device, "Echo", args("Text=runtime")),
                                    &description) == 501);
            CHECK(description == "Action Failed");
            // A handler's out arguments that do not match the SCPD are its bug: 501.
            device.service->on_action(
                "Broken", [](const ActionCall&) -> Arguments { return args("Other=x"); });
            CHECK(co_await fault_of(call(loop, device, "Broken", {})) == 501);
            CHECK(device.publisher.stats().action_faults == 4);
            co_await device.publisher.stop();
        };
        run(loop, test());
    }

    TEST_CASE("unknown actions, missing handlers and calls the SCPD refuses get their faults") {
        uvtest::TestLoop loop;
        Device device(loop);
        int handled = 0;
        device.service->on_action("SetVolume", [&](const ActionCall&) -> Arguments {
            ++handled;
            return {};
        });
        CHECK_THROWS_AS(
            device.service->on_action("Explode", [](const ActionCall&) -> Arguments { return {}; }),
            uvgena::Error);
        CHECK_THROWS_AS(device.service->on_action(
                            "not a name", [](const ActionCall&) -> Arguments { return {}; }),
                        uvgena::Error);
        auto test = [&]() -> Task<void> {
            auto set = [&](Arguments in) { return call(loop, device, "SetVolume", std::move(in)); };
            CHECK(co_await fault_of(call(loop, device, "Explode", {})) == 401);
            CHECK(co_await fault_of(call(loop, device, "Unimplemented", {})) == 602);
            CHECK(co_await fault_of(set(args("InstanceID=0;Channel=Master"))) == 402);
            CHECK(co_await fault_of(
                      set(args("InstanceID=0;Channel=Master;DesiredVolume=1;Bogus=1"))) == 402);
            CHECK(co_await fault_of(set(
                      args("InstanceID=0;Channel=Master;DesiredVolume=1;DesiredVolume=2"))) == 402);
            CHECK(co_await fault_of(set(args("InstanceID=0;Channel=Master;DesiredVolume=101"))) ==
                  601);
            CHECK(co_await fault_of(set(args("InstanceID=0;Channel=Master;DesiredVolume=loud"))) ==
                  600);
            CHECK(co_await fault_of(set(args("InstanceID=0;Channel=LF;DesiredVolume=1"))) == 600);
            CHECK(handled == 0);
            CHECK(co_await fault_of(set(args("InstanceID=0;Channel=Master;DesiredVolume=100"))) ==
                  0);
            CHECK(handled == 1);
            // Another service type than the one served (but a lower version) is refused.
            CHECK(co_await fault_of(call(loop, device, "SetVolume", {},
                                         "urn:schemas-upnp-org:service:AVTransport:1")) == 401);
            CHECK(co_await fault_of(call(loop, device, "SetVolume", {},
                                         "urn:schemas-upnp-org:service:RenderingControl:3")) ==
                  401);
            co_await device.publisher.stop();
        };
        run(loop, test());
    }

    TEST_CASE("without check_actions handlers get every call as sent") {
        uvtest::TestLoop loop;
        Device device(loop, /*checked=*/false);
        Arguments seen;
        device.service->on_action("Anything", [&](const ActionCall& c) -> Arguments {
            seen = c.arguments;
            return args("Z=1;A=2");
        });
        auto test = [&]() -> Task<void> {
            Arguments out = co_await call(loop, device, "Anything", args("B=x;A=y"));
            CHECK(out == args("Z=1;A=2"));
            CHECK(seen == args("B=x;A=y"));
            // Listed in the SCPD, no handler: 602; not listed: 401.
            CHECK(co_await fault_of(call(loop, device, "Unimplemented", {})) == 602);
            CHECK(co_await fault_of(call(loop, device, "Nothing", {})) == 401);
            co_await device.publisher.stop();
        };
        run(loop, test());
    }

    TEST_CASE("XML inside arguments travels unchanged both ways") {
        uvtest::TestLoop loop;
        Device device(loop);
        std::string received;
        device.service->on_action("Echo", [&](const ActionCall& c) -> Arguments {
            received = std::string(*c.argument("Text"));
            return {{"Echoed", received}};
        });
        const std::string didl =
            "<DIDL-Lite xmlns=\"urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/\"><item id=\"1\">"
            "<dc:title>Tom &amp; Jerry's \"Best\" &lt;Hits&gt;</dc:title></item></DIDL-Lite>"
            " ]]> <![CDATA[x]]> &#x41; \r\n\t end ";
        auto test = [&]() -> Task<void> {
            Arguments in;
            in.emplace_back("Text", didl);
            Arguments out = co_await call(loop, device, "Echo", std::move(in));
            CHECK(received == didl);
            REQUIRE(out.size() == 1);
            CHECK(out[0].second == didl);
            out = co_await call(loop, device, "Echo", args("Text=   "));
            CHECK(received == "   ");
            CHECK(out[0].second == "   ");
            co_await device.publisher.stop();
        };
        run(loop, test());
    }

    TEST_CASE(
        "malformed POSTs are answered with a fault or an HTTP error, and the SCPD is served") {
        uvtest::TestLoop loop;
        Device device(loop);
        device.service->on_action("Echo", [](const ActionCall& c) -> Arguments {
            return {{"Echoed", std::string(c.argument("Text").value_or(""))}};
        });
        const std::string echo_action = "\"" + rc_type + "#Echo\"";
        const std::string echo_body =
            envelope("<u:Echo xmlns:u=\"" + rc_type + "\"><Text>hi</Text></u:Echo>");
        auto test = [&]() -> Task<void> {
            http::Response ok = co_await post(loop, device, echo_action, echo_body);
            CHECK(ok.status == 200);
            CHECK(ok.headers.get("EXT").has_value());
            CHECK(ok.body.find("<Echoed>hi</Echoed>") != std::string::npos);

            http::Response r = co_await post(loop, device, "", echo_body);  // no SOAPACTION
            CHECK(r.status == 500);
            CHECK(fault_code(r) == 401);
            r = co_await post(loop, device, "\"" + rc_type + "\"", echo_body);  // no '#'
            CHECK(fault_code(r) == 401);
            r = co_await post(loop, device, "\"" + rc_type + "#GetVolume\"", echo_body);
            CHECK(r.status == 500);
            CHECK(fault_code(r) == 401);  // the header and the body disagree
            r = co_await post(loop, device, echo_action, "<not xml");
            CHECK(r.status == 500);
            CHECK(fault_code(r) == 402);
            r = co_await post(loop, device, echo_action, "");
            CHECK(fault_code(r) == 402);
            r = co_await post(loop, device, echo_action, envelope(""));  // no action element
            CHECK(fault_code(r) == 402);
            r = co_await post(loop, device, echo_action,
                              "<!DOCTYPE x [<!ENTITY a \"aaaa\">]>" + echo_body);
            CHECK(r.status == 500);
            CHECK(fault_code(r) == 402);
            r = co_await post(loop, device, echo_action,
                              envelope("<u:Echo xmlns:u=\"" + rc_type +
                                       "\"><Text><b>nested</b></Text></u:Echo>"));
            CHECK(fault_code(r) == 402);
            // Over PublisherOptions::action_limits: refused unparsed.
            r = co_await post(loop, device, echo_action,
                              envelope("<u:Echo xmlns:u=\"" + rc_type + "\"><Text>" +
                                       std::string(70 * 1024, 'x') + "</Text></u:Echo>"));
            CHECK(r.status == 413);
            r = co_await http::request(loop, "GET", device.control_url());
            CHECK(r.status == 405);
            CHECK(r.headers.get("Allow") == "POST");

            // Raw: a request whose body is cut, then the connection half-closed.
            TcpStream raw =
                co_await uvgena::connect(loop, device.publisher.server()->local_address());
            std::string head =
                "POST /rc/control HTTP/1.1\r\nHost: x\r\nSOAPACTION: " + echo_action +
                "\r\nContent-Length: " + std::to_string(echo_body.size() - 20) +
                "\r\nConnection: close\r\n\r\n" + echo_body.substr(0, echo_body.size() - 20);
            co_await raw.write(std::string_view(head));
            std::string answer = co_await httptest::read_to_end(raw);
            CHECK(answer.rfind("HTTP/1.1 500", 0) == 0);
            CHECK(answer.find("<errorCode>402</errorCode>") != std::string::npos);

            // The server is still fine, and the SCPD is served at its path.
            CHECK((co_await post(loop, device, echo_action, echo_body)).status == 200);
            http::Response scpd = co_await http::request(loop, "GET", device.url("/rc/scpd.xml"));
            CHECK(scpd.status == 200);
            CHECK(scpd.body == test_scpd);
            CHECK(device.publisher.handles("/rc/scpd.xml?x=1"));
            CHECK(device.publisher.handles("/rc/control"));
            CHECK_FALSE(device.publisher.handles("/rc/other"));
            co_await device.publisher.stop();
        };
        run(loop, test());
    }

    TEST_CASE("handlers that suspend answer later, concurrently") {
        uvtest::TestLoop loop;
        Device device(loop);
        int running = 0, most = 0;
        device.service->on_action("Echo", [&](const ActionCall& c) -> Task<Arguments> {
            std::string text(*c.argument("Text"));  // copied before suspending
            most = std::max(most, ++running);
            co_await sleep_for(loop, 200ms);
            --running;
            if (text == "fail") throw control::ActionError(801, "vendor says no", "test");
            Arguments out;
            out.emplace_back("Echoed", text + "!");
            co_return out;
        });
        auto test = [&]() -> Task<void> {
            Scope calls(loop);
            Arguments a, b;
            int failed = 0;
            calls.spawn([](uv_loop_t* l, Device& d, Arguments& out) -> Task<void> {
                out = co_await call(l, d, "Echo", args("Text=a"));
            }(loop, device, a));
            calls.spawn([](uv_loop_t* l, Device& d, Arguments& out) -> Task<void> {
                out = co_await call(l, d, "Echo", args("Text=b"));
            }(loop, device, b));
            calls.spawn([](uv_loop_t* l, Device& d, int& code) -> Task<void> {
                code = co_await fault_of(call(l, d, "Echo", args("Text=fail")));
            }(loop, device, failed));
            co_await calls.join();
            CHECK(a == args("Echoed=a!"));
            CHECK(b == args("Echoed=b!"));
            CHECK(failed == 801);
            CHECK(most == 3);
            co_await device.publisher.stop();
        };
        run(loop, test());
    }

    TEST_CASE("a Publisher destroyed while a handler is suspended cancels it safely") {
        uvtest::TestLoop loop;
        bool started = false, cancelled = false, resumed_after = false;
        // Its own server: destroying the Publisher closes the connection.
        auto own = std::make_unique<Device>(loop);
        // Mounted on someone else's server: the call is answered by the Publisher's state,
        // which the call holds, once the handler has seen the cancellation.
        auto mounted = std::make_unique<Publisher>(loop);
        ServiceConfig config;
        config.event_path = "/m/event";
        config.control_path = "/m/control";
        Service& m = mounted->add_service(std::move(config));
        http::Server server(loop, mounted->handler(), loopback());
        server.listen();
        auto slow = [&](const ActionCall&) -> Task<Arguments> {
            started = true;
            try {
                co_await sleep_for(loop, 10s);
            } catch (const uvgena::Error& e) {
                cancelled = cancelled || is_cancelled(e.code());
                throw;
            }
            resumed_after = true;
            co_return Arguments{};
        };
        own->service->on_action("Slow", ActionHandler(slow));
        m.on_action("Slow", ActionHandler(slow));
        auto test = [&]() -> Task<void> {
            Scope calls(loop);
            bool own_failed = false;
            calls.spawn([](uv_loop_t* l, Device& d, bool& failed) -> Task<void> {
                try {
                    co_await call(l, d, "Slow", {});
                } catch (const uvgena::Error&) {
                    failed = true;
                }
            }(loop, *own, own_failed));
            while (!started) co_await sleep_for(loop, 1ms);
            own.reset();
            co_await calls.join();
            CHECK(own_failed);  // connection closed, or a fault: never a success

            started = false;
            int code = -1;
            std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/m/control";
            calls.spawn([](uv_loop_t* l, std::string u, int& out) -> Task<void> {
                out = co_await fault_of(control::call_action(l, u, rc_type, "Slow", {}));
            }(loop, url, code));
            while (!started) co_await sleep_for(loop, 1ms);
            mounted.reset();
            co_await calls.join();
            CHECK(code == 501);
            CHECK(cancelled);
            CHECK_FALSE(resumed_after);
            // The server now answers those paths with its fallback.
            CHECK((co_await http::request(loop, "POST", url, {}, "x")).status == 404);
            co_await server.stop();
        };
        run(loop, test());
    }

    TEST_CASE("stop() cancels a handler still running after the grace") {
        uvtest::TestLoop loop;
        Device device(loop);
        bool cancelled = false;
        device.service->on_action("Slow", [&](const ActionCall&) -> Task<Arguments> {
            try {
                co_await sleep_for(loop, 10s);
            } catch (const uvgena::Error& e) {
                cancelled = is_cancelled(e.code());
                throw;
            }
            co_return Arguments{};
        });
        auto test = [&]() -> Task<void> {
            Scope calls(loop);
            bool failed = false;
            calls.spawn([](uv_loop_t* l, Device& d, bool& f) -> Task<void> {
                try {
                    co_await call(l, d, "Slow", {});
                } catch (const uvgena::Error&) {
                    f = true;
                }
            }(loop, device, failed));
            co_await sleep_for(loop, 30ms);
            co_await device.publisher.stop(50ms);
            co_await calls.join();
            CHECK(failed);
            CHECK(cancelled);
            // Stopped: no more calls.
            CHECK((co_await http::try_request(loop, "POST", http::Url::parse(device.control_url())))
                      .ok() == false);
        };
        run(loop, test());
    }
}
