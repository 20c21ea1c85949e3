// Hostile input against the NOTIFY listener over real loopback sockets: what a LAN attacker
// (or a malicious device that knows its own SID) can send. Each case states the expected
// outcome (a status, or a closed connection) and checks that a well-behaved device's events
// keep flowing, in order and without gaps, during or right after the attack.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <csignal>

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "support/gena_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/net/tcp.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;
using gena_test::ScriptedDevice;

namespace {

// The attacker and the listener share this process, and both write to peers that may have
// closed: SIGPIPE must be ignored, as in every libuv program (see SECURITY.md).
[[maybe_unused]] const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

// A request that the server answers and then closes the connection after.
const std::string kGetClose = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

// True if this process may open `needed` descriptors, raising the soft limit toward the hard
// one if it must.
bool ensure_fd_limit(rlim_t needed) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
    if (limit.rlim_cur >= needed) return true;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) return false;
    limit.rlim_cur = needed;
    return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

// Reads until the peer closes (or resets) and returns everything received.
Task<std::string> read_to_end(TcpStream& stream) {
    std::string got;
    std::vector<char> buf(16 * 1024);
    try {
        while (true) {
            std::size_t n = co_await stream.read(std::span<char>(buf));
            if (n == 0) break;
            got.append(buf.data(), n);
        }
    } catch (const Error&) {
        // A reset after the server closed with unread input: the connection is closed.
    }
    co_return got;
}

// Writes `bytes`, ignoring a write failure (the server may close before reading it all).
Task<void> write_lenient(TcpStream& stream, std::string bytes) {
    try {
        co_await stream.write(std::move(bytes));
    } catch (const Error&) {
    }
}

// Sends raw bytes to the listener and returns everything it answered before closing; fails
// (timed_out) if the listener neither answers nor closes within 10 s.
Task<std::string> exchange(uv_loop_t* loop, std::uint16_t port, std::string bytes) {
    auto body = [](uv_loop_t* l, std::uint16_t p, std::string b) -> Task<std::string> {
        TcpStream stream = co_await connect(l, SocketAddress::ipv4_loopback(p));
        co_await write_lenient(stream, std::move(b));
        co_return co_await read_to_end(stream);
    };
    co_return co_await with_timeout(loop, body(loop, port, std::move(bytes)), 10s);
}

// The status of the first response in `answer`, 0 if there is none (closed without answer).
int first_status(const std::string& answer) {
    if (answer.size() < 12 || !answer.starts_with("HTTP/1.1 ")) return 0;
    return std::stoi(answer.substr(9, 3));
}

std::string notify_head(const std::string& path, const std::string& sid, const std::string& seq) {
    std::string h = "NOTIFY " + path +
                    " HTTP/1.1\r\nHOST: 127.0.0.1\r\nNT: upnp:event\r\n"
                    "NTS: upnp:propchange\r\n";
    if (!sid.empty()) h += "SID: " + sid + "\r\n";
    if (!seq.empty()) h += "SEQ: " + seq + "\r\n";
    return h;
}

