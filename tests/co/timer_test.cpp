#include "uvgena/co/timer.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "support/slice_guard.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/async_event.hpp"
#include "uvgena/co/scope.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

TEST_SUITE("co.timer") {
    TEST_CASE("sleep_for waits at least the duration") {
        uvtest::TestLoop loop;
        auto start = Clock::now();
        run(loop, [&]() -> Task<void> { co_await sleep_for(loop, 5ms); }());
        CHECK(Clock::now() - start >= 5ms);
    }

    TEST_CASE("sleep_until orders wake-ups by deadline") {
        // Without a time slice, the four spawned tasks all start (and arm their sleeps) in one
        // check phase, before any timer can fire. With the default 1 ms slice a slow turn
        // (valgrind) may defer the last starts to the next turn, after the first deadlines
        // have passed: those tasks then wake later than their deadline order, as they should.
        uvtest::SliceGuard no_slice(0us);
        uvtest::TestLoop loop;
        std::vector<int> order;
        Scope scope(loop);
        auto base = Clock::now();
        for (int i : {3, 1, 2, 0}) {
            scope.spawn([](uv_loop_t* l, Clock::time_point at, int id,
                           std::vector<int>& out) -> Task<void> {
                co_await sleep_until(l, at);
                out.push_back(id);
            }(loop, base + std::chrono::milliseconds(2 * i), i, order));
        }
        run(loop, [&]() -> Task<void> { co_await scope.join(); }());
        CHECK(order == std::vector<int>{0, 1, 2, 3});
    }

    TEST_CASE("a deadline in the past still completes") {
        uvtest::TestLoop loop;
        run(loop, [&]() -> Task<void> { co_await sleep_until(loop, Clock::now() - 1s); }());
    }

    TEST_CASE("a sleeping task is cancelled promptly by its stop token") {
        uvtest::TestLoop loop;
        std::stop_source source;
        Scope scope(loop);
        scope.spawn([](uv_loop_t* l, std::stop_source& s) -> Task<void> {
            co_await sleep_for(l, 1ms);
            s.request_stop();
        }(loop, source));
        auto start = Clock::now();
        auto sleeper = [&]() -> Task<void> { co_await sleep_for(loop, 1h); };
        CHECK_THROWS_WITH_AS(run(loop, with_stop_token(sleeper(), source.get_token())),
                             doctest::Contains("cancelled"), Error);
        CHECK(Clock::now() - start < 10s);
    }

    TEST_CASE("with_timeout throws timed_out after cancelling the inner operation") {
        uvtest::TestLoop loop;
        bool inner_unwound = false;
        auto inner = [&]() -> Task<int> {
            try {
                co_await sleep_for(loop, 1h);
            } catch (const Error& e) {
                inner_unwound = e.code() == errc::cancelled;
                throw;
            }
            co_return 1;
        };
        try {
            (void)run(loop, with_timeout(loop, inner(), 2ms));
            FAIL("no exception");
        } catch (const Error& e) {
            CHECK(e.code() == errc::timed_out);
            CHECK(is_timeout(e.code()));
        }
        CHECK(inner_unwound);
    }

    TEST_CASE("with_timeout returns the value when the task is fast enough") {
        uvtest::TestLoop loop;
        auto inner = [&]() -> Task<int> {
            co_await sleep_for(loop, 1ms);
            co_return 9;
        };
        CHECK(run(loop, with_timeout(loop, inner(), 10s)) == 9);
        auto void_inner = [&]() -> Task<void> { co_await sleep_for(loop, 1ms); };
        run(loop, with_timeout(loop, void_inner(), 10s));
    }

    TEST_CASE("an outer stop passes through with_timeout as cancellation") {
        uvtest::TestLoop loop;
        std::stop_source source;
        spawn(loop, [](uv_loop_t* l, std::stop_source& s) -> Task<void> {
            co_await sleep_for(l, 1ms);
            s.request_stop();
        }(loop, source));
        auto inner = [&]() -> Task<void> { co_await sleep_for(loop, 1h); };
        try {
            run(loop, with_stop_token(with_timeout(loop, inner(), 1h), source.get_token()));
            FAIL("no exception");
        } catch (const Error& e) {
            CHECK(e.code() == errc::cancelled);
        }
    }

    TEST_CASE("many timers with equal deadlines fire in insertion order") {
        uvtest::TestLoop loop;
        std::vector<int> order;
        Scope scope(loop);
        auto at = Clock::now() + 2ms;
        for (int i = 0; i < 50; ++i) {
            scope.spawn(
                [](uv_loop_t* l, Clock::time_point t, int id, std::vector<int>& out) -> Task<void> {
                    co_await sleep_until(l, t);
                    out.push_back(id);
                }(loop, at, i, order));
        }
        run(loop, [&]() -> Task<void> { co_await scope.join(); }());
        REQUIRE(order.size() == 50);
        for (int i = 0; i < 50; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
    }
}
