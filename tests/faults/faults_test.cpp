// Device faults seen by a subscription, with uvgena's own Publisher as the device over real
// loopback sockets: the device reboots and forgets its SIDs, vanishes (connection refused,
// then a port that accepts and never answers), and comes back on the same or another port.
// Each case checks that the subscription notices, reports the fault (renewal-failure handler,
// counters, resubscription handler, or the end of its stream with the error), and that events
// flow again afterwards. Grants are short (2-3 s) and every exchange has a short time limit,
// so that each case takes a few seconds.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/peers.hpp"
#include "support/test_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/net/tcp.hpp"
#include "uvgena/publisher/publisher.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

// A device on 127.0.0.1 (a free port, kept across restarts) whose Volume is `volume`.
std::unique_ptr<uvtest::TestDevice> make_device(uv_loop_t* loop, std::string volume = "0") {
    gena::PublisherOptions o;
    o.policy.min_timeout = 1s;
    o.notify_timeout = 2s;
    o.notify_connect_timeout = 1s;
    return std::make_unique<uvtest::TestDevice>(loop, o, SocketAddress::ipv4_loopback(), "Volume",
                                                volume);
}

// What the subscription's handlers reported.
struct Reports {
    std::vector<std::error_code> renew_failures;
    std::vector<std::pair<std::string, std::string>> resubscribed;  // old SID, new SID
    std::vector<std::error_code> lost;  // on_lost: why each loss started a resubscription
};

// Options for a short-lived, self-healing subscription (handlers: reporting()).
SubscribeOptions healing(EventListener& listener) {
    SubscribeOptions o;
    o.listener = &listener;
    o.requested_timeout = 3s;
    o.auto_renew = true;
    o.auto_resubscribe = true;
    // Short enough to see timeouts quickly, long enough for a loaded machine under valgrind.
    o.timeout = 1s;
    o.backoff.initial = 100ms;
    o.backoff.max = 400ms;
    return o;
}

// Handlers that record renewal failures and resubscriptions in `reports`.
SubscriptionHandlers reporting(Reports& reports) {
    SubscriptionHandlers h;
    h.on_renew_failed = [&reports](const Error& e) { reports.renew_failures.push_back(e.code()); };
    h.on_resubscribe = [&reports](const std::string& old_sid, const std::string& new_sid) {
        reports.resubscribed.emplace_back(old_sid, new_sid);
    };
    h.on_lost = [&reports](const Error& e) { reports.lost.push_back(e.code()); };
    return h;
}

ListenerOptions loopback_listener() {
    ListenerOptions o;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    return o;
}

Task<Event> next_event(uv_loop_t* loop, Subscription& sub, std::chrono::milliseconds limit = 10s) {
    auto e = co_await with_timeout(
        loop,
        [](Subscription& s) -> Task<std::optional<Event>> {
            co_return co_await s.events().next();
        }(sub),
        limit);
    REQUIRE(e.has_value());
    co_return std::move(*e);
}

bool contains(const std::vector<std::error_code>& codes, std::error_code code) {
    for (const auto& c : codes) {
        if (c == code) return true;
    }
    return false;
}

// A change on `device` arrives at `sub` as the next event, in order.
Task<void> check_flow(uv_loop_t* loop, uvtest::TestDevice& device, Subscription& sub,
                      const std::string& value, std::uint32_t seq) {
    device.set(value);
    Event e = co_await next_event(loop, sub);
    CHECK(e.seq == seq);
    CHECK(e.seq_status == gena::SeqStatus::ok);
    CHECK(e.sid == sub.sid());
    CHECK_FALSE(e.resubscribed);  // only the first event after a resubscription is flagged
    CHECK(e.variables().at("Volume") == value);
}

}  // namespace

