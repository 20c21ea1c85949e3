// EventualResult<T>: the result of work handed to a BackgroundLoop, for a thread to wait on.
//
// It is crochet's EventualResult for C++: the work runs on the loop's thread, the caller
// blocks in wait() (with or without a time limit) and gets the value or the exception that
// the work ended with. The state is shared between the caller's handle and the loop-side job
// and is protected by a mutex; nothing else crosses the threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "uvgena/core/error.hpp"
#include "uvgena/core/export.hpp"

namespace uvgena {

namespace detail {

class Mailbox;

/// What every result state has, whatever its value type: completion, the exception, the
/// waiting, and cancellation. Completion happens once, on the loop thread; waiting and
/// cancelling happen on any thread.
class UVGENA_API ResultStateBase : public std::enable_shared_from_this<ResultStateBase> {
  public:
    /// A state for work posted through `mailbox`, whose loop runs on `loop_thread`.
    ResultStateBase(std::weak_ptr<Mailbox> mailbox, std::thread::id loop_thread) noexcept;
    ResultStateBase(const ResultStateBase&) = delete;
    ResultStateBase& operator=(const ResultStateBase&) = delete;
    /// Logs an exception that nobody retrieved (cancellation and shutdown excepted), the way
    /// crochet logs unhandled errors.
    virtual ~ResultStateBase();

    /// True once the work finished (value or exception).
    bool ready() const;
    /// Blocks until ready. Throws Error(errc::wrong_thread) on the loop's own thread.
    void wait_ready() const;
    /// Blocks until ready or `deadline`; returns false on timeout. Throws like wait_ready().
    bool wait_ready_until(std::chrono::steady_clock::time_point deadline) const;

    /// Asks the loop to cancel the work (any thread; best effort, idempotent).
    void request_cancel();
    /// True once cancel was requested (the job checks it before starting the work).
    bool cancel_requested() const noexcept { return cancel_requested_.load(); }
    /// Requests stop on the work's stop source. Loop thread only (stop callbacks of the co
    /// layer run where stop is requested).
    void stop_on_loop() noexcept { stop_.request_stop(); }
    /// The stop source the work observes (loop thread only).
    std::stop_source& stop_source() noexcept { return stop_; }

    /// Completes with an exception (loop thread; ignored if already complete).
    void set_exception(std::exception_ptr error) noexcept;
    /// Completes with Error(code, context) (loop thread; ignored if already complete).
    void fail(std::error_code code, const char* context) noexcept;
    /// True once completed (loop thread: no lock needed for the writer).
    bool completed_on_loop() const noexcept { return completed_on_loop_; }

    /// What the work is, for the messages of the waiting side ("subscribe http://..."). Set
    /// and read by the thread that holds the EventualResult only (the loop never reads it).
    std::string description;

  protected:
    /// Marks completion; call with `mutex_` held, then notify `cv_` after unlocking.
    void mark_complete_locked() noexcept {
        done_ = true;
        completed_on_loop_ = true;
    }
    /// Moves the stored exception out (a second call gets Error(errc::invalid_argument));
    /// call with `mutex_` held.
    std::exception_ptr take_error_locked();

    mutable std::mutex mutex_;
    mutable std::condition_variable cv_;
    bool done_ = false;
    std::exception_ptr error_;
    bool error_seen_ = false;

  private:
    void check_thread() const;

    std::weak_ptr<Mailbox> mailbox_;
    std::thread::id loop_thread_;
    std::atomic<bool> cancel_requested_{false};
    bool completed_on_loop_ = false;
    std::stop_source stop_;
};

/// The state of a result carrying a T (or nothing, for void).
template <typename T>
class ResultState final : public ResultStateBase {
  public:
    using ResultStateBase::ResultStateBase;

    /// Completes with a value (loop thread; ignored if already complete).
    template <typename... Args>
    void set_value(Args&&... args) noexcept {
        if (completed_on_loop()) return;
        try {
            {
                std::lock_guard lock(mutex_);
                if constexpr (!std::is_void_v<T>) value_.emplace(std::forward<Args>(args)...);
                mark_complete_locked();
            }
            cv_.notify_all();
        } catch (...) {
            set_exception(std::current_exception());
        }
    }

