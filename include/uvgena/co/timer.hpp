// Timers: sleep_for, sleep_until and with_timeout.
//
// All timers of a loop share one uv_timer over a heap of deadlines kept by the loop's
// context, so a sleep allocates nothing and libuv never touches memory of a coroutine frame.
#pragma once

#include <uv.h>

#include <chrono>
#include <coroutine>
#include <stop_token>
#include <utility>

#include "uvgena/co/loop_context.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/export.hpp"

namespace uvgena {

/// The clock of every deadline in uvgena.
using Clock = std::chrono::steady_clock;

namespace detail {

/// Awaiter of sleep_until / sleep_for.
class [[nodiscard]] UVGENA_API SleepAwaiter : public StoppableAwaiter<SleepAwaiter> {
  public:
    SleepAwaiter(uv_loop_t* loop, Clock::time_point deadline) noexcept
        : loop_(loop), deadline_(deadline) {}
    ~SleepAwaiter();
    /// Throws Error(errc::cancelled) if stopped before the deadline.
    void await_resume() const;

  private:
    friend class StoppableAwaiter<SleepAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_fire(TimerNode* node) noexcept;
    static void on_stop(SleepAwaiter* self) noexcept;

    uv_loop_t* loop_;
    Clock::time_point deadline_;
    LoopRef ctx_;
    TimerNode timer_;
    Waiter waiter_;
    StopRegistration stop_;
    bool cancelled_ = false;
};

/// Requests stop on a stop_source when a deadline passes (the engine of with_timeout).
class UVGENA_API DeadlineGuard {
  public:
    DeadlineGuard(uv_loop_t* loop, Clock::time_point deadline, std::stop_source source);
    DeadlineGuard(const DeadlineGuard&) = delete;
    DeadlineGuard& operator=(const DeadlineGuard&) = delete;
    ~DeadlineGuard();
    /// True once the deadline passed and stop was requested.
    bool fired() const noexcept { return fired_; }

  private:
    static void on_fire(TimerNode* node) noexcept;

    LoopRef ctx_;
    TimerNode timer_;
    std::stop_source source_;
    bool fired_ = false;
};

/// Forwards a stop request of one token to a stop_source.
struct UVGENA_API StopForwarder {
    std::stop_source* target;
    void operator()() const noexcept { target->request_stop(); }
};

}  // namespace detail

/// `co_await sleep_until(loop, deadline)`: resumes at `deadline` (a steady_clock time point),
/// or throws Error(errc::cancelled) promptly when the task's stop token is triggered. A
/// deadline already past still yields once to the loop.
[[nodiscard]] inline detail::SleepAwaiter sleep_until(uv_loop_t* loop,
                                                      Clock::time_point deadline) noexcept {
    return detail::SleepAwaiter(loop, deadline);
}

/// `co_await sleep_for(loop, d)`: sleep_until(loop, now + d).
template <typename Rep, typename Period>
[[nodiscard]] detail::SleepAwaiter sleep_for(uv_loop_t* loop,
                                             std::chrono::duration<Rep, Period> d) noexcept {
    return detail::SleepAwaiter(loop,
                                Clock::now() + std::chrono::duration_cast<Clock::duration>(d));
}

/// Runs `task` with a deadline: when `deadline` passes, the task's stop token is triggered,
/// the task is awaited until it has unwound, and Error(errc::timed_out) is thrown (unless the
/// task finished with a value anyway). A stop of the awaiting task is forwarded to `task`.
template <typename T>
Task<T> with_deadline(uv_loop_t* loop, Task<T> task, Clock::time_point deadline) {
    std::stop_source source;
    std::stop_token outer = co_await current_stop_token();
    std::stop_callback<detail::StopForwarder> forward(outer, detail::StopForwarder{&source});
    detail::DeadlineGuard guard(loop, deadline, source);
    try {
        co_return co_await with_stop_token(std::move(task), source.get_token());
    } catch (const std::system_error& e) {
        if (guard.fired() && is_cancelled(e.code()) && !outer.stop_requested()) {
            throw Error(make_error_code(errc::timed_out), "with_timeout");
        }
        throw;
    }
}

/// Runs `task` with a time limit `d` (see with_deadline); throws Error(errc::timed_out).
template <typename T, typename Rep, typename Period>
Task<T> with_timeout(uv_loop_t* loop, Task<T> task, std::chrono::duration<Rep, Period> d) {
    return with_deadline(loop, std::move(task),
                         Clock::now() + std::chrono::duration_cast<Clock::duration>(d));
}

}  // namespace uvgena
