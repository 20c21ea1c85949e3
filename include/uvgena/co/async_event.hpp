// AsyncEvent: "wake me when X has happened", manual reset.
#pragma once

#include <uv.h>

#include <coroutine>
#include <stop_token>

#include "uvgena/co/loop_context.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"

namespace uvgena {

class AsyncEvent;

namespace detail {

/// Awaiter of AsyncEvent::wait().
class [[nodiscard]] UVGENA_API EventWaitAwaiter : public StoppableAwaiter<EventWaitAwaiter> {
  public:
    explicit EventWaitAwaiter(AsyncEvent* event) noexcept : event_(event) {}
    /// Throws Error(errc::cancelled) when stopped, Error(errc::closed) if the event died.
    void await_resume() const;

  private:
    friend class uvgena::AsyncEvent;
    enum class State { waiting, set, cancelled, closed };
    friend class StoppableAwaiter<EventWaitAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_stop(EventWaitAwaiter* self) noexcept;

    AsyncEvent* event_;
    Waiter waiter_;
    StopRegistration stop_;
    State state_ = State::waiting;
};

}  // namespace detail

/// A manual-reset event on one loop: `set()` wakes every waiter (from the loop's check phase,
/// never inline) and stays set until `reset()`. `co_await wait()` returns at once when set.
/// Destroying the event wakes its waiters with Error(errc::closed). Loop thread only.
class UVGENA_API AsyncEvent {
  public:
    /// An event on `loop`, initially set or not.
    explicit AsyncEvent(uv_loop_t* loop, bool initially_set = false);
    AsyncEvent(const AsyncEvent&) = delete;
    AsyncEvent& operator=(const AsyncEvent&) = delete;
    ~AsyncEvent();

    /// Sets the event and schedules every waiter.
    void set() noexcept;
    /// Clears the event; later waiters suspend until the next set().
    void reset() noexcept { set_ = false; }
    /// True while set.
    bool is_set() const noexcept { return set_; }
    /// `co_await event.wait()`: resumes once the event is set; throws Error(errc::cancelled)
    /// if the task's stop token fires first.
    detail::EventWaitAwaiter wait() noexcept { return detail::EventWaitAwaiter(this); }

  private:
    friend class detail::EventWaitAwaiter;
    detail::LoopRef ctx_;
    detail::WaiterList waiters_;
    bool set_;
};

}  // namespace uvgena
