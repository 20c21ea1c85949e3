// Event callbacks and handlers: the documented calling style is safe on g++ 12, no callback
// runs after its subscription ended, and leaving callback mode loses nothing silently.
// Run under ASan (build-asan) these also catch any use of a freed callback or owner.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "subscriber/subscription_impl.hpp"
#include "support/gena_device.hpp"
#include "support/peers.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;
using gena_test::loopback;
using gena_test::ScriptedDevice;

namespace {

// How long a condition may take before a test fails.
constexpr auto kWait = 5s;

// Lets the loop run a few turns (callback delivery happens from the loop's next check phase).
Task<void> a_few_turns(uv_loop_t* loop) {
    for (int i = 0; i < 5; ++i) co_await sleep_for(loop, 2ms);
}

// Longer than any small-string buffer, so that a freed copy is a freed heap block.
const std::string kTag = "a tag long enough to live on the heap, past the small-string buffer";

}  // namespace

// The options aggregate written inline inside co_await must own nothing (g++ 12 copies it
// byte for byte and destroys both copies); the handlers must not be writable as a braced
// list.
static_assert(std::is_trivially_copyable_v<SubscribeOptions>);
static_assert(std::is_trivially_destructible_v<SubscribeOptions>);
static_assert(!std::is_aggregate_v<SubscriptionHandlers>);

