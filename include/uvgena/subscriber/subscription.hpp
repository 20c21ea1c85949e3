// Subscriptions to a UPnP service's events: subscribe, receive events as values, renew,
// resubscribe after the device forgot us, unsubscribe.
//
//     auto sub = co_await uvgena::subscribe(loop, url, {.requested_timeout = 600s,
//                                                       .auto_renew = true});
//     while (auto event = co_await sub.events().next()) { ... }
//
// or, with a callback (set outside the co_await expression, see SubscriptionHandlers):
//
//     sub.set_callback([state](uvgena::Event e) { state->show(e); });
//
// A Subscription belongs to one loop and is used on its thread. Work nobody awaits
// (auto-renewal, resubscription, the unsubscribe of a destroyed subscription) runs in the
// listener's scope or the loop's; its errors go to the handlers below or to the log.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "uvgena/co/channel.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/gena/event.hpp"
#include "uvgena/gena/protocol.hpp"
#include "uvgena/gena/schedule.hpp"
#include "uvgena/subscriber/listener.hpp"

namespace uvgena::gena {

namespace detail {
class SubscriptionCore;
struct SubscriberAccess;
}  // namespace detail

/// Receives each event instead of the queue (see Subscription::set_callback).
using EventCallback = std::function<void(Event)>;
/// Called with the error when an automatic renewal fails (SoCo's auto_renew_fail).
using RenewFailHandler = std::function<void(const Error&)>;
/// Called after a resubscription: the SID changed and events may have been missed.
using ResubscribeHandler =
    std::function<void(const std::string& old_sid, const std::string& new_sid)>;
/// Called when the subscription was lost (the device answered a renewal 412, or the grant
/// expired before a renewal succeeded) and auto_resubscribe starts to re-establish it; the
/// error says why. on_resubscribe follows once a new SID was granted.
using LostHandler = std::function<void(const Error&)>;
/// Called when no event arrived for SubscribeOptions::silence_timeout.
using SilenceHandler = std::function<void(std::chrono::milliseconds silence)>;

/// Options of subscribe(); every field has a usable default.
///
/// Trivially copyable and destructible on purpose (checked below), because
/// `co_await subscribe(loop, url, {...})` is the intended way to call subscribe(): g++ 12
/// (Debian 12's 12.2) copies an aggregate temporary written inside a co_await expression
/// byte for byte and then destroys both copies, which frees whatever such a temporary owns
/// (a std::function's callable, a std::string's buffer). A member that owns nothing survives
/// that. The handlers, which must own their callables, are passed apart: see
/// SubscriptionHandlers.
struct UVGENA_API SubscribeOptions {
    /// Duration to ask for (TIMEOUT: Second-N); nullopt lets the device choose.
    std::optional<std::chrono::seconds> requested_timeout{};
    /// Renew automatically when 75-85% of the granted duration has passed (spread per
    /// subscription; at most ListenerOptions::max_renewals_in_flight at once per listener),
    /// asking for the granted duration again. A subscription granted an infinite duration is
    /// never renewed. A grant that expires before a renewal succeeded counts as a failed
    /// renewal (on_renew_failed is called, then auto_resubscribe applies).
    bool auto_renew = false;
    /// When the device forgot the subscription (a renewal answered 412, or it expired after
    /// failed renewals), subscribe again with backoff and call `on_resubscribe`. Without it
    /// the subscription ends and its event stream ends with that error.
    bool auto_resubscribe = false;
    /// The listener to use; nullptr: the loop's shared listener (started on first use).
    EventListener* listener = nullptr;
    /// Time limit of each SUBSCRIBE / renewal / UNSUBSCRIBE exchange.
    std::chrono::milliseconds timeout{10'000};
    /// Events buffered for `events().next()`; beyond, `overflow` applies (drops counted).
    std::size_t queue_capacity = 1024;
    /// drop_oldest or reject_new (wait behaves as reject_new: the listener never waits).
    Overflow overflow = Overflow::drop_oldest;
    /// Keep each event's raw body in Event::body.
    bool keep_body = false;
    /// Also deliver exact retransmissions (flagged SeqStatus::duplicate); by default they
    /// are only counted.
    bool deliver_duplicates = false;
    /// Reorder window: an event ahead of the expected SEQ (its predecessors still on other
    /// connections) waits this long for them, so that events go out in SEQ order. The NOTIFY
    /// is answered 200 at once either way; only delivery waits. A predecessor that arrives
    /// after the window is still delivered, flagged SeqStatus::late, and the gap reported
    /// for it is corrected (stats: events_missed, events_late). 0: no waiting (every event
    /// goes out at once, late ones flagged). The default suits a LAN: with 10 concurrent
    /// connections per SID, on loopback and over a veth pair between two network namespaces
    /// (scripts/reorder-spread.sh), an event arrived at most 9 SEQs behind and 0.13 ms after
    /// its first successor; under load (tests/subscriber) within a few ms.
    /// A forged or corrupt SEQ far ahead (more than 1024) does not silence the device (the
    /// resync rule of gena::SeqWindow): if 3 events go out in order while it waits, it is
    /// delivered flagged SeqStatus::outlier and the sequence stays; if it already went out
    /// as a gap, 3 consecutive SEQs behind it (agreeing with each other, not with it) make
    /// the subscription follow them again. Counted in stats.seq_resyncs, logged as a
    /// warning. Callback mode, the queue and the blocking facade see the same order.
    std::chrono::milliseconds reorder_window{30};
    /// Resubscribe when a SEQ gap shows lost events (the initial event of the new
    /// subscription carries every variable again), as gupnp does.
    bool resubscribe_on_gap = false;
    /// Watchdog: report a subscription that had no event for this long (a wrong callback
    /// address is the usual cause); nullopt: no watchdog.
    std::optional<std::chrono::milliseconds> silence_timeout{};
    /// Resubscribe when the watchdog fires.
    bool resubscribe_on_silence = false;
    /// Accept NOTIFYs for this subscription only from the device's own address.
    bool check_source = false;
    /// Spacing of renewal retries and resubscription attempts.
    BackoffOptions backoff{};
    /// USER-AGENT of the requests; empty: gena::default_user_agent(). Copied by subscribe().
    std::string_view user_agent{};
};

static_assert(std::is_trivially_copyable_v<SubscribeOptions> &&
                  std::is_trivially_destructible_v<SubscribeOptions>,
              "SubscribeOptions is written inline inside co_await: g++ 12 needs it to own "
              "nothing (see its comment)");

/// The handlers of one subscription; each may be empty. Not an aggregate on purpose: it
/// cannot be written as a braced list, the form g++ 12 breaks inside co_await (see
/// SubscribeOptions). Set them on a named variable, or afterwards on the Subscription:
///
///     auto sub = co_await uvgena::subscribe(loop, url, {.auto_renew = true});
///     sub.set_callback([state](uvgena::Event e) { state->show(e); });
///
/// Do not write a lambda that owns heap memory (captures a std::string or shared_ptr by
/// value) inside a co_await expression either: g++ 12 breaks that closure the same way.
class UVGENA_API SubscriptionHandlers {
  public:
    /// No handlers (events are queued for `events().next()`).
    SubscriptionHandlers() noexcept {}

