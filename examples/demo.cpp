// A short tour of the uvgena coroutine runtime on an application-owned libuv loop:
// a TCP echo server with a few clients over loopback, a ticking timer, a channel between a
// producer and a consumer, then a clean shutdown (uv_loop_close returns 0).
#include <uv.h>

#include <array>
#include <cstdio>
#include <iostream>
#include <string>

#include "uvgena/co/co.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

Task<void> echo_session(TcpStream stream) {
    std::string peer = stream.peer_address().to_string();
    std::array<char, 1024> buf;
    std::size_t total = 0;
    while (std::size_t n = co_await stream.read(buf)) {
        total += n;
        co_await stream.write(std::string_view(buf.data(), n));
    }
    std::cout << "[server] " << peer << " done after " << total << " bytes\n";
}

Task<void> echo_server(TcpListener& listener, Scope& sessions) {
    std::cout << "[server] listening on " << listener.local_address() << '\n';
    for (;;) sessions.spawn(echo_session(co_await listener.accept()));
}

Task<void> client(uv_loop_t* loop, SocketAddress server, int id) {
    TcpStream s = co_await connect(loop, server);
    for (int i = 0; i < 3; ++i) {
        std::string line = "client " + std::to_string(id) + " line " + std::to_string(i);
        co_await s.write(std::string(line));
        std::array<char, 256> buf;
        std::string back;
        while (back.size() < line.size()) {
            std::size_t n = co_await s.read(buf);
            if (n == 0) break;
            back.append(buf.data(), n);
        }
        std::cout << "[client " << id << "] echoed: " << back << '\n';
        co_await sleep_for(loop, 100ms);
    }
    co_await s.shutdown();
    std::array<char, 16> rest;
    while (co_await s.read(rest) > 0) {
    }
}

Task<void> ticker(uv_loop_t* loop) {
    auto next = Clock::now();
    for (int tick = 1;; ++tick) {
        next += 250ms;
        co_await sleep_until(loop, next);  // deadlines do not drift
        std::cout << "[ticker] tick " << tick << '\n';
    }
}

Task<void> producer(uv_loop_t* loop, Channel<std::string>& ch) {
    for (int i = 1; i <= 5; ++i) {
        co_await ch.push_wait("event #" + std::to_string(i));
        co_await sleep_for(loop, 80ms);
    }
    ch.close();
}

Task<void> consumer(Channel<std::string>& ch) {
    while (auto item = co_await ch.next()) std::cout << "[consumer] got " << *item << '\n';
    std::cout << "[consumer] channel closed (dropped: " << ch.dropped() << ")\n";
}

Task<void> demo(uv_loop_t* loop) {
    TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
    Scope sessions(loop);
    Scope background(loop);
    background.spawn(echo_server(listener, sessions));
    background.spawn(ticker(loop));

    Channel<std::string> events(loop, 2);  // bounded: the producer waits for room
    Scope pipeline(loop);
    pipeline.spawn(producer(loop, events));
    pipeline.spawn(consumer(events));

    Scope clients(loop);
    for (int id = 1; id <= 3; ++id) clients.spawn(client(loop, listener.local_address(), id));
    co_await clients.join();
    co_await sessions.join();
    co_await pipeline.join();

    // A timeout that fires: the inner sleep is cancelled, then timed_out is thrown.
    try {
        co_await with_timeout(
            loop, [](uv_loop_t* l) -> Task<void> { co_await sleep_for(l, 10s); }(loop), 50ms);
    } catch (const Error& e) {
        std::cout << "[demo] with_timeout: " << e.what() << '\n';
    }

    std::cout << "[demo] stopping the server and the ticker\n";
    background.request_stop();
    co_await background.join();
    listener.close();
}

}  // namespace

int main() {
    uv_loop_t loop;  // owned by the application, not by uvgena
    uv_loop_init(&loop);
    try {
        run(&loop, demo(&loop));
    } catch (const std::exception& e) {
        std::cerr << "demo failed: " << e.what() << '\n';
        return 1;
    }
    // Everything the library opened is closed; one more turn runs the close callbacks.
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    std::cout << "[demo] uv_loop_close returned " << rc << '\n';
    return rc == 0 ? 0 : 1;
}
