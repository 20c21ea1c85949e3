// Publisher: the device side of GENA. It accepts SUBSCRIBE / renewal / UNSUBSCRIBE requests
// for one or more services mounted on an http::Server, and sends every subscriber a NOTIFY
// for each change of the services' evented state variables.
//
//     gena::Publisher publisher(loop);
//     gena::ServiceConfig config;
//     config.event_path = "/RenderingControl/event";
//     config.variables = {{"Volume", "20"}, {"Mute", "0"}};
//     gena::Service& rc = publisher.add_service(std::move(config));
//     http::ServerOptions server;
//     server.address = SocketAddress::ipv4_any(49152);
//     publisher.listen(server);
//     rc.set("Volume", "21");            // every subscriber gets a NOTIFY, in order
//
// Delivery: each change's property set is built once and queued for every subscriber of the
// service. One subscriber gets one NOTIFY at a time, in order, SEQ 0 for the initial event
// (sent only once the SUBSCRIBE response is fully written and initial_event_delay has
// passed, so that the control point has stored the SID), then 1, 2, ... wrapping from
// 4294967295 to 1. NOTIFYs to different subscribers run concurrently (up to a bound), so a
// slow or dead subscriber never delays the others (at most max_notifies_per_host NOTIFYs for
// one subscribing host at once, fewer and after a back-off when its NOTIFYs time out);
// its queue is bounded (coalesced into one
// full-state event, or oldest dropped with a SEQ gap that tells the subscriber), and after
// repeated failures it is dropped. Every loss is counted in PublisherStats.
//
// Actions: a service given a control_path answers SOAP action calls POSTed there
// (UDA 1.1 section 3.2) with the handlers set by Service::on_action, through the control
// layer's SOAP codec (the one call_action uses). Given its SCPD, it serves the document at
// scpd_path and checks each call against it before the handler runs:
//
//     config.control_path = "/RenderingControl/control";
//     config.service_type = "urn:schemas-upnp-org:service:RenderingControl:1";
//     config.scpd_path = "/RenderingControl/scpd.xml";
//     config.scpd = rendering_control_scpd_xml;
//     rc.on_action("GetVolume", [&](const gena::ActionCall&) -> control::Arguments {
//         return {{"CurrentVolume", std::to_string(volume)}};
//     });
//     rc.on_action("SetVolume", [&](const gena::ActionCall& call) -> Task<control::Arguments> {
//         co_await set_amplifier(*call.argument("DesiredVolume"));   // may suspend
//         co_return control::Arguments{};
//     });
//
// Security: CALLBACK URLs must be http:// with an IP-literal host allowed by the
// CallbackScope (CallStranger, CVE-2020-12695), few and short (pupnp CVE-2016-8863), and the
// number of subscriptions per service and per requesting host is limited.
//
// Threading: loop thread only, like every uvgena object.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uvgena/co/task.hpp"
#include "uvgena/control/scpd.hpp"
#include "uvgena/control/soap.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/gena/callback_policy.hpp"
#include "uvgena/gena/event_builder.hpp"
#include "uvgena/gena/last_change_builder.hpp"
#include "uvgena/gena/protocol.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/net/address.hpp"
#include "uvgena/publisher/interfaces.hpp"

