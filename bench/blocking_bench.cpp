// Costs of the blocking facade, each next to a baseline measured in the same run:
//   bg.run(f).wait() from another thread        vs a bare mutex + condition_variable
//                                                  round trip to a worker thread
//   bg.run(task).wait() (a Task<int> that        vs the same baseline
//   completes at once)
//   bg.run(f).wait() with 4 caller threads       vs the baseline with 4 caller threads
//   events read with sub.events().get() on      vs the same events read by a coroutine on
//   another thread                                  the loop (co_await sub.events().next())
// The first baseline is the least a cross-thread call with a blocking wait can cost; the
// ratio is what the uv_async_t hand-off, the shared result state and the loop turn add to
// it. The events come from a GENA device (tests/support/gena_device.hpp) on a loop of its own, over
// loopback, each NOTIFY answered before the next is sent.
// Usage: blocking_bench [round trips per figure, default 20000] [events, default 2000]
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

// The test device needs gena::next_seq, which it does not include itself.
#include "uvgena/gena/seq.hpp"
// (after seq.hpp)
#include "support/gena_device.hpp"
#include "uvgena/blocking/blocking.hpp"
#include "uvgena/subscriber/listener.hpp"

using namespace uvgena;
using Clock = std::chrono::steady_clock;

namespace {

// Latency figures of one run, in microseconds.
struct Figures {
    double median = 0;
    double p99 = 0;
    double mean = 0;
    double calls_per_second = 0;
};

Figures summarise(std::vector<double>& samples, double wall_seconds) {
    std::sort(samples.begin(), samples.end());
    Figures f;
    f.median = samples[samples.size() / 2];
    f.p99 = samples[samples.size() * 99 / 100];
    double sum = 0;
    for (double s : samples) sum += s;
    f.mean = sum / static_cast<double>(samples.size());
    f.calls_per_second = static_cast<double>(samples.size()) / wall_seconds;
    return f;
}

// Runs `call` `n` times on each of `threads` threads, timing every call.
Figures measure(int threads, int n, const std::function<int(int)>& call) {
    std::vector<std::vector<double>> per_thread(static_cast<std::size_t>(threads));
    auto start = Clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            auto& samples = per_thread[static_cast<std::size_t>(t)];
            samples.reserve(static_cast<std::size_t>(n));
            for (int i = 0; i < n; ++i) {
                auto t0 = Clock::now();
                if (call(i) != i + 1) std::abort();
                samples.push_back(
                    std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
            }
        });
    }
    for (auto& w : workers) w.join();
    double wall = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    for (auto& s : per_thread) all.insert(all.end(), s.begin(), s.end());
    return summarise(all, wall);
}

// The baseline: a worker thread serving calls through one mutex, one queue slot per caller
// and condition variables; each caller blocks until its answer is there.
class Worker {
  public:
    Worker() : thread_([this] { serve(); }) {}
    ~Worker() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        work_cv_.notify_one();
        thread_.join();
    }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    int call(int value) {
        Slot slot;
        slot.input = value;
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(&slot);
        }
        work_cv_.notify_one();
        std::unique_lock lock(slot.mutex);
        slot.cv.wait(lock, [&] { return slot.done; });
        return slot.output;
    }

  private:
    struct Slot {
        int input = 0;
        int output = 0;
        bool done = false;
        std::mutex mutex;
        std::condition_variable cv;
    };

    void serve() {
        std::vector<Slot*> batch;
        for (;;) {
            {
                std::unique_lock lock(mutex_);
                work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) return;
                batch.swap(queue_);
            }
            for (Slot* s : batch) {
                {
                    std::lock_guard lock(s->mutex);
                    s->output = s->input + 1;
                    s->done = true;
                }
                s->cv.notify_one();
            }
            batch.clear();
        }
    }

    std::mutex mutex_;
    std::condition_variable work_cv_;
    std::vector<Slot*> queue_;
    bool stop_ = false;
    std::thread thread_;
};

// A device on a loop of its own and a subscriber loop with a listener on 127.0.0.1.
struct EventSetup {
    BackgroundLoop device_loop;
    BackgroundLoop bg;
    gena_test::ScriptedDevice* device = nullptr;
    gena::EventListener* listener = nullptr;

    EventSetup() {
        device = device_loop
                     .run([this](uv_loop_t* loop) {
                         auto d = std::make_shared<gena_test::ScriptedDevice>(loop);
                         device_loop.keep_until_stop(d);
                         return d.get();
                     })
                     .wait(std::chrono::seconds(10));
        listener = bg.run([this](uv_loop_t* loop) {
                         gena::ListenerOptions o;
                         o.listen_host = "127.0.0.1";
                         o.port = 0;
                         auto l = std::make_shared<gena::EventListener>(loop, o);
                         bg.keep_until_stop(l);
                         return l.get();
                     }).wait(std::chrono::seconds(10));
    }
    ~EventSetup() { bg.stop(); }
    EventSetup(const EventSetup&) = delete;
    EventSetup& operator=(const EventSetup&) = delete;

