// BlockingStateMirror: a service's mirrored state read from application threads (run under
// ThreadSanitizer by .ci/run with the rest of the blocking suite).
#include "uvgena/blocking/state_mirror.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "blocking_fixture.hpp"
#include "support/test_loop.hpp"

using namespace uvgena;
using namespace std::chrono_literals;
using blocking_test::Fixture;
using gena_test::ScriptedDevice;

namespace {

// Sets the device's Volume (its initial events carry it from now on) and sends an event with
// it to every subscription.
void set_volume(Fixture& f, int volume) {
    f.device_loop
        .run([d = f.device.get(), v = std::to_string(volume)]() {
            d->variables = {{"Volume", v}};
            return d->notify_all({{"Volume", v}});
        })
        .wait(10s);
}

gena::SubscribeOptions renewing(const Fixture& f) {
    gena::SubscribeOptions o = f.options();
    o.auto_renew = true;
    o.auto_resubscribe = true;
    return o;
}

}  // namespace

TEST_SUITE("blocking.state_mirror") {
    TEST_CASE("a blocking mirror holds the initial state and each change, for any thread") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        BlockingStateMirror mirror = f.bg.mirror(f.url, renewing(f)).wait(10s);
        REQUIRE(mirror.valid());

        std::optional<gena::StateChanges> initial = mirror.changed(10s);
        REQUIRE(initial);
        CHECK(initial->replaced);
        CHECK(initial->contains("Volume"));
        CHECK(mirror.get("Volume") == "10");
        CHECK_FALSE(mirror.stale());
        CHECK(mirror.sid() ==
              f.on_device([](ScriptedDevice& d) { return d.subscriptions.at(0).sid; }));
        std::uint64_t version = mirror.version();

        set_volume(f, 11);
        std::optional<gena::StateChanges> change = mirror.changed(10s);
        REQUIRE(change);
        CHECK_FALSE(change->replaced);
        REQUIRE(change->variables.size() == 1);
        CHECK(change->variables[0].id.name == "Volume");
        CHECK_FALSE(change->variables[0].removed);
        CHECK(mirror.get("Volume") == "11");
        CHECK(mirror.version() > version);

        // The copy belongs to this thread: typed reads, iteration.
        gena::ServiceState state = mirror.state();
        CHECK(state.get_int("Volume").value() == 11);
        CHECK(state.size() == 1);
        CHECK(std::distance(state.begin(), state.end()) == 1);
        CHECK_FALSE(mirror.get("Mute").has_value());

        // Nothing more happened: the time limit passes.
        CHECK_FALSE(mirror.changed(1ms).has_value());
        CHECK_FALSE(mirror.ended());
        CHECK(mirror.subscription_stats().events_received == 2);
        CHECK(mirror.stats().resyncs_requested == 0);

        mirror.unsubscribe().wait(10s);
        CHECK(f.on_device([](ScriptedDevice& d) { return d.unsubscribes; }) == 1);
        CHECK_FALSE(mirror.changed(10s).has_value());
        CHECK(mirror.ended());
        CHECK(mirror.stale());                // nothing follows the device any more
        CHECK(mirror.get("Volume") == "11");  // the last values stay readable
        mirror.unsubscribe().wait(10s);       // harmless twice
    }

    TEST_CASE("changes coalesce for a slow reader: each variable once, the newest value") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        BlockingStateMirror mirror = f.bg.mirror(f.url, renewing(f)).wait(10s);
        REQUIRE(mirror.changed(10s));
        for (int v = 20; v < 30; ++v) set_volume(f, v);
        // Every NOTIFY was answered; the loop applies them right after. Polled with get(),
        // which takes no changes: the ten change sets wait for the reader, merged.
        bool reached = false;
        for (int i = 0; i < 500 && !reached; ++i) {
            reached = mirror.get("Volume") == "29";
            if (!reached) std::this_thread::sleep_for(10ms);
        }
        REQUIRE(reached);
        std::optional<gena::StateChanges> changes = mirror.changed(1ms);
        REQUIRE(changes);
        REQUIRE(changes->variables.size() == 1);
        CHECK(changes->variables[0].id.name == "Volume");
        CHECK_FALSE(changes->replaced);
        CHECK_FALSE(changes->overflowed);
        CHECK_FALSE(mirror.changed(1ms).has_value());
        CHECK(mirror.subscription_stats().events_received == 11);
    }

    TEST_CASE("threads reading while events arrive see values that only move forward") {
        // For ThreadSanitizer: the loop publishes, three threads read (changed with a time
        // limit, get, state copies) all along. The readers pause between reads: under
        // valgrind, which runs one thread at a time, busy readers would starve the loops.
        uvtest::Watchdog watchdog(60s);
        Fixture f;
        BlockingStateMirror mirror = f.bg.mirror(f.url, renewing(f)).wait(10s);
        REQUIRE(mirror.changed(10s));
        const int kLast = uvtest::under_valgrind() ? 60 : 300;
        std::atomic<bool> done{false};
        std::atomic<int> regressions{0};
        std::atomic<int> changes_seen{0};
        auto reader = [&](int kind) {
            int last = 0;
            while (!done.load()) {
                std::optional<std::string> value;
                if (kind == 0) {
                    if (auto c = mirror.changed(5ms)) {
                        changes_seen.fetch_add(1);
                        if (!c->contains("Volume")) regressions.fetch_add(1);
                    }
                    value = mirror.get("Volume");
                } else if (kind == 1) {
                    value = mirror.get("Volume");
                } else {
                    gena::ServiceState copy = mirror.state();
                    if (auto v = copy.get("Volume")) value = std::string(*v);
                }
                int now = value ? std::stoi(*value) : -1;
                if (now < last) regressions.fetch_add(1);
                last = now;
                if (kind != 0) std::this_thread::sleep_for(100us);
            }
        };
        std::vector<std::thread> readers;
        for (int kind = 0; kind < 3; ++kind) readers.emplace_back(reader, kind);
        for (int v = 11; v <= kLast; ++v) set_volume(f, v);
        bool reached = false;
        for (int i = 0; i < 200 && !reached; ++i) {
            reached = mirror.get("Volume") == std::to_string(kLast);
            if (!reached) std::this_thread::sleep_for(10ms);
        }
        done = true;
        for (auto& t : readers) t.join();
        CHECK(reached);
        CHECK(regressions.load() == 0);
        CHECK(changes_seen.load() >= 1);
        CHECK_FALSE(mirror.stale());
    }

    TEST_CASE("a lost event makes the state stale, and the resubscription restores it") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        BlockingStateMirror mirror = f.bg.mirror(f.url, renewing(f)).wait(10s);
        REQUIRE(mirror.changed(10s));
        std::string first_sid = mirror.sid();
        // SEQ 1 never comes: SEQ 2 opens a gap that the reorder window cannot fill. The
        // device's true volume is now 40, and its next initial event says so.
        f.device_loop
            .run([d = f.device.get()]() -> Task<void> {
                d->variables = {{"Volume", "40"}};
                auto& sub = d->subscriptions.back();
                sub.next_seq = 3;
                std::string body = ScriptedDevice::body_of(d->variables);
                int status = co_await d->notify(sub, std::move(body), 2u);
                CHECK(status == 200);
            })
            .wait(10s);
        bool went_stale = false;
        bool replaced = false;
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!replaced && std::chrono::steady_clock::now() < deadline) {
            if (auto c = mirror.changed(100ms)) {
                went_stale = went_stale || c->went_stale;
                replaced = replaced || c->replaced;
            }
        }
        CHECK(went_stale);
        CHECK(replaced);
        CHECK_FALSE(mirror.stale());
        CHECK(mirror.get("Volume") == "40");
        CHECK(mirror.stats().resyncs_requested >= 1);
        CHECK(mirror.sid() != first_sid);
        CHECK(f.on_device([](ScriptedDevice& d) { return d.subscribes; }) == 2);
    }

    TEST_CASE("a subscription lost without auto_resubscribe ends changed() with the error") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        f.on_device([](ScriptedDevice& d) {
            d.renew_status = 412;  // forgets the subscription at its first renewal
            return 0;
        });
        gena::SubscribeOptions o = f.options();
        o.requested_timeout = 1s;  // renewed after 0.85 s
        o.auto_renew = true;
        o.auto_resubscribe = false;
        BlockingStateMirror mirror = f.bg.mirror(f.url, o).wait(10s);
        REQUIRE(mirror.changed(10s));
        CHECK_THROWS_AS((void)mirror.changed(10s), Error);
        CHECK(mirror.ended());
        CHECK(mirror.stale());
        CHECK(mirror.get("Volume") == "10");
        CHECK_THROWS_AS((void)mirror.changed(1ms), Error);  // every later call says so too
    }

    TEST_CASE("dropping the handle unsubscribes leniently on the loop") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        {
            BlockingStateMirror mirror = f.bg.mirror(f.url, renewing(f)).wait(10s);
            REQUIRE(mirror.changed(10s));
        }
        bool unsubscribed = false;
        for (int i = 0; i < 500 && !unsubscribed; ++i) {
            unsubscribed = f.on_device([](ScriptedDevice& d) { return d.unsubscribes; }) == 1;
            if (!unsubscribed) std::this_thread::sleep_for(10ms);
        }
        CHECK(unsubscribed);
        // Moved-from and empty handles are harmless.
        BlockingStateMirror empty;
        CHECK_FALSE(empty.valid());
        CHECK_THROWS_AS((void)empty.get("Volume"), Error);
    }

    TEST_CASE("stopping the loop wakes a reader blocked in changed(), and the state stays") {
        uvtest::Watchdog watchdog(30s);
        Fixture f;
        BlockingStateMirror mirror = f.bg.mirror(f.url, renewing(f)).wait(10s);
        REQUIRE(mirror.changed(10s));
        std::promise<std::optional<gena::StateChanges>> got;
        auto read = got.get_future();
        std::thread reader([&] { got.set_value(mirror.changed()); });
        std::this_thread::sleep_for(20ms);  // most likely blocked by now; either way it ends
        f.bg.stop();
        reader.join();
        CHECK_FALSE(read.get().has_value());
        CHECK(mirror.ended());
        CHECK(mirror.get("Volume") == "10");
        CHECK(f.on_device([](ScriptedDevice& d) { return d.unsubscribes; }) == 1);
        CHECK_THROWS_AS((void)mirror.sid(), Error);  // the loop is gone
    }

    TEST_CASE("the reader wakes when the shutdown grace runs out during the unsubscribe") {
        uvtest::Watchdog watchdog(30s);
        Fixture f(BackgroundLoopOptions{.shutdown_grace = 100ms});
        BlockingStateMirror mirror = f.bg.mirror(f.url, renewing(f)).wait(10s);
        REQUIRE(mirror.changed(10s));
        // The device's loop thread is held: the UNSUBSCRIBE gets no answer within the grace.
        std::promise<void> release;
        std::promise<void> entered;
        auto held = f.device_loop.run([gate = release.get_future().share(), &entered] {
            entered.set_value();
            gate.wait();
        });
        entered.get_future().wait();
        std::promise<std::optional<gena::StateChanges>> got;
        auto read = got.get_future();
        std::thread reader([&] { got.set_value(mirror.changed()); });
        f.bg.stop();
        reader.join();
        CHECK_FALSE(read.get().has_value());
        CHECK(mirror.ended());
        release.set_value();
        held.wait(10s);
    }
}
