#include "uvgena/blocking/background_loop.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/test_loop.hpp"
#include "uvgena/blocking/queue.hpp"
#include "uvgena/co/async_event.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

// Captures log messages from any thread for the duration of a test.
class LogCapture {
  public:
    LogCapture() {
        set_log_sink([this](LogLevel, std::string_view m) {
            std::lock_guard lock(mutex_);
            messages_.emplace_back(m);
        });
    }
    ~LogCapture() { set_log_sink({}); }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    bool contains(std::string_view needle) const {
        std::lock_guard lock(mutex_);
        for (const auto& m : messages_) {
            if (m.find(needle) != std::string::npos) return true;
        }
        return false;
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::string> messages_;
};

// The error code that `fn` throws as a std::system_error (a default code if it throws none).
template <typename Fn>
std::error_code code_of(Fn&& fn) {
    try {
        fn();
    } catch (const std::system_error& e) {
        return e.code();
    }
    return {};
}

Task<int> sleep_then_return(uv_loop_t* loop, int value) {
    co_await sleep_for(loop, 1ms);
    co_return value;
}

Task<void> sleep_task(uv_loop_t* loop, std::chrono::milliseconds d) {
    co_await sleep_for(loop, d);
}

// Waits until stopped, then throws Error(errc::cancelled) like every co awaiter.
Task<void> wait_forever(uv_loop_t* loop) {
    co_await sleep_for(loop, std::chrono::hours(1));
}

// Sleeps `d`, then sets `done`.
Task<void> sleep_then_set(uv_loop_t* loop, std::chrono::milliseconds d,
                          std::shared_ptr<std::atomic<bool>> done) {
    co_await sleep_for(loop, d);
    done->store(true);
}

// Starts work of its own when destroyed, as a dropped Subscription starts its UNSUBSCRIBE.
struct SpawnsWhenDestroyed {
    uv_loop_t* loop;
    std::shared_ptr<std::atomic<bool>> done;
    ~SpawnsWhenDestroyed() { spawn(loop, sleep_then_set(loop, 20ms, done)); }
};

}  // namespace

