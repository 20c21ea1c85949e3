// BackgroundLoop: a uv loop in a thread of its own, for programs that are not event-driven.
//
// This is crochet's design (the Twisted reactor in a background thread) for uvgena: a GUI
// app, a web backend with worker threads or a CLI script hands work to the loop with run()
// and collects it with EventualResult::wait(). Work crosses the threads through one
// lock-protected queue and a uv_async_t; every library object is created, used and destroyed
// on the loop thread only. Nothing is global: any number of BackgroundLoops may run at once,
// alongside loops the application runs itself.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvgena/blocking/eventual_result.hpp"
#include "uvgena/blocking/mailbox.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/export.hpp"

namespace uvgena {

namespace gena {
struct SubscribeOptions;
class SubscriptionHandlers;
struct StateMirrorOptions;
}  // namespace gena
class BlockingSubscription;
class BlockingStateMirror;

/// Settings of a BackgroundLoop.
struct UVGENA_API BackgroundLoopOptions {
    /// How long stop() lets tasks unwind after triggering their stop tokens (time in which a
    /// subscription still sends its UNSUBSCRIBE) before it destroys the ones left.
    std::chrono::milliseconds shutdown_grace{2000};
};

namespace detail {

/// True for Task<T>.
template <typename T>
inline constexpr bool is_task_v = false;
template <typename T>
inline constexpr bool is_task_v<Task<T>> = true;

/// Maps a callable's return type to the value of its EventualResult: Task<T> -> T, R -> R.
template <typename R>
struct RunValue {
    using type = std::remove_cvref_t<R>;
    static constexpr bool is_task = false;
};
template <typename T>
struct RunValue<Task<T>> {
    using type = T;
    static constexpr bool is_task = true;
};

/// Calls `f` with the JobContext (taken by value: internal use), else with the loop if it
/// accepts one, else with no argument.
template <typename F>
decltype(auto) invoke_on_loop(F& f, const JobContext& context) {
    if constexpr (std::is_invocable_v<F&, JobContext>) {
        return std::invoke(f, context);
    } else if constexpr (std::is_invocable_v<F&, uv_loop_t*>) {
        return std::invoke(f, context.loop);
    } else {
        return std::invoke(f);
    }
}

/// What `invoke_on_loop(f, context)` returns (no `type` when F is not callable that way, so
/// that overload resolution can discard candidates).
template <typename F, int = std::is_invocable_v<F&, JobContext>   ? 2
                            : std::is_invocable_v<F&, uv_loop_t*> ? 1
                                                                  : 0>
struct InvokeResultOf : std::invoke_result<F&> {};
template <typename F>
struct InvokeResultOf<F, 1> : std::invoke_result<F&, uv_loop_t*> {};
template <typename F>
struct InvokeResultOf<F, 2> : std::invoke_result<F&, JobContext> {};

/// What `invoke_on_loop(f, context)` returns.
template <typename F>
using InvokeResult = typename InvokeResultOf<F>::type;

/// Completes a result with Error(errc::cancelled) if the task driving it is destroyed first
/// (the loop stopped and the grace period ran out).
struct UVGENA_API CompleteOnDestroy {
    explicit CompleteOnDestroy(ResultStateBase* s) noexcept : state(s) {}
    CompleteOnDestroy(const CompleteOnDestroy&) = delete;
    CompleteOnDestroy& operator=(const CompleteOnDestroy&) = delete;
    ~CompleteOnDestroy() {
        state->fail(make_error_code(errc::cancelled),
                    "BackgroundLoop stopped while the task was running");
    }
    ResultStateBase* state;
};

/// Owns a callable of any type (type-erased, so that coroutine frames holding it have no
/// field of the callable's type: GCC warns about frames with fields of types without linkage,
/// such as lambdas).
class UVGENA_API CallableHolder {
  public:
    CallableHolder() noexcept = default;
    CallableHolder(const CallableHolder&) = delete;
    CallableHolder& operator=(const CallableHolder&) = delete;
    virtual ~CallableHolder() = default;
};

/// A CallableHolder for an F.
template <typename F>
class CallableOf final : public CallableHolder {
  public:
    explicit CallableOf(F f) : f(std::move(f)) {}
    F f;  ///< The callable.
};

/// Awaits `task` on the loop and completes `state` with its outcome. `callable` (what made the
/// task) lives in this frame until the task is gone, so that a lambda coroutine's captures
/// stay valid. The task observes the result's stop source, which the scope's stop (shutdown)
/// also triggers.
template <typename T>
Task<void> drive_task(std::unique_ptr<CallableHolder> callable, Task<T> task,
                      std::shared_ptr<ResultState<T>> state) {
    (void)callable;
    CompleteOnDestroy guard{state.get()};
    // A local, so that it dies before `callable` even when the frame is destroyed early.
    Task<T> local = std::move(task);
    std::stop_token scope_token = co_await current_stop_token();
    std::stop_callback<StopForwarder> forward(scope_token, StopForwarder{&state->stop_source()});
    std::exception_ptr error;
    try {
        if constexpr (std::is_void_v<T>) {
            co_await with_stop_token(std::move(local), state->stop_source().get_token());
            state->set_value();
        } else {
            state->set_value(
                co_await with_stop_token(std::move(local), state->stop_source().get_token()));
        }
    } catch (...) {
        error = std::current_exception();
    }
    // Published after the handler ended: the loop thread holds no reference to the exception
    // object any more once the waiting thread can see it.
    if (error) state->set_exception(std::move(error));
}

/// The job of `BackgroundLoop::run(f)`.
template <typename F, typename T>
class CallJob final : public Job {
  public:
    CallJob(F f, std::shared_ptr<ResultState<T>> state)
        : callable_(std::make_unique<CallableOf<F>>(std::move(f))), state_(std::move(state)) {}

