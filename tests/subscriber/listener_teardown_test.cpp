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
        http::Server& server = *listener->impl()->server();
        std::string partial = "NOTIFY /x HTTP/1.1\r\nHOST: 127.0.0.1\r\n";
        // One stop(): a second one still returns at once (src/subscriber/listener.cpp).
        CHECK(run(loop, uvtest::destroy_while_stopping(loop, std::move(listener), server, partial,
                                                       1)) == "0|1|");
    }
}