    /// Moves the value or the exception out (the caller's thread then owns it alone) and
    /// returns or throws it. Call only when ready.
    T take() {
        std::unique_lock lock(mutex_);
        if (error_ || error_seen_) {
            std::exception_ptr error = take_error_locked();
            lock.unlock();
            std::rethrow_exception(std::move(error));
        }
        if constexpr (!std::is_void_v<T>) {
            if (!value_) {
                throw Error(make_error_code(errc::invalid_argument),
                            "EventualResult: the outcome was already taken by an earlier wait()");
            }
            T value = std::move(*value_);
            value_.reset();
            return value;
        }
    }

  private:
    struct Nothing {};
    std::optional<std::conditional_t<std::is_void_v<T>, Nothing, T>> value_;
};

}  // namespace detail

/// The eventual outcome of `BackgroundLoop::run(...)`, to be collected from any thread but the
/// loop's. Move-only, like std::future. Dropping it does not cancel the work (as in crochet);
/// an exception nobody collected is logged at warning level when the last reference goes.
template <typename T>
class [[nodiscard]] EventualResult {
  public:
    /// The value type (void for work that returns nothing).
    using value_type = T;

    /// An empty result (valid() is false; wait() throws Error(errc::invalid_argument)).
    EventualResult() noexcept = default;
    /// A result bound to a state shared with the loop-side job.
    explicit EventualResult(std::shared_ptr<detail::ResultState<T>> state) noexcept
        : state_(std::move(state)) {}
    EventualResult(EventualResult&&) noexcept = default;
    EventualResult& operator=(EventualResult&&) noexcept = default;
    EventualResult(const EventualResult&) = delete;
    EventualResult& operator=(const EventualResult&) = delete;

    /// True if bound to work.
    bool valid() const noexcept { return static_cast<bool>(state_); }

    /// True once the work finished, with a value or an exception (never blocks).
    bool ready() const { return state_ && state_->ready(); }

    /// Blocks until the work finished; returns its value or throws its exception, handing
    /// either over once (a second wait() throws Error(errc::invalid_argument)). The exception is
    /// Error(errc::cancelled) after a successful cancel() and Error(errc::not_running) when
    /// the loop stopped before the work started. Throws Error(errc::wrong_thread) at once when
    /// called on the loop's own thread, where it would deadlock.
    T wait() {
        check_valid();
        state_->wait_ready();
        return state_->take();
    }

    /// Like wait(), but throws Error(errc::timed_out) if the work has not finished within
    /// `timeout`. The work goes on (call cancel() to stop it); a later wait() may succeed.
    template <typename Rep, typename Period>
    T wait(std::chrono::duration<Rep, Period> timeout) {
        check_valid();
        auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
        if (!state_->wait_ready_until(deadline)) {
            throw Error(
                make_error_code(errc::timed_out),
                "EventualResult::wait" +
                    (state_->description.empty() ? std::string() : " for " + state_->description) +
                    ": no outcome within " +
                    std::to_string(std::chrono::ceil<std::chrono::milliseconds>(timeout).count()) +
                    " ms");
        }
        return state_->take();
    }

    /// Names the work (e.g. "subscribe http://10.0.0.2:1400/evt") for the message of a wait()
    /// that times out, which otherwise cannot say what it was waiting for. Returns *this.
    EventualResult& describe(std::string what) & {
        if (state_) state_->description = std::move(what);
        return *this;
    }
    /// Same, on a temporary: `bg.run(f).describe("...")`.
    EventualResult&& describe(std::string what) && { return std::move(describe(std::move(what))); }

    /// Asks the loop to cancel the work, from any thread; best effort, like crochet's cancel.
    /// Work that has not started yet never starts and ends with Error(errc::cancelled); a
    /// running task has its stop token triggered and ends however it reacts (usually with
    /// Error(errc::cancelled)); finished work keeps its result. Does not block.
    void cancel() {
        if (state_) state_->request_cancel();
    }

  private:
    void check_valid() const {
        if (!state_) throw Error(make_error_code(errc::invalid_argument), "empty EventualResult");
    }

    std::shared_ptr<detail::ResultState<T>> state_;
};

}  // namespace uvgena