namespace uvgena::gena {

/// What a subscriber's full event queue does with one more event.
enum class QueueOverflow {
    /// Replace everything queued by one event carrying the full current state (like an
    /// initial event): the subscriber ends with the right values and a contiguous SEQ.
    coalesce,
    /// Drop the oldest queued event; the SEQ skips it, so the subscriber sees the gap.
    drop_oldest,
};

/// Configuration of a Publisher; every bound has a safe default.
struct UVGENA_API PublisherOptions {
    /// Timeout clamping (default 1800 s when none is asked) and CALLBACK list bounds.
    SubscriptionPolicy policy{};
    /// Which CALLBACK hosts are accepted (CallStranger).
    CallbackScope callback_scope = CallbackScope::same_segment;
    /// Networks whose addresses are accepted as CALLBACK hosts in addition to the scope
    /// (e.g. the subnets of a routed LAN, without opening every private range).
    std::vector<IpNetwork> allowed_callback_networks;
    /// Subscriptions per service. When it is reached, a SUBSCRIBE from a host holding fewer
    /// of the service's subscriptions than the host holding the most is still served: that
    /// host's subscription expiring first is evicted (counted in PublisherStats::evicted);
    /// a SUBSCRIBE from a host among those holding the most gets 503. So a few hosts cannot
    /// fill the service and lock new ones out (SECURITY.md).
    std::size_t max_subscriptions_per_service = 2048;
    /// Subscriptions per requesting host (all services); beyond it SUBSCRIBE gets 503.
    std::size_t max_subscriptions_per_host = 64;
    /// Time limit of one NOTIFY exchange (UDA: 30 s).
    std::chrono::milliseconds notify_timeout{30'000};
    /// Time limit to connect to one CALLBACK URL: much shorter than notify_timeout, since a
    /// LAN host accepts in milliseconds and an unreachable one must not hold a slot long.
    std::chrono::milliseconds notify_connect_timeout{2'000};
    /// Pause between the end of writing a SUBSCRIBE response and sending the initial event
    /// (SEQ 0). Control points store the SID only when they have processed the response:
    /// GUPnP 1.6 answers 200 to, and throws away, a NOTIFY that overtakes that, then sees
    /// SEQ 1 as a gap and resubscribes. Measured with GUPnP 1.6.3 in a network namespace
    /// (tests/interop/gupnp_publisher.sh, 20 subscriptions): 0 ms gave 23 resubscriptions,
    /// 1, 2 and 5 ms none; gmediarender (libupnp) waits ~0.9 ms. 20 ms leaves a control point
    /// on a loaded host several scheduling rounds. 0 sends at write completion. Renewals send
    /// no event.
    std::chrono::milliseconds initial_event_delay{20};
    /// Events queued per subscriber (not counting the one in flight), at least 1.
    std::size_t max_queued_events = 32;
    /// What a full queue does.
    QueueOverflow overflow = QueueOverflow::coalesce;
    /// A subscriber whose deliveries failed this many times in a row is dropped.
    unsigned max_consecutive_failures = 5;
    /// A subscriber whose deliveries have failed without a success for this long is dropped
    /// (checked at each failure).
    std::chrono::milliseconds max_failing_time{300'000};
    /// NOTIFY exchanges in flight at once, over all subscribers.
    std::size_t max_concurrent_notifies = 128;
    /// NOTIFY exchanges in flight at once for the subscriptions of one host (the IP address
    /// the SUBSCRIBEs came from, like max_subscriptions_per_host), at least 1: a host whose
    /// callbacks accept and never answer (a tarpit) holds at most this many of the
    /// max_concurrent_notifies slots, whatever its number of subscriptions. (Keyed by the
    /// requester, not the CALLBACK host: an attacker naming a victim's address cannot make
    /// the victim's own subscriptions slow down.)
    /// Each time one of its NOTIFYs times out, the host's share halves (down to 1) and it
    /// backs off (see host_backoff); each success gives back one step.
    std::size_t max_notifies_per_host = 8;
    /// Connections being established at once for the subscriptions of one host, at least 1.
    std::size_t max_connects_per_host = 4;
    /// After a NOTIFY to a host timed out, no new NOTIFY starts to that host for this long,
    /// doubled with every further strike (a timeout, or a subscriber of it dropped) up to
    /// max_host_backoff. The host's strikes outlive its subscriptions (for 10 minutes after
    /// the last one), so a dropped tarpit that resubscribes starts limited.
    std::chrono::milliseconds host_backoff{1'000};
    /// Upper bound of the back-off.
    std::chrono::milliseconds max_host_backoff{60'000};
    /// How often expired subscriptions are removed.
    std::chrono::milliseconds sweep_interval{1'000};
    /// SERVER header of SUBSCRIBE and action answers; empty: default_user_agent().
    std::string server;
    /// Bounds on an action call's SOAP request (body bytes, arguments). A body over max_bytes
    /// is answered 413 without being parsed. 64 KiB holds a SetAVTransportURI with long
    /// DIDL-Lite metadata many times over.
    control::SoapLimits action_limits{64 * 1024, 64};
};

/// One evented state variable of a service and its initial value.
struct UVGENA_API VariableConfig {
    /// A variable `name` with initial `value`, moderated to one event per `min_interval`.
    VariableConfig(std::string name_, std::string value_ = {},
                   std::chrono::milliseconds min_interval_ = std::chrono::milliseconds(0))
        : name(std::move(name_)), value(std::move(value_)), min_interval(min_interval_) {}

    std::string name;   ///< Element name, e.g. "Volume".
    std::string value;  ///< Initial value (unescaped).
    /// Moderation: changes of this variable are evented at most once per interval,
    /// intermediate values coalesced (0: no limit).
    std::chrono::milliseconds min_interval{0};
    /// UDA 1.1 multicast eventing: its changes also go to ServiceConfig::multicast_sink.
    bool multicast = false;
};

/// Receives the property set of each change of the variables marked multicast (e.g.
/// ssdp::MulticastEventSender::sink sends it to 239.255.255.246:7900).
using MulticastSink = std::function<void(std::string property_set)>;

/// A service to publish.
struct UVGENA_API ServiceConfig {
    /// Path of the eventSubURL, e.g. "/RenderingControl/event" (query ignored when matching).
    std::string event_path;
    /// Evented state variables in the order of the initial event.
    std::vector<VariableConfig> variables;
    /// Non-empty: the service events a LastChange variable kept by a LastChangeState in this
    /// namespace (added to `variables` if absent); see Service::set_last_change.
    std::string last_change_namespace;
    /// Moderation of the whole service: at most one event per interval (0: no limit).
    std::chrono::milliseconds min_interval{0};
    /// Where the changes of variables marked multicast go (besides the GENA subscribers);
    /// empty: nowhere.
    MulticastSink multicast_sink{};
    /// Path of the controlURL, e.g. "/RenderingControl/control": action calls POSTed there
    /// go to the handlers set by Service::on_action. Empty: the service takes no actions.
    std::string control_path;
    /// The service type, e.g. "urn:schemas-upnp-org:service:RenderingControl:1". Non-empty:
    /// a call whose SOAPACTION names another type is refused (401), but for a lower version
    /// of the same type, which UDA lets control points use. Empty: any type is answered.
    std::string service_type;
    /// The service description (SCPD XML). Non-empty: parsed by add_service (which throws
    /// uvgena::Error(invalid_argument) if it is not one), served at scpd_path, and, with
    /// check_actions, the contract of every call.
    std::string scpd;
    /// Path of the SCPDURL, e.g. "/RenderingControl/scpd.xml", answered with `scpd` for GET
    /// and HEAD. Empty: not served.
    std::string scpd_path;
    /// With an scpd: every call is checked against it before its handler runs (an action it
    /// lacks: 401; unknown, missing, duplicated or out arguments: 402; a value not of its
    /// type or not allowed: 600; out of range: 601), handlers get the in arguments in the
    /// SCPD's order, and their out arguments are answered in that order (a handler missing
    /// one or adding another is a bug: 501). False: handlers check what they get themselves.
    bool check_actions = true;
};

/// One action call, as its handler sees it. Valid until the handler returns (or its task
/// ends); copy what must live longer.
struct UVGENA_API ActionCall {
    std::string_view service_type;        ///< From SOAPACTION, e.g. "...:RenderingControl:1".
    std::string_view action;              ///< "SetVolume"
    const control::Arguments& arguments;  ///< The in arguments (in SCPD order when checked).
    const http::Request& request;         ///< The POST itself (headers, body).
    const http::RequestContext& context;  ///< Who called (peer and local address).

    /// The value of the in argument `name` (the first one so named), or nullopt.
    std::optional<std::string_view> argument(std::string_view name) const noexcept;
};

/// An action handler that may suspend: returns the out arguments, or throws. A thrown
/// control::ActionError is answered as a SOAP fault with its errorCode and description; a
/// uvgena::Error (a std::system_error) with the fault control::fault_for maps its code to
/// (a UPnP error code as is: `throw Error(control::upnp_error(714))`); anything else with
/// 501 Action Failed. It runs with a stop token requested when the call's connection is
/// cancelled or the Publisher is stopped or destroyed: uvgena's awaitables then throw
/// cancelled, and a handler awaiting something else must not touch what the Publisher's
/// owner destroyed.
using ActionHandler = std::function<Task<control::Arguments>(const ActionCall&)>;
/// An action handler answering at once; returns and throws as ActionHandler.
using SyncActionHandler = std::function<control::Arguments(const ActionCall&)>;

/// Counters of a Publisher's activity, for monitoring, tests and benchmarks.
struct UVGENA_API PublisherStats {
    std::uint64_t subscribes = 0;             ///< Subscriptions created.
    std::uint64_t renewals = 0;               ///< Renewals granted.
    std::uint64_t unsubscribes = 0;           ///< Subscriptions cancelled by UNSUBSCRIBE.
    std::uint64_t expired = 0;                ///< Subscriptions removed by the sweep.
    std::uint64_t rejected = 0;               ///< Requests answered 400 / 412 / 405.
    std::uint64_t refused_callbacks = 0;      ///< SUBSCRIBEs refused for their CALLBACK hosts.
    std::uint64_t over_limit = 0;             ///< SUBSCRIBEs refused with 503 by a limit.
    std::uint64_t events = 0;                 ///< Change events emitted (once per change).
    std::uint64_t notifies_sent = 0;          ///< NOTIFYs answered 200.
    std::uint64_t notifies_failed = 0;        ///< Events no CALLBACK URL accepted.
    std::uint64_t callback_failures = 0;      ///< Failed attempts on single CALLBACK URLs.
    std::uint64_t events_coalesced = 0;       ///< Queued events merged by QueueOverflow::coalesce.
    std::uint64_t events_dropped = 0;         ///< Queued events dropped by drop_oldest.
    std::uint64_t subscribers_dropped = 0;    ///< Subscribers removed for failing deliveries.
    std::uint64_t unanswered_subscribes = 0;  ///< Subscriptions removed because their
                                              ///< SUBSCRIBE response could not be written.
    std::uint64_t evicted = 0;        ///< Subscriptions evicted by a full service for a new host.
    std::uint64_t actions = 0;        ///< Action calls answered with success.
    std::uint64_t action_faults = 0;  ///< Action calls answered with a SOAP fault (500).
};

/// A snapshot of one subscription.
struct UVGENA_API SubscriberInfo {
    std::string sid;                                  ///< "uuid:..."
    std::string event_path;                           ///< The service's event path.
    std::vector<std::string> callbacks;               ///< Delivery URLs, in order of preference.
    SocketAddress requester;                          ///< Who subscribed.
    std::chrono::seconds timeout{0};                  ///< Last granted duration.
    std::chrono::steady_clock::time_point expires{};  ///< When it lapses without renewal.
    std::uint32_t next_seq = 0;                       ///< SEQ of the next NOTIFY.
    std::size_t queued = 0;             ///< Events waiting (not counting one in flight).
    bool active = false;                ///< The SUBSCRIBE response was written.
    std::uint64_t delivered = 0;        ///< NOTIFYs answered 200.
    std::uint64_t failed = 0;           ///< Events no CALLBACK URL accepted.
    unsigned consecutive_failures = 0;  ///< Failures since the last success.
    std::uint64_t coalesced = 0;        ///< Events merged by a full queue.
    std::uint64_t dropped = 0;          ///< Events dropped by a full queue.
};

class Publisher;

namespace detail {
struct Subscriber;
struct PublisherTestAccess;
}  // namespace detail

/// One published service: its evented variables and their subscribers. Owned by its
/// Publisher and valid as long as it.
class UVGENA_API Service {
  public:
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;
    ~Service();

    /// The event path this service answers on.
    const std::string& event_path() const noexcept;

    /// Sets one evented variable and events the change (now, or when moderation allows).
    /// Throws uvgena::Error(invalid_argument) for a variable the service does not event.
    void set(std::string_view name, std::string value);
    /// Sets several variables as one event.
    void set_many(std::span<const NameValue> variables);
    /// Same, from a braced list: set_many({{"Volume", "12"}, {"Mute", "1"}}).
    void set_many(std::initializer_list<NameValue> variables);

    /// Changes a variable inside LastChange (service made with last_change_namespace) and
    /// events the LastChange document of the changes. Throws uvgena::Error(invalid_argument)
    /// if the service has no LastChange or a name is invalid.
    void set_last_change(std::string_view instance, std::string_view name, std::string_view value,
                         std::initializer_list<NameValue> attributes = {});
    /// Several LastChange changes as one event: call the LastChangeState's set() for each
    /// inside `edit`.
    void update_last_change(const std::function<void(LastChangeState&)>& edit);
    /// The LastChange state, or nullptr when the service has none.
    const LastChangeState* last_change() const noexcept;

    /// The current value of a variable (LastChange: its full document), if evented.
    std::optional<std::string> value(std::string_view name) const;
    /// Sends the changes that moderation is holding back, now.
    void flush();
    /// Number of subscriptions to this service.
    std::size_t subscriber_count() const noexcept;

    /// Sets the handler of `action` (replacing any), or removes it when `handler` is empty.
    /// A call to an action without a handler gets 602 Optional Action Not Implemented if the
    /// SCPD lists it, else 401 Invalid Action. Throws uvgena::Error(invalid_argument) when
    /// the service has no control_path, `action` is not an XML name, or the service's SCPD
    /// (when checked) has no such action.
    void on_action(std::string action, ActionHandler handler);
    /// Same with a handler that answers at once.
    void on_action(std::string action, SyncActionHandler handler);
    /// The control path ("" when the service takes no actions).
    const std::string& control_path() const noexcept;
    /// The parsed SCPD, or nullptr when the service was given none.
    const control::Scpd* scpd() const noexcept;

  private:
    struct UVGENA_LOCAL Impl;
    friend class Publisher;
    friend struct detail::Subscriber;
    UVGENA_LOCAL explicit Service(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

/// The device side of GENA for any number of services on one loop. Not copyable or movable.
/// Destroying it cancels every delivery at once; `stop()` ends it gracefully.
class UVGENA_API Publisher {
  public:
    /// A publisher on `loop`; add services, then mount it (handler() / listen()).
    explicit Publisher(uv_loop_t* loop, PublisherOptions options = {});
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;
    ~Publisher();

    /// Adds a service. Throws uvgena::Error(invalid_argument) for an event path that is
    /// empty or does not start with '/', a control or SCPD path that is given and does not,
    /// a path already used (by any service, for any purpose), an invalid variable name, or
    /// an scpd that does not parse.
    Service& add_service(ServiceConfig config);
    /// The service with this event path, or nullptr.
    Service* find_service(std::string_view event_path) noexcept;

    /// True if `target` (a request-target; query ignored) is the event, control or SCPD path
    /// of a service.
    bool handles(std::string_view target) const noexcept;
    /// Answers a SUBSCRIBE / renewal / UNSUBSCRIBE on an event path, an action call on a
    /// control path, a GET of an SCPD path (404 for another path, 405 for another method).
    /// A new subscription's initial event is sent from the response's `on_written` hook:
    /// whoever writes the response must call it (http::Server does). An action handler may
    /// suspend: the task may outlive the Publisher (it holds its state).
    Task<http::Response> handle(const http::Request& request, const http::RequestContext& context);
    /// A handler for an http::Server: event, control and SCPD paths go to this publisher,
    /// everything else to `fallback` (404 without one). It holds only a weak reference to the
    /// publisher: once the publisher is gone, every request goes to `fallback`.
    http::Handler handler(http::Handler fallback = {});

    /// Creates, owns and starts an http::Server with handler(fallback). Throws what
    /// http::Server::listen throws, and uvgena::Error(invalid_argument) if called twice.
    void listen(http::ServerOptions options = {}, http::Handler fallback = {});
    /// The server made by listen(), or nullptr.
    http::Server* server() noexcept;

    /// Graceful end: stops the own server (if any, with `grace`), refuses new requests,
    /// cancels queued and in-flight NOTIFYs and the action handlers still running, and
    /// forgets every subscription. Idempotent: a
    /// call while another is running waits for it. Destroying the Publisher while a stop()
    /// is suspended is safe: that stop() returns soon after.
    Task<void> stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

    /// `co_await publisher.idle()`: resumes once no event is queued or in flight for any
    /// active subscriber (at once if none).
    Task<void> idle();

    /// Counters.
    const PublisherStats& stats() const noexcept;
    /// Number of live subscriptions over all services.
    std::size_t subscriber_count() const noexcept;
    /// A snapshot of every live subscription.
    std::vector<SubscriberInfo> subscribers() const;
    /// A snapshot of one subscription, if it exists.
    std::optional<SubscriberInfo> subscriber(std::string_view sid) const;
    /// The options.
    const PublisherOptions& options() const noexcept;
    /// The loop.
    uv_loop_t* loop() const noexcept;

  private:
    struct UVGENA_LOCAL Impl;
    friend class Service;
    friend struct detail::PublisherTestAccess;  // tests only (src/publisher/test_access.hpp)
    // Shared with handlers and stop() calls in flight, which may outlive the Publisher.
    std::shared_ptr<Impl> impl_;
};

}  // namespace uvgena::gena
