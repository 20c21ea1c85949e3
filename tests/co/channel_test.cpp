#include "uvgena/co/channel.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "co/counted.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/async_event.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

Task<std::vector<int>> drain(Channel<int>& ch) {
    std::vector<int> out;
    while (auto v = co_await ch.next()) out.push_back(*v);
    co_return out;
}

}  // namespace

TEST_SUITE("co.channel") {
    TEST_CASE("items pushed from plain code reach a waiting consumer in order") {
        uvtest::TestLoop loop;
        Channel<int> ch(loop);
        Scope scope(loop);
        scope.spawn([](uv_loop_t* l, Channel<int>& c) -> Task<void> {
            for (int i = 0; i < 5; ++i) {
                CHECK(c.push(i));
                co_await sleep_for(l, 1ms);
            }
            c.close();
        }(loop, ch));
        CHECK(run(loop, drain(ch)) == std::vector<int>{0, 1, 2, 3, 4});
        CHECK_FALSE(ch.push(9));  // closed
    }

    TEST_CASE("close delivers buffered items, then end of stream to every waiter") {
        uvtest::TestLoop loop;
        Channel<int> ch(loop);
        ch.push(1);
        ch.push(2);
        ch.close();
        CHECK(ch.closed());
        CHECK(run(loop, drain(ch)) == std::vector<int>{1, 2});

        Channel<int> empty(loop);
        Scope scope(loop);
        int ended = 0;
        for (int i = 0; i < 3; ++i) {
            scope.spawn([](Channel<int>& c, int& n) -> Task<void> {
                auto v = co_await c.next();
                if (!v) ++n;
            }(empty, ended));
        }
        run(loop, [&]() -> Task<void> {
            co_await sleep_for(loop, 1ms);
            empty.close();
            co_await scope.join();
        }());
        CHECK(ended == 3);
    }

    TEST_CASE("several consumers each get distinct items") {
        uvtest::TestLoop loop;
        Channel<int> ch(loop);
        Scope scope(loop);
        std::vector<int> got[3];
        for (auto& out : got) {
            scope.spawn([](Channel<int>& c, std::vector<int>& o) -> Task<void> {
                while (auto v = co_await c.next()) o.push_back(*v);
            }(ch, out));
        }
        run(loop, [&]() -> Task<void> {
            co_await sleep_for(loop, 1ms);  // all three wait now
            for (int i = 0; i < 30; ++i) {
                ch.push(i);
                if (i % 7 == 0) co_await sleep_for(loop, 1ms);
            }
            ch.close();
            co_await scope.join();
        }());
        std::vector<int> all;
        for (auto& out : got) {
            CHECK_FALSE(out.empty());
            all.insert(all.end(), out.begin(), out.end());
        }
        std::sort(all.begin(), all.end());
        std::vector<int> expected(30);
        for (int i = 0; i < 30; ++i) expected[static_cast<std::size_t>(i)] = i;
        CHECK(all == expected);
    }

    TEST_CASE("a bounded channel dropping the oldest counts the drops") {
        uvtest::TestLoop loop;
        Channel<int> ch(loop, 3, Overflow::drop_oldest);
        for (int i = 0; i < 10; ++i) CHECK(ch.push(i));
        CHECK(ch.size() == 3);
        CHECK(ch.dropped() == 7);
        ch.close();
        CHECK(run(loop, drain(ch)) == std::vector<int>{7, 8, 9});
    }

    TEST_CASE("a bounded channel rejecting new items counts the refusals") {
        uvtest::TestLoop loop;
        Channel<int> ch(loop, 2, Overflow::reject_new);
        CHECK(ch.push(1));
        CHECK(ch.push(2));
        CHECK_FALSE(ch.push(3));
        CHECK_FALSE(ch.push(4));
        CHECK(ch.dropped() == 2);
        ch.close();
        CHECK(run(loop, drain(ch)) == std::vector<int>{1, 2});
    }

    TEST_CASE("push_wait waits for space in a bounded channel") {
        uvtest::TestLoop loop;
        Channel<int> ch(loop, 2);
        Scope scope(loop);
        int pushed = 0;
        scope.spawn([](Channel<int>& c, int& n) -> Task<void> {
            for (int i = 0; i < 10; ++i) {
                co_await c.push_wait(i);
                ++n;
                CHECK(c.size() <= 2);
            }
            c.close();
        }(ch, pushed));
        run(loop, [&]() -> Task<void> {
            // The producer starts in a check phase, which may come after this sleep's timer
            // when the loop starts late (valgrind, a loaded machine): wait for its two pushes,
            // then give it more turns, in which it must not get further.
            for (int i = 0; i < 2000 && pushed < 2; ++i) co_await sleep_for(loop, 1ms);
            co_await sleep_for(loop, 2ms);
            CHECK(pushed == 2);  // the producer waits for room
            CHECK(ch.size() == 2);
            CHECK_FALSE(ch.push(99));  // Overflow::wait: push refuses when full
            CHECK(ch.dropped() == 1);
            co_return;
        }());
        CHECK(run(loop, drain(ch)) == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        run(loop, [&]() -> Task<void> { co_await scope.join(); }());
    }

    TEST_CASE("a producer waiting for room is woken by close with an error") {
        uvtest::TestLoop loop;
        Channel<int> ch(loop, 1);
        ch.push(1);
        auto producer = [&]() -> Task<void> { co_await ch.push_wait(2); };
        spawn(loop, [](Channel<int>& c, uv_loop_t* l) -> Task<void> {
            co_await sleep_for(l, 1ms);
            c.close();
        }(ch, loop));
        CHECK_THROWS_WITH_AS(run(loop, producer()), doctest::Contains("closed"), Error);
        CHECK(ch.size() == 1);
    }

    TEST_CASE("waiting consumers and producers are cancelled by their stop token") {
        uvtest::TestLoop loop;
        Channel<int> ch(loop, 1);
        Channel<int> empty(loop);
        std::stop_source source;
        Scope scope(loop);
        int cancelled = 0;
        ch.push(0);
        scope.spawn(with_stop_token(
            [](Channel<int>& c, int& n) -> Task<void> {
                try {
                    co_await c.push_wait(1);
                } catch (const Error& e) {
                    n += e.code() == errc::cancelled;
                }
            }(ch, cancelled),
            source.get_token()));
        scope.spawn(with_stop_token(
            [](Channel<int>& c, int& n) -> Task<void> {
                try {
                    (void)co_await c.next();
                } catch (const Error& e) {
                    n += e.code() == errc::cancelled;
                }
            }(empty, cancelled),
            source.get_token()));
        run(loop, [&]() -> Task<void> {
            co_await sleep_for(loop, 1ms);
            source.request_stop();
            co_await scope.join();
        }());
        CHECK(cancelled == 2);
        CHECK(ch.size() == 1);  // the cancelled push did not deliver
    }

    TEST_CASE("every item is destroyed exactly once, including after cancellation") {
        cotest::Counted::reset();
        {
            uvtest::TestLoop loop;
            Channel<cotest::Counted> ch(loop, 2, Overflow::drop_oldest);
            for (int i = 0; i < 5; ++i) ch.push(cotest::Counted(i));
            Scope scope(loop);
            for (int v : {100, 101}) {
                // The first waits for room and delivers; the second still waits when the
                // scope destroys it.
                scope.spawn([](Channel<cotest::Counted>& c, int value) -> Task<void> {
                    co_await c.push_wait(cotest::Counted(value));
                }(ch, v));
            }
            run(loop, [&]() -> Task<void> {
                auto first = co_await ch.next();
                CHECK(first->value == 3);
                co_await sleep_for(loop, 1ms);
                co_return;
            }());
            CHECK(ch.size() == 2);
            CHECK(scope.size() == 1);
            // Scope and channel die with items and a waiting producer inside.
        }
        CHECK(cotest::Counted::alive() == 0);
        CHECK(cotest::Counted::constructed > 5);
    }

    TEST_CASE("an item of a cancelled push_wait is destroyed exactly once") {
        cotest::Counted::reset();
        {
            uvtest::TestLoop loop;
            Channel<cotest::Counted> ch(loop, 1);
            ch.push(cotest::Counted(1));
            std::stop_source source;
            Scope scope(loop);
            bool cancelled = false;
            scope.spawn(with_stop_token(
                [](Channel<cotest::Counted>& c, bool& flag) -> Task<void> {
                    try {
                        co_await c.push_wait(cotest::Counted(2));
                    } catch (const Error& e) {
                        flag = e.code() == errc::cancelled;
                    }
                }(ch, cancelled),
                source.get_token()));
            run(loop, [&]() -> Task<void> {
                co_await sleep_for(loop, 1ms);
                source.request_stop();
                co_await scope.join();
            }());
            CHECK(cancelled);
            CHECK(ch.size() == 1);
            CHECK(ch.try_next()->value == 1);
        }
        CHECK(cotest::Counted::alive() == 0);
    }

    TEST_CASE("a million items through a channel in one task do not grow the stack") {
        uvtest::TestLoop loop;
        Channel<int> ch(loop);
        long long sum = run(loop, [&]() -> Task<long long> {
            long long s = 0;
            for (int i = 0; i < 1'000'000; ++i) {
                ch.push(i);
                s += *co_await ch.next();
            }
            co_return s;
        }());
        CHECK(sum == 499999500000LL);
    }
}

TEST_SUITE("co.event") {
    TEST_CASE("set wakes every waiter and stays set until reset") {
        uvtest::TestLoop loop;
        AsyncEvent ev(loop);
        Scope scope(loop);
        int woken = 0;
        for (int i = 0; i < 3; ++i) {
            scope.spawn([](AsyncEvent& e, int& n) -> Task<void> {
                co_await e.wait();
                ++n;
            }(ev, woken));
        }
        run(loop, [&]() -> Task<void> {
            co_await sleep_for(loop, 1ms);
            CHECK(woken == 0);
            CHECK_FALSE(ev.is_set());
            ev.set();
            co_await scope.join();
            co_await ev.wait();  // already set: no suspension needed
            ev.reset();
            CHECK_FALSE(ev.is_set());
        }());
        CHECK(woken == 3);
    }

    TEST_CASE("an event wait is cancelled by the stop token") {
        uvtest::TestLoop loop;
        AsyncEvent ev(loop);
        std::stop_source source;
        spawn(loop, [](uv_loop_t* l, std::stop_source& s) -> Task<void> {
            co_await sleep_for(l, 1ms);
            s.request_stop();
        }(loop, source));
        auto waiter = [&]() -> Task<void> { co_await ev.wait(); };
        CHECK_THROWS_WITH_AS(run(loop, with_stop_token(waiter(), source.get_token())),
                             doctest::Contains("cancelled"), Error);
    }

    TEST_CASE("destroying an event wakes its waiters with closed") {
        uvtest::TestLoop loop;
        auto ev = std::make_unique<AsyncEvent>(loop);
        spawn(loop, [](uv_loop_t* l, std::unique_ptr<AsyncEvent>& e) -> Task<void> {
            co_await sleep_for(l, 1ms);
            e.reset();
        }(loop, ev));
        auto waiter = [&]() -> Task<void> { co_await ev->wait(); };
        CHECK_THROWS_WITH_AS(run(loop, waiter()), doctest::Contains("closed"), Error);
    }
}
