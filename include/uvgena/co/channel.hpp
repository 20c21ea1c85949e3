// Channel<T>: an async queue between loop code (producers) and coroutines (consumers).
#pragma once

#include <uv.h>

#include <coroutine>
#include <cstddef>
#include <deque>
#include <optional>
#include <stop_token>
#include <utility>

#include "uvgena/co/loop_context.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/overflow.hpp"

namespace uvgena {

template <typename T>
class Channel;

namespace detail {

/// What both awaiters of a Channel<T> hold while they wait: the channel, the entry in its
/// wait list, the stop registration, the item (taken, or to hand over) and how the wait
/// ended. The channel's friends reach these through the derived awaiters.
template <typename T, typename Derived>
class ChannelWait : public StoppableAwaiter<Derived> {
  protected:
    enum class State { waiting, done, cancelled, closed };

    explicit ChannelWait(Channel<T>* ch) noexcept : ch_(ch) {}
    ChannelWait(Channel<T>* ch, T&& value) : ch_(ch), item_(std::move(value)) {}

    /// True, and the wait ends cancelled, if the awaiting task was stopped already.
    bool stopped_before(const std::stop_token* token) noexcept {
        if (token == nullptr || !token->stop_requested()) return false;
        state_ = State::cancelled;
        return true;
    }
    /// Waits in `list` until the channel (or a stop request) wakes this awaiter.
    bool park(std::coroutine_handle<> h, WaiterList& list, const std::stop_token* token) {
        waiter_.handle = h;
        list.push_back(&waiter_);
        register_stop<ChannelWait, &ChannelWait::on_stop>(stop_, token, this);
        return true;
    }
    static void on_stop(ChannelWait* self) noexcept {
        if (self->state_ != State::waiting || !self->waiter_.linked()) return;
        self->state_ = State::cancelled;
        self->ch_->ctx_->schedule(&self->waiter_);
    }

    Channel<T>* ch_;
    Waiter waiter_;
    StopRegistration stop_;
    std::optional<T> item_;
    State state_ = State::waiting;
};

/// Awaiter of Channel<T>::next().
template <typename T>
class [[nodiscard]] ChannelNextAwaiter : public ChannelWait<T, ChannelNextAwaiter<T>> {
    using Base = ChannelWait<T, ChannelNextAwaiter<T>>;

  public:
    explicit ChannelNextAwaiter(Channel<T>* ch) noexcept : Base(ch) { this->waiter_.owner = this; }
    /// The next item, or nullopt once the channel is closed and drained. Throws
    /// Error(errc::cancelled) if the task was stopped before an item arrived.
    std::optional<T> await_resume() {
        this->stop_.reset();
        if (this->state_ == Base::State::cancelled) {
            throw Error(make_error_code(errc::cancelled), "channel next");
        }
        return std::move(this->item_);
    }

  private:
    friend class uvgena::Channel<T>;
    friend class StoppableAwaiter<ChannelNextAwaiter>;

    bool suspend(std::coroutine_handle<> h, const std::stop_token* token) {
        if (this->stopped_before(token)) return false;
        if (this->ch_->take(this->item_) || this->ch_->closed_) {
            this->state_ = Base::State::done;
            return false;
        }
        return this->park(h, this->ch_->consumers_, token);
    }
};

/// Awaiter of Channel<T>::push_wait().
template <typename T>
class [[nodiscard]] ChannelPushAwaiter : public ChannelWait<T, ChannelPushAwaiter<T>> {
    using Base = ChannelWait<T, ChannelPushAwaiter<T>>;

  public:
    ChannelPushAwaiter(Channel<T>* ch, T&& value) : Base(ch, std::move(value)) {
        this->waiter_.owner = this;
    }
    /// Returns once the item is in the channel (or handed to a consumer). Throws
    /// Error(errc::closed) if the channel closed first, Error(errc::cancelled) if stopped
    /// first; in both cases the item was not delivered.
    void await_resume() {
        this->stop_.reset();
        if (this->state_ == Base::State::cancelled) {
            throw Error(make_error_code(errc::cancelled), "channel push");
        }
        if (this->state_ == Base::State::closed) {
            throw Error(make_error_code(errc::closed), "channel push");
        }
    }

  private:
    friend class uvgena::Channel<T>;
    friend class StoppableAwaiter<ChannelPushAwaiter>;

