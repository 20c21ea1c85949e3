// EventListener: the NOTIFY server shared by subscriptions.
//
// One HTTP server receives the NOTIFYs of every subscription that uses it; each subscription
// has its own callback path (`/uvgena/<n>`), so a NOTIFY for a stale SID is told apart from
// garbage. Every accepted NOTIFY is answered 200 before any user code runs (events are handed
// over from the loop's next check phase), unknown paths and SIDs get 412, malformed GENA
// headers 400. The SID and SEQ are judged before the body: an exact retransmission (a SEQ
// already delivered) is answered 200 and counted, and its body is never parsed. A NOTIFY that
// arrives while the SUBSCRIBE answer carrying its SID is still
// in flight is held (bounded) and delivered in SEQ order once the SID is known, or dropped
// with a log line if it never is.
//
// By default `subscribe` uses one listener per loop, started on first use and closed when its
// last subscription is gone. Construct one explicitly to choose addresses, ports and limits.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/gena/event_body.hpp"
#include "uvgena/net/address.hpp"

namespace uvgena::gena {

namespace detail {
class ListenerImpl;
struct SubscriberAccess;
}  // namespace detail

/// Configuration of an EventListener.
struct UVGENA_API ListenerOptions {
    /// IP literal to listen on; empty: every interface, IPv6 and IPv4 (dual stack; IPv4 only
    /// where IPv6 is unavailable).
    std::string listen_host{};
    /// The port to try first (SoCo's default 1400); 0 picks any free port.
    std::uint16_t port = 1400;
    /// If `port` is taken, the next free one up to `port + port_range`.
    std::uint16_t port_range = 100;
    /// Host (IP or name) to put in CALLBACK URLs instead of the address that routes to each
    /// device (Docker, NAT, reverse proxies). IPv6 literals are bracketed by the listener.
    std::string advertise_host{};
    /// Port to put in CALLBACK URLs (0: the listening port).
    std::uint16_t advertise_port = 0;
    /// NOTIFYs held per subscription while its SID is not yet known; beyond, dropped (logged,
    /// counted).
    std::size_t max_held_events = 32;
    /// Largest NOTIFY body accepted (bigger: 413).
    std::size_t max_body_bytes = 1u << 20;
    /// Connections served at once. At the limit a new connection evicts the oldest idle one
    /// (see `evict_idle_connections`), else it is closed at once.
    std::size_t max_connections = 256;
    /// Connections one source address may hold at once; 0: a quarter of max_connections (64
    /// by default). One host's slow or idle connections (a slowloris from one machine, or a
    /// device that leaks connections) then never stop another device's NOTIFYs: a new
    /// connection from a host at its share only replaces one of that host's own idle
    /// connections, else it is refused. A device needs a few connections at most (one per
    /// NOTIFY in flight). See http::ServerOptions::max_connections_per_host.
    std::size_t max_connections_per_host = 0;
    /// Automatic renewals of this listener's subscriptions running at once; more wait in a
    /// queue (in the order they came due). Bounds the connections and the loop's work when
    /// thousands of subscriptions come due together.
    std::size_t max_renewals_in_flight = 32;
    /// At max_connections, close the oldest connection that has not sent a request byte
    /// (then the oldest keep-alive connection between requests, then a slow one of a host
    /// holding more connections than the new one's), preferring the host holding the most,
    /// to serve a new one, so that idle connections from anyone on the LAN cannot lock
    /// devices out until the header timeout. False: refuse new connections while at the
    /// limit.
    bool evict_idle_connections = true;
    /// Time from a connection's start (or a request's first byte) to the end of the request's
    /// headers; a slower client is disconnected without an answer (slowloris).
    std::chrono::milliseconds header_timeout{10'000};
    /// Time to receive a NOTIFY's body once its headers arrived.
    std::chrono::milliseconds body_timeout{30'000};
    /// Time a keep-alive connection may wait for its next NOTIFY.
    std::chrono::milliseconds idle_timeout{60'000};
    /// Time to hand a response to the kernel (a device that does not read is dropped).
    std::chrono::milliseconds write_timeout{30'000};
    /// After answering a NOTIFY on a connection that the listener closes although the device
    /// did not ask to (the listener stopping), wait up to this long for the device to close
    /// first, so that the device, not the listener, keeps the connection's TIME_WAIT state
    /// (see http::ServerOptions::close_grace). A NOTIFY sent with `Connection: close` (what
    /// most devices do) and nothing after it gets the listener's close at once: the
    /// listener then keeps the TIME_WAIT, and saves a read and often a wake-up per
    /// connection. Zero: close at once.
    std::chrono::milliseconds close_grace{5};
    /// Accept a connection only once its NOTIFY's first bytes arrived (Linux's
    /// TCP_DEFER_ACCEPT; see http::ServerOptions::defer_accept): the listener then reads the
    /// NOTIFY straight away and answers and closes the connection without adding it to the
    /// loop's poll set, which saves kernel work on every connection of a device that opens
    /// one per NOTIFY. A connection that sends nothing is held by the kernel for about this
    /// long (1 s: until the first SYN-ACK repetition) before header_timeout starts. Zero:
    /// accept at the handshake.
    std::chrono::seconds defer_accept{1};
    /// Parsing of event bodies.
    ParseOptions parse{};
};

/// Counters of a listener, for monitoring and tests.
struct UVGENA_API ListenerStats {
    std::uint64_t notifications = 0;          ///< NOTIFY requests accepted (200).
    std::uint64_t unknown = 0;                ///< Answered 412 (unknown path or SID, wrong source).
    std::uint64_t bad_requests = 0;           ///< Answered 400 / 405 (malformed GENA headers).
    std::uint64_t parse_errors = 0;           ///< Accepted bodies that did not parse.
    std::uint64_t duplicates_not_parsed = 0;  ///< Exact retransmissions (SID and SEQ already
                                              ///< delivered): answered 200, body not parsed.
    std::uint64_t held = 0;                   ///< NOTIFYs held until their SID became known.
    std::uint64_t held_dropped = 0;  ///< Held NOTIFYs dropped (SID never known, or too many).
    std::uint64_t wrong_source = 0;  ///< Refused by the source address check.
    std::uint64_t connections_evicted = 0;             ///< Idle connections closed to make room.
    std::uint64_t connections_refused = 0;             ///< Closed at once: at the limit, none idle.
    std::uint64_t connections_refused_host_share = 0;  ///< Of those: the host held its share.
};

/// A NOTIFY server on one loop. Not copyable or movable. Destroying it without `stop()` ends
/// its subscriptions locally (their streams close; nothing is sent) and closes the server.
class UVGENA_API EventListener {
  public:
    /// A listener on `loop`; it starts listening on first use (or with `start()`).
    explicit EventListener(uv_loop_t* loop, ListenerOptions options = {});
    EventListener(const EventListener&) = delete;
    EventListener& operator=(const EventListener&) = delete;
    ~EventListener();

    /// Binds and starts accepting (idempotent). Throws uvgena::Error (e.g. http::errc::
    /// no_free_port when no port of the range is free).
    void start();
    /// Unsubscribes every live subscription (lenient: errors logged), stops the server and
    /// closes everything; the loop can then close clean. Idempotent. Must not be awaited from
    /// an event callback or handler of this listener.
    Task<void> stop();

    /// True between start() and stop().
    bool running() const noexcept;
    /// The port listened on (0 before start()).
    std::uint16_t port() const;
    /// The address listened on (unspecified before start()).
    SocketAddress local_address() const;
    /// Number of subscriptions registered (live or being set up).
    std::size_t subscription_count() const noexcept;
    /// Counters.
    const ListenerStats& stats() const noexcept;
    /// The loop.
    uv_loop_t* loop() const noexcept;

  private:
    friend struct detail::SubscriberAccess;
    std::shared_ptr<detail::ListenerImpl> impl_;
};

}  // namespace uvgena::gena