TEST_SUITE("faults") {
    TEST_CASE(
        "a device that reboots and forgets its SIDs answers the renewal 412: the "
        "subscription resubscribes, reports the new SID, and events flow again") {
        uvtest::TestLoop loop(30s);
        run(loop, [](uv_loop_t* l) -> Task<void> {
            EventListener listener(l, loopback_listener());
            Reports reports;
            auto device = make_device(l);
            Subscription sub =
                co_await subscribe(l, device->url(), healing(listener), reporting(reports));
            std::string first_sid = sub.sid();
            Event first = co_await next_event(l, sub);
            CHECK(first.seq == 0);
            CHECK_FALSE(first.resubscribed);  // the first subscription is no resubscription
            co_await check_flow(l, *device, sub, "1", 1);

            // Reboot: a new publisher on the same port, with no memory of the subscription.
            co_await device->restart("rebooted");
            CHECK(co_await peers::eventually(l, [&] { return !reports.resubscribed.empty(); }));
            REQUIRE(reports.resubscribed.size() == 1);
            CHECK(reports.resubscribed[0].first == first_sid);
            CHECK(reports.resubscribed[0].second == sub.sid());
            CHECK(sub.sid() != first_sid);
            CHECK(contains(reports.renew_failures, gena::errc::precondition_failed));
            CHECK(sub.stats().renewal_failures >= 1);
            CHECK(sub.stats().resubscriptions == 1);
            CHECK(sub.is_subscribed());
            // The loss was reported once, with its reason, before the recovery.
            REQUIRE(reports.lost.size() == 1);
            CHECK(reports.lost[0] == gena::errc::precondition_failed);
            // The new subscription starts over: its initial event carries the whole state,
            // and says so.
            Event initial = co_await next_event(l, sub);
            CHECK(initial.sid == sub.sid());
            CHECK(initial.seq == 0);
            CHECK(initial.resubscribed);
            CHECK(initial.variables().at("Volume") == "rebooted");
            co_await check_flow(l, *device, sub, "2", 1);
            CHECK(device->publisher().subscriber_count() == 1);
            co_await sub.unsubscribe();
            CHECK(device->publisher().subscriber_count() == 0);
            co_await listener.stop();
            co_await device->stop();
        }(loop));
    }

    TEST_CASE(
        "a device that vanishes (refused, then accepting and never answering) is "
        "reported and retried with backoff, and events flow when it is back") {
        // Resubscription attempts report through the log (the subscription is not subscribed
        // meanwhile); capture it.
        struct Attempt {
            Clock::time_point at;
            std::string message;
        };
        static std::vector<Attempt> attempts;
        attempts.clear();
        set_log_sink([](LogLevel, std::string_view message) {
            if (message.find("resubscription failed") != std::string_view::npos) {
                attempts.push_back({Clock::now(), std::string(message)});
            }
        });
        uvtest::TestLoop loop(40s);
        run(loop, [](uv_loop_t* l) -> Task<void> {
            EventListener listener(l, loopback_listener());
            Reports reports;
            auto device = make_device(l);
            SubscribeOptions options = healing(listener);
            options.requested_timeout = 2s;
            Subscription sub = co_await subscribe(l, device->url(), options, reporting(reports));
            CHECK((co_await next_event(l, sub)).seq == 0);

            // Gone: nothing listens on the port. The renewal (at 85% of the grant) and its
            // retries are refused and reported, then the grant runs out and the subscription
            // is lost and resubscribing.
            co_await device->stop();
            CHECK(co_await peers::eventually(l, [&] { return !sub.is_subscribed(); }));
            // Each refused renewal is reported, and so is the grant running out before one
            // succeeded (a timeout, counted as a renewal failure too).
            REQUIRE(reports.renew_failures.size() >= 2);
            for (std::size_t i = 0; i + 1 < reports.renew_failures.size(); ++i) {
                CHECK(reports.renew_failures[i] == uv_error(UV_ECONNREFUSED));
            }
            CHECK(reports.renew_failures.back() == make_error_code(uvgena::errc::timed_out));
            CHECK(sub.stats().renewal_failures == reports.renew_failures.size());
            CHECK(co_await peers::eventually(l, [&] { return !attempts.empty(); }));
            // Then something accepts on the port and never answers: attempts time out.
            auto hang = std::make_unique<peers::SilentPeer>(l, device->address());
            std::string timed_out = make_error_code(uvgena::errc::timed_out).message();
            auto timeouts = [&] {
                std::size_t n = 0;
                for (const auto& a : attempts) n += a.message.find(timed_out) != std::string::npos;
                return n;
            };
            CHECK(co_await peers::eventually(l, [&] { return timeouts() >= 2; }));
            CHECK(hang->connections() > 0);
            CHECK(sub.stats().resubscribe_failures == attempts.size());
            CHECK(attempts.front().message.find("connection refused") != std::string::npos);
            // Attempts are spaced by the backoff (at least 100 ms less 20% jitter), never a
            // busy loop.
            for (std::size_t i = 1; i < attempts.size(); ++i) {
                CHECK(attempts[i].at - attempts[i - 1].at >= 75ms);
            }
            CHECK(reports.resubscribed.empty());

            // Back on the same port.
            co_await hang->close();
            device->start("back");
            CHECK(co_await peers::eventually(l, [&] { return !reports.resubscribed.empty(); }));
            CHECK(sub.is_subscribed());
            CHECK(sub.stats().resubscriptions == 1);
            // Lost once (the grant ran out), however many attempts failed after.
            REQUIRE(reports.lost.size() == 1);
            CHECK(reports.lost[0] == make_error_code(uvgena::errc::timed_out));
            Event initial = co_await next_event(l, sub);
            CHECK(initial.seq == 0);
            CHECK(initial.resubscribed);
            CHECK(initial.variables().at("Volume") == "back");
            co_await check_flow(l, *device, sub, "1", 1);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device->stop();
        }(loop));
        set_log_sink({});
    }

    TEST_CASE(
        "a device back on another port: the subscription gives up after its attempts and "
        "ends with the error, and the application subscribes to the new URL") {
        // A subscription knows only its URL; the new one comes from discovery (ssdp
        // DeviceTracker reports the device's new LOCATION). Here the test plays discovery.
        uvtest::TestLoop loop(30s);
        run(loop, [](uv_loop_t* l) -> Task<void> {
            EventListener listener(l, loopback_listener());
            Reports reports;
            auto device = make_device(l);
            SubscribeOptions options = healing(listener);
            options.backoff.max_attempts = 3;
            Subscription sub = co_await subscribe(l, device->url(), options, reporting(reports));
            CHECK((co_await next_event(l, sub)).seq == 0);

            co_await device->stop();
            device = make_device(l, "moved");  // another free port
            // The application's consumer: the stream ends with the error once the
            // subscription gave up.
            std::error_code ended;
            try {
                while (co_await with_timeout(
                    l,
                    [](Subscription& s) -> Task<std::optional<Event>> {
                        co_return co_await s.events().next();
                    }(sub),
                    20s)) {
                }
            } catch (const Error& e) {
                ended = e.code();
            }
            CHECK(ended == uv_error(UV_ECONNREFUSED));
            CHECK(sub.error() == ended);
            CHECK_FALSE(sub.is_subscribed());
            CHECK_FALSE(reports.renew_failures.empty());
            CHECK(reports.resubscribed.empty());

            // Discovery found the device at its new address: subscribe again.
            Subscription moved =
                co_await subscribe(l, device->url(), healing(listener), reporting(reports));
            Event initial = co_await next_event(l, moved);
            CHECK(initial.seq == 0);
            CHECK(initial.variables().at("Volume") == "moved");
            co_await check_flow(l, *device, moved, "1", 1);
            co_await moved.unsubscribe();
            co_await listener.stop();
            co_await device->stop();
        }(loop));
    }
}
