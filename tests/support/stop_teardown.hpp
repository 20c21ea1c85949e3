// Issue 17, bug 3 and the second-stop() suspicion, as scenarios for every owner of an
// http::Server (the Server itself, Publisher, DemoDevice, the NOTIFY listener): a connection
// holds the server inside a request while stop() calls wait for it, and the owner is
// destroyed under them, or a second stop() must wait for the first. Under ASan a stop() that
// resumes into the freed owner fails the test; otherwise the stop() calls must all return
// and the client must see its connection end.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "http/support.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/net/tcp.hpp"

namespace uvtest {

/// Connects to `server` (owned by `owner`, listening) and sends `request` (cut inside its
/// headers, or a whole request whose handler takes long); starts `stops` stop() calls of
/// the owner; destroys the owner while they wait. Returns "B|A|E": B stop() calls that had
/// returned before the destruction (0 expected), A that returned in the end (`stops`), and E
/// what the client read (the server answers nothing to a request it has not finished).
template <typename Owner>
uvgena::Task<std::string> destroy_while_stopping(uv_loop_t* loop, std::unique_ptr<Owner> owner,
                                                 uvgena::http::Server& server, std::string request,
                                                 int stops = 2) {
    using namespace std::chrono_literals;
    uvgena::TcpStream client = co_await uvgena::connect(loop, server.local_address());
    co_await client.write(std::string_view(request));
    while (server.connection_count() == 0) co_await uvgena::sleep_for(loop, 1ms);
    co_await uvgena::sleep_for(loop, 20ms);  // the server has read the request's bytes
    int returned = 0;
    uvgena::Scope stoppers(loop);
    for (int i = 0; i < stops; ++i) {
        stoppers.spawn([](Owner& o, int& n) -> uvgena::Task<void> {
            co_await o.stop();  // the default grace: longer than the test
            ++n;
        }(*owner, returned));
    }
    co_await uvgena::sleep_for(loop, 20ms);  // every stop() waits for the connection
    int before = returned;
    owner.reset();
    std::string end = co_await httptest::read_to_end(client);
    co_await stoppers.join();
    co_return std::to_string(before) + "|" + std::to_string(returned) + "|" + end;
}

/// Issue 17, suspected: a second stop() returned at once while the first was still waiting,
/// so its caller could destroy the owner under the first. Connects to `server` (owned by
/// `owner`) and sends `request` (cut inside its headers); starts one stop() with a short
/// grace, then awaits a second one. Returns "first done|N": the second returned only after
/// the first, with N connections left (0 expected), or "first running|N".
template <typename Owner>
uvgena::Task<std::string> second_stop_waits(uv_loop_t* loop, Owner& owner,
                                            uvgena::http::Server& server, std::string request) {
    using namespace std::chrono_literals;
    uvgena::TcpStream client = co_await uvgena::connect(loop, server.local_address());
    co_await client.write(std::string_view(request));
    while (server.connection_count() == 0) co_await uvgena::sleep_for(loop, 1ms);
    co_await uvgena::sleep_for(loop, 20ms);  // the server has read the request's bytes
    bool first_done = false;
    uvgena::Scope stopper(loop);
    stopper.spawn([](Owner& o, bool& done) -> uvgena::Task<void> {
        co_await o.stop(50ms);  // ends at the grace: the request never completes
        done = true;
    }(owner, first_done));
    co_await uvgena::sleep_for(loop, 1ms);  // the first stop() waits for the connection
    co_await owner.stop(5s);
    std::string seen = std::string(first_done ? "first done" : "first running") + "|" +
                       std::to_string(server.connection_count());
    co_await stopper.join();
    co_return seen;
}

}  // namespace uvtest
