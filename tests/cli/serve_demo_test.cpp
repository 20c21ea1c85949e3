// `uvgena serve-demo` as a user runs it: the built binary, subscribed to by the test over
// loopback, ended by SIGTERM or --duration.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "child.hpp"
#include "support/publisher_support.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/ssdp/description.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

using clitest::Child;
using clitest::url_in;

}  // namespace

TEST_SUITE("cli.serve_demo") {
    TEST_CASE("serve-demo prints its URLs, sends events to a subscriber and exits on SIGTERM") {
        Child child({"serve-demo", "--interval", "20"});
        REQUIRE(child.line());  // the device's UDN
        std::string description = url_in(child.line());
        std::string rendering = url_in(child.line());
        std::string transport = url_in(child.line());
        {
            uvtest::TestLoop loop;
            pubtest::Receiver receiver(loop);
            auto test = [&]() -> Task<void> {
                http::Response d = co_await http::request(loop, "GET", description);
                CHECK(d.status == 200);
                auto parsed = ssdp::parse_description(d.body, description);
                REQUIRE(parsed.ok());
                REQUIRE(parsed->service("RenderingControl") != nullptr);
                CHECK(parsed->service("RenderingControl")->event_sub_url == rendering);
                CHECK(parsed->service("AVTransport")->event_sub_url == transport);
                // A named vector: GCC 12 miscompiles braced lists in co_await arguments.
                std::vector<std::string> callbacks{receiver.url()};
                http::Response r =
                    co_await pubtest::subscribe(loop, http::Url::parse(rendering), callbacks);
                CHECK(r.status == 200);
                pubtest::Notify initial = co_await receiver.next();
                CHECK(initial.seq == 0);
                CHECK(initial.properties.state("Volume").has_value());
                pubtest::Notify next = co_await receiver.next();
                CHECK(next.seq == 1);
                co_await receiver.server().stop();
            };
            run(loop, test());
        }
        child.signal(SIGTERM);
        auto summary = child.line();
        REQUIRE(summary);
        CHECK(summary->find("served") == 0);
        CHECK(child.wait() == 0);
    }

    // Issue 20: -v's help promised a log of subscriptions and deliveries; nothing was logged.
    TEST_CASE("serve-demo -v logs subscriptions, renewals, unsubscriptions and deliveries") {
        Child child({"serve-demo", "-v", "--interval", "0"});
        REQUIRE(child.line());
        REQUIRE(child.line());
        std::string rendering = url_in(child.line());
        REQUIRE(child.line());
        std::string sid;
        {
            uvtest::TestLoop loop;
            pubtest::Receiver receiver(loop);
            auto test = [&]() -> Task<void> {
                http::Url url = http::Url::parse(rendering);
                std::vector<std::string> callbacks{receiver.url()};
                http::Response r = co_await pubtest::subscribe(loop, url, callbacks);
                REQUIRE(r.status == 200);
                sid = std::string(r.headers.get("SID").value_or(""));
                CHECK((co_await receiver.next()).seq == 0);
                auto address = SocketAddress::parse(url.host, url.port);
                http::Response renewed = co_await pubtest::send(
                    loop, address, gena::make_renewal(url, sid, std::chrono::seconds(600)));
                CHECK(renewed.status == 200);
                http::Response gone =
                    co_await pubtest::send(loop, address, gena::make_unsubscribe(url, sid));
                CHECK(gone.status == 200);
                co_await receiver.server().stop();
            };
            run(loop, test());
        }
        child.signal(SIGTERM);
        REQUIRE(child.line());  // the summary
        CHECK(child.wait() == 0);
        std::string log = child.stderr_text();
        INFO("stderr: ", log);
        REQUIRE(sid.size() == 41);
        auto has_line = [&](const std::string& a, const std::string& b) {
            std::size_t start = 0;
            while (start < log.size()) {
                std::size_t end = log.find('\n', start);
                std::string line = log.substr(start, end - start);
                if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) {
                    return true;
                }
                if (end == std::string::npos) break;
                start = end + 1;
            }
            return false;
        };
        CHECK(has_line("subscribed " + sid + " to /RenderingControl/event", "CALLBACK http://"));
        CHECK(has_line("delivered SEQ 0 of /RenderingControl/event", sid));
        CHECK(has_line("renewed " + sid, "600 s"));
        CHECK(has_line("unsubscribed " + sid, "/RenderingControl/event"));
    }

    TEST_CASE("serve-demo ends by itself after --duration") {
        Child child({"serve-demo", "--duration", "0.2", "--interval", "0"});
        for (int i = 0; i < 4; ++i) REQUIRE(child.line());
        auto summary = child.line();
        REQUIRE(summary);
        CHECK(summary->find("served 0 ticks") == 0);
        CHECK(child.wait() == 0);
    }

    TEST_CASE("a bad --host is a usage error and --help works") {
        Child bad({"serve-demo", "--host", "not-an-ip"});
        CHECK(bad.wait() == 2);
        Child help({"serve-demo", "--help"});
        auto first = help.line();
        REQUIRE(first);
        CHECK(first->find("simulated UPnP renderer") != std::string::npos);
        CHECK(help.wait() == 0);
    }
}
