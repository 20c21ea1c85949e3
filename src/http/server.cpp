#include "uvgena/http/server.hpp"

#include <algorithm>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "uvgena/co/event.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/tcp.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/error.hpp"

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
    bool in_request = false;  // a byte of a request arrived and its response is not written
    Clock::time_point deadline{};
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
        : loop(l), handler(std::move(h)), options(std::move(o)), drained(l), scope(l) {
        head.prev = head.next = &head;
        milliseconds shortest = std::min({options.header_timeout, options.body_timeout,
                                          options.idle_timeout, options.write_timeout});
        sweep_interval = std::clamp(shortest / 4, milliseconds(5), milliseconds(1'000));
    }

    ~Impl() {
        // Closing first makes every suspended read, write and accept fail; the scope (the
        // last member, so destroyed first) then destroys the connection frames.
        listener.close();
        close_all();
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
            if (count >= options.max_connections || stopping) {
                ++stats.connections_refused;
                stream.close();
                continue;
            }
            ++stats.connections_accepted;
            ++count;
            scope.spawn(serve(std::move(stream)));
        }
    }

    // Enforces the deadlines of every connection, coarsely (sweep_interval): one timer for
    // the server instead of one per connection and per read.
    Task<void> sweep() {
        try {
            for (;;) {
                co_await sleep_for(loop, sweep_interval);
                Clock::time_point now = Clock::now();
                for (Connection* c = head.next; c != &head; c = c->next) {
                    if (c->phase != Phase::handling && now >= c->deadline &&
                        c->stream->is_open()) {
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
    static Task<void> linger(TcpStream& stream, Connection& conn) {
        conn.phase = Phase::lingering;
        conn.deadline = Clock::now() + kLingerTime;
        co_await stream.shutdown();
        std::size_t dropped = 0;
        while (dropped < kLingerBytes) {
            std::string_view data = co_await stream.read_some();
            if (data.empty()) break;
            dropped += data.size();
        }
    }

    // Serves one connection: requests in order, each answered before the next is read.
    Task<void> serve(TcpStream stream) {
        Connection conn;
        conn.stream = &stream;
        conn.deadline = Clock::now() + options.header_timeout;
        link(&conn);
        struct Unlink {
            Impl* impl;
            Connection* conn;
            ~Unlink() { impl->unlink(conn); }
        } unlink_guard{this, &conn};

        RequestParser parser(options.limits);
        std::string out;
        std::string_view input;
        try {
            RequestContext context{stream.peer_address(), stream.local_address()};
            stream.set_nodelay(true);
            bool close_after = false;
            while (!close_after) {
                if (input.empty()) {
                    input = co_await stream.read_some();
                    if (input.empty()) {
                        // End of stream: between requests a normal close; inside one, the
                        // client gave up and there is nobody to answer.
                        break;
                    }
                }
                bool was_in_message = parser.in_message();
                FeedResult r = parser.feed(input);
                input.remove_prefix(r.consumed);
                if (!was_in_message && parser.in_message()) {
                    conn.in_request = true;
                    if (conn.phase == Phase::idle) {
                        conn.phase = Phase::headers;
                        conn.deadline = Clock::now() + options.header_timeout;
                    }
                }
                switch (r.event) {
                    case ParseEvent::need_more:
                        if (conn.phase == Phase::headers && parser.headers_complete()) {
                            conn.phase = Phase::body;
                            conn.deadline = Clock::now() + options.body_timeout;
                        }
                        break;
                    case ParseEvent::expect_continue:
                        conn.phase = Phase::writing;
                        conn.deadline = Clock::now() + options.write_timeout;
                        co_await stream.write(kContinue);
                        conn.phase = Phase::body;
                        conn.deadline = Clock::now() + options.body_timeout;
                        break;
                    case ParseEvent::error: {
                        ++stats.bad_requests;
                        std::string answer = error_response(status_for(parser.error()));
                        conn.phase = Phase::writing;
                        conn.deadline = Clock::now() + options.write_timeout;
                        co_await stream.write(std::string_view(answer));
                        co_await linger(stream, conn);
                        close_after = true;
                        break;
                    }
                    case ParseEvent::message:
                        close_after = !co_await answer(stream, conn, parser.take(), context, out);
                        conn.in_request = false;
                        if (close_after && (!input.empty() || stream.buffered() > 0)) {
                            co_await linger(stream, conn);
                        }
                        conn.phase = Phase::idle;
                        conn.deadline = Clock::now() + options.idle_timeout;
                        break;
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

    // Runs the handler for one request and writes its response; false if the connection
    // must close afterwards.
    Task<bool> answer(TcpStream& stream, Connection& conn, Request request,
                      const RequestContext& context, std::string& out) {
        conn.phase = Phase::handling;
        ++stats.requests;
        Response response;
        auto expect = request.headers.get("expect");
        if (expect && !iequals(*expect, "100-continue")) {
            response.status = 417;
            ++stats.bad_requests;
        } else {
            try {
                response = co_await handler(request, context);
            } catch (const Error& e) {
                // Cancelled by a forced stop: the connection ends, there is nobody to answer.
                if (is_cancelled(e.code()) && stopping) throw;
                ++stats.handler_errors;
                log(LogLevel::error, "http server: handler of ", request.method, " ",
                    request.target, " failed: ", e.what());
                response = Response{};
                response.status = 500;
            } catch (const std::exception& e) {
                ++stats.handler_errors;
                log(LogLevel::error, "http server: handler of ", request.method, " ",
                    request.target, " failed: ", e.what());
                response = Response{};
                response.status = 500;
            }
        }
        bool keep = !stopping && request.keep_alive() && response.keep_alive() &&
                    response.status != 417;
        if (!keep) {
            response.headers.set("Connection", "close");
        } else if (request.version_major == 1 && request.version_minor == 0) {
            response.headers.set("Connection", "keep-alive");
        }
        out.clear();
        try {
            serialize_into(out, response, request.method != "HEAD");
        } catch (const Error& e) {
            ++stats.handler_errors;
            log(LogLevel::error, "http server: response to ", request.method, " ",
                request.target, " not serialisable: ", e.what());
            out = error_response(500);
            keep = false;
            if (response.on_written) std::exchange(response.on_written, {})(e.code());
        }
        conn.phase = Phase::writing;
        conn.deadline = Clock::now() + options.write_timeout;
        try {
            co_await stream.write(std::string_view(out));
        } catch (const std::system_error& e) {
            if (response.on_written) response.on_written(e.code());
            throw;
        }
        if (response.on_written) response.on_written({});
        // Keep the buffer for the next response unless a large body inflated it.
        if (out.capacity() > 64 * 1024) std::string().swap(out);
        co_return keep;
    }

    Task<void> stop(milliseconds grace) {
        if (stopped) co_return;
        stopped = true;
        stopping = true;
        listener.close();
        close_idle();
        if (count > 0) {
            try {
                co_await with_timeout(loop, wait_drained(), grace);
            } catch (const Error& e) {
                if (!is_timeout(e.code())) throw;
                // Grace is over: close every connection and cancel the handlers still running.
                close_all();
                scope.request_stop();
            }
        }
        sweeper_stop.request_stop();
        co_await scope.join();
    }

    Task<void> wait_drained() {
        if (count > 0) co_await drained.wait();
    }

    uv_loop_t* loop;
    Handler handler;
    ServerOptions options;
    ServerStats stats;
    Connection head;
    std::size_t count = 0;
    bool listening = false;
    bool stopping = false;
    bool stopped = false;
    milliseconds sweep_interval{};
    SocketAddress bound;
    AsyncEvent drained;
    std::stop_source sweeper_stop;
    TcpListener listener;
    Scope scope;  // last: destroyed first, while everything its tasks use still exists
};

Server::Server(uv_loop_t* loop, Handler handler, ServerOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(handler), std::move(options))) {}

Server::~Server() = default;

void Server::listen() {
    if (impl_->listening || impl_->stopped) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "http::Server::listen called twice or after stop");
    }
    impl_->bind();
    impl_->listening = true;
    impl_->scope.spawn(impl_->accept_loop());
    impl_->scope.spawn(with_stop_token(impl_->sweep(), impl_->sweeper_stop.get_token()));
}

Task<void> Server::stop(std::chrono::milliseconds grace) {
    impl_->listening = false;
    return impl_->stop(grace);
}

bool Server::listening() const noexcept { return impl_->listening && !impl_->stopping; }

SocketAddress Server::local_address() const { return impl_->bound; }

std::uint16_t Server::port() const { return impl_->bound.port(); }

std::size_t Server::connection_count() const noexcept { return impl_->count; }

const ServerStats& Server::stats() const noexcept { return impl_->stats; }

}  // namespace uvgena::http