TEST_SUITE("gena.subscription.callbacks") {
    TEST_CASE("the README's inline style with a heap-owning callback keeps its captures") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            auto seen = std::make_shared<std::vector<std::string>>();
            std::string tag = kTag;
            // Exactly the README's form: options inline in the co_await, the callback set on
            // the subscription outside it.
            auto sub = co_await uvgena::subscribe(
                l, device.event_url(),
                {.requested_timeout = 300s, .auto_renew = true, .listener = &listener});
            sub.set_callback([seen, tag](uvgena::Event e) {
                seen->push_back(tag + "#" + std::to_string(e.seq));
            });
            tag.clear();  // the callback holds its own copy
            CHECK(co_await peers::eventually(
                l, [&] { return seen->size() == 1; }, kWait));
            REQUIRE(seen->size() == 1);
            CHECK(seen->front() == kTag + "#0");
            CHECK(seen.use_count() == 2);  // ours and the callback's: not freed, not leaked
            co_await sub.unsubscribe();
            CHECK(seen.use_count() == 1);  // the ended subscription let its callback go
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("handlers passed to subscribe() from a named variable keep their captures") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            auto seen = std::make_shared<std::vector<std::string>>();
            SubscriptionHandlers handlers;
            handlers.on_event = [seen, tag = kTag](Event e) {
                seen->push_back(tag + "#" + std::to_string(e.seq));
            };
            handlers.on_renew_failed = [seen, tag = kTag](const Error&) {
                seen->push_back(tag + " renewal failed");
            };
            auto sub = co_await uvgena::subscribe(l, device.event_url(), {.listener = &listener},
                                                  std::move(handlers));
            CHECK(co_await peers::eventually(
                l, [&] { return seen->size() == 1; }, kWait));
            REQUIRE(seen->size() == 1);
            CHECK(seen->front() == kTag + "#0");
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("no callback runs after the first one destroyed its subscription") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            // Two NOTIFYs overtake the SUBSCRIBE answer: both are accepted in the turn the
            // answer arrives, so two callbacks are queued before either runs.
            device.seqs_before_answer = {0, 1};
            EventListener listener(l, loopback());
            auto sub = std::make_unique<Subscription>();
            int calls = 0;
            SubscriptionHandlers handlers;
            handlers.on_event = [&](Event) {
                ++calls;
                sub.reset();  // drops the subscription from its own callback
            };
            *sub = co_await subscribe(l, device.event_url(), {.listener = &listener},
                                      std::move(handlers));
            co_await a_few_turns(l);
            CHECK(calls == 1);
            CHECK(co_await peers::eventually(
                l, [&] { return device.unsubscribes == 1; }, kWait));
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("no callback runs after the first one freed the object that owns it") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.seqs_before_answer = {0, 1};
            EventListener listener(l, loopback());
            // The usual shape: an object owns the subscription and the callback uses it by
            // pointer. Freeing it from the callback must be safe (ASan checks the rest).
            struct Owner {
                Subscription sub;
                std::vector<std::uint32_t> seqs;
            };
            auto owner = std::make_unique<Owner>();
            int calls = 0;
            Owner* raw = owner.get();
            std::unique_ptr<Owner>* slot = &owner;
            SubscriptionHandlers handlers;
            handlers.on_event = [raw, slot, &calls](Event e) {
                ++calls;
                raw->seqs.push_back(e.seq);  // a use after free if it ran after the reset
                slot->reset();
            };
            owner->sub = co_await subscribe(l, device.event_url(), {.listener = &listener},
                                            std::move(handlers));
            co_await a_few_turns(l);
            CHECK(calls == 1);
            CHECK(owner == nullptr);
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    // The handlers live in the subscription's core (issue 23), and a std::function keeps a
    // small trivially copyable callable in place: replacing the callback from inside it must
    // not overwrite the one running (its captures are read after the replacement here).
    TEST_CASE("a callback that replaces itself keeps its captures until it returns") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.seqs_before_answer = {0, 1};  // two events queued before either runs
            EventListener listener(l, loopback());
            std::vector<std::string> seen;
            auto token = std::make_shared<int>(1);
            Subscription sub = co_await subscribe(l, device.event_url(), {.listener = &listener});
            Subscription* self = &sub;
            // A callback owning heap memory, replaced from inside itself: freed once it ran.
            sub.set_callback([&seen, self, token](Event e) {
                self->set_callback(
                    [&seen](Event e2) { seen.push_back("C#" + std::to_string(e2.seq)); });
                seen.push_back("T" + std::to_string(*token) + "#" + std::to_string(e.seq));
            });
            CHECK(token.use_count() == 2);
            CHECK(co_await peers::eventually(
                l, [&] { return seen.size() == 2; }, kWait));
            CHECK(seen == std::vector<std::string>{"T1#0", "C#1"});
            CHECK(token.use_count() == 1);  // the replaced callback was destroyed after its call
            // One kept in place in the std::function (two captures of 8 bytes): A replaces
            // itself by B while it runs, then reads its own captures.
            seen.clear();
            sub.set_callback({});
            sub.set_callback([&seen, self](Event e) {
                self->set_callback([&seen, marker = std::uint64_t{0xB}](Event e2) {
                    seen.push_back("B" + std::to_string(marker) + "#" + std::to_string(e2.seq));
                });
                seen.push_back("A" + std::to_string(self == nullptr) + "#" + std::to_string(e.seq));
            });
            std::string body = ScriptedDevice::body_of(device.variables);
            REQUIRE(device.subscriptions.size() == 1);
            CHECK(co_await device.notify(device.subscriptions.at(0), body, 2u) == 200);
            CHECK(co_await device.notify(device.subscriptions.at(0), body, 3u) == 200);
            CHECK(co_await peers::eventually(
                l, [&] { return seen.size() == 2; }, kWait));
            CHECK(seen == std::vector<std::string>{"A0#2", "B11#3"});
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("a callback that drops its subscription keeps its captures until it returns") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            auto token = std::make_shared<std::string>(kTag);
            auto sub = std::make_unique<Subscription>();
            std::vector<std::string> seen;
            std::unique_ptr<Subscription>* slot = &sub;
            SubscriptionHandlers handlers;
            handlers.on_event = [&seen, slot, token](Event e) {
                slot->reset();  // ends the subscription: its handlers are dropped...
                // ...but not this one's captures while it runs.
                seen.push_back(*token + "#" + std::to_string(e.seq) + " " +
                               std::to_string(token.use_count()));
            };
            *sub = co_await subscribe(l, device.event_url(), {.listener = &listener},
                                      std::move(handlers));
            CHECK(co_await peers::eventually(
                l, [&] { return seen.size() == 1; }, kWait));
            CHECK(seen == std::vector<std::string>{kTag + "#0 2"});
            CHECK(sub == nullptr);
            CHECK(token.use_count() == 1);  // released once the call was over
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("no callback runs after unsubscribe, even for events accepted before") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.seqs_before_answer = {0, 1};
            EventListener listener(l, loopback());
            int calls = 0;
            SubscriptionHandlers handlers;
            handlers.on_event = [&](Event) { ++calls; };
            auto sub = co_await subscribe(l, device.event_url(), {.listener = &listener},
                                          std::move(handlers));
            // Both events are queued for the callback, not yet delivered.
            CHECK(calls == 0);
            co_await sub.unsubscribe();
            co_await a_few_turns(l);
            CHECK(calls == 0);
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("leaving callback mode puts undelivered events back in the queue, counted") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.seqs_before_answer = {0, 1};
            EventListener listener(l, loopback());
            int calls = 0;
            SubscriptionHandlers handlers;
            handlers.on_event = [&](Event) { ++calls; };
            auto sub = co_await subscribe(
                l, device.event_url(),
                {.listener = &listener, .queue_capacity = 1, .overflow = Overflow::drop_oldest},
                std::move(handlers));
            // Two events wait for the callback; back to queueing before they were delivered:
            // the queue holds one, the other is dropped and counted.
            sub.set_callback({});
            co_await a_few_turns(l);
            CHECK(calls == 0);
            CHECK(sub.events().size() == 1);
            CHECK(sub.stats().events_received == 2);
            CHECK(sub.stats().events_delivered == 2);
            CHECK(sub.stats().events_dropped == 1);
            std::optional<Event> kept = sub.events().try_next();
            REQUIRE(kept);
            CHECK(kept->seq == 1);  // drop_oldest kept the newer
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE("leaving callback mode keeps the order of events accepted before and after") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            device.seqs_before_answer = {0, 1};
            EventListener listener(l, loopback());
            int calls = 0;
            SubscriptionHandlers handlers;
            handlers.on_event = [&](Event) { ++calls; };
            auto sub = co_await subscribe(l, device.event_url(), {.listener = &listener},
                                          std::move(handlers));
            sub.set_callback({});
            // A NOTIFY accepted in the same turn, after leaving callback mode, comes after the
            // older two. Handed to the listener directly: over a socket it would arrive turns
            // later, after the delivery task ran, and could not show the order.
            http::Request notify;
            notify.method = "NOTIFY";
            notify.target = http::Url::parse(sub.callback_url()).target();
            notify.headers.add("Content-Type", "text/xml");
            notify.headers.add("NT", "upnp:event");
            notify.headers.add("NTS", "upnp:propchange");
            notify.headers.add("SID", sub.sid());
            notify.headers.add("SEQ", "2");
            notify.body = ScriptedDevice::body_of(device.variables);
            http::RequestContext context{SocketAddress::ipv4_loopback(9), listener.local_address()};
            http::Response answer =
                gena::detail::SubscriberAccess::impl(listener)->handle(notify, context);
            CHECK(answer.status == 200);
            co_await a_few_turns(l);
            CHECK(calls == 0);
            std::vector<std::uint32_t> seqs;
            while (std::optional<Event> e = sub.events().try_next()) seqs.push_back(e->seq);
            CHECK(seqs == std::vector<std::uint32_t>{0, 1, 2});
            CHECK(sub.stats().events_dropped == 0);
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }

    TEST_CASE(
        "a NOTIFY for an unknown SID is held while any of two overlapping renewals "
        "runs") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ScriptedDevice device(l);
            EventListener listener(l, loopback());
            auto sub = co_await subscribe(l, device.event_url(), {.listener = &listener});
            CHECK(co_await peers::eventually(
                l, [&] { return sub.events().size() == 1; }, kWait));
            (void)sub.events().try_next();
            REQUIRE(device.subscriptions.size() == 1);
            // A slow renewal (as an automatic one would be), then a quick one beside it.
            Scope renewals(l);
            bool slow_done = false;
            device.renew_delay = 400ms;
            renewals.spawn([](Subscription& s, bool& done) -> Task<void> {
                co_await s.renew();
                done = true;
            }(sub, slow_done));
            CHECK(co_await peers::eventually(
                l, [&] { return device.renewals_in_progress == 1; }, kWait));
            device.renew_delay = 0ms;
            co_await sub.renew();
            CHECK(sub.stats().renewals == 1);
            CHECK_FALSE(slow_done);
            // The slow answer may carry a new SID, and the device may use it before the answer
            // arrives: a NOTIFY for a SID we do not know yet is held (200), not refused (412).
            gena_test::DeviceSubscription future = device.subscriptions.at(0);
            future.sid = "uuid:a-sid-the-slow-answer-might-carry";
            std::string body = ScriptedDevice::body_of(device.variables);
            CHECK(co_await device.notify(future, body, 0u) == 200);
            CHECK(listener.stats().held == 1);
            co_await renewals.join();
            CHECK(slow_done);
            // The answer kept the old SID: the held NOTIFY was not ours after all.
            CHECK(listener.stats().held_dropped == 1);
            CHECK(sub.events().size() == 0);
            CHECK(sub.is_subscribed());
            co_await sub.unsubscribe();
            co_await listener.stop();
            co_await device.stop();
        }(loop));
    }
}