    /// Receives every event instead of the queue.
    EventCallback on_event;
    /// Called when an automatic renewal fails.
    RenewFailHandler on_renew_failed;
    /// Called after an automatic resubscription.
    ResubscribeHandler on_resubscribe;
    /// Called when the subscription is lost and auto_resubscribe starts over (before the
    /// first attempt; attempts then repeat with `backoff` until one succeeds).
    LostHandler on_lost;
    /// Called by the watchdog (SubscribeOptions::silence_timeout).
    SilenceHandler on_silence;
};

/// Counters of one subscription: nothing is lost silently.
struct UVGENA_API SubscriptionStats {
    std::uint64_t events_received = 0;       ///< NOTIFYs accepted for this subscription.
    std::uint64_t events_delivered = 0;      ///< Handed to the queue or the callback.
    std::uint64_t events_dropped = 0;        ///< Dropped or refused by the bounded queue.
    std::uint64_t events_missed = 0;         ///< Reported missing by SEQ gaps and not arrived
                                             ///< since (late arrivals and resyncs subtract).
    std::uint64_t events_late = 0;           ///< Missing SEQs that arrived after their successors
                                             ///< went out: delivered flagged SeqStatus::late.
    std::uint64_t events_reordered = 0;      ///< Held by the reorder window, then delivered in
                                             ///< SEQ order.
    std::uint64_t duplicates = 0;            ///< Exact retransmissions dropped (SEQ already
                                             ///< delivered or waiting).
    std::uint64_t seq_resyncs = 0;           ///< Outlier SEQ jumps undone (gena::SeqWindow).
    std::uint64_t seq_resets = 0;            ///< SEQ restarted at 0.
    std::uint64_t parse_errors = 0;          ///< Bodies that did not parse.
    std::uint64_t renewals = 0;              ///< Successful renewals.
    std::uint64_t renewal_failures = 0;      ///< Failed renewals.
    std::uint64_t resubscriptions = 0;       ///< Successful resubscriptions (new SID).
    std::uint64_t resubscribe_failures = 0;  ///< Failed resubscription attempts (retried).
    std::uint64_t silences = 0;              ///< Watchdog reports.
};

/// Awaiter of EventStream::next().
class [[nodiscard]] UVGENA_API EventNextAwaiter {
  public:
    UVGENA_LOCAL explicit EventNextAwaiter(std::shared_ptr<detail::SubscriptionCore> state);
    EventNextAwaiter(const EventNextAwaiter&) = delete;
    EventNextAwaiter& operator=(const EventNextAwaiter&) = delete;
    ~EventNextAwaiter();

