// Private state of the publisher layer, shared by its files:
//   service.cpp     a service's variables, moderation and event building
//   requests.cpp    SUBSCRIBE / renewal / UNSUBSCRIBE answers (the HTTP front)
//   delivery.cpp    per-subscriber queues and the NOTIFY workers
//   actions.cpp     SOAP action calls to the control paths, and the SCPD documents
//   publisher.cpp   the subscription table, expiry, stop, and the public face
//   interfaces.cpp  the host's interface list and its cache (the CALLBACK checks' only I/O)
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "co/once.hpp"
#include "uvgena/co/async_event.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/publisher/publisher.hpp"

namespace uvgena::gena::detail {

/// A property set, built once per change and shared by every subscriber's queue.
using EventBody = std::shared_ptr<const std::string>;

/// One delivery URL with its address resolved once (CALLBACK hosts are IP literals).
struct Target {
    http::Url url;
    SocketAddress address;
};

/// One event waiting in a subscriber's queue. `skip` counts the dropped events just before
/// it, whose SEQs it skips so that the subscriber sees the gap.
struct Queued {
    EventBody body;
    std::uint32_t skip = 0;
    bool full_state = false;
};

/// How one NOTIFY exchange ended (timed_out: failed, and a CALLBACK URL did not answer in
/// time, which counts against its host).
enum class Delivery { ok, failed, timed_out, cancelled };

/// One subscription. Shared by the table, the service's list and the worker delivering to
/// it; `removed` tells the others when it is gone.
struct Subscriber {
    std::string sid;
    Service::Impl* service = nullptr;
    std::size_t service_index = 0;
    std::vector<Target> callbacks;
    SocketAddress requester;
    std::string host_key;       // the requester's address (subscription limits)
    std::string delivery_host;  // whose delivery limits apply: the requester's address
    std::chrono::seconds timeout{0};
    Clock::time_point expires{};
    std::uint32_t next_seq = 0;
    std::deque<Queued> queue;
    bool active = false;   // the SUBSCRIBE response is on the wire
    bool ready = false;    // in the publisher's ready queue
    bool sending = false;  // a NOTIFY is in flight
    bool parked = false;   // waiting in its delivery host's queue for a slot
    bool removed = false;
    std::stop_source stop;
    std::uint64_t delivered = 0, failed = 0, coalesced = 0, dropped = 0;
    unsigned consecutive_failures = 0;
    std::optional<Clock::time_point> failing_since;
};

/// Delivery state of one subscribing host (the SUBSCRIBEs' peer IP address): the NOTIFYs and
/// connects in flight for its subscriptions, its strikes (timeouts, subscribers dropped) and
/// back-off, and its subscribers waiting for one of its slots.
struct HostState {
    std::size_t in_flight = 0;
    std::size_t connecting = 0;
    std::size_t subscribers = 0;
    unsigned strikes = 0;
    Clock::time_point last_strike{};
    Clock::time_point backoff_until{};
    bool wake_scheduled = false;
    std::deque<std::shared_ptr<Subscriber>> parked;
};

/// The host's interface list, read at most every 10 s (a SUBSCRIBE storm must not turn
/// into a storm of interface enumerations).
class InterfaceCache {
  public:
    /// The list, re-read when older than 10 s.
    const std::vector<InterfaceNetwork>& get();

  private:
    bool read_ = false;
    Clock::time_point read_at_{};
    std::vector<InterfaceNetwork> list_;
};

/// The path of a request-target: the absolute form's authority and any query are dropped.
std::string_view path_of(std::string_view target) noexcept;

/// What a path of a service is for.
enum class Route { event, control, scpd };

/// The handler of one action, of either kind (shared with the calls running it, so that
/// replacing it does not destroy a coroutine's captures under it).
struct ActionHandlers {
    ActionHandler async;
    SyncActionHandler sync;
};

}  // namespace uvgena::gena::detail

namespace uvgena::gena {

/// A service's variables, moderation and subscribers (service.cpp).
struct Service::Impl {
    using EventBody = detail::EventBody;

    struct Variable {
        std::string name;
        std::string value;
        std::chrono::milliseconds min_interval{0};
        Clock::time_point last_emit = Clock::time_point::min();
        bool pending = false;
        bool is_last_change = false;
        bool multicast = false;
    };

    Publisher::Impl* publisher = nullptr;
    std::string event_path;
    // Actions (actions.cpp).
    std::string control_path;
    std::string service_type;
    std::string scpd_path;
    std::string scpd_xml;
    std::optional<control::Scpd> scpd;
    bool check_actions = true;
    std::map<std::string, std::shared_ptr<const detail::ActionHandlers>, std::less<>> handlers;
    std::vector<Variable> variables;
    std::optional<LastChangeState> last_change;
    std::chrono::milliseconds min_interval{0};
    MulticastSink multicast_sink;
    Clock::time_point last_emit = Clock::time_point::min();
    std::vector<std::shared_ptr<detail::Subscriber>> subscribers;
    std::unordered_map<std::string, std::size_t> per_host;  // its subscriptions by requester
    EventBody full_state;  // cache of the full-state property set; reset by every change
    std::optional<Clock::time_point> flush_at;
    std::stop_source flush_stop;

    /// Throws invalid_argument unless `action` may get a handler (see Service::on_action).
    void check_action_name(const std::string& action) const;

    /// Builds the service from its configuration (throws invalid_argument, see add_service).
    static std::unique_ptr<Impl> make(Publisher::Impl* publisher, ServiceConfig config);

