#include "uvgena/blocking/subscription.hpp"

#include <string>
#include <utility>

#include "blocking/error_copy.hpp"
#include "uvgena/core/log.hpp"

namespace uvgena {
namespace detail {

// What the handle and the loop side share: the event queue and why the stream ended. Both
// are thread-safe; nothing else crosses the threads.
struct BlockingSubShared {
    BlockingSubShared(std::size_t capacity, Overflow policy) : events(capacity, policy) {}

    // Ends the stream (loop thread), with the error that ended the subscription, if any. Only
    // the first call counts.
    void finish(std::exception_ptr error) {
        {
            std::lock_guard lock(mutex);
            if (finished) return;
            finished = true;
            end_error = std::move(error);
        }
        events.close();
    }
    // Throws the error that ended the stream, once it ended and was drained. Each reader
    // gets a copy made under the lock, so that no exception object is shared between the
    // threads (the original is released on whichever thread drops the last reference).
    void rethrow_end_error() {
        std::exception_ptr copy;
        {
            std::lock_guard lock(mutex);
            if (!end_error) return;
            copy = copy_error(end_error);
        }
        std::rethrow_exception(copy);
    }

    BlockingQueue<gena::Event> events;
    std::mutex mutex;
    std::exception_ptr end_error;
    bool finished = false;
};

// The loop side of a blocking subscription: owns the Subscription. Loop thread only; the
// handle holds only a weak reference, locked in jobs on the loop thread, so the Subscription
// is always destroyed there.
struct LoopSubscription {
    LoopSubscription() = default;
    LoopSubscription(const LoopSubscription&) = delete;
    LoopSubscription& operator=(const LoopSubscription&) = delete;
    // Ends the handle's stream if the pump did not: its frame was destroyed because the
    // BackgroundLoop's shutdown grace ran out during the lenient UNSUBSCRIBE (or before the
    // pump started). A reader blocked in get() without a time limit must wake up; the stream
    // ends without an error, as when the UNSUBSCRIBE finishes within the grace.
    ~LoopSubscription() {
        if (shared) shared->finish(nullptr);
    }

    // Hands one event to the callback (here or queued) or to the queue.
    void deliver(gena::Event event) {
        if (callback && callback_queue) {
            callback_queue->post(
                [cb = callback, e = std::move(event)]() mutable { (*cb)(std::move(e)); });
            return;
        }
        if (callback) {
            try {
                (*callback)(std::move(event));
            } catch (const std::exception& e) {
                log(LogLevel::error, "a blocking subscription's event callback threw: ", e.what());
            } catch (...) {
                log(LogLevel::error, "a blocking subscription's event callback threw");
            }
            return;
        }
        if (!shared->events.push(std::move(event))) {
            log(LogLevel::warning, "blocking subscription ", subscription.sid(),
                ": event queue full, an event was dropped");
        }
    }