    /// Never ready without suspending through the channel.
    bool await_ready() const noexcept { return inner_.await_ready(); }
    /// Waits for the next event (or the end).
    template <typename P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return inner_.await_suspend(h);
    }
    /// The next event; nullopt once the subscription ended normally (unsubscribed, listener
    /// stopped) and the queue is drained. Throws uvgena::Error with the reason when it ended
    /// by an error (lost and not resubscribed), Error(errc::cancelled) when stopped.
    std::optional<Event> await_resume();

  private:
    std::shared_ptr<detail::SubscriptionCore> state_;
    uvgena::detail::ChannelNextAwaiter<Event> inner_;
};

/// The queue of a subscription's events (a view; the Subscription owns it).
class UVGENA_API EventStream {
  public:
    /// `co_await events().next()`: the next event, or nullopt once the subscription ended.
    EventNextAwaiter next() const;
    /// The next buffered event without waiting.
    std::optional<Event> try_next() const;
    /// Events buffered now.
    std::size_t size() const noexcept;

  private:
    friend struct detail::SubscriberAccess;
    explicit EventStream(std::shared_ptr<detail::SubscriptionCore> state) noexcept
        : state_(std::move(state)) {}

    std::shared_ptr<detail::SubscriptionCore> state_;
};

/// A live (or ended) subscription. Move-only. Destroying it without unsubscribing
/// unregisters it locally at once and sends a best-effort UNSUBSCRIBE from a task on the
/// loop (the loop must run a little longer for it; it is bounded by the options' timeout).
class UVGENA_API Subscription {
  public:
    /// An empty subscription (valid() is false).
    Subscription() noexcept;
    Subscription(Subscription&& other) noexcept;
    /// Releases the current subscription (as the destructor does), then takes `other`'s.
    Subscription& operator=(Subscription&& other) noexcept;
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription();

    /// True unless empty (default-constructed or moved from).
    bool valid() const noexcept { return state_ != nullptr; }
    /// The current subscription id (it can change on renewal or resubscription); a copy.
    std::string sid() const;
    /// The granted duration (possibly infinite).
    Timeout timeout() const;
    /// Time left until the grant expires: nullopt if infinite, zero once expired or ended.
    std::optional<std::chrono::milliseconds> time_left() const;
    /// True while subscribed (not unsubscribed, not lost, not expired).
    bool is_subscribed() const noexcept;
    /// The event subscription URL.
    const std::string& service_url() const;
    /// The CALLBACK URL sent to the device (a copy: the subscription keeps only its id and
    /// a prefix shared with the listener's other subscriptions).
    std::string callback_url() const;
    /// The counters now (a copy: the subscription keeps most of them only once they are not
    /// zero, see bench/README.md on memory per subscription).
    SubscriptionStats stats() const;
    /// Why the subscription ended (empty while live or after a normal unsubscribe).
    std::error_code error() const;
    /// The last SEQ delivered (nullopt before the first event).
    std::optional<std::uint32_t> last_seq() const;

