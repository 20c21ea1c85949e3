// Task<T>: the lazy coroutine type of uvgena, with an implicitly inherited stop token.
//
// A Task starts when it is awaited (or spawned, or run); awaiting transfers control
// symmetrically, so a million awaits that complete synchronously use no stack. The result or
// exception is handed to the awaiter. Destroying a Task that has not started, or that is
// suspended, destroys its frame and with it every awaiter inside, each of which cancels its
// own libuv operation safely.
//
// Cancellation uses std::stop_token. A task awaited by another inherits the awaiter's token
// unless `with_stop_token` set one; a spawned task inherits its Scope's token. Read it with
// `co_await current_stop_token()`. Stop requests must be made on the loop's thread.
#pragma once

#include <coroutine>
#include <exception>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <variant>

#include "uvgena/core/error.hpp"
#include "uvgena/core/export.hpp"

// Symmetric transfer only bounds the stack when the compiler turns the transfer into a tail
// call. Clang always does; GCC does when optimising, but not at -O0 nor under AddressSanitizer.
// There the awaiter starts the child with a nested resume and, if the child completed
// synchronously, continues without suspending (a million ready awaits still use O(1) stack);
// the final awaiter transfers symmetrically in both modes.
#ifndef UVGENA_SYMMETRIC_AWAIT
#if defined(__clang__) || (defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__))
#define UVGENA_SYMMETRIC_AWAIT 1
#else
#define UVGENA_SYMMETRIC_AWAIT 0
#endif
#endif

namespace uvgena {

template <typename T = void>
class Task;

namespace detail {

/// What every uvgena coroutine promise has: a continuation and a stop token.
class UVGENA_API PromiseBase {
  public:
    /// The stop token of this coroutine.
    const std::stop_token& stop_token() const noexcept { return token_; }
    /// Takes the awaiter's token unless one was set explicitly.
    void inherit_stop_token(const std::stop_token& token) noexcept {
        if (!token_set_) token_ = token;
    }
    /// Sets the token explicitly; later inheritance does not replace it.
    void set_stop_token(std::stop_token token) noexcept {
        token_ = std::move(token);
        token_set_ = true;
    }
    /// Sets what resumes when this coroutine finishes.
    void set_continuation(std::coroutine_handle<> c) noexcept { continuation_ = c; }
    /// Marks that the awaiter is resuming this coroutine inline (non-symmetric mode) and will
    /// continue by itself if it completes before returning.
    void set_started_inline(bool inline_start) noexcept { started_inline_ = inline_start; }

    /// Transfers to the continuation (symmetric transfer), or returns to the resumer.
    struct FinalAwaiter {
        bool await_ready() const noexcept { return false; }
        template <typename P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            PromiseBase& p = h.promise();
            std::coroutine_handle<> c = p.continuation_;
            return c && !p.started_inline_ ? c : std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    std::suspend_always initial_suspend() const noexcept { return {}; }
    FinalAwaiter final_suspend() const noexcept { return {}; }

  private:
    std::coroutine_handle<> continuation_;
    std::stop_token token_;
    bool token_set_ = false;
    bool started_inline_ = false;
};

/// The stop token of the coroutine behind `h`, or nullptr if it is not a uvgena coroutine.
template <typename P>
const std::stop_token* stop_token_of(std::coroutine_handle<P> h) noexcept {
    if constexpr (std::is_base_of_v<PromiseBase, P>) {
        return &h.promise().stop_token();
    } else {
        (void)h;
        return nullptr;
    }
}

/// The base of the library's awaiters: never ready, and suspending through the derived
/// class's `suspend(handle, stop token of the awaiting task)` (nullptr for a coroutine that
/// is not a uvgena task), so that every awaiter sees cancellation the same way. Not
/// copyable: libuv requests and wait lists point at the awaiter while it waits.
template <typename Derived>
class UVGENA_API StoppableAwaiter {
  public:
    StoppableAwaiter() noexcept = default;
    StoppableAwaiter(const StoppableAwaiter&) = delete;
    StoppableAwaiter& operator=(const StoppableAwaiter&) = delete;

    bool await_ready() const noexcept { return false; }
    template <typename P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return static_cast<Derived*>(this)->suspend(h, stop_token_of(h));
    }

  protected:
    ~StoppableAwaiter() = default;
};

/// The promise of Task<T>: stores the value or the exception.
template <typename T>
class TaskPromise : public PromiseBase {
  public:
    Task<T> get_return_object() noexcept;
    void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }
    template <typename U = T>
    requires std::is_convertible_v<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        result_.template emplace<1>(std::forward<U>(value));
    }
    /// Moves the value out, or rethrows the stored exception.
    T take_result() {
        if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
        return std::move(std::get<1>(result_));
    }

