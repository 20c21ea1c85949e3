// Issue 17, bug 3, as one scenario for every owner of an http::Server (the Server itself,
// Publisher, DemoDevice; the NOTIFY listener can use it too): a connection holds the server
// inside a request, stop() calls wait for it, and the owner is destroyed under them. Under
// ASan a stop() that resumes into the freed owner fails the test; otherwise the stop() calls
// must all return and the client must see its connection end.
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
                                                  uvgena::http::Server& server,
                                                  std::string request, int stops = 2) {
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

}  // namespace uvtest