    void run(const JobContext& context) noexcept override {
        if (state_->cancel_requested()) {
            state_->fail(make_error_code(errc::cancelled), "cancelled before it started");
            return;
        }
        std::exception_ptr error;
        try {
            F& f = static_cast<CallableOf<F>*>(callable_.get())->f;
            if constexpr (RunValue<InvokeResult<F>>::is_task) {
                Task<T> task = invoke_on_loop(f, context);
                context.scope->spawn(drive_task<T>(std::move(callable_), std::move(task), state_));
            } else if constexpr (std::is_void_v<T>) {
                invoke_on_loop(f, context);
                state_->set_value();
            } else {
                state_->set_value(invoke_on_loop(f, context));
            }
        } catch (...) {
            error = std::current_exception();
        }
        if (error) state_->set_exception(std::move(error));  // see drive_task
    }

    void abandon() noexcept override {
        state_->fail(make_error_code(errc::not_running),
                     "BackgroundLoop stopped before the call ran");
    }

  private:
    std::unique_ptr<CallableHolder> callable_;
    std::shared_ptr<ResultState<T>> state_;
};

}  // namespace detail

/// The EventualResult type of `BackgroundLoop::run(f)`.
template <typename F>
using RunResult =
    EventualResult<typename detail::RunValue<detail::InvokeResult<std::decay_t<F>>>::type>;

namespace detail {

/// Posts work to a BackgroundLoop's thread. Copyable, and safe to keep after the loop
/// stopped (run() then throws Error(errc::not_running)), so that handles such as a blocking
/// subscription never outlive what they point to.
class UVGENA_API LoopPoster {
  public:
    /// A poster that posts nowhere (run() throws Error(errc::not_running)).
    LoopPoster() noexcept = default;
    /// A poster for the loop `loop` whose thread is `id`, fed through `mailbox`.
    LoopPoster(std::shared_ptr<Mailbox> mailbox, std::thread::id id, uv_loop_t* loop) noexcept
        : mailbox_(std::move(mailbox)), thread_id_(id), loop_(loop) {}

    /// See BackgroundLoop::run.
    template <typename F>
    requires(!is_task_v<std::remove_cvref_t<F>>) RunResult<F> run(F&& f)
    const {
        using Fn = std::decay_t<F>;
        using T = typename RunValue<InvokeResult<Fn>>::type;
        auto state = std::make_shared<ResultState<T>>(mailbox_, thread_id_);
        std::unique_ptr<Job> job = std::make_unique<CallJob<Fn, T>>(Fn(std::forward<F>(f)), state);
        post(job);
        return EventualResult<T>(std::move(state));
    }

    /// True when called on the loop's thread.
    bool in_loop_thread() const noexcept { return std::this_thread::get_id() == thread_id_; }
    /// The loop's thread id.
    std::thread::id thread_id() const noexcept { return thread_id_; }
    /// The loop (to be used on its thread only).
    uv_loop_t* loop() const noexcept { return loop_; }
    /// True until the loop's stop was requested.
    bool running() const { return mailbox_ && mailbox_->accepting(); }

  private:
    void post(std::unique_ptr<Job>& job) const;

    std::shared_ptr<Mailbox> mailbox_;
    std::thread::id thread_id_;
    uv_loop_t* loop_ = nullptr;
};

}  // namespace detail

/// A uv loop running in a thread this object owns. Created running; stop() or the destructor
/// stops it: calls not yet started end with Error(errc::not_running), running tasks have their
/// stop tokens triggered and get `shutdown_grace` to unwind (a blocking subscription sends its
/// UNSUBSCRIBE then, leniently), tasks still alive after that are destroyed (their results end
/// with Error(errc::cancelled)), every handle is closed and the thread is joined. Stopping
/// twice is harmless; any number of BackgroundLoops may exist at once.
///
/// All public functions may be called from any thread, including the loop thread (where
/// stop() only requests the stop, since the thread cannot join itself).
class UVGENA_API BackgroundLoop {
  public:
    /// Starts the thread and its loop. Throws Error (a libuv code) if the loop cannot be set
    /// up, or std::system_error if the thread cannot be started.
    explicit BackgroundLoop(BackgroundLoopOptions options = {});
    /// Stops the loop (see stop()). On the loop thread itself it requests the stop and lets
    /// the thread finish on its own (detached).
    ~BackgroundLoop();
    BackgroundLoop(const BackgroundLoop&) = delete;
    BackgroundLoop& operator=(const BackgroundLoop&) = delete;

