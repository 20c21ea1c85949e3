// call_action and fetch_scpd against http::Servers on loopback that answer with the device
// side of the same SOAP codec: success, faults, other statuses, truncated and oversized
// answers, timeouts, calls refused before sending, and the SCPD cache.
#include "uvgena/control/client.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <stop_token>
#include <string>
#include <thread>

#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/gena/error.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/net/tcp.hpp"
#include "uvgena/net/tcp_listener.hpp"

using namespace uvgena;
using namespace uvgena::control;
using namespace std::chrono_literals;

namespace {

const std::string rc_type = "urn:schemas-upnp-org:service:RenderingControl:1";

std::string rendering_control_scpd() {
    std::string dir = uvtest::env_dir("UVGENA_TEST_DATA");
    REQUIRE_MESSAGE(!dir.empty(), "UVGENA_TEST_DATA is not set");
    std::ifstream in(dir + "/gmediarender/control/rendercontrolSCPD.xml", std::ios::binary);
    REQUIRE(in);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A RenderingControl on loopback, written with the device half of the codec:
//   POST /control: GetVolume answers the volume SetVolume stored, Echo echoes its arguments,
//   Fail answers a 402 fault, Slow answers after 2 s, anything else a 401 fault;
//   POST /missing: 404; POST /html: 500 with a page that is no fault;
//   GET /scpd.xml: gmediarender's RenderingControl SCPD; GET /broken.xml: not XML.
struct SoapDevice {
    explicit SoapDevice(uv_loop_t* loop)
        : loop(loop),
          server(
              loop,
              [this](const http::Request& r, const http::RequestContext&) { return handle(r); },
              options()) {
        server.listen();
    }

    static http::ServerOptions options() {
        http::ServerOptions o;
        o.address = SocketAddress::ipv4_loopback(0);
        return o;
    }

    std::string url(std::string_view path) const {
        return "http://" + server.local_address().to_string() + std::string(path);
    }

    Task<http::Response> handle(const http::Request& request) {
        http::Response response;
        if (request.method == "GET") {
            ++scpd_gets;
            if (request.target == "/scpd.xml") {
                response.body = scpd;
            } else if (request.target == "/broken.xml") {
                response.body = "<scpd><actionList>";
            } else {
                response.status = 404;
            }
            co_return response;
        }
        if (request.target == "/missing") {
            response.status = 404;
            co_return response;
        }
        if (request.target == "/html") {
            response.status = 500;
            response.body = "<html><body>oops</body></html>";
            co_return response;
        }
        raw_requests.push_back(request);
        auto call = parse_request(request.headers.get("SOAPACTION").value_or(""), request.body);
        if (!call) {
            co_return fault(fault_for(call.error()));
        }
        calls.push_back(*call);
        Arguments out;
        if (call->action == "GetVolume") {
            out = {{"CurrentVolume", volume}};
        } else if (call->action == "SetVolume") {
            for (const auto& [name, value] : call->arguments) {
                if (name == "DesiredVolume") volume = value;
            }
        } else if (call->action == "Echo") {
            out = call->arguments;
        } else if (call->action == "Fail") {
            co_return fault({402, "Invalid Args: <InstanceID> & co"});
        } else if (call->action == "Slow") {
            co_await sleep_for(loop, 2s);
        } else {
            co_return fault({401, "Invalid Action"});
        }
        auto message = build_response(call->service_type, call->action, out);
        REQUIRE(message.ok());
        response.headers = std::move(message->headers);
        response.body = std::move(message->body);
        co_return response;
    }

    static http::Response fault(const Fault& f) {
        SoapMessage message = build_fault(f);
        http::Response response;
        response.status = 500;
        response.headers = std::move(message.headers);
        response.body = std::move(message.body);
        return response;
    }

    uv_loop_t* loop;
    std::string scpd = rendering_control_scpd();
    std::string volume = "10";
    int scpd_gets = 0;
    std::vector<http::Request> raw_requests;
    std::vector<ActionRequest> calls;
    http::Server server;
};

// Runs `task`, returning the Error it threw (none: a default code) and storing its what().
template <typename T>
std::error_code error_of(uv_loop_t* loop, Task<T> task, std::string* what = nullptr) {
    try {
        run(loop, std::move(task));
    } catch (const std::system_error& e) {
        if (what != nullptr) *what = e.what();
        return e.code();
    }
    return {};
}

// A one-shot raw server writing `answer` verbatim to the first connection, then closing.
Task<void> answer_raw(TcpListener& listener, std::string answer) {
    TcpStream stream = co_await listener.accept();
    std::string request;
    while (request.find("</s:Envelope>") == std::string::npos) {
        std::string_view data = co_await stream.read_some();
        if (data.empty()) co_return;
        request.append(data);
    }
    co_await stream.write(std::string_view(answer));
}

std::error_code call_raw(uvtest::TestLoop& loop, std::string answer, ActionOptions options = {}) {
    TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
    std::string url = "http://127.0.0.1:" + std::to_string(listener.port()) + "/control";
    auto scenario = [](uv_loop_t* l, TcpListener& li, std::string a, std::string u,
                       ActionOptions o) -> Task<std::error_code> {
        Scope scope(l);
        scope.spawn(answer_raw(li, std::move(a)));
        std::error_code result;
        Arguments in{{"InstanceID", "0"}};  // not a braced temporary: GCC 12 bug in coroutines
        try {
            co_await call_action(l, u, rc_type, "GetVolume", std::move(in), o);
        } catch (const Error& e) {
            result = e.code();
        }
        li.close();
        co_await scope.join();
        co_return result;
    };
    return run(loop, scenario(loop, listener, std::move(answer), url, std::move(options)));
}

}  // namespace

TEST_SUITE("control.client") {
    TEST_CASE("call_action POSTs the call and returns the out arguments") {
        uvtest::TestLoop loop;
        SoapDevice device(loop);
        std::string didl =
            "<DIDL-Lite><item><dc:title>Rock &amp; Roll</dc:title></item></DIDL-Lite>";
        Arguments out = run(loop, call_action(loop, device.url("/control"), rc_type, "Echo",
                                              {{"InstanceID", "0"}, {"Metadata", didl}}));
        CHECK(out == Arguments{{"InstanceID", "0"}, {"Metadata", didl}});
        REQUIRE(device.raw_requests.size() == 1);
        const http::Request& sent = device.raw_requests[0];
        CHECK(sent.method == "POST");
        CHECK(sent.target == "/control");
        CHECK(sent.headers.get("SOAPACTION") == std::string_view("\"" + rc_type + "#Echo\""));
        CHECK(sent.headers.get("Content-Type") == std::string_view("text/xml; charset=\"utf-8\""));
        CHECK(sent.body.find("&lt;DIDL-Lite&gt;") != std::string::npos);

        run(loop,
            call_action(loop, device.url("/control"), rc_type, "SetVolume",
                        {{"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", "30"}}));
        out = run(loop, call_action(loop, device.url("/control"), rc_type, "GetVolume",
                                    {{"InstanceID", "0"}, {"Channel", "Master"}}));
        CHECK(out == Arguments{{"CurrentVolume", "30"}});
        run(loop, device.server.stop());
    }

    TEST_CASE("a SOAP fault is an ActionError with the device's errorCode and errorDescription") {
        uvtest::TestLoop loop;
        SoapDevice device(loop);
        bool caught = false;
        try {
            run(loop, call_action(loop, device.url("/control"), rc_type, "Fail", {}));
        } catch (const ActionError& e) {
            caught = true;
            CHECK(e.error_code() == 402);
            CHECK(e.code() == upnp_error(402));
            CHECK(e.code() == upnp_condition(402));
            CHECK(e.code().category() == upnp_category());
            CHECK(e.error_description() == "Invalid Args: <InstanceID> & co");
            std::string what = e.what();
            CHECK(what.find("Fail") != std::string::npos);
            CHECK(what.find(device.url("/control")) != std::string::npos);
            CHECK(what.find("Invalid Args: <InstanceID> & co") != std::string::npos);
            CHECK(what.find("UPnP error 402") != std::string::npos);
        }
        CHECK(caught);
        // An unknown action: the device's 401.
        CHECK(error_of(loop, call_action(loop, device.url("/control"), rc_type, "Nope", {})) ==
              upnp_error(401));
        run(loop, device.server.stop());
    }

    TEST_CASE("other statuses are http status errors") {
        uvtest::TestLoop loop;
        SoapDevice device(loop);
        CHECK(error_of(loop, call_action(loop, device.url("/missing"), rc_type, "GetVolume", {})) ==
              http::status_error(404));
        std::string what;
        CHECK(error_of(loop, call_action(loop, device.url("/html"), rc_type, "GetVolume", {}),
                       &what) == http::status_error(500));
        CHECK(what.find("call GetVolume at ") != std::string::npos);
        run(loop, device.server.stop());
    }

    TEST_CASE("truncated, oversized and malformed answers are errors, as in the http client") {
        uvtest::TestLoop loop;
        auto ok = build_response(rc_type, "GetVolume", {{"CurrentVolume", "1"}});
        REQUIRE(ok.ok());
        std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: ";
        CHECK(call_raw(loop, head + std::to_string(ok->body.size()) + "\r\n\r\n" +
                                 ok->body.substr(0, 40)) == http::errc::truncated_body);
        ActionOptions small;
        small.max_response_bytes = 64;
        CHECK(call_raw(loop, head + std::to_string(ok->body.size()) + "\r\n\r\n" + ok->body,
                       small) == http::errc::response_too_large);
        CHECK(call_raw(loop, head + "5\r\n\r\nhello") == uvgena::gena::errc::xml_malformed);
        auto other = build_response(rc_type, "SetVolume", {});
        CHECK(call_raw(loop, head + std::to_string(other->body.size()) + "\r\n\r\n" +
                                 other->body) == control::errc::wrong_action);
        // A fault sent with status 200 is still the device's fault.
        auto fault = build_fault({714, "Illegal MIME-type"});
        CHECK(call_raw(loop, head + std::to_string(fault.body.size()) + "\r\n\r\n" + fault.body) ==
              upnp_error(714));
        CHECK(call_raw(loop, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") ==
              uvgena::gena::errc::xml_malformed);
    }

    TEST_CASE("a device that does not answer in time is a timeout") {
        uvtest::TestLoop loop;
        SoapDevice device(loop);
        ActionOptions options;
        options.timeout = 150ms;
        auto start = std::chrono::steady_clock::now();
        std::string what;
        auto error = error_of(
            loop, call_action(loop, device.url("/control"), rc_type, "Slow", {}, options), &what);
        CHECK(is_timeout(error));
        CHECK(std::chrono::steady_clock::now() - start < 1500ms);
        CHECK(what.find("call Slow at ") != std::string::npos);
        run(loop, device.server.stop(0ms));
    }

    TEST_CASE("a call is cancelled by its options' stop token") {
        uvtest::TestLoop loop;
        SoapDevice device(loop);
        std::stop_source stop;
        ActionOptions options;
        options.stop = stop.get_token();
        auto scenario = [](uv_loop_t* l, std::string url, ActionOptions o,
                           std::stop_source& s) -> Task<std::error_code> {
            Scope scope(l);
            scope.spawn([](uv_loop_t* l2, std::stop_source& s2) -> Task<void> {
                co_await sleep_for(l2, 100ms);
                s2.request_stop();
            }(l, s));
            std::error_code result;
            try {
                co_await call_action(l, url, rc_type, "Slow", {}, o);
            } catch (const Error& e) {
                result = e.code();
            }
            co_await scope.join();
            co_return result;
        };
        auto start = std::chrono::steady_clock::now();
        CHECK(is_cancelled(run(loop, scenario(loop, device.url("/control"), options, stop))));
        CHECK(std::chrono::steady_clock::now() - start < 1500ms);
        run(loop, device.server.stop(0ms));
    }

    TEST_CASE("with an SCPD, a call that does not match it is refused before anything is sent") {
        uvtest::TestLoop loop;
        SoapDevice device(loop);
        auto scpd = std::make_shared<const Scpd>(parse_scpd(device.scpd).value());
        auto checked = [&](std::string action, Arguments in, std::string* what = nullptr) {
            return error_of(loop,
                            call_action(loop, device.url("/control"), rc_type, std::move(action),
                                        std::move(in), scpd),
                            what);
        };
        std::string what;
        CHECK(checked("SetVolume", {{"InstanceID", "0"}, {"Channel", "Master"}, {"Volume", "3"}},
                      &what) == control::errc::unknown_argument);
        CHECK(what.find("refused before sending: argument Volume") != std::string::npos);
        CHECK(checked("SetVolume",
                      {{"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", "200"}}) ==
              upnp_condition(601));
        CHECK(checked("SetVolume", {{"InstanceID", "0"}, {"Channel", "Master"}}) ==
              control::errc::missing_argument);
        CHECK(checked("GetVolume",
                      {{"InstanceID", "0"}, {"Channel", "Master"}, {"CurrentVolume", "1"}}) ==
              control::errc::not_an_input);
        CHECK(checked("SetVolume",
                      {{"InstanceID", "-1"}, {"Channel", "Master"}, {"DesiredVolume", "3"}}) ==
              control::errc::bad_value);
        CHECK(checked("SetVolume",
                      {{"InstanceID", "0"}, {"Channel", "Left"}, {"DesiredVolume", "3"}}) ==
              control::errc::value_not_allowed);
        CHECK(checked("SetVolumeNow", {}, &what) == control::errc::unknown_action);
        CHECK(what.find("refused before sending: action SetVolumeNow") != std::string::npos);
        // Nothing reached the device: not a connection, not a request.
        CHECK(device.server.stats().connections_accepted == 0);
        CHECK(device.server.stats().requests == 0);
        CHECK(device.raw_requests.empty());

        // A good call goes out in the SCPD's order, whatever the caller's.
        CHECK_FALSE(checked("SetVolume",
                            {{"DesiredVolume", "30"}, {"Channel", "Master"}, {"InstanceID", "0"}}));
        REQUIRE(device.calls.size() == 1);
        CHECK(device.calls[0].arguments ==
              Arguments{{"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", "30"}});
        CHECK(error_of(loop, call_action(loop, device.url("/control"), rc_type, "GetVolume", {},
                                         std::shared_ptr<const Scpd>())) ==
              uvgena::errc::invalid_argument);
        run(loop, device.server.stop());
    }

    TEST_CASE("fetch_scpd caches per URL for the process, for every loop and thread") {
        uvtest::TestLoop loop;
        SoapDevice device(loop);
        forget_scpd();
        std::string url = device.url("/scpd.xml");
        auto first = run(loop, fetch_scpd(loop, url));
        REQUIRE(first);
        CHECK(first->action("SetVolume") != nullptr);
        auto second = run(loop, fetch_scpd(loop, url));
        CHECK(second == first);
        CHECK(device.scpd_gets == 1);
        // Another thread with its own loop gets the same description without a request.
        std::shared_ptr<const Scpd> from_thread;
        std::thread other([&] {
            uv_loop_t other_loop;
            uv_loop_init(&other_loop);
            from_thread = run(&other_loop, fetch_scpd(&other_loop, url));
            uv_run(&other_loop, UV_RUN_DEFAULT);
            uv_loop_close(&other_loop);
        });
        other.join();
        CHECK(from_thread == first);
        CHECK(device.scpd_gets == 1);
        forget_scpd(url);
        auto third = run(loop, fetch_scpd(loop, url));
        CHECK(third != first);
        CHECK(device.scpd_gets == 2);
        ScpdFetchOptions fresh;
        fresh.use_cache = false;
        run(loop, fetch_scpd(loop, url, fresh));
        CHECK(device.scpd_gets == 3);

        std::string what;
        CHECK(error_of(loop, fetch_scpd(loop, device.url("/none.xml")), &what) ==
              http::status_error(404));
        CHECK(what.find(device.url("/none.xml")) != std::string::npos);
        CHECK(error_of(loop, fetch_scpd(loop, device.url("/broken.xml"))) ==
              uvgena::gena::errc::xml_malformed);
        ScpdFetchOptions small;
        small.limits.max_bytes = 1000;
        small.use_cache = false;  // the cached copy would be returned without a request
        CHECK(error_of(loop, fetch_scpd(loop, device.url("/scpd.xml"), small)) ==
              http::errc::response_too_large);
        forget_scpd();
        run(loop, device.server.stop());
    }

    TEST_CASE("the ServiceInfo overload fetches the SCPD, checks, and calls") {
        uvtest::TestLoop loop;
        SoapDevice device(loop);
        forget_scpd();
        ssdp::ServiceInfo service;
        service.service_type = rc_type;
        service.service_id = "urn:upnp-org:serviceId:RenderingControl";
        service.scpd_url = device.url("/scpd.xml");
        service.control_url = device.url("/control");
        Arguments out = run(loop, call_action(loop, service, "GetVolume",
                                              {{"Channel", "Master"}, {"InstanceID", "0"}}));
        CHECK(out == Arguments{{"CurrentVolume", "10"}});
        CHECK(error_of(loop, call_action(loop, service, "SetVolume",
                                         {{"InstanceID", "0"},
                                          {"Channel", "Master"},
                                          {"DesiredVolume", "101"}})) ==
              control::errc::value_out_of_range);
        CHECK(device.calls.size() == 1);
        CHECK(device.scpd_gets == 1);
        forget_scpd();
        run(loop, device.server.stop());
    }
}