TEST_SUITE("blocking.background_loop") {
    TEST_CASE("run calls a plain function on the loop thread and wait returns its value") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        CHECK(bg.running());
        CHECK_FALSE(bg.in_loop_thread());
        auto result = bg.run([&bg] {
            CHECK(bg.in_loop_thread());
            return std::this_thread::get_id();
        });
        CHECK(result.valid());
        CHECK(result.wait() == bg.thread_id());
        CHECK(bg.thread_id() != std::this_thread::get_id());
    }

    TEST_CASE("run drives a task made from the loop and returns the task's value") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        auto result = bg.run([](uv_loop_t* loop) { return sleep_then_return(loop, 42); });
        CHECK(result.wait() == 42);
        // A task handed over directly.
        CHECK(bg.run(sleep_then_return(bg.loop(), 7)).wait() == 7);
        // Void functions and void tasks.
        std::atomic<int> calls{0};
        bg.run([&calls] { ++calls; }).wait();
        bg.run([&calls](uv_loop_t* loop) -> Task<void> {
              co_await sleep_for(loop, 1ms);
              ++calls;
          }).wait();
        CHECK(calls == 2);
    }

    TEST_CASE("the captures of a lambda coroutine stay alive until its task is done") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        std::string text(200, 'x');  // long enough to live on the heap
        auto result = bg.run([text](uv_loop_t* loop) -> Task<std::string> {
            co_await sleep_for(loop, 2ms);
            co_return text + "!";
        });
        CHECK(result.wait() == text + "!");
    }

    TEST_CASE("move-only values cross threads and are taken once") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        auto result = bg.run([] { return std::make_unique<int>(5); });
        std::unique_ptr<int> value = result.wait();
        REQUIRE(value != nullptr);
        CHECK(*value == 5);
        CHECK(result.ready());
        CHECK(code_of([&] { (void)result.wait(); }) == make_error_code(errc::invalid_argument));
        EventualResult<int> empty;
        CHECK_FALSE(empty.valid());
        CHECK_FALSE(empty.ready());
        CHECK(code_of([&] { (void)empty.wait(); }) == make_error_code(errc::invalid_argument));
    }

    TEST_CASE("many threads calling run concurrently all get their own results") {
        uvtest::Watchdog watchdog(40s);
        BackgroundLoop bg;
        constexpr int kThreads = 8;
        constexpr int kCalls = 300;
        // Touched only on the loop thread: ThreadSanitizer would report any other access.
        int loop_counter = 0;
        std::vector<std::thread> threads;
        std::vector<long> sums(kThreads, 0);
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < kCalls; ++i) {
                    int n = t * 100000 + i;
                    if (i % 3 == 0) {
                        sums[static_cast<std::size_t>(t)] +=
                            bg.run([n](uv_loop_t* loop) -> Task<int> {
                                  co_await sleep_for(loop, 0ms);
                                  co_return n;
                              }).wait();
                    } else {
                        sums[static_cast<std::size_t>(t)] += bg.run([n, &loop_counter] {
                                                                   ++loop_counter;
                                                                   return n;
                                                               }).wait(10s);
                    }
                }
            });
        }
        for (auto& th : threads) th.join();
        for (int t = 0; t < kThreads; ++t) {
            long expected = 0;
            for (int i = 0; i < kCalls; ++i) expected += t * 100000 + i;
            CHECK(sums[static_cast<std::size_t>(t)] == expected);
        }
        int counted = bg.run([&loop_counter] { return loop_counter; }).wait();
        CHECK(counted == kThreads * (kCalls - (kCalls + 2) / 3));
    }

    TEST_CASE("many results posted at once before any wait all complete") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        std::vector<EventualResult<int>> results;
        for (int i = 0; i < 2000; ++i) results.push_back(bg.run([i] { return i; }));
        long sum = 0;
        for (auto& r : results) sum += r.wait();
        CHECK(sum == 1999L * 2000 / 2);
    }

    TEST_CASE("wait with a time limit throws timed_out, and the work goes on") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        // The event lives on the loop thread; the task waits for it.
        auto event =
            bg.run([](uv_loop_t* loop) { return std::make_shared<AsyncEvent>(loop); }).wait();
        auto result = bg.run([event]() -> Task<int> {
            co_await event->wait();
            co_return 9;
        });
        CHECK(code_of([&] { (void)result.wait(5ms); }) == make_error_code(errc::timed_out));
        CHECK_FALSE(result.ready());
        bg.run([event] { event->set(); }).wait();
        CHECK(result.wait(10s) == 9);
        // The event dies on the loop thread, like every library object.
        bg.run([e = std::move(event)]() mutable { e.reset(); }).wait();
    }

    TEST_CASE("a wait that times out names the work it was waiting for, when described") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        auto named = bg.run(wait_forever(bg.loop())).describe("the device's answer");
        try {
            named.wait(1ms);
            FAIL("no timeout");
        } catch (const Error& e) {
            CHECK(e.code() == make_error_code(errc::timed_out));
            CHECK(std::string(e.what()).find("for the device's answer: no outcome within 1 ms") !=
                  std::string::npos);
        }
        auto anonymous = bg.run(wait_forever(bg.loop()));
        CHECK(code_of([&] { anonymous.wait(1ms); }) == make_error_code(errc::timed_out));
        named.cancel();
        anonymous.cancel();
    }

    TEST_CASE("exceptions cross threads with their type, code and message") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        auto plain = bg.run([]() -> int { throw std::runtime_error("plain failure"); });
        CHECK_THROWS_WITH_AS((void)plain.wait(), "plain failure", std::runtime_error);
        CHECK(plain.ready());
        // The exception was handed over: a second wait says so.
        CHECK(code_of([&] { (void)plain.wait(); }) == make_error_code(errc::invalid_argument));

        auto task = bg.run([](uv_loop_t* loop) -> Task<void> {
            co_await sleep_for(loop, 1ms);
            throw Error(uv_error(UV_ECONNREFUSED), "connect to 127.0.0.1:9");
        });
        try {
            task.wait();
            FAIL("no exception");
        } catch (const Error& e) {
            CHECK(e.code() == uv_error(UV_ECONNREFUSED));
            CHECK(std::string(e.what()).find("connect to 127.0.0.1:9") != std::string::npos);
        }
    }

    TEST_CASE("wait on the loop's own thread is refused at once instead of deadlocking") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        auto codes = bg.run([&bg] {
                           auto inner = bg.run([] { return 1; });
                           std::error_code a = code_of([&] { (void)inner.wait(); });
                           std::error_code b = code_of([&] { (void)inner.wait(1h); });
                           return std::pair(a, b);
                       }).wait();
        CHECK(codes.first == make_error_code(errc::wrong_thread));
        CHECK(codes.second == make_error_code(errc::wrong_thread));
    }

    TEST_CASE("cancel stops a running task, whose result is then cancelled") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        auto started = std::make_shared<std::atomic<bool>>(false);
        auto result = bg.run([started](uv_loop_t* loop) -> Task<int> {
            started->store(true);
            co_await wait_forever(loop);
            co_return 1;
        });
        // Once the task provably runs, cancel it.
        while (!started->load()) bg.run([] {}).wait();
        result.cancel();
        CHECK(code_of([&] { (void)result.wait(10s); }) == make_error_code(errc::cancelled));
        result.cancel();  // harmless once finished
    }

    TEST_CASE("cancel before the work started means it never starts") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        std::atomic<bool> release{false};
        std::atomic<bool> ran{false};
        // The loop thread is kept busy so that the second call stays queued.
        auto busy = bg.run([&release] {
            while (!release.load()) std::this_thread::yield();
        });
        auto queued = bg.run([&ran] { ran = true; });
        queued.cancel();
        release = true;
        busy.wait();
        CHECK(code_of([&] { queued.wait(); }) == make_error_code(errc::cancelled));
        CHECK_FALSE(ran.load());
    }

    TEST_CASE("cancel is best effort: finished work and work that ignores it keep their value") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        auto done = bg.run([] { return 3; });
        CHECK(done.wait() == 3);
        done.cancel();
        CHECK(done.ready());

        auto started = std::make_shared<std::atomic<bool>>(false);
        auto stubborn = bg.run([started](uv_loop_t* loop) -> Task<int> {
            started->store(true);
            // The stop token is ignored: the sleep runs under an empty token.
            co_await with_stop_token(sleep_task(loop, 5ms), std::stop_token());
            co_return 4;
        });
        while (!started->load()) bg.run([] {}).wait();
        stubborn.cancel();
        CHECK(stubborn.wait(10s) == 4);
    }

    TEST_CASE("stop abandons queued calls, cancels running tasks and lets them clean up") {
        uvtest::Watchdog watchdog(20s);
        auto bg = std::make_unique<BackgroundLoop>();
        auto cleaned_up = std::make_shared<std::atomic<bool>>(false);
        auto started = std::make_shared<std::atomic<int>>(0);
        std::vector<EventualResult<int>> running;
        for (int i = 0; i < 5; ++i) {
            running.push_back(bg->run([started](uv_loop_t* loop) -> Task<int> {
                started->fetch_add(1);
                co_await wait_forever(loop);
                co_return 0;
            }));
        }
        // A task that does asynchronous cleanup once stopped, under a token of its own.
        auto polite = bg->run([started, cleaned_up](uv_loop_t* loop) -> Task<void> {
            started->fetch_add(1);
            bool stopped = false;
            try {
                co_await wait_forever(loop);
            } catch (const Error& e) {
                stopped = is_cancelled(e.code());
            }
            if (stopped) {
                co_await with_stop_token(sleep_task(loop, 2ms), std::stop_token());
                cleaned_up->store(true);
                throw Error(make_error_code(errc::cancelled), "polite task");
            }
        });
        while (started->load() < 6) bg->run([] {}).wait();
        // The loop is kept busy until stop was requested, so the next calls stay queued.
        BackgroundLoop* raw = bg.get();
        std::atomic<bool> blocking{false};
        auto blocker = bg->run([raw, &blocking] {
            blocking = true;
            while (raw->running()) std::this_thread::yield();
        });
        while (!blocking.load()) std::this_thread::yield();
        std::atomic<int> ran{0};
        std::vector<EventualResult<void>> queued;
        for (int i = 0; i < 10; ++i) queued.push_back(bg->run([&ran] { ++ran; }));
        bg.reset();
        CHECK(ran == 0);
        for (auto& r : queued) {
            CHECK(r.ready());
            CHECK(code_of([&] { r.wait(); }) == make_error_code(errc::not_running));
        }
        for (auto& r : running) {
            CHECK(code_of([&] { (void)r.wait(); }) == make_error_code(errc::cancelled));
        }
        CHECK(code_of([&] { polite.wait(); }) == make_error_code(errc::cancelled));
        CHECK(cleaned_up->load());
        blocker.wait();
    }

    TEST_CASE("a task that outlives the shutdown grace period is destroyed and reported") {
        uvtest::Watchdog watchdog(20s);
        LogCapture logs;
        BackgroundLoop bg(BackgroundLoopOptions{.shutdown_grace = 20ms});
        auto started = std::make_shared<std::atomic<bool>>(false);
        auto stubborn = bg.run([started](uv_loop_t* loop) -> Task<void> {
            started->store(true);
            co_await with_stop_token(sleep_task(loop, std::chrono::hours(1)), std::stop_token());
        });
        while (!started->load()) bg.run([] {}).wait();
        bg.stop();
        CHECK(code_of([&] { stubborn.wait(); }) == make_error_code(errc::cancelled));
        CHECK(logs.contains("still running after the shutdown grace period"));
    }

    TEST_CASE("tasks spawned on the background loop are stopped at shutdown") {
        uvtest::Watchdog watchdog(20s);
        auto stopped = std::make_shared<std::atomic<bool>>(false);
        {
            BackgroundLoop bg;
            bg.run([stopped](uv_loop_t* loop) {
                  spawn(loop,
                        [](uv_loop_t* l, std::shared_ptr<std::atomic<bool>> flag) -> Task<void> {
                            try {
                                co_await wait_forever(l);
                            } catch (const Error& e) {
                                flag->store(is_cancelled(e.code()));
                                throw;
                            }
                        }(loop, stopped));
              }).wait();
        }
        CHECK(stopped->load());
    }

    TEST_CASE("stop is idempotent, safe from several threads, and run after it throws") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        CHECK(bg.run([] { return 1; }).wait() == 1);
        std::vector<std::thread> stoppers;
        for (int i = 0; i < 4; ++i) stoppers.emplace_back([&bg] { bg.stop(); });
        for (auto& t : stoppers) t.join();
        bg.stop();
        CHECK_FALSE(bg.running());
        CHECK(code_of([&] { (void)bg.run([] { return 1; }); }) ==
              make_error_code(errc::not_running));
    }

    TEST_CASE("stop called on the loop thread requests the stop without joining itself") {
        uvtest::Watchdog watchdog(20s);
        BackgroundLoop bg;
        bg.run([&bg] { bg.stop(); }).wait();
        CHECK_FALSE(bg.running());
        bg.stop();  // joins
    }

    TEST_CASE("a handle left open by user code is closed when the loop stops") {
        uvtest::Watchdog watchdog(20s);
        LogCapture logs;
        std::unique_ptr<uv_timer_t> timer(new uv_timer_t);
        {
            BackgroundLoop bg;
            bg.run([t = timer.get()](uv_loop_t* loop) {
                  uv_timer_init(loop, t);
                  uv_timer_start(
                      t, [](uv_timer_t*) {}, 1000, 1000);
              }).wait();
        }
        CHECK(logs.contains("closing a timer handle that its owner left open"));
        CHECK(logs.contains("the loop's memory is kept"));
    }

    TEST_CASE("objects kept until stop are destroyed on the loop thread after its tasks") {
        uvtest::Watchdog watchdog(20s);
        // Records the thread that destroys it.
        struct Recorder {
            std::shared_ptr<BlockingQueue<std::thread::id>> out;
            ~Recorder() { out->push(std::this_thread::get_id()); }
        };
        auto destroyed_on = std::make_shared<BlockingQueue<std::thread::id>>();
        std::thread::id loop_thread;
        {
            BackgroundLoop bg;
            loop_thread = bg.thread_id();
            bg.run([&bg, destroyed_on] {
                  auto recorder = std::make_shared<Recorder>();
                  recorder->out = destroyed_on;
                  bg.keep_until_stop(std::move(recorder));
              }).wait();
            CHECK(destroyed_on->size() == 0);
            CHECK(code_of([&] { bg.keep_until_stop(std::make_shared<int>(1)); }) ==
                  make_error_code(errc::wrong_thread));
        }
        CHECK(destroyed_on->try_get() == loop_thread);
    }

    TEST_CASE("work that a kept object starts when destroyed runs within the grace period") {
        // Regression (issue 17, suspected teardown item): kept objects were destroyed after the
        // spawned tasks, so work they spawned then never ran; its timer was force-closed
        // ("left open") and the loop leaked.
        uvtest::Watchdog watchdog(20s);
        LogCapture logs;
        auto done = std::make_shared<std::atomic<bool>>(false);
        {
            BackgroundLoop bg;
            bg.run([&bg, done](uv_loop_t* loop) {
                  // No temporary: its destructor would spawn too.
                  bg.keep_until_stop(
                      std::shared_ptr<SpawnsWhenDestroyed>(new SpawnsWhenDestroyed{loop, done}));
              }).wait();
        }
        CHECK(done->load());
        CHECK_FALSE(logs.contains("left open"));
        CHECK_FALSE(logs.contains("leaked"));
    }

    TEST_CASE("an exception nobody waited for is logged when its result is dropped") {
        uvtest::Watchdog watchdog(20s);
        LogCapture logs;
        {
            BackgroundLoop bg;
            auto forgotten = bg.run([]() -> int { throw std::runtime_error("forgotten failure"); });
            while (!forgotten.ready()) std::this_thread::yield();
            forgotten = {};
            // Dropping a cancelled result is not worth a message.
            auto cancelled = bg.run(wait_forever(bg.loop()));
            cancelled.cancel();
        }
        CHECK(logs.contains("forgotten failure"));
        CHECK_FALSE(logs.contains("cancelled"));
    }

    TEST_CASE("several background loops run at once beside a loop the application runs") {
        uvtest::TestLoop app_loop;
        BackgroundLoop a;
        BackgroundLoop b;
        CHECK(a.loop() != b.loop());
        CHECK(a.thread_id() != b.thread_id());
        // Work on `a` calls into `b` and blocks a's thread meanwhile, which is allowed.
        auto chained = a.run([&b] { return b.run([] { return 20; }).wait() + 1; });
        auto on_b = b.run([](uv_loop_t* loop) { return sleep_then_return(loop, 2); });
        CHECK(run(app_loop, sleep_then_return(app_loop, 3)) == 3);
        CHECK(chained.wait() == 21);
        CHECK(on_b.wait() == 2);
        a.stop();
        CHECK(b.running());
        CHECK(b.run([] { return 5; }).wait() == 5);
    }
}