    /// Stops the loop and joins its thread; returns when every handle is closed. Idempotent
    /// and safe from several threads at once. On the loop thread, only requests the stop.
    void stop();

    /// True until stop was requested.
    bool running() const { return poster_.running(); }
    /// True when called on the loop's thread.
    bool in_loop_thread() const noexcept { return poster_.in_loop_thread(); }
    /// The loop's thread id.
    std::thread::id thread_id() const noexcept { return poster_.thread_id(); }
    /// The loop, for use by code running on the loop thread (e.g. inside run()). Other
    /// threads may pass the pointer around but must never use it.
    uv_loop_t* loop() const noexcept { return poster_.loop(); }

    /// Runs `f` on the loop thread and returns at once with its EventualResult. `f` is called
    /// with the loop (`f(uv_loop_t*)`) if it accepts it, else with no argument. If it returns
    /// a Task<T>, the task is run to completion on the loop and the result carries T;
    /// otherwise the result carries what `f` returned. `f` is moved to the loop thread and
    /// destroyed there (after the task, which may refer to its captures, is done). Throws
    /// Error(errc::not_running) once stop was requested.
    template <typename F>
    requires(!detail::is_task_v<std::remove_cvref_t<F>>) RunResult<F> run(F&& f) {
        return poster_.run(std::forward<F>(f));
    }

    /// Runs `task` on the loop thread (see run(f)). The task must not refer to objects that
    /// die before it finishes (a lambda coroutine's captures, for instance: pass the lambda
    /// itself to run(f) instead).
    template <typename T>
    EventualResult<T> run(Task<T> task) {
        return run([t = std::move(task)]() mutable -> Task<T> { return std::move(t); });
    }

    /// Subscribes to the events of the service whose event subscription URL is `event_url`
    /// (see gena::subscribe), on the loop, and returns a handle for other threads:
    /// `bg.subscribe(url, options).wait(5s)`. Defined with BlockingSubscription: include
    /// "uvgena/blocking/subscription.hpp".
    EventualResult<BlockingSubscription> subscribe(std::string event_url);
    /// Same, with options; `listener`, if set, must live on this loop (see keep_until_stop).
    EventualResult<BlockingSubscription> subscribe(std::string event_url,
                                                   gena::SubscribeOptions options);
    /// Same, with handlers (on_event, on_renew_failed, on_resubscribe, on_silence); they run
    /// on the loop thread.
    EventualResult<BlockingSubscription> subscribe(std::string event_url,
                                                   gena::SubscribeOptions options,
                                                   gena::SubscriptionHandlers handlers);

    /// Subscribes to the service whose event subscription URL is `event_url` and mirrors its
    /// state (see gena::StateMirror) on the loop; returns a handle that any thread reads:
    /// `bg.mirror(url, {.auto_renew = true, .auto_resubscribe = true}).wait(10s)`. Give the
    /// subscription auto_renew and auto_resubscribe so that the mirror outlives device
    /// restarts. Defined with BlockingStateMirror: include "uvgena/blocking/state_mirror.hpp".
    EventualResult<BlockingStateMirror> mirror(std::string event_url);
    /// Same, with subscription options; `listener`, if set, must live on this loop.
    EventualResult<BlockingStateMirror> mirror(std::string event_url,
                                               gena::SubscribeOptions options);
    /// Same, with the mirror's options (SCPD for typed reads, handlers run on the loop
    /// thread).
    EventualResult<BlockingStateMirror> mirror(std::string event_url,
                                               gena::SubscribeOptions options,
                                               gena::StateMirrorOptions mirror_options);

    /// Keeps `object` alive until the loop stops, then destroys it on the loop thread, after
    /// every task ended and before the handles are closed: the owner of loop-thread objects
    /// that must outlive many calls (an EventListener given to several subscriptions, say).
    /// Work its destructor starts with uvgena::spawn (a dropped Subscription's UNSUBSCRIBE)
    /// runs in what is left of the shutdown grace period. Call it on the loop thread (inside
    /// run()); elsewhere it throws Error(errc::wrong_thread).
    void keep_until_stop(std::shared_ptr<void> object);

    /// The poster of this loop (internal: for handles that post to the loop themselves).
    const detail::LoopPoster& poster() const noexcept { return poster_; }

  private:
    // Owns the uv loop, its wake-up handle, the mailbox and the kept objects, and runs the
    // loop on thread_; shared with that thread, so that a loop destroyed from its own thread
    // can finish detached (defined in background_loop.cpp).
    class UVGENA_LOCAL LoopOwner;

    std::shared_ptr<LoopOwner> owner_;
    detail::LoopPoster poster_;
    std::thread thread_;
    std::mutex join_mutex_;
};

}  // namespace uvgena
