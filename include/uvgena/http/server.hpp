// http::Server: an HTTP/1.1 server on the application's loop, for NOTIFY listeners and
// device-side endpoints.
//
// One coroutine per connection reads requests with the incremental parser and awaits the
// handler for each, answering in order (keep-alive and pipelining), each response in a
// single write. Every resource a peer can make the server hold is bounded: header and body
// bytes, the time to send the headers and the body, the idle time between requests, the time
// to read a response, the number of connections, and the share of them one source address
// may hold (so that one host's slow or idle connections never lock the other hosts out). A
// handler that throws gets its client a 500; one slow or hostile peer never stalls the
// others.
//
// As in every libuv program, the application must ignore SIGPIPE (`signal(SIGPIPE,
// SIG_IGN)`): a write to a peer that closed its connection raises it, and the library
// installs no signal handler.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/http/message.hpp"
#include "uvgena/http/parser.hpp"
#include "uvgena/net/address.hpp"

namespace uvgena::http {

/// What a handler knows about the connection a request came on.
struct UVGENA_API RequestContext {
    SocketAddress peer;   ///< The client's address and port.
    SocketAddress local;  ///< The server's address the client connected to.
};

/// Answers one request. Called on the loop thread; may suspend. An exception becomes a 500
/// response (logged); the connection stays usable.
using Handler = std::function<Task<Response>(const Request&, const RequestContext&)>;

/// Answers one request at once, without suspending: no coroutine frame per request, for
/// handlers that never wait (GENA's NOTIFY listener). Otherwise the same rules as Handler.
using ImmediateHandler = std::function<Response(const Request&, const RequestContext&)>;

/// Configuration of a Server; every limit has a safe default.
struct UVGENA_API ServerOptions {
    /// Where to listen; port 0 picks a free port.
    SocketAddress address = SocketAddress::ipv4_any(0);
    /// If the port is taken, try the next ones up to `address.port() + port_range` (e.g.
    /// 100: the requested port or the next free one within 100). 0: the port or an error.
    std::uint16_t port_range = 0;
    /// For an IPv6 address: do not accept IPv4-mapped connections.
    bool ipv6_only = false;
    /// Accept a connection only once its first bytes arrived (Linux's TCP_DEFER_ACCEPT, see
    /// ListenOptions::defer_accept): its request is then read at once, without waiting for
    /// the socket to become readable. A client that connects and sends nothing is held by
    /// the kernel for about this long (rounded up to the SYN-ACK repetitions: 1 s, 3 s,
    /// 7 s, ...) and accepted then; header_timeout starts at the accept, so such a client is
    /// disconnected after both. Held connections do not count against max_connections.
    /// Zero (the default): accept at the handshake.
    std::chrono::seconds defer_accept{0};
    /// Header and body limits; beyond them the client gets 431 / 413 and the connection
    /// closes.
    ParserLimits limits{};
    /// Time from a request's first byte (or from the connection's start) to the end of its
    /// headers; a slower client is disconnected (slowloris).
    std::chrono::milliseconds header_timeout{10'000};
    /// Time to receive a request's body after its headers.
    std::chrono::milliseconds body_timeout{30'000};
    /// Time a keep-alive connection may wait for its next request.
    std::chrono::milliseconds idle_timeout{60'000};
    /// Time to hand a response to the kernel (a client that does not read is dropped).
    std::chrono::milliseconds write_timeout{30'000};
    /// After the last response of a connection that the server closes although its client
    /// did not ask to (a handler's `Connection: close`, a stop), wait up to this long for the
    /// client to close its end first (the response's Content-Length tells it the response is
    /// complete) before closing ours. The side that closes first keeps the connection in
    /// TIME_WAIT for a minute: a server taking many short connections from the same clients
    /// then finds their next connections colliding with those it holds, and each such
    /// connect costs the client more. A client that waits for the server's close instead sees
    /// it this much later. A client that asked to close (`Connection: close`, HTTP/1.0) and
    /// sent nothing after its request gets the close at once, whatever this says (waiting for
    /// its close cost a read and often a wake-up per connection). Zero (the default): close
    /// at once.
    std::chrono::milliseconds close_grace{0};
    /// Connections served at once. When a new connection arrives at the limit, the server
    /// makes room as `evict_idle` says; if it cannot, the new connection is accepted and
    /// closed at once (never left to exhaust memory or descriptors).
    std::size_t max_connections = 512;
    /// Connections one source address (IP, whatever the port) may hold at once, its share of
    /// max_connections; 0 (the default): a quarter of max_connections (at least 1). A new
    /// connection from a host at its share may only take the place of one of that host's
    /// own idle connections (as `evict_idle` says), else it is refused: however many slow
    /// or idle connections one host opens (slowloris from one machine), three quarters of
    /// the slots stay for the others. A quarter leaves a device that opens several
    /// connections at once far below it, and takes four hosts to fill the server. Set it to
    /// max_connections for no per-host limit (e.g. every client behind one NAT address).
    std::size_t max_connections_per_host = 0;
    /// At max_connections, close a connection to serve the new one: first one that never
    /// sent a byte, then a keep-alive connection waiting for its next request, then one
    /// still sending its request's headers or body from another host that, after the swap,
    /// still holds more connections than the new one's host; within each kind the host
    /// holding the most, then the oldest. A connection whose request is being handled or
    /// answered is never closed. Idle or slow connections then cannot lock real clients out
    /// until their timeouts (slot exhaustion). False: refuse the new connection (and the one
    /// beyond its host's share).
    bool evict_idle = true;
};

/// Counters of a Server's activity, for monitoring and tests.
struct UVGENA_API ServerStats {
    std::uint64_t connections_accepted = 0;            ///< Connections served (not refused).
    std::uint64_t connections_refused = 0;             ///< Closed at once: max_connections reached
                                                       ///< and no idle connection to evict.
    std::uint64_t connections_refused_host_share = 0;  ///< Of connections_refused: its host
                                                       ///< held its share, none of it idle.
    std::uint64_t connections_evicted = 0;             ///< Connections closed to make room.
    std::uint64_t requests = 0;                        ///< Requests handed to the handler.
    std::uint64_t bad_requests = 0;                    ///< Requests answered 4xx/5xx by the server
                                                       ///< itself (malformed, too large, ...).
    std::uint64_t handler_errors = 0;                  ///< Handler exceptions answered with 500.
    std::uint64_t timeouts = 0;                        ///< Connections closed by a time limit.
};

/// An HTTP/1.1 server bound to one loop. Not copyable or movable (connections point to it).
/// Destroying it closes every connection at once (in-flight handlers are destroyed, the
/// handler is never called again); use `stop()` for a graceful end. Destroying it while a
/// `stop()` is suspended is safe: that stop() (and any other waiting) returns soon after.
class UVGENA_API Server {
  public:
    /// A server on `loop` calling `handler` for each request; `listen()` starts it.
    Server(uv_loop_t* loop, Handler handler, ServerOptions options = {});
    /// A server on `loop` whose `handler` answers each request without suspending.
    Server(uv_loop_t* loop, ImmediateHandler handler, ServerOptions options = {});
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();

    /// Binds and starts accepting. Throws `uvgena::Error`: the bind error (e.g. EADDRINUSE)
    /// when port_range is 0, `errc::no_free_port` when no port of the range was free.
    void listen();
    /// Graceful stop: stops accepting, closes idle connections, lets requests in flight
    /// finish (their responses say `Connection: close`) until `grace` has passed, then
    /// closes every connection and cancels the handlers still running. Returns when all
    /// connection tasks are gone. Idempotent: a call while another is running waits for it
    /// (then also every connection is gone), a later call returns at once.
    Task<void> stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

    /// True between listen() and stop().
    bool listening() const noexcept;
    /// The bound address (with the real port), from listen() on (also after stop());
    /// unspecified before.
    SocketAddress local_address() const;
    /// The bound port (0 before listen()).
    std::uint16_t port() const;
    /// Number of connections open now.
    std::size_t connection_count() const noexcept;
    /// Activity counters.
    const ServerStats& stats() const noexcept;

  private:
    struct UVGENA_LOCAL Impl;
    // Shared with a stop() in flight, which may outlive the Server.
    std::shared_ptr<Impl> impl_;
};

}  // namespace uvgena::http