    Variable* find(std::string_view name) noexcept;
    /// The variable `name`, which must exist and not be LastChange.
    Variable& require(std::string_view name);
    /// The LastChange variable, which must exist.
    Variable& last_change_variable();
    /// The property set of every variable (the initial event, and coalesced queues).
    EventBody full_state_event();

    void changed(Variable& v) {
        v.pending = true;
        full_state.reset();
    }

    /// Emits the pending variables that moderation lets out now (all of them when `force`),
    /// as one event, and schedules a flush for the rest.
    void emit_due(bool force);
    void schedule_flush(Clock::time_point when);
    Task<void> flush_later(Clock::time_point when);
};

/// The publisher's state: the subscription table, the delivery queues and workers, and its
/// own server. Shared with handlers and stop() calls in flight, which may outlive the
/// Publisher; shutdown() ends everything the moment the Publisher is destroyed.
struct Publisher::Impl : std::enable_shared_from_this<Publisher::Impl> {
    using Subscriber = detail::Subscriber;
    using EventBody = detail::EventBody;

    Impl(uv_loop_t* l, PublisherOptions o);
    ~Impl() { shutdown(); }

    // publisher.cpp: the subscription table and the end of everything
    void shutdown() noexcept;
    void forget_all() noexcept;
    Service::Impl* find_service(std::string_view path) const noexcept;
    /// The service with `path` as its event, control or SCPD path, and which one it is.
    std::pair<Service::Impl*, detail::Route> route(std::string_view path) const noexcept;
    bool live(const Subscriber& s, const Service::Impl* service, Clock::time_point now) const {
        return !s.removed && s.service == service && s.expires > now;
    }
    void remove(std::shared_ptr<Subscriber> sub) noexcept;
    Task<void> sweep();
    void ensure_sweeping();
    static Task<void> stop(std::shared_ptr<Impl> self, std::chrono::milliseconds grace);
    Task<void> drain(std::chrono::milliseconds grace);

    // requests.cpp: the HTTP front
    http::Response handle(const http::Request& request, const http::RequestContext& context);
    http::Response subscribe(Service::Impl& service, SubscriptionDecision& decision,
                             const http::RequestContext& context);
    bool make_room(Service::Impl& service, const std::string& requester);
    /// Any request to one of the services' paths (the publisher's own front door).
    static Task<http::Response> answer(std::shared_ptr<Impl> self, const http::Request& request,
                                       const http::RequestContext& context);

    // actions.cpp: action calls and SCPD documents
    static Task<http::Response> call_action(std::shared_ptr<Impl> self, Service::Impl& service,
                                            const http::Request& request,
                                            const http::RequestContext& context);
    http::Response serve_scpd(const Service::Impl& service, const http::Request& request) const;
    http::Response fault(const Service::Impl& service, std::string_view action,
                         const http::RequestContext& context, const control::Fault& fault,
                         std::string_view why);

    // delivery.cpp: queues and workers
    void activate(const std::shared_ptr<Subscriber>& sub);
    /// The SUBSCRIBE response was written: activate after options.initial_event_delay.
    void activate_later(const std::shared_ptr<Subscriber>& sub);
    Task<void> activate_after_delay(std::shared_ptr<Subscriber> sub);
    void enqueue(const std::shared_ptr<Subscriber>& sub, const EventBody& body);
    void make_ready(const std::shared_ptr<Subscriber>& sub);
    void ensure_workers();
    bool is_idle() const noexcept {
        return ready.empty() && workers == 0 && activating == 0 && parked == 0;
    }
    // Per-host delivery limits.
    detail::HostState& host(const std::string& key) { return hosts[key]; }
    std::size_t host_slots(const detail::HostState& h) const noexcept;
    bool may_start(detail::HostState& h, Clock::time_point now) noexcept;
    void park(const std::shared_ptr<Subscriber>& sub, detail::HostState& h, const std::string& key);
    void unpark(const std::string& key);
    void strike(const std::string& key, unsigned count);
    Task<void> wake_host(std::string key, Clock::time_point when);
    void forget_host_if_unused(const std::string& key);
    void maybe_idle() noexcept {
        if (is_idle()) idle_event.set();
    }
    Task<void> worker();
    Task<detail::Delivery> deliver(std::shared_ptr<Subscriber> sub, std::uint32_t seq,
                                   EventBody body, std::function<void()> connected);
    void record(const std::shared_ptr<Subscriber>& sub, detail::Delivery result);

    uv_loop_t* loop;
    PublisherOptions options;
    PublisherStats stats;
    std::vector<std::unique_ptr<Service>> services;
    std::unordered_map<std::string, std::shared_ptr<Subscriber>> by_sid;
    std::unordered_map<std::string, std::size_t> per_host;
    std::unordered_map<std::string, detail::HostState> hosts;  // by delivery host
    std::size_t parked = 0;                                    // subscribers in hosts' queues
    std::deque<std::shared_ptr<Subscriber>> ready;
    std::size_t workers = 0;     // worker tasks alive (started or about to start)
    std::size_t busy = 0;        // workers with a NOTIFY in flight
    std::size_t activating = 0;  // subscribers waiting out initial_event_delay
    bool sweeping = false;
    bool stopped = false;    // stop() was called, or the Publisher is gone
    bool shut_down = false;  // shutdown() ran: the Publisher is gone
    detail::InterfaceCache interfaces;
    AsyncEvent idle_event;
    uvgena::detail::Once stop_once;  // the graceful stop, run once for every caller
    std::stop_source actions_stop;   // cancels the action handlers running (stop, shutdown)
    std::unique_ptr<http::Server> server;
    std::unique_ptr<Scope> scope;  // last: its tasks use everything above
};

}  // namespace uvgena::gena
