#include "uvgena/blocking/subscription.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "blocking_fixture.hpp"
#include "support/test_loop.hpp"
#include "uvgena/subscriber/listener.hpp"

using namespace uvgena;
using namespace std::chrono_literals;
using gena_test::ScriptedDevice;

using blocking_test::Fixture;

TEST_SUITE("blocking.subscription") {
    TEST_CASE("a blocking subscription receives events through get with a time limit") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        BlockingSubscription sub = f.bg.subscribe(f.url, f.options()).wait(10s);
        CHECK(sub.valid());
        CHECK(sub.is_subscribed());
        CHECK(sub.sid() ==
              f.on_device([](ScriptedDevice& d) { return d.subscriptions.at(0).sid; }));

        std::optional<Event> first = sub.events().get(10s);
        REQUIRE(first);
        CHECK(first->seq == 0);
        CHECK(first->variables().at("Volume") == "10");

        f.notify_volume("11");
        std::optional<Event> second = sub.events().get(10s);
        REQUIRE(second);
        CHECK(second->seq == 1);
        CHECK(second->variables().at("Volume") == "11");
        // Nothing else was sent: the time limit passes and nothing comes.
        CHECK_FALSE(sub.events().get(1ms).has_value());
        CHECK_FALSE(sub.events().ended());
        CHECK(sub.stats().events_received == 2);

        sub.unsubscribe().wait(10s);
        CHECK(f.on_device([](ScriptedDevice& d) { return d.unsubscribes; }) == 1);
        CHECK_FALSE(sub.events().get(10s).has_value());
        CHECK(sub.events().ended());
        CHECK_FALSE(sub.is_subscribed());
        sub.unsubscribe().wait(10s);  // harmless twice
    }

    TEST_CASE("the blocking facade sees the reorder window's order and late flags") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        // Sends SEQ 2 then SEQ 1 (each on its own connection, each answered before the next).
        auto send_2_then_1 = [&f] {
            f.device_loop
                .run([d = f.device.get()]() -> Task<void> {
                    std::string body = ScriptedDevice::body_of({{"Volume", "x"}});
                    CHECK(co_await d->notify(d->subscriptions.back(), body, 2u) == 200);
                    CHECK(co_await d->notify(d->subscriptions.back(), body, 1u) == 200);
                })
                .wait(10s);
        };
        for (auto window : {30ms, 0ms}) {
            CAPTURE(window.count());
            SubscribeOptions o = f.options();
            o.reorder_window = window;
            BlockingSubscription sub = f.bg.subscribe(f.url, o).wait(10s);
            REQUIRE(sub.events().get(10s));  // the initial event
            send_2_then_1();
            std::optional<Event> a = sub.events().get(10s);
            std::optional<Event> b = sub.events().get(10s);
            REQUIRE(a);
            REQUIRE(b);
            if (window > 0ms) {
                // Held for its predecessor: both in SEQ order, neither flagged.
                CHECK(a->seq == 1);
                CHECK(b->seq == 2);
                CHECK(a->seq_status == gena::SeqStatus::ok);
                CHECK(b->seq_status == gena::SeqStatus::ok);
            } else {
                CHECK(a->seq == 2);
                CHECK(a->seq_status == gena::SeqStatus::gap);
                CHECK(b->seq == 1);
                CHECK(b->seq_status == gena::SeqStatus::late);
            }
            CHECK(sub.stats().events_missed == 0);
            sub.unsubscribe().wait(10s);
        }
    }

    TEST_CASE("renew from a thread reaches the device") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        auto sub = f.bg.subscribe(f.url, f.options()).wait(10s);
        sub.renew(120s).wait(10s);
        CHECK(f.on_device([](ScriptedDevice& d) { return d.renewals; }) == 1);
        auto left = sub.time_left();
        REQUIRE(left);
        CHECK(*left <= 120s);
        CHECK(*left > 100s);
    }

    TEST_CASE("a failed renewal reaches the caller's wait") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        auto sub = f.bg.subscribe(f.url, f.options()).wait(10s);
        f.on_device([](ScriptedDevice& d) {
            d.renew_status = 500;
            return 0;
        });
        CHECK_THROWS_AS(sub.renew().wait(10s), std::system_error);
    }

    TEST_CASE("the auto_renew_fail handler runs on the loop thread") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        f.on_device([](ScriptedDevice& d) {
            d.renew_status = 500;
            return 0;
        });
        auto called_on = std::make_shared<BlockingQueue<std::thread::id>>();
        SubscribeOptions o = f.options();
        o.requested_timeout = 1s;  // renewal due after 850 ms
        o.auto_renew = true;
        SubscriptionHandlers h;
        h.on_renew_failed = [called_on](const Error&) {
            called_on->push(std::this_thread::get_id());
        };
        auto sub = f.bg.subscribe(f.url, o, std::move(h)).wait(10s);
        auto id = called_on->get(10s);
        REQUIRE(id);
        CHECK(*id == f.bg.thread_id());
    }

    TEST_CASE("callback mode on the loop thread gets every later event there") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        auto sub = f.bg.subscribe(f.url, f.options()).wait(10s);
        REQUIRE(sub.events().get(10s));  // the initial event, queued
        auto seen = std::make_shared<BlockingQueue<std::pair<std::thread::id, std::string>>>();
        sub.set_callback([seen](Event e) {
            seen->push({std::this_thread::get_id(), std::string(e.variables().at("Volume"))});
        });
        f.notify_volume("12");
        auto got = seen->get(10s);
        REQUIRE(got);
        CHECK(got->first == f.bg.thread_id());
        CHECK(got->second == "12");
        CHECK(sub.events().size() == 0);
        // An empty callback returns to queueing.
        sub.set_callback({});
        f.notify_volume("13");
        auto queued = sub.events().get(10s);
        REQUIRE(queued);
        CHECK(queued->variables().at("Volume") == "13");
    }

    TEST_CASE("callback mode queued runs the callback on the thread that drains the queue") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        auto sub = f.bg.subscribe(f.url, f.options()).wait(10s);
        REQUIRE(sub.events().get(10s));
        auto calls = std::make_shared<CallbackQueue>();
        std::vector<std::string> volumes;
        std::thread::id ran_on;
        sub.set_callback(
            [&volumes, &ran_on](Event e) {
                ran_on = std::this_thread::get_id();
                volumes.emplace_back(e.variables().at("Volume"));
            },
            calls);
        f.notify_volume("20");
        f.notify_volume("21");
        std::size_t ran = 0;
        while (ran < 2) ran += calls->run_for(10s);
        CHECK(ran_on == std::this_thread::get_id());
        CHECK(volumes == std::vector<std::string>{"20", "21"});
    }

    TEST_CASE("a callback given in the options gets the initial event on the loop thread") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        auto seen = std::make_shared<BlockingQueue<std::thread::id>>();
        SubscribeOptions o = f.options();
        SubscriptionHandlers h;
        h.on_event = [seen](Event) { seen->push(std::this_thread::get_id()); };
        auto sub = f.bg.subscribe(f.url, o, std::move(h)).wait(10s);
        auto id = seen->get(10s);
        REQUIRE(id);
        CHECK(*id == f.bg.thread_id());
    }

    TEST_CASE("dropping the handle unsubscribes leniently on the loop") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        { auto sub = f.bg.subscribe(f.url, f.options()).wait(10s); }
        // The UNSUBSCRIBE goes out after the handle is gone; wait for the device to see it.
        while (f.on_device([](ScriptedDevice& d) { return d.unsubscribes; }) == 0) {
            std::this_thread::sleep_for(1ms);
        }
        CHECK(f.on_device([](ScriptedDevice& d) { return d.subscriptions.size(); }) == 0);
    }

    TEST_CASE("stopping the listener ends the subscriptions and their streams") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        std::vector<BlockingSubscription> subs;
        for (int i = 0; i < 3; ++i) subs.push_back(f.bg.subscribe(f.url, f.options()).wait(10s));
        for (auto& s : subs) REQUIRE(s.events().get(10s));
        // The listener's stop() unsubscribes every subscription it serves.
        f.bg.run([l = f.listener]() { return l->stop(); }).wait(10s);
        f.bg.stop();
        CHECK(f.on_device([](ScriptedDevice& d) { return d.unsubscribes; }) == 3);
        for (auto& s : subs) {
            CHECK_FALSE(s.events().get(10s).has_value());
            CHECK(s.events().ended());
            CHECK_FALSE(s.is_subscribed());
            CHECK_THROWS_AS(s.renew().wait(), Error);
        }
    }

    TEST_CASE(
        "stopping the loop with live subscriptions unsubscribes them and ends their streams") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        std::vector<BlockingSubscription> subs;
        for (int i = 0; i < 2; ++i) subs.push_back(f.bg.subscribe(f.url, f.options()).wait(10s));
        f.bg.stop();
        CHECK(f.on_device([](ScriptedDevice& d) { return d.unsubscribes; }) == 2);
        for (auto& s : subs) {
            while (s.events().try_get()) {
            }
            CHECK(s.events().ended());
        }
    }

    TEST_CASE("a subscription the device forgot ends its stream with the error") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        auto sub = f.bg.subscribe(f.url, f.options()).wait(10s);
        REQUIRE(sub.events().get(10s));
        f.on_device([](ScriptedDevice& d) {
            d.renew_status = 412;
            return 0;
        });
        CHECK_THROWS_AS(sub.renew().wait(10s), Error);
        CHECK_THROWS_AS((void)sub.events().get(10s), Error);
        CHECK(sub.events().ended());
    }

    TEST_CASE(
        "the event stream ends when the shutdown grace runs out during the lenient "
        "unsubscribe") {
        // Regression (issue 17, bug 4): the pump closed the queue only when it finished, so a
        // pump destroyed by the grace's end left a reader blocked in get() for ever. On the
        // old code the watchdog ends this test.
        uvtest::Watchdog watchdog(30s);
        Fixture f(BackgroundLoopOptions{.shutdown_grace = 100ms});
        auto sub = f.bg.subscribe(f.url, f.options()).wait(10s);
        REQUIRE(sub.events().get(10s));
        // The device's loop thread is held: the UNSUBSCRIBE gets no answer within the grace.
        std::promise<void> release;
        std::promise<void> entered;
        auto held = f.device_loop.run([gate = release.get_future().share(), &entered] {
            entered.set_value();
            gate.wait();
        });
        entered.get_future().wait();
        std::promise<std::optional<Event>> got;
        std::future<std::optional<Event>> read = got.get_future();
        std::thread reader([&sub, &got] { got.set_value(sub.events().get()); });
        f.bg.stop();
        reader.join();
        CHECK_FALSE(read.get().has_value());
        CHECK(sub.events().ended());
        CHECK_FALSE(sub.is_subscribed());
        release.set_value();
        held.wait(10s);
    }

    TEST_CASE("a Subscription kept until stop sends its UNSUBSCRIBE when the loop stops") {
        // Its destructor spawns the UNSUBSCRIBE after the loop's tasks ended (issue 17,
        // suspected teardown item): that work is now given the rest of the grace period.
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        f.bg.run([&f](uv_loop_t* loop) -> Task<void> {
                auto sub = std::make_shared<Subscription>(
                    co_await gena::subscribe(loop, f.url, f.options()));
                f.bg.keep_until_stop(std::move(sub));
            })
            .wait(10s);
        CHECK(f.on_device([](ScriptedDevice& d) { return d.subscriptions.size(); }) == 1);
        f.bg.stop();
        CHECK(f.on_device([](ScriptedDevice& d) { return d.unsubscribes; }) == 1);
        CHECK(f.on_device([](ScriptedDevice& d) { return d.subscriptions.size(); }) == 0);
    }

    TEST_CASE("a subscribe whose wait times out says which URL it was waiting for") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        // The device's loop thread is held: the SUBSCRIBE gets no answer.
        std::promise<void> release;
        std::promise<void> entered;
        auto held = f.device_loop.run([gate = release.get_future().share(), &entered] {
            entered.set_value();
            gate.wait();
        });
        entered.get_future().wait();
        auto pending = f.bg.subscribe(f.url, f.options());
        try {
            (void)pending.wait(50ms);
            FAIL("no timeout");
        } catch (const Error& e) {
            CHECK(e.code() == make_error_code(errc::timed_out));
            CHECK(std::string(e.what()).find("subscribe " + f.url) != std::string::npos);
        }
        pending.cancel();
        release.set_value();
        held.wait(10s);
        CHECK_THROWS_AS((void)pending.wait(10s), Error);
    }
}
