#include "uvgena/gena/subscription.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/tcp.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/gena/listener.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/error.hpp"

using namespace uvgena;
using namespace std::chrono_literals;
using gena_test::TestDevice;

namespace {

ListenerOptions loopback() {
    ListenerOptions o;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    return o;
}

// Awaits the next event with a time limit, so that a missing event fails instead of hanging.
Task<std::optional<Event>> next_event(uv_loop_t* loop, Subscription& sub,
                                      std::chrono::milliseconds limit = 5s) {
    co_return co_await with_timeout(
        loop, [](Subscription& s) -> Task<std::optional<Event>> { co_return co_await s.events().next(); }(sub),
        limit);
}

// The variables of an event (outside co_await: GCC 12 miscompiles braced lists there).
std::vector<std::pair<std::string, std::string>> vars(
    std::initializer_list<std::pair<std::string, std::string>> list) {
    return list;
}

}  // namespace

TEST_SUITE("gena.subscription") {
    TEST_CASE("subscribe, receive the initial event and the next one, then unsubscribe") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            TestDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(
                l, device.event_url(), {.requested_timeout = 300s, .listener = &listener});
            CHECK(sub.is_subscribed());
            REQUIRE(device.subscriptions.size() == 1);
            CHECK(sub.sid() == device.subscriptions[0].sid);
            CHECK(sub.timeout() == gena::Timeout{false, 300s});
            CHECK(sub.service_url() == device.event_url());
            CHECK(device.timeouts_requested.at(0) == "Second-300");
            CHECK(device.callbacks_seen.at(0) == "<" + sub.callback_url() + ">");
            CHECK(sub.callback_url().starts_with("http://127.0.0.1:" +
                                                 std::to_string(listener.port()) + "/uvgena/"));

            std::optional<Event> first = co_await next_event(l, sub);
            REQUIRE(first);
            CHECK(first->seq == 0);
            CHECK(first->sid == sub.sid());
            CHECK(first->service == device.event_url());
            CHECK(first->seq_status == gena::SeqStatus::ok);
            CHECK(first->variables().at("Volume") == "10");

            auto volume11 = vars({{"Volume", "11"}});
            co_await device.notify_all(volume11);
            std::optional<Event> second = co_await next_event(l, sub);
            REQUIRE(second);
            CHECK(second->seq == 1);
            CHECK(second->variables().at("Volume") == "11");
            CHECK(sub.stats().events_received == 2);
            CHECK(sub.last_seq() == 1u);

            co_await sub.unsubscribe();
            CHECK(device.unsubscribes == 1);
            CHECK(device.subscriptions.empty());
            CHECK_FALSE(sub.is_subscribed());
            CHECK_FALSE(co_await sub.events().next());
            co_await sub.unsubscribe();  // harmless twice
            CHECK(device.unsubscribes == 1);
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }
}
