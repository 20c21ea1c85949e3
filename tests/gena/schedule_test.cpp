#include "uvgena/gena/schedule.hpp"

#include <doctest/doctest.h>

using namespace uvgena::gena;
using namespace std::chrono_literals;

namespace {
// A manual clock: time points are built from an arbitrary origin.
const SteadyClock::time_point t0 = SteadyClock::time_point(1000h);
}  // namespace

TEST_SUITE("gena.schedule") {
    TEST_CASE("renewal is due at 85 percent of the granted duration and never when infinite") {
        CHECK(renewal_time(t0, Timeout{false, 100s}) == t0 + 85s);
        CHECK(renewal_time(t0, Timeout{false, 2s}) == t0 + 1700ms);
        CHECK(renewal_time(t0, Timeout{false, 1800s}, 0.5) == t0 + 900s);
        CHECK_FALSE(renewal_time(t0, Timeout{true, 0s}));
        CHECK(expiry_time(t0, Timeout{false, 300s}) == t0 + 300s);
        CHECK_FALSE(expiry_time(t0, Timeout{true, 0s}));
    }

    TEST_CASE("backoff grows by its factor up to the cap, within the jitter bounds") {
        Backoff b(BackoffOptions{1000ms, 8000ms, 2.0, 0.2, 0});
        const long expected[] = {1000, 2000, 4000, 8000, 8000, 8000};
        for (long base : expected) {
            auto d = b.next();
            REQUIRE(d);
            CHECK(d->count() >= base * 8 / 10);
            CHECK(d->count() <= base * 12 / 10);
        }
        CHECK(b.attempts() == 6);
        b.reset();
        auto first = b.next();
        REQUIRE(first);
        CHECK(first->count() <= 1200);
    }

    TEST_CASE("backoff without jitter is exact and stops after max_attempts") {
        Backoff b(BackoffOptions{100ms, 1000ms, 3.0, 0.0, 3});
        CHECK(b.next() == 100ms);
        CHECK(b.next() == 300ms);
        CHECK(b.next() == 900ms);
        CHECK_FALSE(b.next());
    }

    TEST_CASE("backoff jitter is deterministic for a seed and differs between seeds") {
        Backoff a(BackoffOptions{}, 42), b(BackoffOptions{}, 42), c(BackoffOptions{}, 43);
        auto da = a.next(), db = b.next(), dc = c.next();
        CHECK(da == db);
        CHECK(da != dc);
    }

    TEST_CASE("an auto-renewed grant schedules a renewal, then the expiry if it fails") {
        SubscriptionSchedule s(true);
        CHECK_FALSE(s.next());
        s.on_granted(t0, Timeout{false, 100s});
        CHECK(s.next() == t0 + 85s);
        CHECK(s.take_due(t0 + 84s) == ScheduledAction::none);
        CHECK(s.take_due(t0 + 85s) == ScheduledAction::renew);
        CHECK(s.next() == t0 + 100s);  // only the expiry is left while the renewal runs
        s.on_renew_failed(t0 + 86s, 5s);
        CHECK(s.next() == t0 + 91s);
        CHECK(s.take_due(t0 + 91s) == ScheduledAction::renew);
        s.on_renew_failed(t0 + 92s, 20s);  // past the expiry: no more retries
        CHECK(s.renew_at() == std::nullopt);
        CHECK(s.take_due(t0 + 100s) == ScheduledAction::expire);
        CHECK_FALSE(s.next());
    }

    TEST_CASE("a successful renewal replaces the deadlines") {
        SubscriptionSchedule s(true);
        s.on_granted(t0, Timeout{false, 100s});
        CHECK(s.take_due(t0 + 85s) == ScheduledAction::renew);
        s.on_granted(t0 + 86s, Timeout{false, 200s});
        CHECK(s.renew_at() == t0 + 86s + 170s);
        CHECK(s.expires_at() == t0 + 286s);
    }

    TEST_CASE("without auto-renewal only the expiry is scheduled, and infinite has none") {
        SubscriptionSchedule s(false);
        s.on_granted(t0, Timeout{false, 60s});
        CHECK(s.next() == t0 + 60s);
        CHECK(s.take_due(t0 + 59s) == ScheduledAction::none);
        CHECK(s.take_due(t0 + 61s) == ScheduledAction::expire);
        SubscriptionSchedule inf(true);
        inf.on_granted(t0, Timeout{true, 0s});
        CHECK_FALSE(inf.next());
    }

    TEST_CASE("the silence watchdog fires after the silence time and re-arms itself") {
        SubscriptionSchedule s(false, std::chrono::duration_cast<SteadyClock::duration>(30s));
        s.on_granted(t0, Timeout{true, 0s});
        CHECK(s.next() == t0 + 30s);
        s.on_event(t0 + 10s);
        CHECK(s.next() == t0 + 40s);
        CHECK(s.take_due(t0 + 39s) == ScheduledAction::none);
        CHECK(s.take_due(t0 + 40s) == ScheduledAction::silence);
        CHECK(s.next() == t0 + 70s);
        s.clear();
        CHECK_FALSE(s.next());
    }

    TEST_CASE("the expiry comes before a renewal due at the same time") {
        SubscriptionSchedule s(true, std::chrono::duration_cast<SteadyClock::duration>(1s));
        s.on_granted(t0, Timeout{false, 10s});
        CHECK(s.take_due(t0 + 20s) == ScheduledAction::expire);
        CHECK(s.take_due(t0 + 20s) == ScheduledAction::silence);
        CHECK(s.take_due(t0 + 20s) == ScheduledAction::none);
    }
}
