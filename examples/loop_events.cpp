// The same program as blocking_events, but event-driven: uvgena runs on the application's
// own uv loop (here the default loop, which the application runs itself), and a coroutine
// awaits the events. No extra thread, no locks; the loop may serve the application's other
// handles meanwhile. Compare with blocking_events.cpp.
//
//   loop_events EVENT_URL [seconds=60]
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "uvgena/co/co.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace std::chrono_literals;

namespace {

uvgena::Task<void> watch(uv_loop_t* loop, std::string url, std::chrono::seconds duration) {
    uvgena::SubscribeOptions options;
    options.requested_timeout = 600s;
    options.auto_renew = true;
    // Handlers are set on a named variable, never written inside the co_await (g++ 12
    // breaks closures and aggregates that own memory there; see SubscriptionHandlers).
    uvgena::SubscriptionHandlers handlers;
    handlers.on_renew_failed = [](const uvgena::Error& e) {
        std::fprintf(stderr, "automatic renewal failed: %s\n", e.what());
    };
    uvgena::Subscription sub = co_await uvgena::subscribe(loop, url, options, std::move(handlers));
    std::printf("subscribed: %s\n", sub.sid().c_str());

    // The events until `duration` has passed (with_timeout stops the reading task then).
    auto read_events = [](uvgena::Subscription& s) -> uvgena::Task<void> {
        while (auto event = co_await s.events().next()) {
            std::printf("event seq %u%s\n", event->seq, event->seq_gap() ? " (events missed)" : "");
            for (const auto& variable : event->variables()) {
                std::printf("  %s = %s\n", variable.name.c_str(), variable.value.c_str());
            }
            std::fflush(stdout);
        }
    };
    try {
        co_await uvgena::with_timeout(loop, read_events(sub), duration);
    } catch (const std::system_error& e) {
        if (!uvgena::is_timeout(e.code()))
            std::fprintf(stderr, "subscription ended: %s\n", e.what());
    }
    std::printf("unsubscribing\n");
    co_await sub.unsubscribe(false);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s EVENT_URL [seconds=60]\n", argv[0]);
        return 2;
    }
    uv_loop_t* loop = uv_default_loop();
    // The application's loop: uvgena adds its handles to it and closes them when done.
    uvgena::spawn(loop,
                  watch(loop, argv[1], std::chrono::seconds(argc > 2 ? std::atoi(argv[2]) : 60)));
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