    gena::SubscribeOptions options(int n) const {
        gena::SubscribeOptions o;
        o.requested_timeout = std::chrono::seconds(300);
        o.listener = listener;
        o.queue_capacity = static_cast<std::size_t>(n) + 16;
        return o;
    }

    // Makes the device send `n` events (each answered before the next), without waiting.
    EventualResult<void> send(int n) {
        return device_loop.run([d = device, n]() -> Task<void> {
            for (int i = 0; i < n; ++i) {
                std::vector<std::pair<std::string, std::string>> vars;
                vars.emplace_back("Volume", std::to_string(i));
                co_await d->notify_all(std::move(vars));
            }
        });
    }
};

// Events per second read through a blocking subscription on this thread.
double blocking_events_per_second(int n) {
    EventSetup setup;
    auto sub = setup.bg.subscribe(setup.device->event_url(), setup.options(n))
                   .wait(std::chrono::seconds(10));
    if (!sub.events().get(std::chrono::seconds(10))) std::abort();  // the initial event
    auto start = Clock::now();
    auto sent = setup.send(n);
    for (int i = 0; i < n; ++i) {
        if (!sub.events().get(std::chrono::seconds(10))) std::abort();
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    sent.wait();
    sub.unsubscribe(false).wait(std::chrono::seconds(10));
    return n / seconds;
}

// Events per second read by a coroutine on the subscriber's loop.
double coroutine_events_per_second(int n) {
    EventSetup setup;
    auto* s = &setup;
    return setup.bg
        .run([s, n](uv_loop_t* loop) -> Task<double> {
            auto sub = co_await gena::subscribe(loop, s->device->event_url(), s->options(n));
            if (!co_await sub.events().next()) std::abort();  // the initial event
            auto start = Clock::now();
            auto sent = s->send(n);
            for (int i = 0; i < n; ++i) {
                if (!co_await sub.events().next()) std::abort();
            }
            double seconds = std::chrono::duration<double>(Clock::now() - start).count();
            co_await sub.unsubscribe(false);
            co_return n / seconds;
        })
        .wait();
}

void print(const char* name, const Figures& f, const Figures* baseline) {
    std::printf("%-44s median %7.2f us  p99 %8.2f us  mean %7.2f us  %9.0f calls/s", name, f.median,
                f.p99, f.mean, f.calls_per_second);
    if (baseline != nullptr) std::printf("  ratio(median) %.2f", f.median / baseline->median);
    std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
    int n = argc > 1 ? std::atoi(argv[1]) : 20000;
    if (n < 100) n = 100;
    std::printf("blocking_bench: %d round trips per figure, %u hardware threads\n", n,
                std::thread::hardware_concurrency());

    int events = argc > 2 ? std::atoi(argv[2]) : 2000;
    if (events < 10) events = 10;

    BackgroundLoop bg;
    Worker worker;
    // Warm-up: thread start, first allocations.
    for (int i = 0; i < 1000; ++i) {
        (void)bg.run([i] { return i + 1; }).wait();
        (void)worker.call(i);
    }

    Figures base1 = measure(1, n, [&](int i) { return worker.call(i); });
    Figures plain1 = measure(1, n, [&](int i) { return bg.run([i] { return i + 1; }).wait(); });
    Figures task1 = measure(
        1, n, [&](int i) { return bg.run([i]() -> Task<int> { co_return i + 1; }).wait(); });
    Figures base4 = measure(4, n / 4, [&](int i) { return worker.call(i); });
    Figures plain4 = measure(4, n / 4, [&](int i) { return bg.run([i] { return i + 1; }).wait(); });

    print("baseline: mutex+condvar worker, 1 caller", base1, nullptr);
    print("bg.run(plain function).wait(), 1 caller", plain1, &base1);
    print("bg.run(Task<int>).wait(), 1 caller", task1, &base1);
    print("baseline: mutex+condvar worker, 4 callers", base4, nullptr);
    print("bg.run(plain function).wait(), 4 callers", plain4, &base4);

    double co_rate = coroutine_events_per_second(events);
    double blocking_rate = blocking_events_per_second(events);
    std::printf("%-44s %9.0f events/s (%d NOTIFYs over loopback)\n",
                "baseline: co_await sub.events().next()", co_rate, events);
    std::printf("%-44s %9.0f events/s  ratio %.2f\n", "sub.events().get() on another thread",
                blocking_rate, blocking_rate / co_rate);
    return 0;
}
