#include "uvgena/http/server.hpp"

#include <algorithm>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "co/once.hpp"
#include "uvgena/co/async_event.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/net/tcp.hpp"

namespace uvgena::http {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// What a lingering close reads and discards at most before closing (see linger()).
constexpr std::size_t kLingerBytes = 256 * 1024;
constexpr milliseconds kLingerTime{2'000};

// Where a connection stands, for the sweeper: each phase but `handling` has a deadline.
enum class Phase { headers, body, handling, writing, idle, lingering };

// A connection's registration with its server, living in the connection's coroutine frame.
// The server's sweeper walks these to enforce deadlines; stop() walks them to close idle ones.
struct Connection {
    Connection* prev = nullptr;
    Connection* next = nullptr;
    TcpStream* stream = nullptr;
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
    Impl(uv_loop_t* l, Handler h, ServerOptions o)
        : loop(l),
          handler(std::move(h)),
          options(std::move(o)),
          drained(l),
          stop_once(l),
          scope(std::in_place, l) {
        head.prev = head.next = &head;
        milliseconds shortest = std::min({options.header_timeout, options.body_timeout,
                                          options.idle_timeout, options.write_timeout});
        sweep_interval = std::clamp(shortest / 4, milliseconds(5), milliseconds(1'000));
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
        c->prev->next = c->next;
        c->next->prev = c->prev;
        c->prev = c->next = nullptr;
        --count;
        if (count == 0 && stopping) drained.set();
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

    // True if a new connection may be served: below max_connections (not counting those
    // closing already), or after evicting an idle one. At the limit, evict_idle closes the
    // oldest connection that never sent a byte, else the oldest keep-alive connection between
    // requests. The evicted connection's task ends (and unlinks it) when the close reaches
    // its read, so `count` may exceed the limit by the closes in progress, never the number
    // of connections served.
    bool make_room() noexcept {
        if (count < options.max_connections) return true;
        std::size_t open = 0;
        Connection* victim = nullptr;
        for (Connection* c = head.next; c != &head; c = c->next) {
            if (!c->stream->is_open()) continue;
            ++open;
            bool waiting =
                !c->in_request && (c->phase == Phase::headers || c->phase == Phase::idle);
            if (!waiting) continue;
            if (victim == nullptr || (victim->used && !c->used)) victim = c;
        }
        if (open < options.max_connections) return true;
        if (!options.evict_idle || victim == nullptr) return false;
        ++stats.connections_evicted;
        victim->stream->close();
        return true;
    }

    void bind() {
        ListenOptions lo;
        lo.ipv6_only = options.ipv6_only;
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
            if (stopping || !make_room()) {
                ++stats.connections_refused;
                stream.close();
                continue;
            }
            ++stats.connections_accepted;
            ++count;
            scope->spawn(serve(std::move(stream)));
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

    static Task<void> read_once(TcpStream& stream) { (void)co_await stream.read_some(); }

    // Gives the client up to close_grace to close first (see ServerOptions::close_grace):
    // returns at its end of stream, at the first byte it still sends, or when time is up.
    Task<void> await_client_close(TcpStream& stream, Connection& conn) {
        conn.phase = Phase::lingering;
        conn.deadline = after(options.close_grace);  // the sweeper's coarse copy of the bound
        try {
            co_await with_timeout(loop, read_once(stream), options.close_grace);
        } catch (const std::system_error&) {
            // Time is up (or the client reset): close now.
        }
    }

    // Serves one connection: requests in order, each answered before the next is read. This
    // is the NOTIFY hot path: the request's storage (header vector, body) and the response
    // buffer are reused from one request to the next, and each response is one write.
    Task<void> serve(TcpStream stream) {
        Connection conn;
        conn.stream = &stream;
        conn.deadline = after(options.header_timeout);
        link(&conn);
        struct Unlink {
            Impl* impl;
            Connection* conn;
            ~Unlink() { impl->unlink(conn); }
        } unlink_guard{this, &conn};

        RequestParser parser(options.limits);
        Request request;
        std::string out;
        std::string_view input;
        try {
            // A listener bound to one address needs no getsockname per connection.
            RequestContext context{stream.peer_address(),
                                   bound_wildcard ? stream.local_address() : bound};
            stream.set_nodelay(true);
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
                        co_await stream.write(kContinue);
                        conn.phase = Phase::body;
                        conn.deadline = after(options.body_timeout);
                        break;
                    case ParseEvent::error: {
                        ++stats.bad_requests;
                        out = error_response(status_for(parser.error()));
                        conn.phase = Phase::writing;
                        conn.deadline = after(options.write_timeout);
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
                                response = co_await handler(request, context);
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
                        try {
                            co_await stream.write(std::string_view(out));
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
                        if (close_after && (!input.empty() || stream.buffered() > 0)) {
                            co_await linger(stream, conn);
                        } else if (close_after && options.close_grace.count() > 0) {
                            co_await await_client_close(stream, conn);
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
    }

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
    ServerOptions options;
    ServerStats stats;
    Connection head;
    std::size_t count = 0;
    bool listening = false;
    bool stopping = false;
    bool stopped = false;  // stop() was called: listen() is refused
    bool closed = false;   // close_now() ran: the Server is gone
    milliseconds sweep_interval{};
    SocketAddress bound;
    bool bound_wildcard = true;
    AsyncEvent drained;
    uvgena::detail::Once stop_once;  // the graceful stop, run once for every caller
    std::stop_source sweeper_stop;
    TcpListener listener;
    // Last: destroyed first, while everything its tasks use still exists. Reset by
    // close_now() while a stop() may still hold this Impl.
    std::optional<Scope> scope;
};

Server::Server(uv_loop_t* loop, Handler handler, ServerOptions options)
    : impl_(std::make_shared<Impl>(loop, std::move(handler), std::move(options))) {}

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
