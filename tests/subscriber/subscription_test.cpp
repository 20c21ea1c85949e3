#include "uvgena/subscriber/subscription.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/gena_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/net/tcp.hpp"
#include "uvgena/subscriber/listener.hpp"

using namespace uvgena;
using namespace std::chrono_literals;
using gena_test::loopback;
using gena_test::ScriptedDevice;

namespace {

// Awaits the next event with a time limit, so that a missing event fails instead of hanging.
Task<std::optional<Event>> next_event(uv_loop_t* loop, Subscription& sub,
                                      std::chrono::milliseconds limit = 5s) {
    co_return co_await with_timeout(
        loop,
        [](Subscription& s) -> Task<std::optional<Event>> {
            co_return co_await s.events().next();
        }(sub),
        limit);
}

// The variables of an event (outside co_await: GCC 12 miscompiles braced lists there).
std::vector<std::pair<std::string, std::string>> vars(
    std::initializer_list<std::pair<std::string, std::string>> list) {
    return list;
}

// Polls `done` every few milliseconds until it holds or `limit` passes; returns it.
template <typename Pred>
Task<bool> eventually(uv_loop_t* loop, Pred done, std::chrono::milliseconds limit = 5s) {
    auto deadline = Clock::now() + limit;
    while (!done()) {
        if (Clock::now() >= deadline) co_return false;
        co_await sleep_for(loop, 5ms);
    }
    co_return true;
}

// Sends a raw request to the listener and returns the status.
Task<int> raw_request(uv_loop_t* loop, const EventListener& listener, http::Request request) {
    auto address = SocketAddress::ipv4_loopback(listener.port());
    auto response = co_await http::try_send(loop, address, std::move(request));
    co_return response ? response->status : 0;
}

http::Request notify_request(const std::string& target, const std::string& sid,
                             const std::string& seq, std::string body) {
    http::Request r;
    r.method = "NOTIFY";
    r.target = target;
    r.headers.add("Host", "127.0.0.1");
    r.headers.add("Content-Type", "text/xml");
    r.headers.add("NT", "upnp:event");
    r.headers.add("NTS", "upnp:propchange");
    if (!sid.empty()) r.headers.add("SID", sid);
    if (!seq.empty()) r.headers.add("SEQ", seq);
    r.body = std::move(body);
    return r;
}

std::string path_of(const std::string& url) {
    return http::Url::parse(url).target();
}

}  // namespace

