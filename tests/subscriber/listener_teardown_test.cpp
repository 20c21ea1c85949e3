// Issue 17, bug 3 for the NOTIFY listener: ~EventListener -> close_now() -> server_.reset()
// freed the http::Server under a stop() suspended in its drain. The Server now keeps what a
// stop() in flight needs, and the listener's stop() holds the listener's state.
#include "uvgena/subscriber/listener.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "subscriber/subscription_impl.hpp"
#include "support/stop_teardown.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/net/tcp.hpp"

using namespace uvgena;
using namespace uvgena::gena;

TEST_SUITE("subscriber.listener_teardown") {
    TEST_CASE("destroying a listener while its stop() waits for a NOTIFY's headers is safe") {
        uvtest::TestLoop loop;
        ListenerOptions options;
        options.listen_host = "127.0.0.1";
        options.port = 0;
        auto listener = std::make_unique<EventListener>(loop, options);
        listener->start();
        http::Server& server = *gena::detail::SubscriberAccess::server(*listener);
        std::string partial = "NOTIFY /x HTTP/1.1\r\nHOST: 127.0.0.1\r\n";
        // Two stop() calls: the second waits for the first (issue 17's suspected item).
        CHECK(run(loop, uvtest::destroy_while_stopping(loop, std::move(listener), server, partial,
                                                       2)) == "0|2|");
    }

    TEST_CASE("a second stop() of a listener returns only after the first") {
        uvtest::TestLoop loop;
        ListenerOptions options;
        options.listen_host = "127.0.0.1";
        options.port = 0;
        EventListener listener(loop, options);
        listener.start();
        http::Server& server = *gena::detail::SubscriberAccess::server(listener);
        // A connection held mid-headers keeps the first stop() in the server's drain.
        auto second_stop = [](uv_loop_t* l, EventListener& target,
                              http::Server& srv) -> Task<std::string> {
            using namespace std::chrono_literals;
            TcpStream client = co_await connect(l, srv.local_address());
            co_await client.write(std::string_view("NOTIFY /x HTTP/1.1\r\nHOST: 127.0.0.1\r\n"));
            while (srv.connection_count() == 0) co_await sleep_for(l, 1ms);
            co_await sleep_for(l, 20ms);
            bool first_done = false;
            Scope stopper(l);
            stopper.spawn([](EventListener& o, bool& done) -> Task<void> {
                co_await o.stop();
                done = true;
            }(target, first_done));
            co_await sleep_for(l, 1ms);
            co_await target.stop();
            std::string seen = first_done ? "first done" : "first running";
            co_await stopper.join();
            co_return seen;
        };
        CHECK(run(loop, second_stop(loop, listener, server)) == "first done");
    }
}
