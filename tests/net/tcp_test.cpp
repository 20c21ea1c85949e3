#include "uvgena/net/tcp.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "net/stream_handle.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/async_event.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

// Echoes every byte back until end of stream, then closes.
Task<void> echo_connection(TcpStream stream) {
    std::array<char, 4096> buf;
    for (;;) {
        std::size_t n = co_await stream.read(buf);
        if (n == 0) break;
        co_await stream.write(std::string_view(buf.data(), n));
    }
}

Task<void> echo_server(TcpListener& listener, Scope& connections) {
    for (;;) connections.spawn(echo_connection(co_await listener.accept()));
}

// Writes `message`, half-closes, and reads everything back until end of stream.
Task<std::string> echo_client(uv_loop_t* loop, SocketAddress server, std::string message) {
    TcpStream s = co_await connect(loop, server);
    co_await s.write(std::string_view(message));
    co_await s.shutdown();
    std::string back;
    std::array<char, 1500> buf;
    while (std::size_t n = co_await s.read(buf)) back.append(buf.data(), n);
    co_return back;
}

std::string pattern(std::size_t size, int seed) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        s[i] = static_cast<char>('a' + (i * 7 + static_cast<std::size_t>(seed)) % 26);
    return s;
}

// A port with nothing listening on it: bound, then closed.
std::uint16_t closed_port(uv_loop_t* loop) {
    TcpListener l = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
    std::uint16_t port = l.port();
    l.close();
    uv_run(loop, UV_RUN_NOWAIT);
    return port;
}

// A raw listening socket that never accepts, with a tiny backlog: once its queue is full,
// further SYNs are dropped and connects hang (all on loopback).
struct StuckListener {
    int fd = -1;
    std::vector<int> clients;
    std::uint16_t port = 0;
    StuckListener() {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd, 0) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~StuckListener() {
        for (int c : clients) ::close(c);
        ::close(fd);
    }
};

bool ipv6_loopback_available(uv_loop_t* loop) {
    try {
        TcpListener l = TcpListener::bind(loop, SocketAddress::ipv6_loopback(0));
        return true;
    } catch (const Error&) {
        return false;
    }
}

template <typename F>
std::error_code error_of(uv_loop_t* loop, F make_task) {
    try {
        run(loop, make_task());
    } catch (const Error& e) {
        return e.code();
    }
    return {};
}

// Counts the loop's turns (a prepare handle runs once per turn, before the loop polls): a
// read that completes with the count unchanged did not wait for the loop.
struct TurnCounter {
    struct Node {
        uv_prepare_t handle;
        int turns = 0;
    };
    Node* node = new Node;
    explicit TurnCounter(uv_loop_t* loop) {
        uv_prepare_init(loop, &node->handle);
        node->handle.data = node;
        uv_prepare_start(&node->handle,
                         [](uv_prepare_t* h) { ++static_cast<Node*>(h->data)->turns; });
        uv_unref(reinterpret_cast<uv_handle_t*>(&node->handle));
    }
    ~TurnCounter() {
        uv_close(reinterpret_cast<uv_handle_t*>(&node->handle),
                 [](uv_handle_t* h) { delete static_cast<Node*>(h->data); });
    }
    int turns() const noexcept { return node->turns; }
};

// A blocking client socket connected to 127.0.0.1:`port` (the kernel completes the
// handshake from its backlog, without the loop).
int raw_connect(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

// Lets the kernel finish with what the client just sent (on loopback the send normally
// delivers it before it returns; a loaded machine may leave it to ksoftirqd).
Task<void> settle(uv_loop_t* loop) {
    co_await sleep_for(loop, 20ms);
}

Task<TcpStream> accept_one(TcpListener& listener) {
    co_return co_await listener.accept();
}

void raw_send(int fd, std::string_view bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
}

}  // namespace