    /// The event queue: `co_await sub.events().next()`.
    EventStream events() const;
    /// Sends every event to `callback` (from the loop, after the NOTIFY was answered) instead
    /// of queueing it; events already queued go to it first. An empty callback returns to
    /// queueing: events handed to the callback but not delivered yet come back to the queue
    /// first, in order (a full queue drops them as `overflow` says, counted). An exception
    /// escaping the callback is logged. No callback runs once the subscription ended
    /// (unsubscribed, destroyed, lost, listener stopped), not even for events accepted before.
    void set_callback(EventCallback callback);
    /// Replaces every handler: on_event as set_callback does, and the renewal, resubscription
    /// and watchdog handlers.
    void set_handlers(SubscriptionHandlers handlers);

    /// Renews now, asking for `requested_timeout` (nullopt: the options' request, else the
    /// granted duration). Adopts a changed SID. Throws uvgena::Error; a 412 (the device forgot
    /// us) ends the subscription with that error unless auto_resubscribe is on.
    Task<void> renew(std::optional<std::chrono::seconds> requested_timeout = std::nullopt);
    /// Subscribes again now, in the background, as auto_resubscribe does after a loss: for an
    /// application that learned elsewhere that the device forgot the subscription (SSDP: a
    /// byebye then an alive, a higher BOOTID; see ssdp::DeviceFollower). Once a new SID is
    /// granted the old one is unsubscribed (leniently), on_resubscribe is called and the new
    /// SID's first event is flagged Event::resubscribed; failed attempts repeat with
    /// `backoff` (its max_attempts exhausted: the subscription ends with the error). Does
    /// nothing if the subscription ended or is already being re-established.
    void resubscribe_now();
    /// Unsubscribes. Locally the subscription ends at once (the stream ends, later NOTIFYs
    /// get 412); then UNSUBSCRIBE is sent. With `strict`, its failure is thrown; without,
    /// logged and swallowed (SoCo's lenient mode). A second call does nothing.
    Task<void> unsubscribe(bool strict = true);

  private:
    friend struct detail::SubscriberAccess;
    UVGENA_LOCAL Subscription(std::shared_ptr<detail::SubscriptionCore> state,
                              std::shared_ptr<detail::ListenerImpl> listener) noexcept;
    void release() noexcept;

    std::shared_ptr<detail::SubscriptionCore> state_;
    std::shared_ptr<detail::ListenerImpl> listener_;
};

/// Subscribes to the events of the service whose event subscription URL is `event_url`:
/// starts the listener if needed, chooses the callback address (the local interface that
/// routes to the device, or the listener's advertised one), sends SUBSCRIBE and returns once
/// the device answered 200 with a SID. Throws uvgena::Error: http::errc::bad_url for a bad
/// URL, libuv codes for network failures (connection refused, ...), errc::timed_out, the
/// gena status errors (precondition_failed, server_error, ...) for a refusal. `handlers` are
/// installed before the first event can arrive (see SubscriptionHandlers for the g++ 12
/// rule; Subscription::set_callback right after the co_await is equivalent for on_event).
UVGENA_API Task<Subscription> subscribe(uv_loop_t* loop, std::string event_url,
                                        SubscribeOptions options = {},
                                        SubscriptionHandlers handlers = {});

}  // namespace uvgena::gena

namespace uvgena {
using gena::Event;
using gena::EventListener;
using gena::ListenerOptions;
using gena::subscribe;
using gena::SubscribeOptions;
using gena::Subscription;
using gena::SubscriptionHandlers;
}  // namespace uvgena
