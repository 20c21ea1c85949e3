#include "uvgena/co/scope.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_loop.hpp"
#include "uvgena/co/async_event.hpp"
#include "uvgena/co/channel.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

// Captures error-level log messages for the duration of a test.
struct LogCapture {
    std::vector<std::string> messages;
    LogCapture() {
        set_log_sink([this](LogLevel level, std::string_view m) {
            if (level == LogLevel::error) messages.emplace_back(m);
        });
    }
    ~LogCapture() { set_log_sink({}); }
};

}  // namespace

TEST_SUITE("co.scope") {
    TEST_CASE("spawn starts the task from the loop, not inside the caller") {
        uvtest::TestLoop loop;
        int steps = 0;
        auto body = [&]() -> Task<void> {
            ++steps;
            co_return;
        };
        spawn(loop, body());
        CHECK(steps == 0);
        CHECK(uv_run(loop, UV_RUN_DEFAULT) == 0);
        CHECK(steps == 1);
    }

    TEST_CASE("spawn from a plain libuv callback runs the task") {
        uvtest::TestLoop loop;
        struct State {
            uv_loop_t* loop;
            int value = 0;
        } state{loop};
        auto* timer = new uv_timer_t;
        uv_timer_init(loop, timer);
        timer->data = &state;
        uv_timer_start(
            timer,
            [](uv_timer_t* t) {
                auto* s = static_cast<State*>(t->data);
                spawn(s->loop, [](State* st) -> Task<void> {
                    co_await sleep_for(st->loop, 1ms);
                    st->value = 5;
                }(s));
                uv_close(reinterpret_cast<uv_handle_t*>(t),
                         [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
            },
            1, 0);
        uv_run(loop, UV_RUN_DEFAULT);
        CHECK(state.value == 5);
    }

    TEST_CASE("an exception escaping a spawned task is logged, not terminating") {
        uvtest::TestLoop loop;
        LogCapture capture;
        spawn(loop, []() -> Task<void> {
            throw std::runtime_error("detached failure");
            co_return;
        }());
        uv_run(loop, UV_RUN_DEFAULT);
        REQUIRE(capture.messages.size() == 1);
        CHECK(capture.messages[0].find("detached failure") != std::string::npos);
    }

    TEST_CASE("a scope's error handler receives exceptions of its tasks") {
        uvtest::TestLoop loop;
        std::vector<std::string> errors;
        Scope scope(loop, [&](std::exception_ptr e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                errors.emplace_back(ex.what());
            }
        });
        for (int i = 0; i < 3; ++i) {
            scope.spawn([](int n) -> Task<void> {
                if (n % 2 == 0) throw std::runtime_error("task " + std::to_string(n));
                co_return;
            }(i));
        }
        CHECK(scope.size() == 3);
        run(loop, [&]() -> Task<void> { co_await scope.join(); }());
        CHECK(scope.empty());
        CHECK(errors == std::vector<std::string>{"task 0", "task 2"});
    }

    TEST_CASE("request_stop cancels every task of a scope and join waits for them") {
        uvtest::TestLoop loop;
        int cancelled = 0;
        int reported = 0;
        Scope scope(loop, [&](std::exception_ptr) { ++reported; });
        Channel<int> ch(loop);
        AsyncEvent ev(loop);
        auto sleeper = [&]() -> Task<void> {
            try {
                co_await sleep_for(loop, 1h);
            } catch (const Error& e) {
                if (e.code() == errc::cancelled) ++cancelled;
                throw;
            }
        };
        auto reader = [&]() -> Task<void> {
            try {
                (void)co_await ch.next();
            } catch (const Error& e) {
                if (e.code() == errc::cancelled) ++cancelled;
                throw;
            }
        };
        auto waiter = [&]() -> Task<void> {
            try {
                co_await ev.wait();
            } catch (const Error& e) {
                if (e.code() == errc::cancelled) ++cancelled;
                throw;
            }
        };
        scope.spawn(sleeper());
        scope.spawn(reader());
        scope.spawn(waiter());
        run(loop, [&]() -> Task<void> {
            co_await sleep_for(loop, 1ms);
            CHECK(scope.size() == 3);
            scope.request_stop();
            co_await scope.join();
        }());
        CHECK(cancelled == 3);
        CHECK(reported == 0);  // cancellation after a stop request is not an error
    }

    TEST_CASE("destroying a scope destroys its suspended tasks") {
        uvtest::TestLoop loop;
        AsyncEvent never(loop);
        int finished = 0;
        {
            Scope scope(loop);
            for (int i = 0; i < 4; ++i) {
                scope.spawn([](AsyncEvent& ev, int& done) -> Task<void> {
                    co_await ev.wait();
                    ++done;
                }(never, finished));
            }
            uv_run(loop, UV_RUN_NOWAIT);
            CHECK(scope.size() == 4);
        }
        uv_run(loop, UV_RUN_DEFAULT);
        CHECK(finished == 0);
    }

    TEST_CASE("join is cancellable") {
        uvtest::TestLoop loop;
        Scope scope(loop);
        AsyncEvent ev(loop);
        scope.spawn([](AsyncEvent& e) -> Task<void> { co_await e.wait(); }(ev));
        std::stop_source source;
        auto joiner = [&]() -> Task<void> { co_await scope.join(); };
        auto stopper = [&]() -> Task<void> {
            co_await sleep_for(loop, 1ms);
            source.request_stop();
        };
        spawn(loop, stopper());
        CHECK_THROWS_WITH_AS(run(loop, with_stop_token(joiner(), source.get_token())),
                             doctest::Contains("cancelled"), Error);
        ev.set();
        run(loop, [&]() -> Task<void> { co_await scope.join(); }());
    }

    TEST_CASE("run throws loop_drained when the task waits for nothing the loop has") {
        uvtest::TestLoop loop;
        AsyncEvent never(loop);
        auto body = [&]() -> Task<int> {
            co_await never.wait();
            co_return 1;
        };
        try {
            (void)run(loop, body());
            FAIL("no exception");
        } catch (const Error& e) {
            CHECK(e.code() == errc::loop_drained);
        }
    }

    TEST_CASE("request_stop_spawned stops the tasks started by spawn") {
        uvtest::TestLoop loop;
        bool cancelled = false;
        spawn(loop, [](uv_loop_t* l, bool& flag) -> Task<void> {
            try {
                co_await sleep_for(l, 1h);
            } catch (const Error& e) {
                flag = e.code() == errc::cancelled;
            }
        }(loop, cancelled));
        uv_run(loop, UV_RUN_NOWAIT);
        request_stop_spawned(loop);
        uv_run(loop, UV_RUN_DEFAULT);
        CHECK(cancelled);
    }

    TEST_CASE("the library's handles close once no library object uses the loop") {
        uvtest::TestLoop loop;
        auto count_open = [&] {
            int n = 0;
            uv_walk(
                loop,
                [](uv_handle_t* h, void* arg) { *static_cast<int*>(arg) += !uv_is_closing(h); },
                &n);
            return n;
        };
        {
            Channel<int> ch(loop);
            AsyncEvent ev(loop);
            CHECK(count_open() > 0);
            // Idle library objects do not keep the application's loop running.
            CHECK(uv_run(loop, UV_RUN_DEFAULT) == 0);
            spawn(loop, [](uv_loop_t* l, Channel<int>& c) -> Task<void> {
                co_await sleep_for(l, 1ms);
                c.push(1);
            }(loop, ch));
            CHECK(run(loop,
                      [](Channel<int>& c) -> Task<int> { co_return *co_await c.next(); }(ch)) == 1);
            uv_run(loop, UV_RUN_DEFAULT);
        }
        CHECK(count_open() == 0);
        uv_run(loop, UV_RUN_NOWAIT);
        CHECK(uv_loop_alive(loop) == 0);
    }

    TEST_CASE("two loops run tasks in two threads at once") {
        std::atomic<int> total{0};
        auto worker = [&total] {
            uvtest::TestLoop loop;
            Channel<int> ch(loop);
            Scope scope(loop);
            scope.spawn([](uv_loop_t* l, Channel<int>& c) -> Task<void> {
                for (int i = 1; i <= 100; ++i) {
                    c.push(i);
                    if (i % 10 == 0) co_await sleep_for(l, 1ms);
                }
                c.close();
            }(loop, ch));
            int sum = run(loop, [](Channel<int>& c) -> Task<int> {
                int s = 0;
                while (auto v = co_await c.next()) s += *v;
                co_return s;
            }(ch));
            total += sum;
        };
        std::thread a(worker);
        std::thread b(worker);
        a.join();
        b.join();
        CHECK(total == 2 * 5050);
    }
}
