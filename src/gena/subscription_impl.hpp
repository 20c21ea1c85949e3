// Private state shared by the listener and its subscriptions.
//
// Ownership: a Subscription holds its SubState and a reference on the ListenerImpl (which
// keeps the loop's shared listener alive). The listener's registry maps callback ids to raw
// SubState pointers; a SubState unregisters itself when it ends or dies. Background tasks
// (renewal, resubscription) run in the listener's Scope and hold the SubState, never the
// listener, so that no task of a scope can destroy the scope's owner.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "uvgena/co/channel.hpp"
#include "uvgena/co/scheduler.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/gena/listener.hpp"
#include "uvgena/gena/schedule.hpp"
#include "uvgena/gena/seq.hpp"
#include "uvgena/gena/subscription.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/http/url.hpp"

namespace uvgena::gena::detail {

class ListenerImpl;

/// The local address a socket would use to reach `device` (a connected UDP socket's
/// getsockname: no packet is sent). Fails for unroutable destinations.
Result<SocketAddress> local_address_towards(const SocketAddress& device) noexcept;

/// Sends UNSUBSCRIBE for `sid`. With `strict`, failures are thrown, else logged.
Task<void> send_unsubscribe(uv_loop_t* loop, http::Url url, SocketAddress device, std::string sid,
                            std::chrono::milliseconds timeout, std::string user_agent, bool strict);

/// Runs `fn` as user code of `listener` (counted, exceptions logged).
template <typename Fn>
void call_user(ListenerImpl* listener, const char* what, Fn&& fn) noexcept;

/// One subscription's state.
class SubState : public std::enable_shared_from_this<SubState> {
public:
    enum class Phase { subscribing, active, renewing, resubscribing, ended };

    SubState(uv_loop_t* loop, ListenerImpl* listener, http::Url url, std::string url_text,
             SubscribeOptions options);
    SubState(const SubState&) = delete;
    SubState& operator=(const SubState&) = delete;
    ~SubState();

    /// True while the device may know a SID we do not know yet (hold its NOTIFYs).
    bool holding() const noexcept {
        return phase == Phase::subscribing || phase == Phase::renewing ||
               phase == Phase::resubscribing;
    }
    bool subscribed() const noexcept { return phase != Phase::ended && !sid.empty(); }

    /// The SUBSCRIBE exchange (initial or resubscription); adopts the answer. Throws.
    Task<void> exchange_subscribe();
    /// A renewal exchange with the current SID. Throws.
    Task<void> exchange_renew(std::optional<std::chrono::seconds> requested);

    /// An accepted NOTIFY whose SID is the current one: SEQ check, counters, delivery.
    void accept(Event event);
    /// An accepted NOTIFY whose SID is not known yet.
    void hold(Event event);
    /// Ends the subscription locally: unregisters, clears timers, closes the stream
    /// (with `error` if set, which next() then throws).
    void end(std::error_code error, std::string context = {});
    /// Moves queued events into the callback queue (after set_callback).
    void flush_queue_to_callback();

    /// The channel, created on first use.
    Channel<Event>& channel();
    /// Re-arms the loop timer for the schedule's next deadline.
    void rearm() noexcept;
    /// Called when a background operation may have to start.
    void start_background(Task<void> task);
    /// The 412 / expiry path: resubscribe or end.
    void lost(const std::error_code& error, const std::string& context);
    /// Starts a resubscription in the background (if not already doing one).
    void resubscribe_later(bool unsubscribe_old);

    uv_loop_t* loop;
    ListenerImpl* listener;  // null once detached
    std::uint64_t id = 0;    // callback path key
    http::Url url;
    std::string url_text;
    SubscribeOptions options;
    std::string sid;
    std::string callback_url;
    Timeout granted{};
    SteadyClock::time_point granted_at{};
    Phase phase = Phase::subscribing;
    SeqTracker seq;
    SubscriptionStats stats;
    std::unique_ptr<Channel<Event>> events;
    std::shared_ptr<const EventCallback> callback;
    std::error_code end_error;
    std::string end_context;
    std::vector<Event> held;
    std::optional<SocketAddress> device_address;
    SubscriptionSchedule schedule;
    Backoff backoff;
    bool background_busy = false;
    std::string error_context;  // "subscribe to <url>"
    std::string user_agent;     // options.user_agent, owned

private:
    static void on_timer(uvgena::detail::TimerNode* node) noexcept;
    void on_deadline() noexcept;
    static Task<void> auto_renew_task(std::shared_ptr<SubState> self);
    static Task<void> resubscribe_task(std::shared_ptr<SubState> self, bool unsubscribe_old);
    void adopt(const SubscribeAnswer& answer, bool fresh);

    uvgena::detail::LoopRef ctx_;
    uvgena::detail::TimerNode timer_;
};

/// The listener's shared implementation.
class ListenerImpl : public std::enable_shared_from_this<ListenerImpl> {
public:
    ListenerImpl(uv_loop_t* loop, ListenerOptions options);
    ListenerImpl(const ListenerImpl&) = delete;
    ListenerImpl& operator=(const ListenerImpl&) = delete;
    ~ListenerImpl();

    /// The loop's shared listener (created on first use).
    static std::shared_ptr<ListenerImpl> shared_for(uv_loop_t* loop);

    void start();
    Task<void> stop();
    /// Ends every subscription locally and closes the server now (no network).
    void close_now() noexcept;

    std::uint64_t add(SubState* state);
    void remove(std::uint64_t id) noexcept;
    /// The CALLBACK URL for subscription `id` when the device is reached from `local`.
    std::string callback_url(const std::optional<SocketAddress>& local, std::uint64_t id) const;
    /// Queues an event for the callback of `state` (delivered from the loop, later).
    void queue_callback(std::shared_ptr<SubState> state, Event event);
    /// Answers one NOTIFY (the server's handler).
    http::Response handle(const http::Request& request, const http::RequestContext& context);

    /// Drops a reference to a listener without destroying it inside its own user code.
    static void release(std::shared_ptr<ListenerImpl>& listener) noexcept;

    uv_loop_t* loop;
    ListenerOptions options;
    ListenerStats stats;
    bool started = false;
    bool stopped = false;
    int in_user_code = 0;
    std::unordered_map<std::uint64_t, SubState*> subs;

    Scope& scope() noexcept { return scope_; }
    http::Server* server() const noexcept { return server_.get(); }

private:
    static Task<void> deliver_callbacks(std::shared_ptr<ListenerImpl> self);

    std::uint64_t next_id_;
    std::unique_ptr<http::Server> server_;
    std::deque<std::pair<std::shared_ptr<SubState>, Event>> callback_queue_;
    bool delivering_ = false;
    Scope scope_;  // last: destroyed first
};

template <typename Fn>
void call_user(ListenerImpl* listener, const char* what, Fn&& fn) noexcept {
    if (listener != nullptr) ++listener->in_user_code;
    try {
        fn();
    } catch (const std::exception& e) {
        log(LogLevel::error, "uvgena: ", what, " threw: ", e.what());
    } catch (...) {
        log(LogLevel::error, "uvgena: ", what, " threw a non-standard exception");
    }
    if (listener != nullptr) --listener->in_user_code;
}

}  // namespace uvgena::gena::detail
