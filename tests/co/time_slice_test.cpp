// The time slice: a burst of ready coroutines (timers due together, many sockets readable in
// one poll) is spread over several loop turns instead of holding one turn.
//
// Work items spin for a fixed wall time; a uv_prepare handle of the test numbers the loop's
// turns (prepare to prepare). The assertions are upper bounds on items per turn that
// preemption or a slow machine can only lower, so they hold under sanitizers and valgrind.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <vector>

#include "support/slice_guard.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/loop_context.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/net/tcp.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

constexpr auto kSlice = 1ms;
constexpr std::uint64_t kSpinNs = 300'000;
// Per turn (poll to poll): the turn's window of 1 ms starts at most 4 items of 300 us (at 0,
// 0.3, 0.6 and 0.9 ms), whether from I/O callbacks, timer callbacks or the check phase, and
// the check phase's own quarter slice (250 us) adds at most one.
constexpr int kMaxPerTurn = 5;

using uvtest::SliceGuard;

/// Numbers the loop's turns with a prepare handle the test owns (closed in the destructor).
class TurnCounter {
  public:
    explicit TurnCounter(uv_loop_t* loop) : prepare_(new uv_prepare_t) {
        uv_prepare_init(loop, prepare_);
        prepare_->data = this;
        uv_prepare_start(prepare_,
                         [](uv_prepare_t* p) { ++static_cast<TurnCounter*>(p->data)->turn_; });
        uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
    }
    ~TurnCounter() {
        uv_close(reinterpret_cast<uv_handle_t*>(prepare_),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
    }
    TurnCounter(const TurnCounter&) = delete;
    TurnCounter& operator=(const TurnCounter&) = delete;

    /// The current turn's number.
    std::uint64_t turn() const noexcept { return turn_; }

  private:
    uv_prepare_t* prepare_;
    std::uint64_t turn_ = 0;
};

void spin() {
    std::uint64_t start = uv_hrtime();
    while (uv_hrtime() - start < kSpinNs) {
    }
}

int most_in_one_turn(const std::vector<std::uint64_t>& turns) {
    std::map<std::uint64_t, int> per_turn;
    for (std::uint64_t t : turns) ++per_turn[t];
    int most = 0;
    for (const auto& [turn, n] : per_turn) most = std::max(most, n);
    return most;
}

// `count` tasks sleep until one shared deadline, then each records its turn and spins.
struct TimerBurst {
    std::vector<int> order;
    std::vector<std::uint64_t> turns;
};

TimerBurst run_timer_burst(uv_loop_t* loop, int count) {
    TimerBurst burst;
    TurnCounter counter(loop);
    Scope scope(loop);
    auto deadline = Clock::now() + 20ms;
    for (int i = 0; i < count; ++i) {
        scope.spawn([](uv_loop_t* l, Clock::time_point at, int id, TimerBurst& out,
                       TurnCounter& c) -> Task<void> {
            co_await sleep_until(l, at);
            out.order.push_back(id);
            out.turns.push_back(c.turn());
            spin();
        }(loop, deadline, i, burst, counter));
    }
    run(loop, [&]() -> Task<void> { co_await scope.join(); }());
    return burst;
}

std::vector<int> iota(int count) {
    std::vector<int> v(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) v[static_cast<std::size_t>(i)] = i;
    return v;
}

}  // namespace

TEST_SUITE("co.time_slice") {
    TEST_CASE("the time slice is a process-wide setting, zero meaning unbounded") {
        SliceGuard guard(250us);
        CHECK(time_slice() == 250us);
        set_time_slice(0us);
        CHECK(time_slice() == 0us);
        set_time_slice(-5us);
        CHECK(time_slice() == 0us);
    }

    TEST_CASE("a loop's own time slice overrides the process-wide default for that loop only") {
        uvtest::TestLoop a;
        uvtest::TestLoop b;
        SliceGuard guard(kSlice);
        // Nothing of the library uses loop a yet: there is no context to hold a setting.
        CHECK_THROWS_AS(set_time_slice(a, 0us), Error);
        CHECK(time_slice(a) == kSlice);
        {
            Scope keep(a);  // the library uses loop a from here on
            set_time_slice(a, 0us);
            CHECK(time_slice(a) == 0us);
            CHECK(time_slice(b) == kSlice);
            TimerBurst on_a = run_timer_burst(a, 40);
            TimerBurst on_b = run_timer_burst(b, 40);
            CHECK(on_a.order == iota(40));
            CHECK(on_b.order == iota(40));
            CHECK(most_in_one_turn(on_a.turns) == 40);
            CHECK(most_in_one_turn(on_b.turns) <= kMaxPerTurn);
            // The process-wide default moves the loops without a slice of their own only.
            set_time_slice(250us);
            CHECK(time_slice(a) == 0us);
            CHECK(time_slice(b) == 250us);
        }
        uv_run(a, UV_RUN_NOWAIT);  // the context of a closes: a later use starts afresh
        CHECK(time_slice(a) == 250us);
    }

    TEST_CASE("timers due together are spread over turns, in deadline order") {
        uvtest::TestLoop loop;
        SliceGuard guard(kSlice);
        TimerBurst burst = run_timer_burst(loop, 40);
        CHECK(burst.order == iota(40));
        CHECK(most_in_one_turn(burst.turns) <= kMaxPerTurn);
        CHECK(burst.turns.back() - burst.turns.front() >= 40 / kMaxPerTurn - 1);
    }

    TEST_CASE("without a slice, timers due together all run in one turn") {
        uvtest::TestLoop loop;
        SliceGuard guard(0us);
        TimerBurst burst = run_timer_burst(loop, 40);
        CHECK(burst.order == iota(40));
        CHECK(most_in_one_turn(burst.turns) == 40);
    }

    TEST_CASE("readers woken by one poll batch are spread over turns and lose no byte") {
        uvtest::TestLoop loop;
        SliceGuard guard(kSlice);
        constexpr int kConnections = 30;
        TurnCounter counter(loop);
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        std::vector<TcpStream> served;
        std::vector<std::string> received(kConnections);
        std::vector<std::uint64_t> turns;
        Scope readers(loop);
        run(loop, [&]() -> Task<void> {
            for (int i = 0; i < kConnections; ++i) {
                TcpStream client = co_await connect(loop, listener.local_address());
                served.push_back(co_await listener.accept());
                readers.spawn([](TcpStream s, std::string& out, std::vector<std::uint64_t>& t,
                                 TurnCounter& c) -> Task<void> {
                    std::array<char, 64> buf;
                    for (;;) {
                        std::size_t n = co_await s.read(buf);
                        if (n == 0) break;
                        t.push_back(c.turn());
                        spin();
                        out.append(buf.data(), n);
                    }
                }(std::move(client), received[static_cast<std::size_t>(i)], turns, counter));
            }
            // Let every reader reach its read, then make all of them readable at once.
            co_await sleep_for(loop, 5ms);
            for (int i = 0; i < kConnections; ++i) {
                co_await served[static_cast<std::size_t>(i)].write("payload " + std::to_string(i));
                served[static_cast<std::size_t>(i)].close();
            }
            co_await readers.join();
        }());
        for (int i = 0; i < kConnections; ++i) {
            CHECK(received[static_cast<std::size_t>(i)] == "payload " + std::to_string(i));
        }
        CHECK(most_in_one_turn(turns) <= kMaxPerTurn);
    }
}