TEST_SUITE("gena.subscription") {
    TEST_CASE("subscribe, receive the initial event and the next one, then unsubscribe") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
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
            CHECK(sub.callback_url().starts_with(
                "http://127.0.0.1:" + std::to_string(listener.port()) + "/uvgena/"));

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

    TEST_CASE("a short granted timeout is renewed before it expires") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(
                l, device.event_url(),
                {.requested_timeout = 1s, .auto_renew = true, .listener = &listener});
            CHECK(sub.timeout() == gena::Timeout{false, 1s});
            auto left = sub.time_left();
            REQUIRE(left);
            CHECK(*left <= 1000ms);
            CHECK(*left > 0ms);
            // Two renewals means the first one was made before the grant ran out and the
            // second followed from the renewed grant. (The client counts a renewal when the
            // answer arrives, after the device counted it.)
            CHECK(co_await eventually(
                l, [&] { return device.renewals >= 2 && sub.stats().renewals >= 2; }));
            CHECK(sub.is_subscribed());
            CHECK(sub.stats().renewals >= 2);
            CHECK(sub.stats().renewal_failures == 0);
            auto volume = vars({{"Volume", "30"}});
            co_await device.notify_all(volume);
            CHECK((co_await next_event(l, sub))->seq == 0);
            CHECK((co_await next_event(l, sub))->variables().at("Volume") == "30");
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("a renewal answered 412 ends the subscription with that error") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.renew_status = 412;
            EventListener listener(l, loopback());
            int failures = 0;
            std::error_code seen;
            SubscriptionHandlers handlers;
            handlers.on_renew_failed = [&](const Error& e) {
                ++failures;
                seen = e.code();
            };
            Subscription sub = co_await subscribe(
                l, device.event_url(),
                {.requested_timeout = 1s, .auto_renew = true, .listener = &listener},
                std::move(handlers));
            CHECK((co_await next_event(l, sub))->seq == 0);
            bool threw = false;
            try {
                (void)co_await next_event(l, sub);
            } catch (const Error& e) {
                threw = true;
                CHECK(e.code() == gena::errc::precondition_failed);
            }
            CHECK(threw);
            CHECK(failures == 1);
            CHECK(seen == gena::errc::precondition_failed);
            CHECK_FALSE(sub.is_subscribed());
            CHECK(sub.error() == gena::errc::precondition_failed);
            CHECK(listener.subscription_count() == 0);
            co_await sub.unsubscribe();  // nothing left to do
            CHECK(device.unsubscribes == 0);
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE(
        "a renewal answered after the grant ran out and the subscription was replaced does "
        "not bring the old SID back (a process paused past its grant, a slow device)") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.renew_delay = 700ms;  // the renewal at 75-85% of 1 s is answered after expiry
            EventListener listener(l, loopback());
            std::string new_sid;
            SubscriptionHandlers handlers;
            handlers.on_resubscribe = [&](const std::string&, const std::string& n) {
                new_sid = n;
            };
            Subscription sub = co_await subscribe(l, device.event_url(),
                                                  {.requested_timeout = 1s,
                                                   .auto_renew = true,
                                                   .auto_resubscribe = true,
                                                   .listener = &listener,
                                                   .timeout = 3s,
                                                   .backoff = {.initial = 20ms, .max = 100ms}},
                                                  std::move(handlers));
            std::string first_sid = sub.sid();
            // Only the first renewal is slow.
            CHECK(co_await eventually(l, [&] { return device.renewals >= 1; }));
            device.renew_delay = 0ms;
            CHECK(co_await eventually(l, [&] { return !new_sid.empty(); }));
            CHECK(new_sid != first_sid);
            // The late renewal answer (for the first SID) arrives: the subscription keeps the
            // new SID and gives the renewed old one back to the device.
            CHECK(co_await eventually(l, [&] { return device.unsubscribes >= 1; }));
            CHECK(sub.sid() == new_sid);
            REQUIRE(device.subscriptions.size() == 1);
            CHECK(device.subscriptions[0].sid == new_sid);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("a renewal answered 412 resubscribes when auto_resubscribe is on") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.renew_status = 412;
            EventListener listener(l, loopback());
            std::string old_sid, new_sid;
            SubscriptionHandlers handlers;
            handlers.on_resubscribe = [&](const std::string& o, const std::string& n) {
                old_sid = o;
                new_sid = n;
            };
            Subscription sub = co_await subscribe(l, device.event_url(),
                                                  {.requested_timeout = 1s,
                                                   .auto_renew = true,
                                                   .auto_resubscribe = true,
                                                   .listener = &listener,
                                                   .backoff = {.initial = 20ms, .max = 100ms}},
                                                  std::move(handlers));
            std::string first_sid = sub.sid();
            std::optional<Event> first = co_await next_event(l, sub);
            REQUIRE(first);
            CHECK(first->sid == first_sid);
            // The new subscription's initial event (SEQ 0 again) arrives on the same stream.
            std::optional<Event> again = co_await next_event(l, sub);
            REQUIRE(again);
            CHECK(again->seq == 0);
            CHECK(again->sid != first_sid);
            CHECK(again->seq_status == gena::SeqStatus::ok);
            CHECK(again->resubscribed);
            CHECK_FALSE(first->resubscribed);
            CHECK(co_await eventually(l, [&] { return !new_sid.empty(); }));
            CHECK(old_sid == first_sid);
            CHECK(new_sid == sub.sid());
            CHECK(again->sid == sub.sid());
            CHECK(sub.stats().resubscriptions == 1);
            CHECK(device.subscribes == 2);
            CHECK(sub.is_subscribed());
            co_await sub.unsubscribe();
            CHECK(device.subscriptions.empty());
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE(
        "when the device is gone the auto_renew_fail handler is called and the "
        "subscription ends at expiry") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            auto device = std::make_unique<ScriptedDevice>(l);
            EventListener listener(l, loopback());
            std::vector<std::error_code> failures;
            SubscriptionHandlers handlers;
            handlers.on_renew_failed = [&](const Error& e) { failures.push_back(e.code()); };
            Subscription sub =
                co_await subscribe(l, device->event_url(),
                                   {.requested_timeout = 1s,
                                    .auto_renew = true,
                                    .listener = &listener,
                                    .backoff = {.initial = 50ms, .max = 50ms, .jitter = 0.0}},
                                   std::move(handlers));
            CHECK((co_await next_event(l, sub))->seq == 0);
            co_await device->stop();
            device.reset();
            bool threw = false;
            try {
                (void)co_await next_event(l, sub, 5s);
            } catch (const Error& e) {
                threw = true;
                CHECK(e.code() == uvgena::errc::timed_out);
                CHECK(std::string(e.what()).find("expired") != std::string::npos);
            }
            CHECK(threw);
            REQUIRE_FALSE(failures.empty());
            CHECK(failures.front() == std::errc::connection_refused);
            CHECK(sub.stats().renewal_failures == failures.size());
            CHECK_FALSE(sub.is_subscribed());
            CHECK(sub.time_left() == 0ms);
            co_await listener.stop();
        }(loop));
    }

    TEST_CASE("automatic renewals of a listener are bounded in flight and all succeed") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.renew_delay = 50ms;
            ListenerOptions lo = loopback();
            lo.max_renewals_in_flight = 2;
            EventListener listener(l, lo);
            std::vector<Subscription> subs;
            for (int i = 0; i < 6; ++i) {
                subs.push_back(co_await subscribe(
                    l, device.event_url(),
                    {.requested_timeout = 3s, .auto_renew = true, .listener = &listener}));
            }
            CHECK(co_await eventually(
                l, [&] { return device.renewals >= 6; }, 10s));
            CHECK(device.max_renewals_in_progress >= 1);
            CHECK(device.max_renewals_in_progress <= 2);
            CHECK(co_await eventually(l, [&] {
                for (auto& s : subs) {
                    if (s.stats().renewals == 0) return false;
                }
                return true;
            }));
            for (auto& s : subs) {
                CHECK(s.is_subscribed());
                CHECK(s.stats().renewal_failures == 0);
            }
            for (auto& s : subs) co_await s.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE(
        "a grant that expires while its renewal is in flight counts as a failed "
        "renewal") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.renew_delay = 3s;
            EventListener listener(l, loopback());
            std::vector<std::error_code> failures;
            SubscriptionHandlers handlers;
            handlers.on_renew_failed = [&](const Error& e) { failures.push_back(e.code()); };
            Subscription sub = co_await subscribe(
                l, device.event_url(),
                {.requested_timeout = 1s, .auto_renew = true, .listener = &listener},
                std::move(handlers));
            CHECK((co_await next_event(l, sub))->seq == 0);
            bool threw = false;
            try {
                (void)co_await next_event(l, sub, 5s);
            } catch (const Error& e) {
                threw = true;
                CHECK(e.code() == uvgena::errc::timed_out);
            }
            CHECK(threw);
            REQUIRE(failures.size() == 1);
            CHECK(failures.front() == uvgena::errc::timed_out);
            CHECK(sub.stats().renewal_failures == 1);
            CHECK(sub.stats().renewals == 0);
            CHECK_FALSE(sub.is_subscribed());
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE(
        "NOTIFYs that overtake the SUBSCRIBE answer are held and delivered in SEQ "
        "order") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.seqs_before_answer = {1, 0};
            device.foreign_before_answer = true;
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(l, device.event_url(), {.listener = &listener});
            // Every NOTIFY was answered 200 before the SUBSCRIBE answer existed.
            CHECK(device.notify_statuses == std::vector<int>{200, 200, 200});
            std::optional<Event> a = co_await next_event(l, sub);
            std::optional<Event> b = co_await next_event(l, sub);
            REQUIRE(a);
            REQUIRE(b);
            CHECK(a->seq == 0);
            CHECK(b->seq == 1);
            CHECK(a->sid == sub.sid());
            CHECK(b->seq_status == gena::SeqStatus::ok);
            CHECK(listener.stats().held == 3);
            CHECK(listener.stats().held_dropped == 1);  // the foreign SID
            CHECK(sub.events().size() == 0);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("a SEQ gap is flagged on the event and counted") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(l, device.event_url(), {.listener = &listener});
            CHECK((co_await next_event(l, sub))->seq == 0);
            auto& ds = device.subscriptions.at(0);
            std::string body = ScriptedDevice::body_of(device.variables);
            CHECK(co_await device.notify(ds, body, 3u) == 200);
            CHECK(co_await device.notify(ds, body, 3u) == 200);  // duplicate: counted only
            CHECK(co_await device.notify(ds, body, 0u) == 200);  // reset
            std::optional<Event> gap = co_await next_event(l, sub);
            REQUIRE(gap);
            CHECK(gap->seq == 3);
            CHECK(gap->seq_status == gena::SeqStatus::gap);
            CHECK(gap->seq_gap());
            CHECK(gap->missed == 2);
            std::optional<Event> reset = co_await next_event(l, sub);
            REQUIRE(reset);
            CHECK(reset->seq_status == gena::SeqStatus::reset);
            CHECK(sub.stats().events_missed == 2);
            CHECK(sub.stats().duplicates == 1);
            CHECK(sub.stats().seq_resets == 1);
            CHECK(sub.stats().events_received == 4);
            CHECK(sub.stats().events_delivered == 3);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("duplicates are delivered flagged when asked for") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(
                l, device.event_url(), {.listener = &listener, .deliver_duplicates = true});
            CHECK((co_await next_event(l, sub))->seq == 0);
            auto& ds = device.subscriptions.at(0);
            co_await device.notify(ds, ScriptedDevice::body_of(device.variables), 0u);
            std::optional<Event> dup = co_await next_event(l, sub);
            REQUIRE(dup);
            CHECK(dup->seq_status == gena::SeqStatus::duplicate);
            CHECK(dup->seq_order == gena::SeqOrder::duplicate);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("a gap resubscribes when resubscribe_on_gap is on") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(
                l, device.event_url(), {.listener = &listener, .resubscribe_on_gap = true});
            std::string first_sid = sub.sid();
            CHECK((co_await next_event(l, sub))->seq == 0);
            co_await device.notify(device.subscriptions.at(0),
                                   ScriptedDevice::body_of(device.variables), 5u);
            CHECK((co_await next_event(l, sub))->seq_status == gena::SeqStatus::gap);
            std::optional<Event> fresh = co_await next_event(l, sub);
            REQUIRE(fresh);
            CHECK(fresh->seq == 0);
            CHECK(fresh->sid != first_sid);
            CHECK(sub.stats().resubscriptions == 1);
            // The old subscription is given up on the device.
            CHECK(co_await eventually(l, [&] { return device.unsubscribes == 1; }));
            CHECK(device.subscriptions.size() == 1);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("a taken port makes the listener use the next free one") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            TcpListener blocker = TcpListener::bind(l, SocketAddress::ipv4_loopback(0));
            std::uint16_t taken = blocker.port();
            ListenerOptions options = loopback();
            options.port = taken;
            EventListener listener(l, options);
            listener.start();
            CHECK(listener.port() > taken);
            CHECK(listener.port() <= taken + 100);
            ScriptedDevice device(l);
            Subscription sub = co_await subscribe(l, device.event_url(), {.listener = &listener});
            CHECK(sub.callback_url().find(":" + std::to_string(listener.port()) + "/") !=
                  std::string::npos);
            CHECK((co_await next_event(l, sub))->seq == 0);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
            blocker.close();
        }(loop));
    }

    TEST_CASE("a listener with no free port in its range fails clearly") {
        uvtest::TestLoop loop;
        TcpListener blocker = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        ListenerOptions options = loopback();
        options.port = blocker.port();
        options.port_range = 0;
        EventListener listener(loop, options);
        CHECK_THROWS_AS(listener.start(), Error);
        CHECK_FALSE(listener.running());
        blocker.close();
    }

    TEST_CASE("two subscriptions to two devices share one listener") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice a(l), b(l);
            b.variables = {{"TransportState", "STOPPED"}};
            EventListener listener(l, loopback());
            Subscription sa = co_await subscribe(l, a.event_url(), {.listener = &listener});
            Subscription sb = co_await subscribe(l, b.event_url(), {.listener = &listener});
            CHECK(listener.subscription_count() == 2);
            CHECK(sa.callback_url() != sb.callback_url());
            CHECK((co_await next_event(l, sa))->variables().at("Volume") == "10");
            CHECK((co_await next_event(l, sb))->variables().at("TransportState") == "STOPPED");
            auto playing = vars({{"TransportState", "PLAYING"}});
            auto volume = vars({{"Volume", "12"}});
            co_await b.notify_all(playing);
            co_await a.notify_all(volume);
            std::optional<Event> eb = co_await next_event(l, sb);
            std::optional<Event> ea = co_await next_event(l, sa);
            CHECK(eb->variables().at("TransportState") == "PLAYING");
            CHECK(eb->service == b.event_url());
            CHECK(ea->variables().at("Volume") == "12");
            CHECK(ea->service == a.event_url());
            CHECK(listener.stats().notifications == 4);
            co_await sa.unsubscribe();
            co_await sb.unsubscribe();
            co_await listener.stop();
            co_await a.stop();
            co_await b.stop();
        }(loop));
    }

    TEST_CASE("a NOTIFY after unsubscribe is answered 412") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(l, device.event_url(), {.listener = &listener});
            CHECK((co_await next_event(l, sub))->seq == 0);
            gena_test::DeviceSubscription stale = device.subscriptions.at(0);
            co_await sub.unsubscribe();
            CHECK(co_await device.notify(stale, ScriptedDevice::body_of(device.variables)) == 412);
            CHECK(listener.stats().unknown == 1);
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("the listener answers 412 to unknown paths and SIDs and 400 to bad headers") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(l, device.event_url(), {.listener = &listener});
            CHECK((co_await next_event(l, sub))->seq == 0);
            std::string path = path_of(sub.callback_url());
            std::string body = ScriptedDevice::body_of(device.variables);
            CHECK(co_await raw_request(l, listener,
                                       notify_request("/nowhere", sub.sid(), "1", body)) == 412);
            CHECK(co_await raw_request(l, listener,
                                       notify_request("/uvgena/1", sub.sid(), "1", body)) == 412);
            CHECK(co_await raw_request(l, listener,
                                       notify_request(path, "uuid:other", "1", body)) == 412);
            CHECK(co_await raw_request(l, listener, notify_request(path, sub.sid(), "x1", body)) ==
                  400);
            http::Request no_nt = notify_request(path, sub.sid(), "1", body);
            no_nt.headers.remove("NT");
            CHECK(co_await raw_request(l, listener, no_nt) == 400);
            http::Request get = notify_request(path, sub.sid(), "1", body);
            get.method = "GET";
            CHECK(co_await raw_request(l, listener, get) == 405);
            CHECK(listener.stats().unknown == 3);
            CHECK(listener.stats().bad_requests == 3);
            // A body that does not parse is accepted and reported on the event.
            CHECK(co_await raw_request(
                      l, listener, notify_request(path, sub.sid(), "1", "<propertyset")) == 200);
            std::optional<Event> broken = co_await next_event(l, sub);
            REQUIRE(broken);
            CHECK(broken->seq == 1);
            CHECK(broken->parse_error);
            CHECK(broken->variables().empty());
            CHECK(sub.stats().parse_errors == 1);
            CHECK(listener.stats().parse_errors == 1);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE(
        "stopping the listener unsubscribes live subscriptions and the loop closes "
        "clean") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice a(l), b(l);
            EventListener listener(l, loopback());
            Subscription sa = co_await subscribe(
                l, a.event_url(),
                {.requested_timeout = 60s, .auto_renew = true, .listener = &listener});
            Subscription sb = co_await subscribe(l, b.event_url(), {.listener = &listener});
            CHECK((co_await next_event(l, sa))->seq == 0);
            co_await listener.stop();
            CHECK_FALSE(listener.running());
            CHECK(a.unsubscribes == 1);
            CHECK(b.unsubscribes == 1);
            CHECK_FALSE(sa.is_subscribed());
            CHECK_FALSE(sb.is_subscribed());
            CHECK_FALSE(co_await sa.events().next());
            // sb's initial event may have arrived before the stop: drain, then the end.
            while (co_await sb.events().next()) {
            }
            co_await listener.stop();  // idempotent
            co_await a.stop();
            co_await b.stop();
        }(loop));
    }

    TEST_CASE(
        "a destroyed subscription unregisters at once and unsubscribes in the "
        "background") {
        uvtest::TestLoop loop;
        ScriptedDevice device(loop);
        EventListener listener(loop, loopback());
        {
            Subscription sub = run(
                loop, [](uv_loop_t* l, ScriptedDevice& d, EventListener& li) -> Task<Subscription> {
                    co_return co_await subscribe(l, d.event_url(), {.listener = &li});
                }(loop, device, listener));
            CHECK(listener.subscription_count() == 1);
        }
        CHECK(listener.subscription_count() == 0);
        run(loop, [](uv_loop_t* l, ScriptedDevice& d) -> Task<void> {
            CHECK(co_await eventually(l, [&] { return d.unsubscribes == 1; }));
        }(loop, device));
        run(loop, [](EventListener& li, ScriptedDevice& d) -> Task<void> {
            co_await li.stop();
            co_await d.stop();
        }(listener, device));
    }

    TEST_CASE("events go to a callback after the NOTIFY was answered") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            std::vector<std::uint32_t> seqs;
            SubscriptionHandlers handlers;
            handlers.on_event = [&](Event e) { seqs.push_back(e.seq); };
            Subscription sub = co_await subscribe(l, device.event_url(), {.listener = &listener},
                                                  std::move(handlers));
            CHECK(co_await eventually(l, [&] { return seqs.size() == 1; }));
            auto v = vars({{"Volume", "1"}});
            co_await device.notify_all(v);
            CHECK(co_await eventually(l, [&] { return seqs.size() == 2; }));
            CHECK(seqs == std::vector<std::uint32_t>{0, 1});
            CHECK(sub.events().size() == 0);
            // Back to the queue, then to a new callback that gets the queued event first.
            sub.set_callback({});
            co_await device.notify_all(v);
            CHECK(co_await eventually(l, [&] { return sub.events().size() == 1; }));
            std::vector<std::uint32_t> later;
            sub.set_callback([&](Event e) { later.push_back(e.seq); });
            co_await device.notify_all(v);
            CHECK(co_await eventually(l, [&] { return later.size() == 2; }));
            CHECK(later == std::vector<std::uint32_t>{2, 3});
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("with check_source, NOTIFYs from another address are refused") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(l, device.event_url(),
                                                  {.listener = &listener, .check_source = true});
            CHECK((co_await next_event(l, sub))->seq == 0);
            device.send_from = SocketAddress::parse("127.0.0.2", 0);
            std::string body = ScriptedDevice::body_of(device.variables);
            CHECK(co_await device.notify(device.subscriptions.at(0), body) == 412);
            CHECK(listener.stats().wrong_source == 1);
            device.send_from.reset();
            CHECK(co_await device.notify(device.subscriptions.at(0), body, 1u) == 200);
            CHECK((co_await next_event(l, sub))->seq == 1);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("the watchdog reports a silent subscription and can resubscribe") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.initial_event = false;  // as if the callback address were unreachable
            EventListener listener(l, loopback());
            int silences = 0;
            SubscriptionHandlers handlers;
            handlers.on_silence = [&](std::chrono::milliseconds) { ++silences; };
            Subscription sub = co_await subscribe(
                l, device.event_url(),
                {.listener = &listener, .silence_timeout = 100ms, .resubscribe_on_silence = true},
                std::move(handlers));
            // The device counts the second SUBSCRIBE when it reads it, the subscription its
            // resubscription when the answer is in: wait for both.
            CHECK(co_await eventually(l, [&] {
                return silences >= 1 && device.subscribes >= 2 &&
                       sub.stats().resubscriptions >= 1;
            }));
            CHECK(sub.stats().silences >= 1);
            CHECK(sub.stats().resubscriptions >= 1);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("explicit renewal adopts a changed SID") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.renew_new_sid = true;
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(
                l, device.event_url(), {.requested_timeout = 100s, .listener = &listener});
            CHECK((co_await next_event(l, sub))->seq == 0);
            std::string before = sub.sid();
            co_await sub.renew(200s);
            CHECK(sub.sid() != before);
            CHECK(sub.sid() == device.subscriptions.at(0).sid);
            CHECK(sub.timeout() == gena::Timeout{false, 200s});
            CHECK(sub.stats().renewals == 1);
            // Events with the new SID are accepted, the old SID is refused.
            std::string body = ScriptedDevice::body_of(device.variables);
            CHECK(co_await device.notify(device.subscriptions.at(0), body, 0u) == 200);
            CHECK((co_await next_event(l, sub))->sid == sub.sid());
            CHECK(co_await device.send(device.subscriptions.at(0).callback, before, 1, body) ==
                  412);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("refusals and unreachable devices fail subscribe with a clear error") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.subscribe_status = 500;
            EventListener listener(l, loopback());
            try {
                (void)co_await subscribe(l, device.event_url(), {.listener = &listener});
                FAIL("subscribe succeeded");
            } catch (const Error& e) {
                CHECK(e.code() == gena::errc::server_error);
                CHECK(std::string(e.what()).find("subscribe to " + device.event_url()) == 0);
                CHECK(std::string(e.what()).find("500") != std::string::npos);
            }
            CHECK(listener.subscription_count() == 0);
            std::uint16_t port = device.port();
            co_await device.stop();
            try {
                (void)co_await subscribe(l, "http://127.0.0.1:" + std::to_string(port) + "/e",
                                         {.listener = &listener});
                FAIL("subscribe succeeded");
            } catch (const Error& e) {
                CHECK(e.code() == std::errc::connection_refused);
            }
            try {
                (void)co_await subscribe(l, "nope", {.listener = &listener});
                FAIL("subscribe succeeded");
            } catch (const Error& e) {
                CHECK(e.code() == http::errc::bad_url);
            }
            CHECK(listener.subscription_count() == 0);
            co_await listener.stop();
        }(loop));
    }

    TEST_CASE(
        "the loop's shared listener starts on first use and closes with its last "
        "subscription") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            Subscription a = co_await subscribe(l, device.event_url());
            Subscription b = co_await subscribe(l, device.event_url());
            CHECK(a.callback_url().substr(0, a.callback_url().rfind('/')) ==
                  b.callback_url().substr(0, b.callback_url().rfind('/')));
            CHECK((co_await next_event(l, a))->seq == 0);
            CHECK((co_await next_event(l, b))->seq == 0);
            co_await a.unsubscribe();
            co_await b.unsubscribe();
            a = Subscription();
            b = Subscription();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("the example of the design compiles as written") {
        // Compiled, not run: it needs a device at that address.
        auto watch = [](uv_loop_t* loop) -> Task<> {
            auto sub = co_await uvgena::subscribe(
                loop, "http://192.168.1.20:1400/MediaRenderer/RenderingControl/Event",
                {.requested_timeout = std::chrono::seconds(600), .auto_renew = true});
            while (auto event = co_await sub.events().next()) {
                (void)event->seq;
                (void)event->variables().at("Volume");
            }
        };
        (void)watch;
    }

    TEST_CASE("an IPv6 device gets a bracketed IPv6 callback URL from a dual-stack listener") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            std::unique_ptr<ScriptedDevice> device;
            try {
                device = std::make_unique<ScriptedDevice>(l, SocketAddress::ipv6_loopback(0));
            } catch (const Error& e) {
                MESSAGE("no IPv6 loopback here, test not run: " << e.what());
                co_return;
            }
            ListenerOptions options;
            options.port = 0;  // every interface, dual stack
            EventListener listener(l, options);
            Subscription sub = co_await subscribe(l, device->event_url(), {.listener = &listener});
            CHECK(sub.callback_url().starts_with("http://[::1]:" + std::to_string(listener.port()) +
                                                 "/uvgena/"));
            std::optional<Event> first = co_await next_event(l, sub);
            REQUIRE(first);
            CHECK(first->seq == 0);
            co_await sub.unsubscribe();
            CHECK(device->unsubscribes == 1);
            co_await listener.stop();
            co_await device->stop();
        }(loop));
    }

    TEST_CASE("an advertised host and port go into the CALLBACK URL") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener probe(l, loopback());
            probe.start();
            ListenerOptions options = loopback();
            options.advertise_host = "::1";
            options.advertise_port = 8080;
            EventListener advertised(l, options);
            Subscription sub = co_await subscribe(l, device.event_url(), {.listener = &advertised});
            CHECK(sub.callback_url().starts_with("http://[::1]:8080/uvgena/"));
            CHECK(device.callbacks_seen.at(0).starts_with("<http://[::1]:8080/uvgena/"));
            co_await sub.unsubscribe();
            co_await advertised.stop();
            co_await probe.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE(
        "a full queue drops the oldest events, counted, and raw bodies are kept on "
        "request") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub =
                co_await subscribe(l, device.event_url(),
                                   {.listener = &listener, .queue_capacity = 2, .keep_body = true});
            CHECK(co_await eventually(l, [&] { return sub.events().size() == 1; }));
            for (int i = 1; i <= 3; ++i) {
                auto v = vars({{"Volume", std::to_string(i)}});
                co_await device.notify_all(v);
            }
            CHECK(sub.events().size() == 2);
            CHECK(sub.stats().events_dropped == 2);
            CHECK(sub.stats().events_received == 4);
            std::optional<Event> a = sub.events().try_next();
            std::optional<Event> b = sub.events().try_next();
            REQUIRE(a);
            REQUIRE(b);
            CHECK(a->seq == 2);
            CHECK(b->seq == 3);
            CHECK(b->body.find("<Volume>3</Volume>") != std::string::npos);
            CHECK_FALSE(sub.events().try_next());
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("subscriptions to one URL with different options each keep their own") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            // Equal options are shared between subscriptions internally; these differ only in
            // the queue's capacity and the raw body, which must stay per subscription.
            Subscription small = co_await subscribe(l, device.event_url(),
                                                    {.listener = &listener, .queue_capacity = 1});
            Subscription large =
                co_await subscribe(l, device.event_url(),
                                   {.listener = &listener, .queue_capacity = 8, .keep_body = true});
            Subscription same = co_await subscribe(l, device.event_url(),
                                                   {.listener = &listener, .queue_capacity = 1});
            CHECK(co_await eventually(l, [&] {
                return small.events().size() == 1 && large.events().size() == 1 &&
                       same.events().size() == 1;
            }));
            auto v = vars({{"Volume", "7"}});
            co_await device.notify_all(v);
            CHECK(small.events().size() == 1);
            CHECK(small.stats().events_dropped == 1);
            CHECK(same.stats().events_dropped == 1);
            CHECK(large.events().size() == 2);
            CHECK(large.stats().events_dropped == 0);
            std::optional<Event> s = small.events().try_next();
            REQUIRE(s);
            CHECK(s->seq == 1);
            CHECK(s->body.empty());
            (void)large.events().try_next();
            std::optional<Event> g = large.events().try_next();
            REQUIRE(g);
            CHECK(g->body.find("<Volume>7</Volume>") != std::string::npos);
            CHECK(small.service_url() == large.service_url());
            co_await small.unsubscribe();
            co_await large.unsubscribe();
            co_await same.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("a queue that rejects new events keeps the oldest") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            Subscription sub = co_await subscribe(
                l, device.event_url(),
                {.listener = &listener, .queue_capacity = 1, .overflow = Overflow::reject_new});
            CHECK(co_await eventually(l, [&] { return sub.events().size() == 1; }));
            auto v = vars({{"Volume", "5"}});
            co_await device.notify_all(v);
            CHECK(sub.stats().events_dropped == 1);
            CHECK(sub.stats().events_delivered == 1);
            CHECK(sub.events().try_next()->seq == 0);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }
}