    bool suspend(std::coroutine_handle<> h, const std::stop_token* token) {
        if (this->stopped_before(token)) return false;
        if (this->ch_->closed_) {
            this->state_ = Base::State::closed;
            return false;
        }
        if (this->ch_->has_room()) {
            this->ch_->deliver(std::move(*this->item_));
            this->item_.reset();
            this->state_ = Base::State::done;
            return false;
        }
        return this->park(h, this->ch_->producers_, token);
    }
};

}  // namespace detail

/// An async FIFO queue on one loop. Producers call `push` (from any loop code, coroutine or
/// not) or `co_await push_wait(v)`; consumers `co_await next()`, which yields std::nullopt once
/// the channel is closed and drained. Several consumers may wait; each item goes to exactly
/// one, in FIFO order. Waiters are resumed from the loop's check phase, never inside push().
/// Unbounded by default; bounded channels apply an Overflow policy to push() and make
/// push_wait() wait for room. Destroying a channel closes it. Loop thread only.
template <typename T>
class Channel {
  public:
    /// An unbounded channel on `loop`.
    explicit Channel(uv_loop_t* loop) : ctx_(loop) {}
    /// A channel holding at most `capacity` items (> 0), applying `policy` when full.
    Channel(uv_loop_t* loop, std::size_t capacity, Overflow policy = Overflow::wait)
        : ctx_(loop), capacity_(capacity), policy_(policy) {
        if (capacity == 0) {
            throw Error(make_error_code(errc::invalid_argument), "channel capacity must be > 0");
        }
    }
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;
    /// Closes the channel: waiting consumers get nullopt, waiting producers Error(closed).
    ~Channel() { close(); }

    /// Offers an item without waiting. Returns false if the channel is closed or, when full,
    /// if the policy refused it (counted in dropped()).
    bool push(T value) {
        if (closed_) return false;
        if (!has_room()) {
            if (policy_ == Overflow::drop_oldest) {
                items_.pop_front();
                ++dropped_;
            } else {
                ++dropped_;
                return false;
            }
        }
        deliver(std::move(value));
        return true;
    }

    /// `co_await ch.push_wait(v)`: waits for room if the channel is bounded and full.
    detail::ChannelPushAwaiter<T> push_wait(T value) {
        return detail::ChannelPushAwaiter<T>(this, std::move(value));
    }

    /// `co_await ch.next()`: the next item, or std::nullopt after close() once drained.
    detail::ChannelNextAwaiter<T> next() noexcept { return detail::ChannelNextAwaiter<T>(this); }

    /// Takes an item without waiting, if one is buffered.
    std::optional<T> try_next() {
        std::optional<T> item;
        take(item);
        return item;
    }

    /// Ends the stream: buffered items are still delivered, then nullopt; every waiting
    /// consumer (there are none while items are buffered) and producer is woken.
    void close() noexcept {
        if (closed_) return;
        closed_ = true;
        while (detail::Waiter* w = consumers_.pop_front()) {
            auto* a = static_cast<detail::ChannelNextAwaiter<T>*>(w->owner);
            a->state_ = detail::ChannelNextAwaiter<T>::State::done;
            ctx_->schedule(w);
        }
        while (detail::Waiter* w = producers_.pop_front()) {
            auto* a = static_cast<detail::ChannelPushAwaiter<T>*>(w->owner);
            a->state_ = detail::ChannelPushAwaiter<T>::State::closed;
            ctx_->schedule(w);
        }
    }

    /// True after close().
    bool closed() const noexcept { return closed_; }
    /// Number of buffered items.
    std::size_t size() const noexcept { return items_.size(); }
    /// Number of items dropped or refused by the overflow policy.
    std::size_t dropped() const noexcept { return dropped_; }
    /// The capacity (0 when unbounded).
    std::size_t capacity() const noexcept { return capacity_; }
    /// The overflow policy.
    Overflow policy() const noexcept { return policy_; }

  private:
    friend class detail::ChannelNextAwaiter<T>;
    friend class detail::ChannelPushAwaiter<T>;
    template <typename, typename>
    friend class detail::ChannelWait;

    bool has_room() const noexcept {
        return capacity_ == 0 || items_.size() < capacity_ || !consumers_.empty();
    }

    // Hands the item to the first waiting consumer, or buffers it.
    void deliver(T&& value) {
        if (detail::Waiter* w = consumers_.pop_front()) {
            auto* a = static_cast<detail::ChannelNextAwaiter<T>*>(w->owner);
            a->item_.emplace(std::move(value));
            a->state_ = detail::ChannelNextAwaiter<T>::State::done;
            ctx_->schedule(w);
            return;
        }
        items_.push_back(std::move(value));
    }

    // Moves the oldest item into `out`, then lets the first waiting producer in.
    bool take(std::optional<T>& out) {
        if (items_.empty()) return false;
        out.emplace(std::move(items_.front()));
        items_.pop_front();
        if (detail::Waiter* w = producers_.pop_front()) {
            auto* a = static_cast<detail::ChannelPushAwaiter<T>*>(w->owner);
            items_.push_back(std::move(*a->item_));
            a->item_.reset();
            a->state_ = detail::ChannelPushAwaiter<T>::State::done;
            ctx_->schedule(w);
        }
        return true;
    }

    detail::LoopRef ctx_;
    std::deque<T> items_;
    detail::WaiterList consumers_;
    detail::WaiterList producers_;
    std::size_t capacity_ = 0;
    Overflow policy_ = Overflow::wait;
    std::size_t dropped_ = 0;
    bool closed_ = false;
};

}  // namespace uvgena