    gena::Subscription subscription;
    std::shared_ptr<BlockingSubShared> shared;
    std::shared_ptr<gena::EventCallback> callback;
    std::shared_ptr<CallbackQueue> callback_queue;
    // Stops the pump: requested by the handle's release, forwarded from the loop's scope.
    std::stop_source stop;
};

namespace {

// Delivers every event of the subscription until its stream ends.
Task<void> pump_events(LoopSubscription* s) {
    while (auto event = co_await s->subscription.events().next()) s->deliver(std::move(*event));
}

// Moves events from the Subscription to the handle's side until the stream ends or the pump
// is stopped (handle released, BackgroundLoop stopping); then unsubscribes leniently, under
// a token of its own, and ends the handle's stream.
Task<void> pump(std::shared_ptr<LoopSubscription> ls) {
    std::stop_token scope_token = co_await current_stop_token();
    std::stop_callback<StopForwarder> forward(scope_token, StopForwarder{&ls->stop});
    std::exception_ptr end_error;
    bool stopped = false;
    try {
        co_await with_stop_token(pump_events(ls.get()), ls->stop.get_token());
    } catch (const std::system_error& e) {
        if (is_cancelled(e.code()) && ls->stop.stop_requested()) {
            stopped = true;
        } else {
            end_error = std::current_exception();
        }
    } catch (...) {
        end_error = std::current_exception();
    }
    if (stopped) {
        try {
            co_await with_stop_token(ls->subscription.unsubscribe(false), std::stop_token());
        } catch (const std::exception& e) {
            log(LogLevel::warning, "blocking subscription: lenient unsubscribe: ", e.what());
        }
    }
    ls->shared->finish(end_error);
    // The Subscription dies here, on the loop thread.
    ls->subscription = gena::Subscription();
}

}  // namespace
}  // namespace detail

// --- BlockingEventStream ---------------------------------------------------------------

std::optional<gena::Event> BlockingEventStream::get() {
    auto event = shared_->events.get();
    if (!event) shared_->rethrow_end_error();
    return event;
}

std::optional<gena::Event> BlockingEventStream::get_for(std::chrono::nanoseconds timeout) {
    auto event = shared_->events.get(timeout);
    if (!event && shared_->events.closed()) shared_->rethrow_end_error();
    return event;
}

std::optional<gena::Event> BlockingEventStream::try_get() {
    return shared_->events.try_get();
}

bool BlockingEventStream::ended() const {
    return shared_->events.closed() && shared_->events.size() == 0;
}

std::size_t BlockingEventStream::size() const {
    return shared_->events.size();
}

std::uint64_t BlockingEventStream::dropped() const {
    return shared_->events.dropped();
}

// --- BlockingSubscription --------------------------------------------------------------

BlockingSubscription::BlockingSubscription(
    detail::LoopPoster poster, std::weak_ptr<detail::LoopSubscription> loop_side,
    std::shared_ptr<detail::BlockingSubShared> shared) noexcept
    : poster_(std::move(poster)), loop_side_(std::move(loop_side)), shared_(std::move(shared)) {}

BlockingSubscription& BlockingSubscription::operator=(BlockingSubscription&& other) noexcept {
    if (this != &other) {
        release();
        poster_ = std::move(other.poster_);
        loop_side_ = std::move(other.loop_side_);
        shared_ = std::move(other.shared_);
    }
    return *this;
}

BlockingSubscription::~BlockingSubscription() {
    release();
}

void BlockingSubscription::release() noexcept {
    if (!shared_) return;
    shared_.reset();
    try {
        // The pump unsubscribes leniently and lets the Subscription go, on the loop thread.
        (void)poster_.run([w = std::move(loop_side_)] {
            if (auto ls = w.lock()) ls->stop.request_stop();
        });
    } catch (const std::exception&) {
        // The loop stopped: its shutdown already ended the subscription.
    }
}

BlockingEventStream BlockingSubscription::events() const {
    if (!shared_) {
        throw Error(make_error_code(errc::invalid_argument), "empty BlockingSubscription");
    }
    return BlockingEventStream(shared_);
}

namespace {

// Runs `f(subscription)` on the loop and waits for its value; the subscription must still be
// there (else Error(errc::closed)).
template <typename F>
auto on_loop(const detail::LoopPoster& poster, const std::weak_ptr<detail::LoopSubscription>& w,
             F f) {
    return poster
        .run([w, f = std::move(f)]() mutable {
            auto ls = w.lock();
            if (!ls) throw Error(make_error_code(errc::closed), "blocking subscription ended");
            return f(*ls);
        })
        .wait();
}

}  // namespace

std::string BlockingSubscription::sid() const {
    return on_loop(poster_, loop_side_,
                   [](detail::LoopSubscription& s) { return s.subscription.sid(); });
}

bool BlockingSubscription::is_subscribed() const {
    try {
        return on_loop(poster_, loop_side_,
                       [](detail::LoopSubscription& s) { return s.subscription.is_subscribed(); });
    } catch (const Error& e) {
        if (e.code() == make_error_code(errc::closed) ||
            e.code() == make_error_code(errc::not_running)) {
            return false;
        }
        throw;
    }
}

gena::SubscriptionStats BlockingSubscription::stats() const {
    return on_loop(poster_, loop_side_,
                   [](detail::LoopSubscription& s) { return s.subscription.stats(); });
}

std::optional<std::chrono::milliseconds> BlockingSubscription::time_left() const {
    return on_loop(poster_, loop_side_,
                   [](detail::LoopSubscription& s) { return s.subscription.time_left(); });
}

EventualResult<void> BlockingSubscription::renew(
    std::optional<std::chrono::seconds> requested_timeout) {
    return poster_
        .run([w = loop_side_, requested_timeout]() -> Task<void> {
            auto ls = w.lock();
            if (!ls) throw Error(make_error_code(errc::closed), "blocking subscription ended");
            co_await ls->subscription.renew(requested_timeout);
        })
        .describe("BlockingSubscription::renew");
}

EventualResult<void> BlockingSubscription::unsubscribe(bool strict) {
    return poster_
        .run([w = loop_side_, strict]() -> Task<void> {
            auto ls = w.lock();
            if (!ls) co_return;  // already ended
            co_await ls->subscription.unsubscribe(strict);
        })
        .describe("BlockingSubscription::unsubscribe");
}

void BlockingSubscription::set_callback(gena::EventCallback callback) {
    set_callback(std::move(callback), nullptr);
}

void BlockingSubscription::set_callback(gena::EventCallback callback,
                                        std::shared_ptr<CallbackQueue> queue) {
    std::shared_ptr<gena::EventCallback> cb;
    if (callback) cb = std::make_shared<gena::EventCallback>(std::move(callback));
    on_loop(poster_, loop_side_,
            [cb = std::move(cb), q = std::move(queue)](detail::LoopSubscription& s) mutable {
                s.callback = std::move(cb);
                s.callback_queue = std::move(q);
                return 0;
            });
}

// --- BackgroundLoop::subscribe ---------------------------------------------------------

EventualResult<BlockingSubscription> BackgroundLoop::subscribe(std::string event_url) {
    return subscribe(std::move(event_url), gena::SubscribeOptions{});
}

EventualResult<BlockingSubscription> BackgroundLoop::subscribe(std::string event_url,
                                                               gena::SubscribeOptions options) {
    return subscribe(std::move(event_url), options, gena::SubscriptionHandlers());
}

EventualResult<BlockingSubscription> BackgroundLoop::subscribe(
    std::string event_url, gena::SubscribeOptions options, gena::SubscriptionHandlers handlers) {
    std::string what = "BackgroundLoop::subscribe " + event_url;
    return run([url = std::move(event_url), options, handlers = std::move(handlers),
                poster =
                    poster_](detail::JobContext context) mutable -> Task<BlockingSubscription> {
               Overflow policy =
                   options.overflow == Overflow::wait ? Overflow::reject_new : options.overflow;
               auto shared =
                   std::make_shared<detail::BlockingSubShared>(options.queue_capacity, policy);
               auto ls = std::make_shared<detail::LoopSubscription>();
               ls->shared = shared;
               // A callback given in the handlers runs on the loop thread, through the pump, so
               // that set_callback can change it later.
               if (handlers.on_event) {
                   ls->callback =
                       std::make_shared<gena::EventCallback>(std::move(handlers.on_event));
                   handlers.on_event = {};
               }
               ls->subscription = co_await gena::subscribe(context.loop, std::move(url), options,
                                                           std::move(handlers));
               context.scope->spawn(detail::pump(ls));
               co_return BlockingSubscription(std::move(poster), ls, std::move(shared));
           })
        .describe(std::move(what));
}

}  // namespace uvgena