TEST_SUITE("co.tcp") {
    TEST_CASE("an echo server serves 200 concurrent connections") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        CHECK(listener.port() != 0);
        SocketAddress server = listener.local_address();
        CHECK(server.to_string() == "127.0.0.1:" + std::to_string(listener.port()));
        Scope connections(loop);
        Scope servers(loop);
        servers.spawn(echo_server(listener, connections));
        Scope clients(loop);
        int ok = 0;
        for (int i = 0; i < 200; ++i) {
            clients.spawn([](uv_loop_t* l, SocketAddress a, int seed, int& n) -> Task<void> {
                std::string msg = pattern(10'000 + static_cast<std::size_t>(seed) * 13, seed);
                std::string back = co_await echo_client(l, a, msg);
                if (back == msg) ++n;
            }(loop, server, i, ok));
        }
        run(loop, [&]() -> Task<void> {
            co_await clients.join();
            co_await connections.join();
        }());
        CHECK(ok == 200);
        servers.request_stop();
        run(loop, [&]() -> Task<void> { co_await servers.join(); }());
    }

    TEST_CASE("large writes arrive whole through partial reads") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        const std::string big = pattern(3 * 1024 * 1024 + 17, 3);
        Scope scope(loop);
        scope.spawn([](TcpListener& l, const std::string& data) -> Task<void> {
            TcpStream s = co_await l.accept();
            co_await s.write(std::string(data));  // owning form
            co_await s.write("tail");             // C string form
            co_await s.shutdown();
            std::array<char, 1> one;
            CHECK(co_await s.read(one) == 0);  // the client closes after reading
        }(listener, big));
        std::string got = run(loop, [&]() -> Task<std::string> {
            TcpStream s = co_await connect(loop, listener.local_address());
            std::string out;
            std::array<char, 1000> small;
            std::size_t reads = 0;
            // Half through copying reads, half through zero-copy views.
            while (out.size() < big.size() / 2) {
                std::size_t n = co_await s.read(small);
                REQUIRE(n > 0);
                CHECK(n <= small.size());
                out.append(small.data(), n);
                ++reads;
            }
            for (;;) {
                std::string_view v = co_await s.read_some();
                if (v.empty()) break;
                CHECK(v.size() <= TcpStream::read_buffer_size);
                out.append(v);
                ++reads;
            }
            CHECK(reads > 10);
            co_return out;
        }());
        CHECK(got.size() == big.size() + 4);
        CHECK(got == big + "tail");
        run(loop, [&]() -> Task<void> { co_await scope.join(); }());
    }

    TEST_CASE("consume keeps the unparsed rest of a view for the next read") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        Scope scope(loop);
        scope.spawn([](TcpListener& l) -> Task<void> {
            TcpStream s = co_await l.accept();
            co_await s.write("first|second|");
        }(listener));
        std::vector<std::string> parts = run(loop, [&]() -> Task<std::vector<std::string>> {
            TcpStream s = co_await connect(loop, listener.local_address());
            std::vector<std::string> out;
            std::string pending;
            while (out.size() < 2) {
                std::string_view v = co_await s.read_some();
                REQUIRE_FALSE(v.empty());
                auto bar = v.find('|');
                if (bar == std::string_view::npos) {
                    pending.append(v);
                    continue;
                }
                out.push_back(pending + std::string(v.substr(0, bar)));
                pending.clear();
                s.consume(bar + 1);  // one message at a time
                CHECK(s.buffered() == v.size() - bar - 1);
            }
            co_return out;
        }());
        CHECK(parts == std::vector<std::string>{"first", "second"});
        run(loop, [&]() -> Task<void> { co_await scope.join(); }());
    }

    TEST_CASE("a reset by the peer is a read error naming the peer") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        std::uint16_t port = listener.port();
        std::error_code code;
        std::string what;
        run(loop, [&]() -> Task<void> {
            int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(port);
            REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
            TcpStream s = co_await listener.accept();
            linger lg{1, 0};  // close with RST
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            ::close(fd);
            std::array<char, 16> buf;
            try {
                while (co_await s.read(buf) > 0) {
                }
            } catch (const Error& e) {
                code = e.code();
                what = e.what();
            }
        }());
        CHECK(code == std::errc::connection_reset);
        CHECK(what.find("read from 127.0.0.1:") != std::string::npos);
        CHECK(what.find("ECONNRESET") != std::string::npos);
    }

    TEST_CASE("a refused connect names the address and the error") {
        uvtest::TestLoop loop;
        std::uint16_t port = closed_port(loop);
        try {
            run(loop, connect(loop, SocketAddress::ipv4_loopback(port)));
            FAIL("connected");
        } catch (const Error& e) {
            CHECK(e.code() == std::errc::connection_refused);
            std::string expected =
                "connect to 127.0.0.1:" + std::to_string(port) + ": ECONNREFUSED";
            CHECK(std::string(e.what()).find(expected) == 0);
        }
    }

    TEST_CASE("connect binds the requested local address first") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_any(0));
        Scope scope(loop);
        SocketAddress seen;
        scope.spawn([](TcpListener& l, SocketAddress& out) -> Task<void> {
            TcpStream s = co_await l.accept();
            out = s.peer_address();
        }(listener, seen));
        SocketAddress local = run(loop, [&]() -> Task<SocketAddress> {
            ConnectOptions opts;
            opts.local_address = SocketAddress::parse("127.0.0.2", 0);
            TcpStream s =
                co_await connect(loop, SocketAddress::ipv4_loopback(listener.port()), opts);
            s.set_nodelay(false);
            s.set_keepalive(30);
            CHECK(s.peer_address().port() == listener.port());
            co_return s.local_address();
        }());
        run(loop, [&]() -> Task<void> { co_await scope.join(); }());
        CHECK(local.ip() == "127.0.0.2");
        CHECK(seen == local);
    }

    TEST_CASE("a connect that hangs is ended by with_timeout") {
        uvtest::TestLoop loop;
        StuckListener stuck;
        SocketAddress target = SocketAddress::ipv4_loopback(stuck.port);
        bool timed_out = false;
        // The first connects fill the backlog; a later one hangs on its dropped SYN.
        std::vector<TcpStream> keep;
        for (int i = 0; i < 16 && !timed_out; ++i) {
            try {
                keep.push_back(run(loop, with_timeout(loop, connect(loop, target), 50ms)));
            } catch (const Error& e) {
                timed_out = e.code() == errc::timed_out;
                CHECK(timed_out);
                break;
            }
        }
        CHECK(timed_out);
    }

    TEST_CASE("a total timeout covers connect and a silent server") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        Scope scope(loop);
        scope.spawn([](TcpListener& l) -> Task<void> {
            TcpStream s = co_await l.accept();
            std::array<char, 64> buf;
            while (co_await s.read(buf) > 0) {
            }
        }(listener));
        auto exchange = [&]() -> Task<std::string> {
            TcpStream s = co_await connect(loop, listener.local_address());
            co_await s.write("hello?");
            std::array<char, 64> buf;
            std::size_t n = co_await s.read(buf);  // the server never answers
            co_return std::string(buf.data(), n);
        };
        std::error_code code = error_of(loop, [&] { return with_timeout(loop, exchange(), 20ms); });
        CHECK(code == errc::timed_out);
        run(loop, [&]() -> Task<void> { co_await scope.join(); }());
    }

    TEST_CASE("every suspended TCP operation is cancelled by the stop token") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        StuckListener stuck;

        auto cancelled_after = [&](auto make_task) {
            std::stop_source source;
            // The stopper holds its own copy of the source: on a slow run (valgrind) it may
            // fire after this lambda has returned.
            spawn(loop, [](uv_loop_t* l, std::stop_source s) -> Task<void> {
                co_await sleep_for(l, 5ms);
                s.request_stop();
            }(loop, source));
            std::error_code code;
            try {
                run(loop, with_stop_token(make_task(), source.get_token()));
            } catch (const Error& e) {
                code = e.code();
            }
            return code;
        };

        SUBCASE("accept") {
            CHECK(cancelled_after([&]() -> Task<void> { (void)co_await listener.accept(); }) ==
                  errc::cancelled);
            // The listener still works afterwards.
            Scope scope(loop);
            scope.spawn([](uv_loop_t* l, SocketAddress a) -> Task<void> {
                (void)co_await connect(l, a);
            }(loop, listener.local_address()));
            run(loop, [&]() -> Task<void> { (void)co_await listener.accept(); }());
            run(loop, [&]() -> Task<void> { co_await scope.join(); }());
        }
        SUBCASE("read, keeping the data that arrives later") {
            Scope scope(loop);
            // The server writes only once the read was cancelled, however slow the run.
            AsyncEvent cancelled(loop);
            scope.spawn([](TcpListener& l, AsyncEvent& go) -> Task<void> {
                TcpStream s = co_await l.accept();
                co_await go.wait();
                co_await s.write("late");
                std::array<char, 1> b;
                (void)co_await s.read(b);
            }(listener, cancelled));
            TcpStream client = run(loop, connect(loop, listener.local_address()));
            CHECK(cancelled_after([&]() -> Task<void> {
                      std::array<char, 16> buf;
                      (void)co_await client.read(buf);
                  }) == errc::cancelled);
            cancelled.set();
            CHECK(client.is_open());
            std::string got = run(loop, [&]() -> Task<std::string> {
                std::array<char, 16> buf;
                std::size_t n = co_await client.read(buf);
                co_return std::string(buf.data(), n);
            }());
            CHECK(got == "late");
            client.close();
            run(loop, [&]() -> Task<void> { co_await scope.join(); }());
        }
        SUBCASE("connect") {
            std::vector<TcpStream> keep;
            std::error_code code;
            for (int i = 0; i < 16; ++i) {
                code = cancelled_after([&]() -> Task<void> {
                    keep.push_back(
                        co_await connect(loop, SocketAddress::ipv4_loopback(stuck.port)));
                });
                if (code) break;
            }
            CHECK(code == errc::cancelled);
        }
        SUBCASE("resolve") {
            std::error_code code = error_of(loop, [&]() -> Task<void> {
                std::stop_source own;
                own.request_stop();
                (void)co_await with_stop_token(resolve(loop, "localhost"), own.get_token());
            });
            CHECK(code == errc::cancelled);
            // Stopped while the lookup is queued or running in the threadpool.
            std::stop_source src;
            Scope scope(loop);
            std::error_code late;
            scope.spawn(with_stop_token(
                [](uv_loop_t* l, std::error_code& out) -> Task<void> {
                    try {
                        (void)co_await resolve(l, "localhost", 80);
                    } catch (const Error& e) {
                        out = e.code();
                    }
                }(loop, late),
                src.get_token()));
            uv_run(loop, UV_RUN_NOWAIT);  // started: the request is with libuv now
            src.request_stop();
            run(loop, [&]() -> Task<void> { co_await scope.join(); }());
            CHECK(late == errc::cancelled);
        }
    }

    TEST_CASE("a write stuck under backpressure is cancelled by closing the stream") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        Scope server(loop);
        server.spawn([](TcpListener& l, uv_loop_t* lp) -> Task<void> {
            TcpStream s = co_await l.accept();  // never reads
            co_await sleep_for(lp, 1h);
        }(listener, loop));
        TcpStream client = run(loop, connect(loop, listener.local_address()));
        std::stop_source source;
        spawn(loop, [](uv_loop_t* l, std::stop_source& s, TcpStream& c) -> Task<void> {
            while (c.write_queue_size() == 0) co_await sleep_for(l, 1ms);
            s.request_stop();
        }(loop, source, client));
        auto writer = [&]() -> Task<void> { co_await client.write(std::string(64 << 20, 'x')); };
        std::error_code code =
            error_of(loop, [&] { return with_stop_token(writer(), source.get_token()); });
        CHECK(code == errc::cancelled);
        CHECK_FALSE(client.is_open());
        server.request_stop();
        run(loop, [&]() -> Task<void> { co_await server.join(); }());
    }

    TEST_CASE("destroying tasks suspended in TCP operations is safe") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        TcpListener idle = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        StuckListener stuck;
        std::vector<TcpStream> accepted;
        {
            Scope scope(loop);
            // A write of 64 MiB from a buffer in the frame, to a peer that never reads.
            scope.spawn([](uv_loop_t* l, SocketAddress a) -> Task<void> {
                TcpStream s = co_await connect(l, a);
                std::string big(64 << 20, 'y');
                co_await s.write(std::string_view(big));
            }(loop, listener.local_address()));
            // A read that never completes.
            scope.spawn([](uv_loop_t* l, SocketAddress a) -> Task<void> {
                TcpStream s = co_await connect(l, a);
                std::array<char, 8> b;
                (void)co_await s.read(b);
            }(loop, listener.local_address()));
            // An accept nobody connects to, and connects that hang.
            scope.spawn([](TcpListener& l) -> Task<void> { (void)co_await l.accept(); }(idle));
            for (int i = 0; i < 4; ++i) {
                scope.spawn([](uv_loop_t* l, std::uint16_t port) -> Task<void> {
                    (void)co_await connect(l, SocketAddress::ipv4_loopback(port));
                    co_await sleep_for(l, 1h);
                }(loop, stuck.port));
            }
            // Accept the two connections and wait until the big write is pending.
            run(loop, [&]() -> Task<void> {
                accepted.push_back(co_await listener.accept());
                accepted.push_back(co_await listener.accept());
                co_await sleep_for(loop, 20ms);
            }());
            CHECK(scope.size() == 7);
        }
        accepted.clear();
        listener.close();
        idle.close();
    }

    TEST_CASE("an IPv6 loopback listener accepts an IPv6 connection") {
        uvtest::TestLoop loop;
        if (!ipv6_loopback_available(loop)) {
            MESSAGE("::1 is unavailable here; IPv6 test skipped");
            return;
        }
        TcpListener listener =
            TcpListener::bind(loop, SocketAddress::ipv6_loopback(0), {.ipv6_only = true});
        CHECK(listener.local_address().is_ipv6());
        Scope connections(loop);
        Scope servers(loop);
        servers.spawn(echo_server(listener, connections));
        std::string back =
            run(loop, echo_client(loop, SocketAddress::parse("::1", listener.port()), "six"));
        CHECK(back == "six");
        servers.request_stop();
        run(loop, [&]() -> Task<void> {
            co_await servers.join();
            co_await connections.join();
        }());
    }

    TEST_CASE("listening on a busy port names the address") {
        uvtest::TestLoop loop;
        TcpListener a = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        try {
            TcpListener b = TcpListener::bind(loop, a.local_address());
            FAIL("bound twice");
        } catch (const Error& e) {
            CHECK(e.code() == std::errc::address_in_use);
            CHECK(std::string(e.what()).find("listen on 127.0.0.1:") == 0);
        }
    }

    TEST_CASE("a closed listener fails its waiting acceptors") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        spawn(loop, [](uv_loop_t* l, TcpListener& li) -> Task<void> {
            co_await sleep_for(l, 1ms);
            li.close();
        }(loop, listener));
        std::error_code code =
            error_of(loop, [&]() -> Task<void> { (void)co_await listener.accept(); });
        CHECK(code == errc::closed);
    }

    TEST_CASE("resolve returns addresses with the port, and errors name the host") {
        uvtest::TestLoop loop;
        auto v4 = run(loop, resolve(loop, "127.0.0.1", 1400, {.numeric_host = true}));
        REQUIRE(v4.size() == 1);
        CHECK(v4[0].to_string() == "127.0.0.1:1400");
        auto local = run(loop, resolve(loop, "localhost", 80, {.family = AF_INET}));
        REQUIRE_FALSE(local.empty());
        CHECK(local[0].is_loopback());
        try {
            run(loop, resolve(loop, "not an address", 1, {.numeric_host = true}));
            FAIL("resolved");
        } catch (const Error& e) {
            CHECK(std::string(e.what()).find("resolve not an address: EAI_NONAME") == 0);
        }
    }

    TEST_CASE("operations on a closed stream fail with closed") {
        uvtest::TestLoop loop;
        TcpStream s;
        CHECK_FALSE(s.is_open());
        CHECK(error_of(loop, [&]() -> Task<void> { co_await s.write("x"); }) == errc::closed);
        CHECK(error_of(loop, [&]() -> Task<void> {
                  std::array<char, 1> b;
                  (void)co_await s.read(b);
              }) == errc::closed);
        CHECK_THROWS_AS(s.peer_address(), Error);
    }

    TEST_CASE("the first read of an accepted connection takes the bytes already there at once") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        TurnCounter counter(loop);
        int fd = raw_connect(listener.port());
        raw_send(fd, "hello");  // in the server socket's queue before the accept (settle)
        std::string first;
        std::string second;
        int turns_in_first_read = -1;
        int turns_in_second_read = -1;
        run(loop, [&]() -> Task<void> {
            co_await settle(loop);
            TcpStream s = co_await listener.accept();
            int before = counter.turns();
            first = std::string(co_await s.read_some());
            turns_in_first_read = counter.turns() - before;
            // The rest comes later: the second read waits for the loop as usual.
            Scope scope(loop);
            scope.spawn([](uv_loop_t* l, int client) -> Task<void> {
                co_await sleep_for(l, 20ms);
                raw_send(client, "world");
            }(loop, fd));
            before = counter.turns();
            second = std::string(co_await s.read_some());
            turns_in_second_read = counter.turns() - before;
            co_await scope.join();
        }());
        ::close(fd);
        CHECK(first == "hello");
        CHECK(turns_in_first_read == 0);
        CHECK(second == "world");
        CHECK(turns_in_second_read > 0);
    }

    TEST_CASE("the first read of a connection with nothing received yet waits for the bytes") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        int fd = raw_connect(listener.port());
        std::string got;
        run(loop, [&]() -> Task<void> {
            TcpStream s = co_await listener.accept();
            Scope scope(loop);
            scope.spawn([](uv_loop_t* l, int client) -> Task<void> {
                co_await sleep_for(l, 20ms);
                raw_send(client, "late");
                ::shutdown(client, SHUT_WR);
            }(loop, fd));
            std::array<char, 16> buf;
            while (std::size_t n = co_await s.read(buf)) got.append(buf.data(), n);
            co_await scope.join();
        }());
        ::close(fd);
        CHECK(got == "late");
    }

    TEST_CASE("a client that connected and closed before the accept reads as end of stream") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        TurnCounter counter(loop);
        int fd = raw_connect(listener.port());
        ::close(fd);
        bool ended = false;
        int turns = -1;
        run(loop, [&]() -> Task<void> {
            co_await settle(loop);
            TcpStream s = co_await listener.accept();
            int before = counter.turns();
            ended = (co_await s.read_some()).empty();
            turns = counter.turns() - before;
        }());
        CHECK(ended);
        CHECK(turns == 0);
    }

    TEST_CASE("a client that reset before the accept is a read error naming the peer") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        int fd = raw_connect(listener.port());
        linger lg{1, 0};  // close with RST
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        ::close(fd);
        std::error_code code;
        std::string what;
        run(loop, [&]() -> Task<void> {
            co_await settle(loop);
            TcpStream s = co_await listener.accept();
            try {
                co_await s.read_some();
            } catch (const Error& e) {
                code = e.code();
                what = e.what();
            }
        }());
        CHECK(code == std::errc::connection_reset);
        CHECK(what.find("ECONNRESET") != std::string::npos);
    }

    TEST_CASE("a deferred accept waits for the client's first bytes, or its close") {
        uvtest::TestLoop loop;
        ListenOptions options;
        options.defer_accept = 5s;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0), options);
        TurnCounter counter(loop);
        int silent = raw_connect(listener.port());
        int sender = raw_connect(listener.port());
        int closer = raw_connect(listener.port());
        std::vector<std::string> got;
        bool accepted_early = false;
        int turns_in_reads = -1;
        run(loop, [&]() -> Task<void> {
            // Connected (the client's side is established) but not handed to accept().
            try {
                TcpStream early = co_await with_timeout(loop, accept_one(listener), 100ms);
                accepted_early = true;
            } catch (const Error& e) {
                CHECK(is_timeout(e.code()));
            }
            raw_send(sender, "part one");
            ::close(closer);
            co_await settle(loop);
            int before = counter.turns();
            for (int i = 0; i < 2; ++i) {
                TcpStream s = co_await listener.accept();
                before = counter.turns();
                got.emplace_back(co_await s.read_some());
                turns_in_reads = counter.turns() - before;
            }
        }());
        CHECK_FALSE(accepted_early);
        std::sort(got.begin(), got.end());
        CHECK(got == std::vector<std::string>{"", "part one"});
        CHECK(turns_in_reads == 0);
        ::close(silent);
        ::close(sender);
    }

    TEST_CASE("a deferred accept hands over a silent client once the defer time is over") {
        uvtest::TestLoop loop;
        ListenOptions options;
        options.defer_accept = 1s;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0), options);
        int fd = raw_connect(listener.port());
        auto start = std::chrono::steady_clock::now();
        std::chrono::steady_clock::duration waited{};
        std::string got = "unset";
        run(loop, [&]() -> Task<void> {
            TcpStream s = co_await with_timeout(loop, accept_one(listener), 10s);
            waited = std::chrono::steady_clock::now() - start;
            raw_send(fd, "now");
            got = std::string(co_await s.read_some());
        }());
        ::close(fd);
        // The kernel repeats its SYN-ACK after 1 s; the client's ACK then gets it accepted.
        CHECK(waited >= 900ms);
        CHECK(waited < 8s);
        CHECK(got == "now");
    }

    TEST_CASE("bytes sent before a close arrive with the end of stream, or with the next write") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        SocketAddress address = listener.local_address();
        std::string first;
        std::string second;
        std::chrono::steady_clock::duration second_took{};
        run(loop, [&]() -> Task<void> {
            // All sent, then end_output: the client reads the bytes and its end of stream.
            TcpStream client = co_await connect(loop, address);
            TcpStream server = co_await listener.accept();
            CHECK(detail::send_before_close(server, "response") == 8);
            detail::end_output(server);
            server.close();
            std::array<char, 64> buf;
            while (std::size_t n = co_await client.read(buf)) first.append(buf.data(), n);
            // Held bytes followed by a normal write: both go out at once, not after a delay.
            TcpStream client2 = co_await connect(loop, address);
            TcpStream server2 = co_await listener.accept();
            auto start = std::chrono::steady_clock::now();
            CHECK(detail::send_before_close(server2, "held ") == 5);
            co_await server2.write("and pushed");
            while (second.size() < 15) {
                std::size_t n = co_await client2.read(buf);
                if (n == 0) break;
                second.append(buf.data(), n);
            }
            second_took = std::chrono::steady_clock::now() - start;
            // Nothing to send on a closed stream.
            server2.close();
            CHECK(detail::send_before_close(server2, "x") == 0);
        }());
        CHECK(first == "response");
        CHECK(second == "held and pushed");
        CHECK(second_took < 150ms);
    }
}
