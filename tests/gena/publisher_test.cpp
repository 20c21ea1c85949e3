#include "uvgena/gena/publisher.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "publisher_support.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/gena/seq.hpp"

using namespace uvgena;
using namespace uvgena::gena;
using namespace std::chrono_literals;
using pubtest::Notify;
using pubtest::Receiver;

namespace {

http::ServerOptions loopback() {
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

// One callback URL (a named vector: GCC 12 miscompiles braced lists in co_await arguments).
std::vector<std::string> one(std::string url) { return std::vector<std::string>{std::move(url)}; }

http::Url event_url(Publisher& publisher, std::string_view path = "/RenderingControl/event") {
    return http::Url::parse("http://" + publisher.server()->local_address().to_string() +
                            std::string(path));
}

}  // namespace

TEST_SUITE("gena.publisher") {
    TEST_CASE("SUBSCRIBE gets 200 with a SID and the initial event with SEQ 0 follows") {
        uvtest::TestLoop loop;
        Receiver receiver(loop);
        Publisher publisher(loop);
        publisher.add_service(rendering_control());
        publisher.listen(loopback());
        auto test = [&]() -> Task<void> {
            http::Response r =
                co_await pubtest::subscribe(loop, event_url(publisher), one(receiver.url()));
            CHECK(r.status == 200);
            auto answer = read_subscribe_response(r, 300s);
            REQUIRE(answer.ok());
            CHECK(answer->sid.rfind("uuid:", 0) == 0);
            CHECK(answer->sid.size() == 41);
            CHECK(answer->timeout.seconds == 300s);
            CHECK(r.headers.get("SERVER").has_value());
            CHECK(r.headers.get("Content-Length") == "0");
            Notify n = co_await receiver.next();
            CHECK(n.sid == answer->sid);
            CHECK(n.seq == 0);
            CHECK(n.nt == "upnp:event");
            CHECK(n.nts == "upnp:propchange");
            CHECK(n.properties.variables().at("Volume") == "20");
            CHECK(n.properties.variables().at("Mute") == "0");
            CHECK(publisher.subscriber_count() == 1);
            co_await publisher.idle();
            co_await publisher.stop();
        };
        run(loop, test());
        CHECK(publisher.stats().subscribes == 1);
        CHECK(publisher.stats().notifies_sent == 1);
        run(loop, receiver.server().stop());
    }
}
