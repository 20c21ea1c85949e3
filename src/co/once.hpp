// Once: an asynchronous operation that runs to completion once however many tasks ask for
// it, such as a graceful stop(). Private header of the library.
//
// A caller arriving while the operation runs waits for it, so that "my call returned" means
// "the operation is complete" for every caller (a second stop() that returned at once let
// its caller destroy the object under the first, issue 17). If the running call ends without
// completing (it threw, was cancelled, or its frame was destroyed), the next waiter runs the
// operation itself. `finish()` marks it complete from outside (the owner is being destroyed)
// and releases the waiters.
//
// The Once must outlive every call of run(): keep it in state that the calls hold (e.g. an
// Impl shared with the stop() coroutines).
#pragma once

#include <uv.h>

#include <utility>

#include "uvgena/co/async_event.hpp"
#include "uvgena/co/task.hpp"

namespace uvgena::detail {

class Once {
  public:
    /// An operation on `loop`, not yet run.
    explicit Once(uv_loop_t* loop) : idle_(loop, true) {}
    Once(const Once&) = delete;
    Once& operator=(const Once&) = delete;

    /// Runs `operation()` (a callable returning Task<void>) unless it completed already or
    /// runs now, in which case this waits for it. Rethrows what the operation throws.
    template <typename F>
    Task<void> run(F operation) {
        while (state_ == State::running) co_await idle_.wait();
        if (state_ == State::done) co_return;
        state_ = State::running;
        idle_.reset();
        Release release{*this};
        co_await operation();
        release.completed = true;
    }

    /// Marks the operation complete without running it, and wakes every waiting caller.
    void finish() noexcept {
        state_ = State::done;
        idle_.set();
    }

    /// True once the operation completed (or finish() was called).
    bool done() const noexcept { return state_ == State::done; }

  private:
    enum class State { idle, running, done };

    // Ends the running call however its frame ends, and wakes the waiters.
    struct Release {
        Once& once;
        bool completed = false;
        Release(Once& o) noexcept : once(o) {}
        Release(const Release&) = delete;
        Release& operator=(const Release&) = delete;
        ~Release() {
            if (once.state_ == State::running) {
                once.state_ = completed ? State::done : State::idle;
            }
            once.idle_.set();
        }
    };

    State state_ = State::idle;
    AsyncEvent idle_;  // set while no call runs the operation
};

}  // namespace uvgena::detail
