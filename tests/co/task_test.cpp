#include "uvgena/co/task.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "co/counted.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/async_event.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

Task<int> forty_two() {
    co_return 42;
}

Task<int> add(int a, int b) {
    int x = co_await forty_two();
    co_return x + a + b - 42;
}

Task<void> fail_with(std::string message) {
    throw std::runtime_error(message);
    co_return;
}

Task<int> count_ready(int n) {
    int sum = 0;
    for (int i = 0; i < n; ++i) sum += co_await forty_two() - 41;
    co_return sum;
}

Task<cotest::Counted> make_counted(int v) {
    co_return cotest::Counted(v);
}

}  // namespace

TEST_SUITE("co.task") {
    TEST_CASE("a task is lazy and yields its value when awaited") {
        uvtest::TestLoop loop;
        bool started = false;
        auto body = [&]() -> Task<int> {
            started = true;
            co_return 7;
        };
        Task<int> t = body();
        CHECK_FALSE(started);
        CHECK(run(loop, std::move(t)) == 7);
        CHECK(started);
        CHECK(run(loop, add(1, 2)) == 3);
    }

    TEST_CASE("an exception crosses co_await to the awaiter") {
        uvtest::TestLoop loop;
        auto outer = []() -> Task<std::string> {
            try {
                co_await fail_with("boom");
            } catch (const std::runtime_error& e) {
                co_return std::string("caught ") + e.what();
            }
            co_return "not thrown";
        };
        CHECK(run(loop, outer()) == "caught boom");
        CHECK_THROWS_WITH_AS(run(loop, fail_with("out")), "out", std::runtime_error);
    }

    TEST_CASE("a million synchronously completing awaits do not grow the stack") {
        uvtest::TestLoop loop;
        CHECK(run(loop, count_ready(1'000'000)) == 1'000'000);
    }

    TEST_CASE("every value in a task result is destroyed exactly once") {
        cotest::Counted::reset();
        {
            uvtest::TestLoop loop;
            auto consumer = []() -> Task<int> {
                cotest::Counted c = co_await make_counted(5);
                co_return c.value;
            };
            CHECK(run(loop, consumer()) == 5);
            // Never started: the frame holds nothing yet; finished but never read: the
            // stored value dies with the frame.
            { Task<cotest::Counted> unstarted = make_counted(1); }
            {
                Task<cotest::Counted> finished = make_counted(2);
                finished.handle().resume();
                CHECK(finished.done());
            }
        }
        CHECK(cotest::Counted::constructed > 0);
        CHECK(cotest::Counted::alive() == 0);
    }

    TEST_CASE("destroying a suspended task destroys its frame and its awaiters") {
        uvtest::TestLoop loop;
        cotest::Counted::reset();
        AsyncEvent never(loop);
        bool reached = false;
        auto waiter = [&]() -> Task<void> {
            cotest::Counted local(1);
            reached = true;
            co_await never.wait();
            FAIL("resumed after destruction");
        };
        {
            Task<void> t = waiter();
            t.handle().resume();
            CHECK(reached);
            CHECK(cotest::Counted::alive() == 1);
        }
        CHECK(cotest::Counted::alive() == 0);
        never.set();  // no waiter is left to resume
        uv_run(loop, UV_RUN_NOWAIT);
    }

    TEST_CASE("tasks are move-only owners of their frame") {
        uvtest::TestLoop loop;
        Task<int> a = forty_two();
        Task<int> b = std::move(a);
        CHECK_FALSE(a.valid());
        CHECK(b.valid());
        a = std::move(b);
        CHECK(run(loop, std::move(a)) == 42);
        Task<int> empty;
        CHECK_THROWS_AS(run(loop, std::move(empty)), Error);
    }

    TEST_CASE("the stop token is inherited from the awaiting task") {
        uvtest::TestLoop loop;
        std::stop_source source;
        auto inner = []() -> Task<bool> {
            std::stop_token t = co_await current_stop_token();
            co_return t.stop_possible();
        };
        auto outer = [&]() -> Task<bool> { co_return co_await inner(); };
        CHECK(run(loop, with_stop_token(outer(), source.get_token())));
        CHECK_FALSE(run(loop, outer()));
    }

    TEST_CASE("with_stop_token overrides the inherited token") {
        uvtest::TestLoop loop;
        std::stop_source outer_source;
        std::stop_source inner_source;
        inner_source.request_stop();
        auto inner = []() -> Task<bool> {
            std::stop_token t = co_await current_stop_token();
            co_return t.stop_requested();
        };
        auto outer = [&]() -> Task<std::pair<bool, bool>> {
            bool own = co_await with_stop_token(inner(), inner_source.get_token());
            bool inherited = co_await inner();
            co_return std::pair{own, inherited};
        };
        auto [own, inherited] = run(loop, with_stop_token(outer(), outer_source.get_token()));
        CHECK(own);
        CHECK_FALSE(inherited);
    }

    TEST_CASE("an operation started after stop was requested fails with cancelled at once") {
        uvtest::TestLoop loop;
        std::stop_source source;
        source.request_stop();
        auto body = [&]() -> Task<void> { co_await sleep_for(loop, 10s); };
        try {
            run(loop, with_stop_token(body(), source.get_token()));
            FAIL("no exception");
        } catch (const Error& e) {
            CHECK(e.code() == errc::cancelled);
        }
    }
}
