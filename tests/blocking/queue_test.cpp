#include "uvgena/blocking/queue.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/test_loop.hpp"
#include "uvgena/blocking/background_loop.hpp"
#include "uvgena/co/timer.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

TEST_SUITE("blocking.queue") {
    TEST_CASE("items come out in order and get with a time limit returns nothing when empty") {
        BlockingQueue<std::string> q;
        CHECK(q.push("a"));
        CHECK(q.push("b"));
        CHECK(q.size() == 2);
        CHECK(q.get() == "a");
        CHECK(q.get(1s) == "b");
        CHECK_FALSE(q.get(1ms).has_value());
        CHECK_FALSE(q.try_get().has_value());
        CHECK_FALSE(q.closed());
    }

    TEST_CASE("close delivers what is queued, then ends the stream at once") {
        BlockingQueue<int> q;
        q.push(1);
        q.close();
        CHECK_FALSE(q.push(2));
        CHECK(q.closed());
        CHECK(q.get() == 1);
        CHECK_FALSE(q.get().has_value());
        CHECK_FALSE(q.get(1h).has_value());
    }

    TEST_CASE("a bounded queue counts every item its policy loses") {
        BlockingQueue<int> oldest(2, Overflow::drop_oldest);
        for (int i = 1; i <= 5; ++i) CHECK(oldest.push(i));
        CHECK(oldest.dropped() == 3);
        CHECK(oldest.get() == 4);
        CHECK(oldest.get() == 5);

        BlockingQueue<int> newest(2, Overflow::reject_new);
        CHECK(newest.push(1));
        CHECK(newest.push(2));
        CHECK_FALSE(newest.push(3));
        CHECK(newest.dropped() == 1);
        CHECK(newest.get() == 1);
        CHECK(newest.capacity() == 2);

        CHECK_THROWS_AS(BlockingQueue<int>(2, Overflow::wait), Error);
    }

    TEST_CASE("a consumer blocked in get is woken by a push from a loop thread") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        BlockingQueue<int> q;
        constexpr int kItems = 5000;
        // The producer is a task on the loop; the consumer is this thread.
        auto producer = bg.run([&q](uv_loop_t* loop) -> Task<void> {
            for (int i = 0; i < kItems; ++i) {
                q.push(i);
                if (i % 100 == 0) co_await sleep_for(loop, 0ms);
            }
            q.close();
        });
        long sum = 0;
        int count = 0;
        while (auto item = q.get(10s)) {
            CHECK(*item == count);
            sum += *item;
            ++count;
        }
        CHECK(q.closed());
        CHECK(count == kItems);
        CHECK(sum == long{kItems} * (kItems - 1) / 2);
        producer.wait();
    }

    TEST_CASE("several consumer threads share the items, each item going to one of them") {
        uvtest::Watchdog watchdog(20s);
        BlockingQueue<int> q;
        constexpr int kItems = 4000;
        std::atomic<long> sum{0};
        std::atomic<int> count{0};
        std::vector<std::thread> consumers;
        for (int t = 0; t < 4; ++t) {
            consumers.emplace_back([&] {
                while (auto item = q.get()) {
                    sum += *item;
                    ++count;
                }
            });
        }
        for (int i = 0; i < kItems; ++i) q.push(i);
        q.close();
        for (auto& t : consumers) t.join();
        CHECK(count == kItems);
        CHECK(sum == long{kItems} * (kItems - 1) / 2);
    }

    TEST_CASE("a callback queue runs posted calls on the thread that drains it") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        CallbackQueue calls;
        std::vector<std::thread::id> ran_on;
        bg.run([&calls, &ran_on] {
              for (int i = 0; i < 3; ++i) {
                  calls.post([&ran_on] { ran_on.push_back(std::this_thread::get_id()); });
              }
          }).wait();
        CHECK(calls.size() == 3);
        CHECK(calls.run_for(1s) == 3);
        CHECK(calls.drain() == 0);
        CHECK(calls.run_for(1ms) == 0);
        REQUIRE(ran_on.size() == 3);
        for (auto id : ran_on) CHECK(id == std::this_thread::get_id());
        calls.close();
        CHECK_FALSE(calls.post([] {}));
    }

    TEST_CASE("a bounded callback queue drops the oldest calls instead of blocking") {
        CallbackQueue calls(2);
        int last = 0;
        for (int i = 1; i <= 4; ++i) calls.post([&last, i] { last = i; });
        CHECK(calls.dropped() == 2);
        CHECK(calls.drain() == 2);
        CHECK(last == 4);
    }
}
