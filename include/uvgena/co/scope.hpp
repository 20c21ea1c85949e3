// Detached work: Scope (a nursery), spawn, and run.
//
// Work that nobody awaits lives in a Scope: the scope starts it from the loop (never inside
// the caller), hands its stop token to it, reports any exception that escapes it to an error
// handler (default: uvgena::log at error level), and can be joined. `spawn(loop, task)` uses
// the loop's own implicit scope. `run(loop, task)` is for main(), examples and tests: it
// drives uv_run until the task is done. No other function of the library calls uv_run.
#pragma once

#include <uv.h>

#include <cstddef>
#include <exception>
#include <functional>
#include <stop_token>

#include "uvgena/co/loop_context.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"

namespace uvgena {

class Scope;

namespace detail {

/// Receives the exception that escaped a detached task.
using ErrorHandler = std::function<void(std::exception_ptr)>;

/// The coroutine that owns one detached task: it awaits the task and reports its exception.
class UVGENA_API RootTask {
  public:
    struct promise_type : PromiseBase {
        RootTask get_return_object() noexcept;
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept {}
        ~promise_type();

        Waiter start;   ///< Node in the ready queue until the task starts.
        Waiter member;  ///< Node in the owner's list of live tasks (handle unused).
        DetachedTasks* owner = nullptr;
    };
    std::coroutine_handle<promise_type> handle;
};

/// The live detached tasks of a Scope (or of a loop, for `spawn`), with their error handler
/// and their join waiters.
class UVGENA_API DetachedTasks {
  public:
    /// A list on `ctx` (not referenced by the list itself; each live task holds a reference).
    DetachedTasks(LoopContext* ctx, ErrorHandler on_error);
    DetachedTasks(const DetachedTasks&) = delete;
    DetachedTasks& operator=(const DetachedTasks&) = delete;
    /// Destroys every task still alive (each frame's awaiters cancel their operations).
    ~DetachedTasks();

    /// Wraps `task` in a root, gives it `token`, and schedules its start.
    void start(Task<void> task, std::stop_token token);
    /// Number of live tasks.
    std::size_t size() const noexcept { return count_; }
    /// Reports an exception that escaped a task (never throws).
    void report(std::exception_ptr error) noexcept;
    /// Called by a root's promise when its frame goes away.
    void on_root_gone(RootTask::promise_type* root) noexcept;
    /// Destroys every live task now.
    void destroy_all() noexcept;
    /// Waiters of join(), woken when the count reaches zero.
    WaiterList& joiners() noexcept { return joiners_; }
    /// The loop context.
    LoopContext* context() const noexcept { return ctx_; }

  private:
    LoopContext* ctx_;
    ErrorHandler on_error_;
    WaiterList members_;
    WaiterList joiners_;
    std::size_t count_ = 0;
};

/// Awaiter of Scope::join(): resumes when the scope has no live task.
class [[nodiscard]] UVGENA_API JoinAwaiter : public StoppableAwaiter<JoinAwaiter> {
  public:
    explicit JoinAwaiter(DetachedTasks* list) noexcept : list_(list) {}
    /// Throws Error(errc::cancelled) if the awaiting task was stopped first.
    void await_resume();

  private:
    friend class uvgena::detail::DetachedTasks;
    friend class StoppableAwaiter<JoinAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_stop(JoinAwaiter* self) noexcept;

    DetachedTasks* list_;
    Waiter waiter_;
    StopRegistration stop_;
    bool cancelled_ = false;
    bool woken_ = false;
};

/// Drives `uv_run(UV_RUN_ONCE)` until `h` is done; throws Error(errc::loop_drained) if the loop
/// has nothing left to do while `h` is still suspended.
UVGENA_API void drive_until_done(uv_loop_t* loop, std::coroutine_handle<> h);

}  // namespace detail

/// A nursery for detached tasks on one loop. Tasks are started from the loop's check phase,
/// inherit the scope's stop token, and report escaping exceptions to the error handler
/// (cancellation after a stop request is not an error). Destroying a scope requests stop and
/// destroys the tasks still suspended; join it first to let them finish cleanly. Must not be
/// destroyed by one of its own tasks.
class UVGENA_API Scope {
  public:
    /// Receives the exception that escaped a task; it must not throw.
    using ErrorHandler = detail::ErrorHandler;

    /// A scope on `loop`; `on_error` defaults to logging at error level.
    explicit Scope(uv_loop_t* loop, ErrorHandler on_error = {});
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    /// Requests stop, then destroys the tasks still alive.
    ~Scope();

    /// Starts `task` soon (from the loop, never inside this call).
    void spawn(Task<void> task);
    /// Starts `task` soon, discarding its value.
    template <typename T>
    void spawn(Task<T> task) {
        spawn(discard(std::move(task)));
    }

    /// Requests stop on the token every task of this scope inherited.
    void request_stop() noexcept { stop_.request_stop(); }
    /// The token the tasks inherit.
    std::stop_token stop_token() const noexcept { return stop_.get_token(); }
    /// Number of tasks alive (started or waiting to start).
    std::size_t size() const noexcept { return tasks_.size(); }
    /// True when no task is alive.
    bool empty() const noexcept { return tasks_.size() == 0; }
    /// `co_await scope.join()` resumes when no task is alive (immediately if none); throws
    /// Error(errc::cancelled) if the awaiting task is stopped first.
    detail::JoinAwaiter join() noexcept { return detail::JoinAwaiter(&tasks_); }
    /// The loop.
    uv_loop_t* loop() const noexcept;

  private:
    template <typename T>
    static Task<void> discard(Task<T> task) {
        (void)co_await std::move(task);
    }

    detail::LoopRef ctx_;
    std::stop_source stop_;
    detail::DetachedTasks tasks_;
};

/// Starts `task` detached on `loop` (from the loop's check phase, never inside this call).
/// An exception escaping it is logged at error level. The task inherits the loop's spawn stop
/// token (see `request_stop_spawned`).
UVGENA_API void spawn(uv_loop_t* loop, Task<void> task);

/// Starts `task` detached on `loop`, discarding its value.
template <typename T>
void spawn(uv_loop_t* loop, Task<T> task) {
    spawn(loop, [](Task<T> t) -> Task<void> { (void)co_await std::move(t); }(std::move(task)));
}

/// Requests stop on every task started with `spawn(loop, ...)` (for shutdown).
UVGENA_API void request_stop_spawned(uv_loop_t* loop);

/// Runs `task` on `loop` until it finishes, driving `uv_run(loop, UV_RUN_ONCE)`, and returns
/// its value or rethrows its exception. Throws Error(errc::loop_drained) if the loop runs out
/// of work while the task is still suspended (the task is destroyed first). Meant for main(),
/// examples and tests; must not be called from inside the loop.
template <typename T>
T run(uv_loop_t* loop, Task<T> task) {
    if (!task.valid()) throw Error(make_error_code(errc::invalid_argument), "run: empty Task");
    auto h = task.handle();
    h.promise().set_continuation(std::noop_coroutine());
    h.resume();
    detail::drive_until_done(loop, h);
    return h.promise().take_result();
}

}  // namespace uvgena
