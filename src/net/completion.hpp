// The one way the net layer hands the outcome of an I/O operation to the coroutine waiting
// for it, and the one rule that keeps a socket's memory alive meanwhile.
//
// The heap half of every socket (TCP stream, TCP listener, UDP socket) derives from IoHandle.
// Its memory goes away only when all three hold: its public owner let go (`owned` false),
// libuv's close callback ran (`close_done`), and no waiter that a callback completed still has
// to resume (`pins` 0). The third matters because a completion may resume its waiter later
// than the callback (the loop's time slice queues it once the turn's slice is spent); the
// socket may be closed and its close callback may run in between, and the waiter still reads
// the socket when it resumes (its buffer, its address for the error message).
//
// Two ways to wake a waiter, nothing else:
//  - `complete` from a libuv callback with a result: pins the handle (if any) and
//    resumes the waiter now while the turn's time slice lasts, else queues it
//    (LoopContext::resume_or_defer). The pin goes back when the awaiter resumes or dies.
//  - `wake_later` for a close or a stop request: the awaiter has forgotten the handle (it
//    reports closed or cancelled without it), so nothing is pinned; it is always queued,
//    never resumed inline, because close() and request_stop() run inside arbitrary code.
#pragma once

#include <utility>

#include "uvgena/co/loop_context.hpp"

namespace uvgena::detail {

// Positive sentinels in the int status fields of awaiters (libuv codes are negative).
inline constexpr int kClosed = 1;
inline constexpr int kInvalid = 2;
inline constexpr int kCancelled = 3;

/// Base of the heap half of a socket; see the file comment for when it is freed.
struct IoHandle {
    IoHandle() noexcept = default;
    IoHandle(const IoHandle&) = delete;
    IoHandle& operator=(const IoHandle&) = delete;
    virtual ~IoHandle() = default;

    LoopRef ctx;
    bool owned = true;        ///< The public object (TcpStream, ...) still holds it.
    bool closing = false;     ///< uv_close was called.
    bool close_done = false;  ///< libuv's close callback ran.
    int pins = 0;             ///< Completed waiters that have not resumed yet.

    /// One pinned waiter is done with this object.
    void unpin() noexcept {
        if (--pins == 0 && !owned && close_done) delete this;
    }
    /// From libuv's close callback.
    void close_finished() noexcept {
        close_done = true;
        if (!owned && pins == 0) delete this;
    }
    /// The owner lets go; `close` is the derived handle's close (called unless done already).
    template <typename Self>
    static void disown(Self* self) noexcept {
        self->owned = false;
        if (!self->close_done) {
            self->close();
        } else if (self->pins == 0) {
            delete self;
        }
    }
};

// The pin of one completion is a member `IoHandle* pin_` of the awaiter (public headers see
// only the forward-declared IoHandle): null, or the handle pinned between the callback that
// completed the awaiter and its resumption.

/// From a libuv callback, once the awaiter holds its result: keeps `handle` alive until the
/// awaiter resumed or died (`pin`), then resumes `w` now or queues it (time slice). The
/// awaiter may be gone when this returns.
inline void complete(IoHandle*& pin, IoHandle* handle, Waiter* w) noexcept {
    ++handle->pins;
    pin = handle;
    handle->ctx->resume_or_defer(w);
}

/// The same for an operation without a socket (a DNS request): nothing to pin.
inline void complete(LoopContext* ctx, Waiter* w) noexcept {
    ctx->resume_or_defer(w);
}

/// In await_resume: gives the pin back. Returns false if the owner let go while the
/// resumption waited (the socket is closed and its memory may be gone now), true if it still
/// holds the socket or nothing was pinned.
inline bool resumed(IoHandle*& pin) noexcept {
    if (pin == nullptr) return true;
    IoHandle* h = pin;
    pin = nullptr;
    bool still_owned = h->owned;
    h->unpin();
    return still_owned;
}

/// After libuv was asked to start the request `op` (it returned `r`): keeps `op` in `slot` when
/// libuv took it; when it refused, unregisters the stop, frees the request and keeps the error
/// for await_resume. Returns whether the awaiter stays suspended.
template <typename Op>
bool keep_if_started(int r, Op* op, Op*& slot, StopRegistration& stop, int& status) noexcept {
    if (r < 0) {
        stop.reset();
        delete op;
        status = r;
        return false;
    }
    slot = op;
    return true;
}

/// In an awaiter's destructor: an awaiter destroyed before it resumed gives its pin back.
inline void drop_pin(IoHandle*& pin) noexcept {
    if (pin != nullptr) std::exchange(pin, nullptr)->unpin();
}

/// Wakes `w` for a close or a stop request (see the file comment): always from the loop's
/// check phase, never inline, and without a pin.
inline void wake_later(LoopContext* ctx, Waiter* w) noexcept {
    ctx->schedule(w);
}

}  // namespace uvgena::detail
