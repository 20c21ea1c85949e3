#include "uvgena/http/server.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "co/once.hpp"
#include "http/admission.hpp"
#include "http/close_rule.hpp"
#include "net/stream_handle.hpp"
#include "uvgena/co/async_event.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/net/tcp.hpp"

namespace uvgena::http {
namespace {

using detail::after_response;
using detail::AfterResponse;
using std::chrono::milliseconds;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// What a lingering close reads and discards at most before closing (see linger()).
constexpr std::size_t kLingerBytes = 256 * 1024;
constexpr milliseconds kLingerTime{2'000};
// A first write this short goes to the kernel whole (a socket's send buffer holds 16 KiB or
// more), so Nagle's algorithm cannot hold any of it back (see serve()).
constexpr std::size_t kShortWrite = 2048;
// Source hosts whose entry in the per-host count outlives their last connection.
constexpr std::size_t kHostsKept = 32;
// Parsers and buffers of ended connections kept for new ones (see Impl::take_buffers).
constexpr std::size_t kSpareBuffers = 8;

// Where a connection stands, for the sweeper: each phase but `handling` has a deadline.
enum class Phase { headers, body, handling, writing, idle, lingering };

// A source address, for the per-host share: IPv4 as its IPv4-mapped IPv6 form, so that a
// dual-stack listener counts a host the same whichever form the kernel reports.
struct HostKey {
    std::array<unsigned char, 16> bytes{};
    bool operator==(const HostKey&) const = default;
};

HostKey host_key(const SocketAddress& address) noexcept {
    HostKey key;
    const sockaddr* sa = address.sockaddr_ptr();
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        key.bytes[10] = key.bytes[11] = 0xff;
        std::memcpy(key.bytes.data() + 12, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        std::memcpy(key.bytes.data(), &in6->sin6_addr, 16);
    }
    return key;
}

struct HostKeyHash {
    std::size_t operator()(const HostKey& key) const noexcept {
        std::uint64_t h = 1469598103934665603u;  // FNV-1a
        for (unsigned char b : key.bytes) h = (h ^ b) * 1099511628211u;
        return static_cast<std::size_t>(h);
    }
};

// Connections of one host: `linked` counts its connections from acceptance to the end of
// their task (closing ones too), `starting` those accepted whose task has not started yet
// (Scope::spawn starts it from the loop), `open` is scratch space for make_room().
struct HostCount {
    std::size_t linked = 0;
    std::size_t starting = 0;
    std::size_t open = 0;
};
using HostMap = std::unordered_map<HostKey, HostCount, HostKeyHash>;

// A connection's registration with its server, living in the connection's coroutine frame.
// The server's sweeper walks these to enforce deadlines; stop() walks them to close idle ones.
struct Connection {
    Connection* prev = nullptr;
    Connection* next = nullptr;
    // In the server's close-grace queue (see Impl::enter_grace): links and the grace's end.
    Connection* grace_prev = nullptr;
    Connection* grace_next = nullptr;
    Clock::time_point grace_end{};
    TcpStream* stream = nullptr;
    HostMap::value_type* host = nullptr;  // its entry in Impl::hosts
    Phase phase = Phase::headers;
    bool in_request = false;     // a byte of a request arrived and its response is not written
    bool used = false;           // a request byte ever arrived on this connection
    std::uint64_t deadline = 0;  // in the loop's time (uv_now), ms
};

// The status a server answers a request it could not parse with.
int status_for(std::error_code error) noexcept {
    if (error == errc::header_too_large) return 431;
    if (error == errc::body_too_large) return 413;
    if (error == errc::upgrade_not_supported || error == errc::bad_transfer_encoding) return 501;
    return 400;
}

std::string error_response(int status) {
    Response r;
    r.status = status;
    r.headers.add("Connection", "close");
    return serialize(r);
}

}  // namespace

struct Server::Impl {
    Impl(uv_loop_t* l, Handler h, ImmediateHandler i, ServerOptions o)
        : loop(l),
          handler(std::move(h)),
          immediate(std::move(i)),
          options(std::move(o)),
          drained(l),
          stop_once(l),
          ctx(l),
          scope(std::in_place, l) {
        head.prev = head.next = &head;
        grace_head.grace_prev = grace_head.grace_next = &grace_head;
        grace_timer.owner = this;
        grace_timer.fire = &Impl::on_grace_timer;
        milliseconds shortest = std::min({options.header_timeout, options.body_timeout,
                                          options.idle_timeout, options.write_timeout});
        sweep_interval = std::clamp(shortest / 4, milliseconds(5), milliseconds(1'000));
        per_host = detail::host_share(options.max_connections, options.max_connections_per_host);
    }

    ~Impl() { close_now(); }

    // Ends everything at once (the Server's destructor): no connection, handler or timer of
    // this server runs afterwards. A stop() in flight keeps this Impl alive (see stop()) and
    // finds its work done when it resumes; stop() calls waiting for it are released.
    void close_now() noexcept {
        if (closed) return;
        closed = true;
        stopped = stopping = true;
        listening = false;
        // Closing first makes every suspended read, write and accept fail; destroying the
        // scope then destroys the connection frames (each unlinks itself, which wakes a
        // stop() waiting for the drain).
        listener.close();
        close_all();
        scope.reset();
        ctx->remove_timer(&grace_timer);
        handler = nullptr;  // may hold what the Server's owner is destroying
        stop_once.finish();
        drained.set();  // a connection task destroyed before it started never unlinks
    }

    void link(Connection* c) noexcept {
        c->prev = head.prev;
        c->next = &head;
        head.prev->next = c;
        head.prev = c;
    }

    void unlink(Connection* c) noexcept {
        leave_grace(c);
        c->prev->next = c->next;
        c->next->prev = c->prev;
        c->prev = c->next = nullptr;
        if (c->host != nullptr) {
            --c->host->second.linked;
            forget_host_if_unused(c->host);
        }
        c->host = nullptr;
        --count;
        if (count == 0 && stopping) drained.set();
    }

    // A host with no connection left keeps its entry while the map is small, so that a device
    // opening a connection per request does not allocate and free an entry for each; past
    // kHostsKept entries, unused ones go at once (the map stays bounded by the connections).
    void forget_host_if_unused(HostMap::value_type* host) noexcept {
        if (host->second.linked == 0 && host->second.starting == 0 && hosts.size() > kHostsKept) {
            hosts.erase(host->first);
        }
    }

    void close_all() noexcept {
        for (Connection* c = head.next; c != &head; c = c->next) c->stream->close();
    }

    void close_idle() noexcept {
        for (Connection* c = head.next; c != &head; c = c->next) {
            if (!c->in_request && c->phase != Phase::handling && c->phase != Phase::writing) {
                c->stream->close();
            }
        }
    }

    // True if a new connection from `host` may be served, after closing one open connection
    // if need be: the rule is detail::admit() (src/http/admission.hpp): at most per_host
    // connections per source address, max_connections in all; eviction prefers connections
    // that never sent a byte, then keep-alive ones between requests, from the host holding
    // the most. An evicted connection's task ends (and unlinks it) when the close reaches its
    // read, so `count` may exceed the limit by the closes in progress, never the number of
    // connections served. Below both limits (counting closing ones) no connection is looked
    // at.
    bool make_room(HostMap::value_type& host) {
        if (count < options.max_connections && host.second.linked < per_host) return true;
        for (auto& entry : hosts) entry.second.open = 0;
        for (Connection* c = head.next; c != &head; c = c->next) {
            if (c->stream->is_open()) ++c->host->second.open;
        }
        slots.clear();
        slot_owners.clear();
        for (Connection* c = head.next; c != &head; c = c->next) {
            if (!c->stream->is_open()) continue;
            detail::SlotState state = detail::SlotState::busy;
            if (!c->in_request && c->phase == Phase::headers) {
                state = c->used ? detail::SlotState::idle : detail::SlotState::unused;
            } else if (!c->in_request && c->phase == Phase::idle) {
                state = detail::SlotState::idle;
            } else if (c->in_request && (c->phase == Phase::headers || c->phase == Phase::body)) {
                state = detail::SlotState::slow;
            }
            slots.push_back({c->host->second.open, c->host == &host, state});
            slot_owners.push_back(c);
        }
        // Connections accepted in this loop turn are not linked yet: they count, unevictable.
        detail::Admission verdict =
            detail::admit(slots, {options.max_connections, per_host, options.evict_idle},
                          host.second.starting, starting);
        if (!verdict.admit) {
            if (verdict.host_full) ++stats.connections_refused_host_share;
            return false;
        }
        if (verdict.victim != detail::Admission::none) {
            ++stats.connections_evicted;
            slot_owners[verdict.victim]->stream->close();
        }
        return true;
    }

    void bind() {
        ListenOptions lo;
        lo.ipv6_only = options.ipv6_only;
        lo.defer_accept = options.defer_accept;
        SocketAddress address = options.address;
        std::uint16_t first = address.port();
        unsigned last = first == 0 ? 0u : std::min(65535u, unsigned{first} + options.port_range);
        for (unsigned port = first;; ++port) {
            address.set_port(static_cast<std::uint16_t>(port));
            try {
                listener = TcpListener::bind(loop, address, lo);
                bound = listener.local_address();
                bound_wildcard = bound.ip() == "0.0.0.0" || bound.ip() == "::";
                return;
            } catch (const Error& e) {
                bool in_use = e.code() == uv_error(UV_EADDRINUSE);
                if (!in_use || options.port_range == 0) throw;
                if (port >= last) {
                    throw Error(make_error_code(errc::no_free_port),
                                "listen on " + options.address.to_string() + " or the next " +
                                    std::to_string(options.port_range) + " ports");
                }
            }
        }
    }

    Task<void> accept_loop() {
        for (;;) {
            TcpStream stream;
            bool failed = false;
            try {
                stream = co_await listener.accept();
            } catch (const Error& e) {
                if (e.code() == uvgena::errc::closed || is_cancelled(e.code()) || stopping) {
                    co_return;
                }
                log(LogLevel::warning, "http server: accept failed: ", e.what());
                failed = true;
            }
            if (failed) {
                // Out of descriptors or memory: libuv already dropped the connection; pause
                // so that a persistent failure does not spin the loop.
                co_await sleep_for(loop, milliseconds(10));
                continue;
            }
            if (stopping) {
                ++stats.connections_refused;
                stream.close();
                continue;
            }
            // The peer's address is needed for its host's share before anything is served.
            std::optional<SocketAddress> peer;
            try {
                peer = stream.peer_address();
            } catch (const std::system_error&) {
                // Reset before we got to it: nobody to serve.
                stream.close();
                continue;
            }
            HostMap::value_type* host = nullptr;
            bool room = false;
            try {
                host = &*hosts.try_emplace(host_key(*peer)).first;
                room = make_room(*host);
            } catch (const std::bad_alloc&) {
                room = false;  // out of memory: refuse rather than end the accept loop
            }
            if (!room) {
                ++stats.connections_refused;
                if (host != nullptr) forget_host_if_unused(host);
                stream.close();
                continue;
            }
            ++stats.connections_accepted;
            ++count;
            ++host->second.linked;
            ++host->second.starting;
            ++starting;
            scope->spawn(serve(std::move(stream), *peer, host));
        }
    }

    // The loop's cached time in ms: deadlines need no clock read of their own.
    std::uint64_t now_ms() const noexcept { return uv_now(loop); }
    std::uint64_t after(milliseconds d) const noexcept {
        return uv_now(loop) + static_cast<std::uint64_t>(d.count());
    }

    // Enforces the deadlines of every connection, coarsely (sweep_interval): one timer for
    // the server instead of one per connection and per read.
    Task<void> sweep() {
        try {
            for (;;) {
                co_await sleep_for(loop, sweep_interval);
                std::uint64_t now = now_ms();
                for (Connection* c = head.next; c != &head; c = c->next) {
                    if (c->phase != Phase::handling && now >= c->deadline && c->stream->is_open()) {
                        if (c->phase != Phase::lingering) ++stats.timeouts;
                        c->stream->close();
                    }
                }
            }
        } catch (const Error& e) {
            if (!is_cancelled(e.code())) throw;
        }
    }

    // Reads and drops what the client still sends after we decided to close, for a bounded
    // time and amount, so that closing does not reset the connection before the client read
    // our last response (RFC 9112 9.6).
    Task<void> linger(TcpStream& stream, Connection& conn) {
        conn.phase = Phase::lingering;
        conn.deadline = after(kLingerTime);
        co_await stream.shutdown();
        std::size_t dropped = 0;
        while (dropped < kLingerBytes) {
            std::string_view data = co_await stream.read_some();
            if (data.empty()) break;
            dropped += data.size();
        }
    }

    // The close grace (see ServerOptions::close_grace): a connection that waits for its
    // client to close first is queued here until the client's end of stream (or a byte) ends
    // its read, or the grace is over and the queue's one timer closes it. Every connection
    // gets the same grace, so the queue is in deadline order: one timer for the server, set
    // for the oldest, instead of a timer, a stop source and two coroutine frames per
    // connection (connection-per-NOTIFY ingest, issue 23).
    void enter_grace(Connection& conn) noexcept {
        conn.phase = Phase::lingering;
        conn.deadline = after(options.close_grace);  // the sweeper's coarse copy of the bound
        conn.grace_end = Clock::now() + options.close_grace;
        conn.grace_prev = grace_head.grace_prev;
        conn.grace_next = &grace_head;
        grace_head.grace_prev->grace_next = &conn;
        grace_head.grace_prev = &conn;
        arm_grace_timer();
    }

    void leave_grace(Connection* c) noexcept {
        if (c->grace_next == nullptr) return;
        c->grace_prev->grace_next = c->grace_next;
        c->grace_next->grace_prev = c->grace_prev;
        c->grace_prev = c->grace_next = nullptr;
        // The timer stays set for the deadline of the connection that left, if it was the
        // oldest: it then finds nothing due and is set again for the next.
    }

    void arm_grace_timer() noexcept {
        if (grace_timer.armed() || grace_head.grace_next == &grace_head || closed) return;
        grace_timer.deadline = grace_head.grace_next->grace_end;
        try {
            ctx->add_timer(&grace_timer);
        } catch (const std::bad_alloc&) {
            // No room in the loop's timer heap: the sweeper closes them (coarsely) instead.
        }
    }

    static void on_grace_timer(uvgena::detail::TimerNode* node) noexcept {
        auto* self = static_cast<Impl*>(node->owner);
        Clock::time_point now = Clock::now();
        Connection* c = self->grace_head.grace_next;
        while (c != &self->grace_head && c->grace_end <= now) {
            Connection* next = c->grace_next;
            self->leave_grace(c);
            // Its read ends (closed), and the connection's task ends.
            c->stream->close();
            c = next;
        }
        self->arm_grace_timer();
    }

    // Serves one connection: requests in order, each answered before the next is read. This
    // is the NOTIFY hot path: the request's storage (header vector, body) and the response
    // buffer are reused from one request to the next, and each response is one write.
    Task<void> serve(TcpStream stream, SocketAddress peer, HostMap::value_type* host) {
        Connection conn;
        conn.stream = &stream;
        conn.host = host;
        conn.deadline = after(options.header_timeout);
        --host->second.starting;
        --starting;
        link(&conn);
        struct Unlink {
            Impl* impl;
            Connection* conn;
            ~Unlink() { impl->unlink(conn); }
        } unlink_guard{this, &conn};

        std::unique_ptr<ConnectionBuffers> buffers = take_buffers();
        RequestParser& parser = buffers->parser;
        Request& request = buffers->request;
        std::string& out = buffers->out;
        std::string_view input;
        try {
            // A listener bound to one address needs no getsockname per connection.
            RequestContext context{peer, bound_wildcard ? stream.local_address() : bound};
            // TCP_NODELAY only from the connection's second write on (or for a first write
            // that may not fit the socket's send buffer at once): Nagle's algorithm holds a
            // small segment back only while a small one sent earlier is unacknowledged, so it
            // cannot delay a short first write, and a connection per request (most devices'
            // NOTIFYs) costs one system call less.
            bool nodelay = false;
            bool written = false;
            auto before_write = [&stream, &nodelay, &written](std::size_t bytes) {
                if ((written || bytes > kShortWrite) && !nodelay) {
                    stream.set_nodelay(true);
                    nodelay = true;
                }
                written = true;
            };
            bool close_after = false;
            while (!close_after) {
                if (input.empty()) {
                    input = co_await stream.read_some();
                    // End of stream: between requests a normal close; inside one, the client
                    // gave up and there is nobody to answer.
                    if (input.empty()) break;
                }
                bool was_in_message = parser.in_message();
                FeedResult r = parser.feed(input);
                input.remove_prefix(r.consumed);
                if (!was_in_message && parser.in_message()) {
                    conn.in_request = true;
                    conn.used = true;
                    if (conn.phase == Phase::idle) {
                        conn.phase = Phase::headers;
                        conn.deadline = after(options.header_timeout);
                    }
                }
                switch (r.event) {
                    case ParseEvent::need_more:
                        if (conn.phase == Phase::headers && parser.headers_complete()) {
                            conn.phase = Phase::body;
                            conn.deadline = after(options.body_timeout);
                        }
                        break;
                    case ParseEvent::expect_continue:
                        conn.phase = Phase::writing;
                        conn.deadline = after(options.write_timeout);
                        before_write(kContinue.size());
                        co_await stream.write(kContinue);
                        conn.phase = Phase::body;
                        conn.deadline = after(options.body_timeout);
                        break;
                    case ParseEvent::error: {
                        ++stats.bad_requests;
                        out = error_response(status_for(parser.error()));
                        conn.phase = Phase::writing;
                        conn.deadline = after(options.write_timeout);
                        before_write(out.size());
                        co_await stream.write(std::string_view(out));
                        co_await linger(stream, conn);
                        close_after = true;
                        break;
                    }
                    case ParseEvent::message: {
                        parser.take_into(request);
                        conn.phase = Phase::handling;
                        ++stats.requests;
                        Response response;
                        if (auto expect = request.headers.get("expect");
                            expect && !iequals(*expect, "100-continue")) {
                            ++stats.bad_requests;
                            response.status = 417;
                        } else {
                            bool failed = false;
                            try {
                                if (immediate) {
                                    response = immediate(request, context);
                                } else {
                                    response = co_await handler(request, context);
                                }
                            } catch (const Error& e) {
                                // Cancelled by a forced stop: nobody is left to answer.
                                if (is_cancelled(e.code()) && stopping) throw;
                                failed = handler_failed(request, e);
                            } catch (const std::exception& e) {
                                failed = handler_failed(request, e);
                            }
                            if (failed) {
                                response = Response{};
                                response.status = 500;
                            }
                        }
                        bool keep = prepare(request, response);
                        bool client_closes = !request.keep_alive();
                        out.clear();
                        try {
                            serialize_into(out, response, request.method != "HEAD");
                        } catch (const Error& e) {
                            ++stats.handler_errors;
                            log(LogLevel::error, "http server: response to ", request.method, " ",
                                request.target, " not serialisable: ", e.what());
                            out = error_response(500);
                            keep = false;
                            if (response.on_written) {
                                std::exchange(response.on_written, {})(e.code());
                            }
                        }
                        conn.phase = Phase::writing;
                        conn.deadline = after(options.write_timeout);
                        // Closed right after the write (nothing can arrive in between unless
                        // the write has to wait): the FIN goes out with the response.
                        bool closes_at_once =
                            after_response(keep, client_closes,
                                           !keep && (!input.empty() || stream.buffered() > 0),
                                           options.close_grace.count() > 0) ==
                            AfterResponse::close_now;
                        try {
                            before_write(out.size());
                            std::size_t sent =
                                closes_at_once ? uvgena::detail::send_before_close(stream, out) : 0;
                            if (sent < out.size()) {
                                co_await stream.write(std::string_view(out).substr(sent));
                            } else {
                                uvgena::detail::end_output(stream);
                            }
                        } catch (const std::system_error& e) {
                            if (response.on_written) response.on_written(e.code());
                            throw;
                        }
                        if (response.on_written) response.on_written({});
                        // Keep the buffers for the next request unless a large one inflated them.
                        if (out.capacity() > 64 * 1024) std::string().swap(out);
                        if (request.body.capacity() > 64 * 1024) request = Request{};
                        conn.in_request = false;
                        close_after = !keep;
                        bool unread_input = !keep && (!input.empty() || stream.buffered() > 0);
                        switch (after_response(keep, client_closes, unread_input,
                                               options.close_grace.count() > 0)) {
                            case AfterResponse::next_request:
                                break;
                            case AfterResponse::close_now:
                                // Nothing was received after the request: the close below
                                // sends a FIN behind the response, not a reset.
                                break;
                            case AfterResponse::linger:
                                co_await linger(stream, conn);
                                break;
                            case AfterResponse::close_grace:
                                // Returns at the client's end of stream, at the first byte it
                                // still sends, when it resets, or when the grace is over (the
                                // grace timer closed the stream); then the stream is closed.
                                enter_grace(conn);
                                co_await uvgena::detail::wait_readable(stream);
                                leave_grace(&conn);
                                break;
                        }
                        conn.phase = Phase::idle;
                        conn.deadline = after(options.idle_timeout);
                        break;
                    }
                }
            }
        } catch (const std::system_error& e) {
            // Resets, timeouts (the sweeper closed the stream) and stop all end up here; none
            // concerns anyone but this connection.
            if (log_enabled(LogLevel::debug)) {
                log(LogLevel::debug, "http server: connection ended: ", e.what());
            }
        }
        stream.close();
        give_back(std::move(buffers));
    }

    // The parser and buffers of a connection, kept for the next one when it ends: a client
    // that opens a connection per request (most devices' NOTIFYs) then reuses them, as the
    // requests of one keep-alive connection do.
    struct ConnectionBuffers {
        explicit ConnectionBuffers(const ParserLimits& limits) : parser(limits) {}
        RequestParser parser;
        Request request;
        std::string out;
    };

    std::unique_ptr<ConnectionBuffers> take_buffers() {
        if (spare_buffers.empty()) return std::make_unique<ConnectionBuffers>(options.limits);
        std::unique_ptr<ConnectionBuffers> buffers = std::move(spare_buffers.back());
        spare_buffers.pop_back();
        return buffers;
    }

    void give_back(std::unique_ptr<ConnectionBuffers> buffers) noexcept {
        if (closed || spare_buffers.size() >= kSpareBuffers) return;
        if (out_of_bounds(buffers->out) || out_of_bounds(buffers->request.body)) return;
        buffers->parser.reset();  // frees a large body of its own
        try {
            spare_buffers.push_back(std::move(buffers));
        } catch (const std::bad_alloc&) {
            // Not kept: freed here.
        }
    }

    static bool out_of_bounds(const std::string& s) noexcept { return s.capacity() > 64 * 1024; }

    bool handler_failed(const Request& request, const std::exception& e) {
        ++stats.handler_errors;
        log(LogLevel::error, "http server: handler of ", request.method, " ", request.target,
            " failed: ", e.what());
        return true;
    }

    // Sets the Connection field of `response`; true if the connection stays open.
    bool prepare(const Request& request, Response& response) const {
        bool keep =
            !stopping && response.status != 417 && request.keep_alive() && response.keep_alive();
        if (!keep) {
            response.headers.set("Connection", "close");
        } else if (request.version_major == 1 && request.version_minor == 0) {
            response.headers.set("Connection", "keep-alive");
        }
        return keep;
    }

    // The graceful stop. A coroutine of its own holding the Impl: the Server may be destroyed
    // while it is suspended (issue 17, bug 3), and it must not resume into freed memory. A
    // second call waits until the first one has finished (see co/once.hpp).
    static Task<void> stop(std::shared_ptr<Impl> self, milliseconds grace) {
        Impl& impl = *self;
        co_await impl.stop_once.run([&impl, grace] { return impl.drain(grace); });
    }

    Task<void> drain(milliseconds grace) {
        stopped = true;
        stopping = true;
        listening = false;
        listener.close();
        close_idle();
        if (count > 0) {
            try {
                co_await with_timeout(loop, wait_drained(), grace);
            } catch (const Error& e) {
                if (!is_timeout(e.code())) throw;
                // Grace is over: close every connection and cancel the handlers still running.
                if (!closed) {
                    close_all();
                    scope->request_stop();
                }
            }
        }
        // The Server was destroyed meanwhile: close_now() ended everything.
        if (closed) co_return;
        sweeper_stop.request_stop();
        co_await scope->join();
    }

    Task<void> wait_drained() {
        if (count > 0 && !closed) co_await drained.wait();
    }

    uv_loop_t* loop;
    Handler handler;
    ImmediateHandler immediate;  // set instead of handler by the other constructor
    ServerOptions options;
    ServerStats stats;
    Connection head;
    std::size_t count = 0;
    std::size_t per_host = 1;  // connections one source address may hold
    std::size_t starting = 0;  // accepted, task not started yet (see HostCount)
    HostMap hosts;             // the hosts with connections linked (or being admitted)
    // make_room()'s scratch, kept for its capacity.
    std::vector<detail::Slot> slots;
    std::vector<Connection*> slot_owners;
    std::vector<std::unique_ptr<ConnectionBuffers>> spare_buffers;  // see take_buffers()
    bool listening = false;
    bool stopping = false;
    bool stopped = false;  // stop() was called: listen() is refused
    bool closed = false;   // close_now() ran: the Server is gone
    milliseconds sweep_interval{};
    SocketAddress bound;
    bool bound_wildcard = true;
    AsyncEvent drained;
    uvgena::detail::Once stop_once;  // the graceful stop, run once for every caller
    uvgena::detail::LoopRef ctx;     // for the close-grace timer
    Connection grace_head;           // the close-grace queue (sentinel), oldest first
    uvgena::detail::TimerNode grace_timer;
    std::stop_source sweeper_stop;
    TcpListener listener;
    // Last: destroyed first, while everything its tasks use still exists. Reset by
    // close_now() while a stop() may still hold this Impl.
    std::optional<Scope> scope;
};

Server::Server(uv_loop_t* loop, Handler handler, ServerOptions options)
    : impl_(std::make_shared<Impl>(loop, std::move(handler), ImmediateHandler{},
                                   std::move(options))) {}

Server::Server(uv_loop_t* loop, ImmediateHandler handler, ServerOptions options)
    : impl_(std::make_shared<Impl>(loop, Handler{}, std::move(handler), std::move(options))) {}

// A stop() in flight may hold the Impl a while longer; close_now() ends everything it ran
// now, so nothing the owner destroys next (what the handler refers to) is touched later.
Server::~Server() {
    impl_->close_now();
}

void Server::listen() {
    if (impl_->listening || impl_->stopped) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "http::Server::listen called twice or after stop");
    }
    impl_->bind();
    impl_->listening = true;
    impl_->scope->spawn(impl_->accept_loop());
    impl_->scope->spawn(with_stop_token(impl_->sweep(), impl_->sweeper_stop.get_token()));
}

Task<void> Server::stop(std::chrono::milliseconds grace) {
    impl_->listening = false;
    return Impl::stop(impl_, grace);
}

bool Server::listening() const noexcept {
    return impl_->listening && !impl_->stopping;
}

SocketAddress Server::local_address() const {
    return impl_->bound;
}

std::uint16_t Server::port() const {
    return impl_->bound.port();
}

std::size_t Server::connection_count() const noexcept {
    return impl_->count;
}

const ServerStats& Server::stats() const noexcept {
    return impl_->stats;
}

}  // namespace uvgena::http
