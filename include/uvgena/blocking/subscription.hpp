// Blocking subscriptions: GENA events for threads that are not event-driven.
//
//     uvgena::BackgroundLoop bg;
//     auto sub = bg.subscribe(url, {.requested_timeout = 600s, .auto_renew = true}).wait(5s);
//     while (true) {
//         if (auto event = sub.events().get(500ms)) print(*event);
//         else if (sub.events().ended()) break;
//     }
//
// This is SoCo's threaded `soco.events` (`sub.events.get(timeout=0.5)`) on uvgena's
// coroutine subscriptions: the Subscription itself lives on the BackgroundLoop's thread; a
// task there moves each event into a thread-safe queue (or hands it to a callback); the
// handle posts renew/unsubscribe to the loop and waits for them like any EventualResult.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#include "uvgena/blocking/background_loop.hpp"
#include "uvgena/blocking/eventual_result.hpp"
#include "uvgena/blocking/queue.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace uvgena {

namespace detail {
struct BlockingSubShared;
struct LoopSubscription;
}  // namespace detail

/// The events of a blocking subscription, for any thread: a view of a thread-safe queue
/// that the loop fills. Events are moved out to the thread that takes them and belong to it.
class UVGENA_API BlockingEventStream {
  public:
    /// A stream over `shared` (internal).
    explicit BlockingEventStream(std::shared_ptr<detail::BlockingSubShared> shared) noexcept
        : shared_(std::move(shared)) {}

    /// The next event, waiting as long as it takes; std::nullopt once the subscription ended
    /// normally (unsubscribed, loop stopped) and every queued event was taken. Throws the
    /// error that ended the subscription (e.g. the device forgot it and auto_resubscribe was
    /// off) once the queue is drained.
    std::optional<gena::Event> get();
    /// The next event, or std::nullopt if none arrives within `timeout` (SoCo's
    /// `events.get(timeout=0.5)`) or the stream ended (ended() tells them apart). Throws like
    /// get() once ended by an error.
    template <typename Rep, typename Period>
    std::optional<gena::Event> get(std::chrono::duration<Rep, Period> timeout) {
        return get_for(std::chrono::ceil<std::chrono::nanoseconds>(timeout));
    }
    /// The next queued event without waiting (std::nullopt if none).
    std::optional<gena::Event> try_get();

    /// True once the subscription ended and every event was taken.
    bool ended() const;
    /// Events queued now.
    std::size_t size() const;
    /// Events lost because this queue was full (SubscribeOptions::queue_capacity and
    /// overflow apply to it); the subscription's own counters are in stats().
    std::uint64_t dropped() const;

  private:
    std::optional<gena::Event> get_for(std::chrono::nanoseconds timeout);

    std::shared_ptr<detail::BlockingSubShared> shared_;
};

/// A subscription used from threads other than its loop's. Move-only. Every call may be
/// made from any thread but the loop's (the blocking ones throw Error(errc::wrong_thread)
/// there). Destroying the handle unsubscribes leniently on the loop, without waiting; so does
/// stopping the BackgroundLoop. The handle may outlive the BackgroundLoop: calls then throw
/// Error(errc::not_running) and the event stream reports its end.
///
/// Handlers in SubscriptionHandlers (on_renew_failed, on_resubscribe, on_silence, on_event) run
/// on the loop thread: they must not block, and must not wait() on this loop.
class UVGENA_API BlockingSubscription {
  public:
    /// An empty handle (valid() is false).
    BlockingSubscription() noexcept = default;
    BlockingSubscription(BlockingSubscription&&) noexcept = default;
    /// Releases the current subscription (as the destructor does), then takes `other`'s.
    BlockingSubscription& operator=(BlockingSubscription&& other) noexcept;
    BlockingSubscription(const BlockingSubscription&) = delete;
    BlockingSubscription& operator=(const BlockingSubscription&) = delete;
    /// Unsubscribes leniently on the loop (not waited for).
    ~BlockingSubscription();

    /// Internal: made by BackgroundLoop::subscribe.
    UVGENA_LOCAL BlockingSubscription(detail::LoopPoster poster,
                                      std::weak_ptr<detail::LoopSubscription> loop_side,
                                      std::shared_ptr<detail::BlockingSubShared> shared) noexcept;

    /// True unless empty.
    bool valid() const noexcept { return shared_ != nullptr; }

    /// The events: `sub.events().get(500ms)`. In callback mode they go to the callback
    /// instead (events already queued stay queued).
    BlockingEventStream events() const;

    /// The current SID (asked on the loop: it changes on resubscription).
    std::string sid() const;
    /// True while subscribed (asked on the loop).
    bool is_subscribed() const;
    /// The subscription's counters (a copy, taken on the loop).
    gena::SubscriptionStats stats() const;
    /// Time left until the grant expires (nullopt: infinite); asked on the loop.
    std::optional<std::chrono::milliseconds> time_left() const;

    /// Renews now (see gena::Subscription::renew); wait() on the result for the outcome.
    EventualResult<void> renew(std::optional<std::chrono::seconds> requested_timeout = {});
    /// Unsubscribes (see gena::Subscription::unsubscribe): with `strict`, the result carries
    /// the UNSUBSCRIBE's failure; without, failures are only logged. The event stream then
    /// ends once drained. A second call does nothing.
    EventualResult<void> unsubscribe(bool strict = true);

    /// Callback mode, on the loop thread: every later event is passed to `callback` there
    /// (it must not block). An empty callback returns to queueing. Returns once applied.
    void set_callback(gena::EventCallback callback);
    /// Callback mode, queued: every later event becomes a call posted to `queue`, which the
    /// application drains on a thread of its choice (CallbackQueue::run_for / drain). Returns
    /// once applied.
    void set_callback(gena::EventCallback callback, std::shared_ptr<CallbackQueue> queue);

  private:
    void release() noexcept;

    detail::LoopPoster poster_;
    std::weak_ptr<detail::LoopSubscription> loop_side_;
    std::shared_ptr<detail::BlockingSubShared> shared_;
};

}  // namespace uvgena
