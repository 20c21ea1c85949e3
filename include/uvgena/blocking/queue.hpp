// Thread-safe queues between a loop thread (the producer) and application threads.
//
// BlockingQueue<T> carries values (events) to threads that block in get(timeout), the way
// SoCo's `sub.events.get(timeout=0.5)` does. CallbackQueue carries calls that a thread of
// the application runs when it chooses (a GUI's idle handler, a worker's main loop).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

#include "uvgena/core/error.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/core/overflow.hpp"

namespace uvgena {

/// A FIFO queue that one or more producers fill without ever blocking and that consumers on
/// any thread read, blocking with or without a time limit. Bounded or not; a bounded queue
/// applies an overflow policy (drop_oldest or reject_new; every loss is counted in
/// dropped()). close() ends the stream: items already queued are still delivered, then get()
/// returns std::nullopt at once.
template <typename T>
class BlockingQueue {
  public:
    /// A queue holding at most `capacity` items (0: unbounded), applying `policy` when full.
    /// Throws Error(errc::invalid_argument) for Overflow::wait: a loop thread must never block.
    explicit BlockingQueue(std::size_t capacity = 0, Overflow policy = Overflow::drop_oldest)
        : capacity_(capacity), policy_(policy) {
        if (policy == Overflow::wait) {
            throw Error(make_error_code(errc::invalid_argument),
                        "BlockingQueue: Overflow::wait would block the producer");
        }
    }
    BlockingQueue(const BlockingQueue&) = delete;
    BlockingQueue& operator=(const BlockingQueue&) = delete;

    /// Adds an item without blocking. Returns false if the queue is closed or, when full,
    /// if the policy refused the item (counted in dropped()); with drop_oldest the oldest
    /// item makes room (also counted).
    bool push(T value) {
        {
            std::lock_guard lock(mutex_);
            if (closed_) return false;
            if (capacity_ != 0 && items_.size() >= capacity_) {
                ++dropped_;
                if (policy_ == Overflow::reject_new) return false;
                items_.pop_front();
            }
            items_.push_back(std::move(value));
        }
        cv_.notify_one();
        return true;
    }

    /// Blocks until an item is there (returns it) or the queue is closed and drained
    /// (returns std::nullopt).
    std::optional<T> get() {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return !items_.empty() || closed_; });
        return pop_locked();
    }

    /// Like get(), but returns std::nullopt also when `timeout` passes first (closed() tells
    /// the two apart).
    template <typename Rep, typename Period>
    std::optional<T> get(std::chrono::duration<Rep, Period> timeout) {
        auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
        std::unique_lock lock(mutex_);
        cv_.wait_until(lock, deadline, [this] { return !items_.empty() || closed_; });
        return pop_locked();
    }

    /// Takes an item if one is queued, without blocking.
    std::optional<T> try_get() {
        std::lock_guard lock(mutex_);
        return pop_locked();
    }

    /// Ends the stream; wakes every blocked consumer once the queued items are taken.
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        cv_.notify_all();
    }

    /// True after close().
    bool closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }
    /// Number of items queued now.
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return items_.size();
    }
    /// Number of items lost to the overflow policy so far.
    std::uint64_t dropped() const {
        std::lock_guard lock(mutex_);
        return dropped_;
    }
    /// The capacity (0: unbounded).
    std::size_t capacity() const noexcept { return capacity_; }

  private:
    std::optional<T> pop_locked() {
        if (items_.empty()) return std::nullopt;
        std::optional<T> item(std::move(items_.front()));
        items_.pop_front();
        return item;
    }

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<T> items_;
    std::size_t capacity_;
    Overflow policy_;
    std::uint64_t dropped_ = 0;
    bool closed_ = false;
};

/// Calls posted from a loop thread for an application thread to run when it chooses: the
/// "queued" delivery of callback mode. Unbounded by default; a bounded queue drops the oldest
/// call (counted) rather than block the loop.
class UVGENA_API CallbackQueue {
  public:
    /// A queue of at most `capacity` calls (0: unbounded).
    explicit CallbackQueue(std::size_t capacity = 0) : calls_(capacity, Overflow::drop_oldest) {}

    /// Queues a call (any thread, never blocks). Returns false once closed.
    bool post(std::function<void()> call) { return calls_.push(std::move(call)); }

    /// Runs every call queued now, on the calling thread, without blocking; returns how many
    /// ran. An exception from a call propagates (the calls after it stay queued).
    std::size_t drain() {
        std::size_t ran = 0;
        while (auto call = calls_.try_get()) {
            ++ran;
            (*call)();
        }
        return ran;
    }

    /// Waits up to `timeout` for a call, then runs it and every call queued after it; returns
    /// how many ran (0 after the timeout or once closed and empty).
    template <typename Rep, typename Period>
    std::size_t run_for(std::chrono::duration<Rep, Period> timeout) {
        auto first = calls_.get(timeout);
        if (!first) return 0;
        (*first)();
        return 1 + drain();
    }

    /// Refuses further calls; queued ones may still be drained.
    void close() { calls_.close(); }
    /// Number of calls queued now.
    std::size_t size() const { return calls_.size(); }
    /// Number of calls dropped because the queue was full.
    std::uint64_t dropped() const { return calls_.dropped(); }

  private:
    BlockingQueue<std::function<void()>> calls_;
};

}  // namespace uvgena