// A complete NOTIFY with a Content-Length body, ready to write, connection closed after.
std::string raw_notify(const std::string& path, const std::string& sid, const std::string& seq,
                       const std::string& body, const std::string& extra = {}) {
    return notify_head(path, sid, seq) + extra + "Content-Type: text/xml\r\nConnection: close\r\n" +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string propertyset(const std::string& inner) {
    return "<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">" + inner +
           "</e:propertyset>";
}

Task<std::optional<Event>> next_event(uv_loop_t* loop, Subscription& sub) {
    co_return co_await with_timeout(
        loop,
        [](Subscription& s) -> Task<std::optional<Event>> {
            co_return co_await s.events().next();
        }(sub),
        10s);
}

template <typename Pred>
Task<bool> eventually(uv_loop_t* loop, Pred done, std::chrono::milliseconds limit = 10s) {
    auto deadline = Clock::now() + limit;
    while (!done()) {
        if (Clock::now() >= deadline) co_return false;
        co_await sleep_for(loop, 5ms);
    }
    co_return true;
}

// Two devices on one listener: `good` behaves; the attacks target the listener, some of
// them with the SID of `bad`'s subscription (a malicious device knows its own SID).
struct Bed {
    uv_loop_t* loop;
    ScriptedDevice& good;
    EventListener& listener;
    Subscription& good_sub;
    Subscription& bad_sub;
    std::uint32_t good_next = 1;  // the initial events (SEQ 0) were consumed
    std::uint32_t bad_next = 1;

    std::uint16_t port() const { return listener.port(); }
    std::string bad_path() const { return http::Url::parse(bad_sub.callback_url()).target(); }
    std::string good_path() const { return http::Url::parse(good_sub.callback_url()).target(); }
    std::string bad_seq() { return std::to_string(bad_next++); }
};

// `n` events from the well-behaved device each arrive, in order, flagged ok.
Task<void> check_flowing(Bed& bed, int n) {
    for (int i = 0; i < n; ++i) {
        std::string value = std::to_string(100 + bed.good_next);
        std::vector<std::pair<std::string, std::string>> vars{{"Volume", value}};
        co_await bed.good.notify_all(vars);
        std::optional<Event> e = co_await next_event(bed.loop, bed.good_sub);
        REQUIRE(e);
        CHECK(e->seq == bed.good_next);
        CHECK(e->seq_status == gena::SeqStatus::ok);
        CHECK(e->variables().at("Volume") == value);
        ++bed.good_next;
    }
    CHECK(bed.good.notify_statuses.back() == 200);
}

ListenerOptions loopback(std::size_t max_connections = 256,
                         std::chrono::milliseconds header_timeout = 10s,
                         std::chrono::seconds defer_accept = ListenerOptions{}.defer_accept) {
    ListenerOptions o;
    o.header_timeout = header_timeout;
    o.defer_accept = defer_accept;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    o.max_connections = max_connections;
    return o;
}

// Sets up the bed, runs `attack`, checks that events still flow, and tears down cleanly.
void with_bed(const std::function<Task<void>(Bed&)>& attack, std::size_t max_connections = 256,
              std::chrono::milliseconds header_timeout = 10s,
              std::chrono::seconds defer_accept = ListenerOptions{}.defer_accept) {
    uvtest::TestLoop loop;
    run(loop,
        [](uv_loop_t* l, const std::function<Task<void>(Bed&)>& fn, std::size_t max_conn,
           std::chrono::milliseconds header, std::chrono::seconds defer) -> Task<void> {
            ScriptedDevice good(l);
            ScriptedDevice bad(l);
            EventListener listener(l, loopback(max_conn, header, defer));
            Subscription good_sub =
                co_await subscribe(l, good.event_url(), {.listener = &listener});
            Subscription bad_sub = co_await subscribe(l, bad.event_url(), {.listener = &listener});
            REQUIRE((co_await next_event(l, good_sub))->seq == 0);
            REQUIRE((co_await next_event(l, bad_sub))->seq == 0);
            Bed bed{l, good, listener, good_sub, bad_sub};
            co_await fn(bed);
            co_await check_flowing(bed, 2);
            CHECK(good_sub.stats().events_received == bed.good_next);
            co_await good_sub.unsubscribe();
            co_await bad_sub.unsubscribe();
            co_await listener.stop();
            co_await good.stop();
            co_await bad.stop();
        }(loop, attack, max_connections, header_timeout, defer_accept));
}

}  // namespace