  private:
    std::variant<std::monostate, T, std::exception_ptr> result_;
};

/// The promise of Task<void>.
template <>
class TaskPromise<void> : public PromiseBase {
  public:
    Task<void> get_return_object() noexcept;
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }
    void return_void() noexcept {}
    /// Rethrows the stored exception, if any.
    void take_result() {
        if (exception_) std::rethrow_exception(exception_);
    }

  private:
    std::exception_ptr exception_;
};

/// Awaiter returned by `current_stop_token()`: reads the token without suspending.
struct UVGENA_API CurrentStopTokenAwaiter {
    std::stop_token token;
    bool await_ready() const noexcept { return false; }
    template <typename P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        if (const std::stop_token* t = stop_token_of(h)) token = *t;
        return false;
    }
    std::stop_token await_resume() noexcept { return std::move(token); }
};

}  // namespace detail

/// A lazy, move-only coroutine producing a T (or nothing). Awaiting it starts it and yields
/// its result or rethrows its exception. Destroying it destroys the coroutine frame, which is
/// safe whether the task never started, is suspended, or has finished.
template <typename T>
class [[nodiscard]] Task {
  public:
    using promise_type = detail::TaskPromise<T>;
    using handle_type = std::coroutine_handle<promise_type>;
    using value_type = T;

    /// An empty task (awaiting it throws Error(errc::invalid_argument)).
    Task() noexcept = default;
    /// Takes ownership of a coroutine frame.
    explicit Task(handle_type h) noexcept : h_(h) {}
    Task(Task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    Task& operator=(Task&& other) noexcept {
        if (this != &other) {
            if (h_) h_.destroy();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() {
        if (h_) h_.destroy();
    }

    /// True if this task owns a coroutine.
    bool valid() const noexcept { return static_cast<bool>(h_); }
    /// True if the coroutine ran to completion (value or exception stored).
    bool done() const noexcept { return h_ && h_.done(); }
    /// The coroutine handle (still owned by the task).
    handle_type handle() const noexcept { return h_; }
    /// Gives up ownership of the frame.
    handle_type release() noexcept { return std::exchange(h_, {}); }

    /// Sets the stop token explicitly (see `with_stop_token`).
    void set_stop_token(std::stop_token token) noexcept {
        if (h_) h_.promise().set_stop_token(std::move(token));
    }

    /// Awaiter of a task: starts it by symmetric transfer, then yields its result.
    struct Awaiter {
        handle_type h;
        bool await_ready() const noexcept { return !h || h.done(); }
#if UVGENA_SYMMETRIC_AWAIT
        template <typename P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> awaiting) noexcept {
            h.promise().set_continuation(awaiting);
            if (const std::stop_token* t = detail::stop_token_of(awaiting)) {
                h.promise().inherit_stop_token(*t);
            }
            return h;
        }
#else
        template <typename P>
        bool await_suspend(std::coroutine_handle<P> awaiting) noexcept {
            h.promise().set_continuation(awaiting);
            if (const std::stop_token* t = detail::stop_token_of(awaiting)) {
                h.promise().inherit_stop_token(*t);
            }
            h.promise().set_started_inline(true);
            h.resume();
            if (h.done()) return false;  // completed synchronously: continue without suspending
            h.promise().set_started_inline(false);
            return true;
        }
#endif
        T await_resume() {
            if (!h)
                throw Error(make_error_code(errc::invalid_argument), "co_await on an empty Task");
            return h.promise().take_result();
        }
    };

    /// Starts the task and waits for its result.
    Awaiter operator co_await() && noexcept {
        return Awaiter{h_};
    }
    /// Starts the task and waits for its result (the task object keeps the frame).
    Awaiter operator co_await() & noexcept {
        return Awaiter{h_};
    }

  private:
    handle_type h_;
};

namespace detail {
template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
    return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

/// `co_await current_stop_token()` yields the stop token of the running task (empty when the
/// awaiting coroutine is not a uvgena task). Never suspends.
[[nodiscard]] inline detail::CurrentStopTokenAwaiter current_stop_token() noexcept {
    return {};
}

/// Makes `task` observe `token` instead of the token of whoever awaits or spawns it.
template <typename T>
[[nodiscard]] Task<T> with_stop_token(Task<T> task, std::stop_token token) noexcept {
    task.set_stop_token(std::move(token));
    return task;
}

}  // namespace uvgena