TEST_SUITE("hostile.listener") {
    TEST_CASE("an oversized header section is answered 431 and the connection closed") {
        with_bed([](Bed& bed) -> Task<void> {
            std::string req = notify_head(bed.bad_path(), bed.bad_sub.sid(), "1") +
                              "X-Pad: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
            CHECK(first_status(co_await exchange(bed.loop, bed.port(), req)) == 431);
            // Many small fields add up the same way.
            std::string many = notify_head(bed.bad_path(), bed.bad_sub.sid(), "1");
            for (int i = 0; i < 2000; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
            CHECK(first_status(co_await exchange(bed.loop, bed.port(), many + "\r\n")) == 431);
        });
    }

    TEST_CASE("a Content-Length above the body limit is answered 413 before any body byte") {
        with_bed([](Bed& bed) -> Task<void> {
            std::string req = notify_head(bed.bad_path(), bed.bad_sub.sid(), "1") +
                              "Content-Length: 2000000\r\n\r\n";
            CHECK(first_status(co_await exchange(bed.loop, bed.port(), req)) == 413);
            std::string huge = notify_head(bed.bad_path(), bed.bad_sub.sid(), "1") +
                               "Content-Length: 99999999999999999999999\r\n\r\n";
            int status = first_status(co_await exchange(bed.loop, bed.port(), huge));
            CHECK((status == 413 || status == 400));
        });
    }

    TEST_CASE("an endless chunked body is cut at the body limit while other events flow") {
        with_bed([](Bed& bed) -> Task<void> {
            auto attack = [](Bed& b, std::string* answer) -> Task<void> {
                TcpStream s = co_await connect(b.loop, SocketAddress::ipv4_loopback(b.port()));
                co_await write_lenient(s, notify_head(b.bad_path(), b.bad_sub.sid(), "1") +
                                              "Transfer-Encoding: chunked\r\n\r\n");
                std::string chunk = "4000\r\n" + std::string(0x4000, 'x') + "\r\n";
                // 4 MiB offered against a 1 MiB limit; the server stops reading long before.
                for (int i = 0; i < 256 && s.is_open(); ++i) {
                    bool failed = false;
                    try {
                        co_await s.write(std::string_view(chunk));
                    } catch (const Error&) {
                        failed = true;
                    }
                    if (failed) break;
                    if (i % 16 == 0) co_await sleep_for(b.loop, 1ms);
                }
                *answer = co_await with_timeout(b.loop, read_to_end(s), 10s);
            };
            std::string answer = "unset";
            Scope scope(bed.loop);
            scope.spawn(attack(bed, &answer));
            co_await check_flowing(bed, 3);
            co_await scope.join();
            // 413, or a reset that swallowed it: either way the connection is closed.
            int status = first_status(answer);
            CHECK((status == 413 || (status == 0 && answer.empty())));
        });
    }

    TEST_CASE("a slowloris connection does not delay other devices' events") {
        with_bed([](Bed& bed) -> Task<void> {
            TcpStream slow = co_await connect(bed.loop, SocketAddress::ipv4_loopback(bed.port()));
            std::string head = notify_head(bed.bad_path(), bed.bad_sub.sid(), "1");
            for (std::size_t i = 0; i < 40; ++i) {
                co_await slow.write(head.substr(i, 1));
                if (i % 8 == 0) co_await check_flowing(bed, 1);
                co_await sleep_for(bed.loop, 10ms);
            }
            CHECK(slow.is_open());
            slow.close();
        });
    }

    TEST_CASE("a slowloris connection is closed without an answer at the header timeout") {
        // The listener uses http::Server's default header_timeout (10 s); the same server
        // with a short one shows the outcome without a slow test.
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            http::ServerOptions options;
            options.address = SocketAddress::ipv4_loopback(0);
            options.header_timeout = 200ms;
            int handled = 0;
            http::Server server(
                l,
                [&handled](const http::Request&,
                           const http::RequestContext&) -> Task<http::Response> {
                    ++handled;
                    co_return http::Response{};
                },
                options);
            server.listen();
            TcpStream slow = co_await connect(l, SocketAddress::ipv4_loopback(server.port()));
            std::string head = "NOTIFY /x HTTP/1.1\r\nHOST: 127.0.0.1\r\nX-Slow: ";
            bool closed = false;
            for (int i = 0; i < 300 && !closed; ++i) {  // one byte every 20 ms: 6 s at most
                // Built outside the co_await: GCC 12 mishandles a temporary of ?: in it.
                std::string byte = i < static_cast<int>(head.size()) ? head.substr(i, 1) : "a";
                try {
                    co_await slow.write(std::move(byte));
                } catch (const Error&) {
                    closed = true;
                }
                co_await sleep_for(l, 20ms);
            }
            std::string rest = co_await with_timeout(l, read_to_end(slow), 10s);
            CHECK(first_status(rest) == 0);  // no answer: the connection was simply closed
            CHECK(handled == 0);
            co_await server.stop();
        }(loop));
    }

    TEST_CASE(
        "1200 idle connections at max_connections: each new one evicts the oldest idle "
        "one, and a device's NOTIFYs keep being accepted at once") {
        // Every connection costs two descriptors here (both ends live in this process).
        constexpr int kIdle = 1200;
        if (!ensure_fd_limit(2 * kIdle + 256)) {
            MESSAGE("skipped: RLIMIT_NOFILE below ", 2 * kIdle + 256, " and cannot be raised");
            return;
        }
        // A header timeout far beyond the events' 10 s limit: without eviction the device's
        // NOTIFYs would wait for it (the slots held by the idle connections) and time out.
        with_bed(
            [](Bed& bed) -> Task<void> {
                std::vector<std::unique_ptr<TcpStream>> idle;
                for (int i = 0; i < kIdle; ++i) {
                    idle.push_back(std::make_unique<TcpStream>(
                        co_await connect(bed.loop, SocketAddress::ipv4_loopback(bed.port()))));
                    // At the limit all along: the device's events still arrive.
                    if (i % 100 == 99) co_await check_flowing(bed, 1);
                }
                // Each connection beyond the limit took the slot of the oldest idle one.
                const gena::ListenerStats& stats = bed.listener.stats();
                CHECK(stats.connections_refused == 0);
                CHECK(stats.connections_evicted >= kIdle - 64);
                CHECK(bed.listener.local_address().port() == bed.port());
                std::size_t open = 0;
                for (auto& s : idle) open += s->is_open() ? 1 : 0;
                CHECK(open == idle.size());  // the client ends learn of the close on reading
                for (auto& s : idle) s->close();
            },
            // Accepted at the handshake: with the default deferred accept the kernel holds
            // connections that send nothing, so they take no slot at all (see the next test);
            // here they must, to show the eviction.
            64, 60s, 0s);
    }

    TEST_CASE("with deferred accept, idle connections take no slot until the defer time") {
        constexpr int kIdle = 200;
        if (!ensure_fd_limit(2 * kIdle + 256)) {
            MESSAGE("skipped: RLIMIT_NOFILE below ", 2 * kIdle + 256, " and cannot be raised");
            return;
        }
        with_bed(
            [](Bed& bed) -> Task<void> {
                std::vector<std::unique_ptr<TcpStream>> idle;
                for (int i = 0; i < kIdle; ++i) {
                    idle.push_back(std::make_unique<TcpStream>(
                        co_await connect(bed.loop, SocketAddress::ipv4_loopback(bed.port()))));
                }
                co_await check_flowing(bed, 1);
                // Connected on the client's side, held by the kernel: nothing accepted yet,
                // nothing to evict, and the device's NOTIFYs flow.
                const gena::ListenerStats& stats = bed.listener.stats();
                CHECK(stats.connections_evicted == 0);
                CHECK(stats.connections_refused == 0);
                // Their FINs get them all accepted in one burst now, as many new connections
                // at once would be; they end at once. Let the burst pass before the bed's
                // last NOTIFYs (from the same host, whose share the burst fills meanwhile).
                for (auto& s : idle) s->close();
                co_await sleep_for(bed.loop, 300ms);
            },
            64, 60s, 5s);
    }

    TEST_CASE("without eviction, idle connections at max_connections get new ones refused") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            http::ServerOptions options;
            options.address = SocketAddress::ipv4_loopback(0);
            options.max_connections = 8;
            options.max_connections_per_host = 8;  // one client host: 127.0.0.1
            options.evict_idle = false;
            http::Server server(
                l,
                [](const http::Request&, const http::RequestContext&) -> Task<http::Response> {
                    co_return http::Response{};
                },
                options);
            server.listen();
            std::vector<TcpStream> idle;
            for (int i = 0; i < 8; ++i) {
                idle.push_back(co_await connect(l, SocketAddress::ipv4_loopback(server.port())));
            }
            CHECK(co_await eventually(l, [&] { return server.connection_count() == 8; }));
            // The ninth is accepted and closed without an answer.
            CHECK(first_status(co_await exchange(l, server.port(), kGetClose)) == 0);
            CHECK(server.stats().connections_refused >= 1);
            CHECK(server.stats().connections_evicted == 0);
            // With the default policy the same request evicts an idle connection and is served.
            for (auto& s : idle) s.close();
            co_await server.stop();
        }(loop));
    }

    TEST_CASE(
        "eviction spares a connection inside a request and prefers one that never sent "
        "a byte over a keep-alive one") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            http::ServerOptions options;
            options.address = SocketAddress::ipv4_loopback(0);
            options.max_connections = 3;
            options.max_connections_per_host = 3;  // one client host: 127.0.0.1
            http::Server server(
                l,
                [](const http::Request&, const http::RequestContext&) -> Task<http::Response> {
                    co_return http::Response{};
                },
                options);
            server.listen();
            auto at = SocketAddress::ipv4_loopback(server.port());
            // 1: a keep-alive client that was served once and now waits between requests.
            TcpStream kept = co_await connect(l, at);
            co_await kept.write(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            std::string first = co_await with_timeout(
                l,
                [](TcpStream& s) -> Task<std::string> {
                    co_return std::string(co_await s.read_some());
                }(kept),
                10s);
            CHECK(first.starts_with("HTTP/1.1 200"));
            // 2: a client in the middle of its headers.
            TcpStream partial = co_await connect(l, at);
            co_await partial.write(std::string("GET / HTTP/1.1\r\nHo"));
            // 3: a connection that never sent anything.
            TcpStream silent = co_await connect(l, at);
            CHECK(co_await eventually(l, [&] { return server.connection_count() == 3; }));
            // 4th: the silent one goes.
            CHECK(first_status(co_await exchange(l, server.port(), kGetClose)) == 200);
            CHECK(co_await with_timeout(l, read_to_end(silent), 10s) == "");
            // Back at the limit with keep-alive connections only (besides the partial one):
            // the 5th evicts the oldest keep-alive connection.
            CHECK(co_await eventually(l, [&] { return server.connection_count() == 2; }));
            TcpStream kept2 = co_await connect(l, at);
            co_await kept2.write(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            std::string second = co_await with_timeout(
                l,
                [](TcpStream& s) -> Task<std::string> {
                    co_return std::string(co_await s.read_some());
                }(kept2),
                10s);
            CHECK(second.starts_with("HTTP/1.1 200"));
            CHECK(first_status(co_await exchange(l, server.port(), kGetClose)) == 200);
            CHECK(co_await with_timeout(l, read_to_end(kept), 10s) == "");
            kept2.close();
            co_await partial.write(std::string("st: x\r\nConnection: close\r\n\r\n"));
            CHECK(first_status(co_await with_timeout(l, read_to_end(partial), 10s)) == 200);
            CHECK(server.stats().connections_evicted == 2);
            CHECK(server.stats().connections_refused == 0);
            co_await server.stop();
        }(loop));
    }

    TEST_CASE("pipelined garbage after a valid NOTIFY gets 400 and a closed connection") {
        with_bed([](Bed& bed) -> Task<void> {
            std::string body = propertyset("<e:property><Mode>x</Mode></e:property>");
            std::string first = notify_head(bed.bad_path(), bed.bad_sub.sid(), bed.bad_seq()) +
                                "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                                body;
            std::string garbage = "\x01\x02\xff GARBAGE \r\n\r\n\r\nNOTIFY NOTIFY NOTIFY\r\n\r\n";
            std::string answer = co_await exchange(bed.loop, bed.port(), first + garbage);
            CHECK(first_status(answer) == 200);
            auto second = answer.find("HTTP/1.1 ", 9);
            REQUIRE(second != std::string::npos);
            CHECK(first_status(answer.substr(second)) == 400);
            std::optional<Event> e = co_await next_event(bed.loop, bed.bad_sub);
            REQUIRE(e);
            CHECK(e->variables().at("Mode") == "x");
        });
    }

    TEST_CASE("NOTIFY with an unknown, missing or repeated SID is refused") {
        with_bed([](Bed& bed) -> Task<void> {
            std::string body = propertyset("<e:property><Mode>x</Mode></e:property>");
            auto status = [&](std::string req) -> Task<int> {
                co_return first_status(co_await exchange(bed.loop, bed.port(), std::move(req)));
            };
            CHECK(co_await status(raw_notify(bed.bad_path(), "uuid:nobody", "1", body)) == 412);
            CHECK(co_await status(raw_notify(bed.bad_path(), "", "1", body)) == 412);
            // The good subscription's SID on the bad one's path: unknown there.
            CHECK(co_await status(raw_notify(bed.bad_path(), bed.good_sub.sid(), "1", body)) ==
                  412);
            // Repeated: ambiguous, refused whatever the order of the copies.
            CHECK(co_await status(raw_notify(bed.bad_path(), bed.bad_sub.sid(), "1", body,
                                             "SID: uuid:nobody\r\n")) == 400);
            CHECK(co_await status(raw_notify(bed.bad_path(), "uuid:nobody", "1", body,
                                             "SID: " + bed.bad_sub.sid() + "\r\n")) == 400);
            CHECK(co_await status(raw_notify(bed.bad_path(), bed.bad_sub.sid(), "1", body,
                                             "SEQ: 2\r\n")) == 400);
            CHECK(bed.bad_sub.stats().events_received == 1);  // only the initial event
        });
    }

    TEST_CASE("a non-numeric or out-of-range SEQ is answered 400") {
        with_bed([](Bed& bed) -> Task<void> {
            std::string body = propertyset("<e:property><Mode>x</Mode></e:property>");
            for (const char* seq :
                 {"abc", "-1", "4294967296", "99999999999999999999", "1.5", "0x10", " "}) {
                INFO(seq);
                std::string answer = co_await exchange(
                    bed.loop, bed.port(), raw_notify(bed.bad_path(), bed.bad_sub.sid(), seq, body));
                CHECK(first_status(answer) == 400);
            }
            CHECK(bed.bad_sub.stats().events_received == 1);
        });
    }

    TEST_CASE("XML bombs are answered 200 and end as a flagged event, never a crash") {
        with_bed([](Bed& bed) -> Task<void> {
            auto send = [&](std::string body) -> Task<std::optional<Event>> {
                std::string answer = co_await exchange(
                    bed.loop, bed.port(),
                    raw_notify(bed.bad_path(), bed.bad_sub.sid(), bed.bad_seq(), body));
                CHECK(first_status(answer) == 200);
                co_return co_await next_event(bed.loop, bed.bad_sub);
            };
            // Deep nesting: 100 000 levels (700 KB).
            std::string deep;
            for (int i = 0; i < 100000; ++i) deep += "<a>";
            for (int i = 0; i < 100000; ++i) deep += "</a>";
            auto e1 = co_await send(propertyset("<e:property><V>" + deep + "</V></e:property>"));
            REQUIRE(e1);
            CHECK(e1->parse_error == gena::errc::xml_too_deep);
            // Billion laughs: a DTD with nested entities.
            std::string laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">";
            laughs += "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">";
            for (int i = 2; i < 10; ++i) {
                std::string prev = "&lol" + std::to_string(i - 1) + ";";
                std::string ten;
                for (int k = 0; k < 10; ++k) ten += prev;
                laughs += "<!ENTITY lol" + std::to_string(i) + " \"" + ten + "\">";
            }
            laughs += "]>" + propertyset("<e:property><V>&lol9;</V></e:property>");
            auto e2 = co_await send(laughs);
            REQUIRE(e2);
            CHECK(e2->parse_error == gena::errc::xml_doctype_refused);
            CHECK(e2->variables().empty());
            // A huge attribute (900 KB) is just data.
            auto e3 = co_await send(propertyset(
                "<e:property><V a=\"" + std::string(900 * 1024, 'z') + "\">v</V></e:property>"));
            REQUIRE(e3);
            CHECK_FALSE(e3->parse_error);
            CHECK(e3->variables().at("V") == "v");
            // Many properties: 8 000 variables (16 002 elements, under max_xml_elements), all
            // kept in order.
            std::string many;
            for (int i = 0; i < 8000; ++i)
                many += "<e:property><V>" + std::to_string(i) + "</V></e:property>";
            auto e4 = co_await send(propertyset(many));
            REQUIRE(e4);
            CHECK_FALSE(e4->parse_error);
            CHECK(e4->variables().size() == 8000);
            CHECK(e4->variables().at("V") == "7999");
            // 20 000 variables (40 002 elements) are beyond the bound: a flagged event.
            many.clear();
            for (int i = 0; i < 20000; ++i)
                many += "<e:property><V>" + std::to_string(i) + "</V></e:property>";
            auto e5 = co_await send(propertyset(many));
            REQUIRE(e5);
            CHECK(e5->parse_error == gena::errc::xml_too_many_elements);
            CHECK(e5->variables().empty());
            // 90 000 attributes on one element (the 6 s stall of issue 18): a flagged event.
            std::string attrs = "<e:property><V";
            for (int i = 0; i < 90000; ++i) attrs += " a" + std::to_string(i) + "=\"\"";
            auto e6 = co_await send(propertyset(attrs + ">v</V></e:property>"));
            REQUIRE(e6);
            CHECK(e6->parse_error == gena::errc::xml_too_many_attributes);
        });
    }

    TEST_CASE("invalid UTF-8 and NUL bytes: passed through in the body, refused in headers") {
        with_bed([](Bed& bed) -> Task<void> {
            std::string bytes = "\xff\xfe\xc3\x28\xed\xa0\x80";
            std::string answer = co_await exchange(
                bed.loop, bed.port(),
                raw_notify(bed.bad_path(), bed.bad_sub.sid(), bed.bad_seq(),
                           propertyset("<e:property><V>" + bytes + "</V></e:property>")));
            CHECK(first_status(answer) == 200);
            std::optional<Event> e = co_await next_event(bed.loop, bed.bad_sub);
            REQUIRE(e);
            CHECK_FALSE(e->parse_error);
            CHECK(e->variables().at("V") == bytes);
            // Trailing NULs after the document are tolerated (real devices send them).
            std::string with_nuls =
                propertyset("<e:property><V>n</V></e:property>") + std::string(8, '\0');
            answer = co_await exchange(
                bed.loop, bed.port(),
                raw_notify(bed.bad_path(), bed.bad_sub.sid(), bed.bad_seq(), with_nuls));
            CHECK(first_status(answer) == 200);
            e = co_await next_event(bed.loop, bed.bad_sub);
            REQUIRE(e);
            CHECK(e->variables().at("V") == "n");
            // A NUL inside a header is a protocol error: 400, closed.
            std::string nul_header = raw_notify(bed.bad_path(), bed.bad_sub.sid(), "1", "",
                                                std::string("X-Nul: a\0b\r\n", 12));
            CHECK(first_status(co_await exchange(bed.loop, bed.port(), nul_header)) == 400);
        });
    }
}
