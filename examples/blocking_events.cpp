// A threaded program that prints a UPnP service's events, the way SoCo's threaded
// `soco.events` module is used:
//
//     sub = device.renderingControl.subscribe(auto_renew=True)
//     while True:
//         try: event = sub.events.get(timeout=0.5)
//         except Empty: pass
//
// uvgena runs in a BackgroundLoop (a uv loop in a thread of its own); this thread blocks in
// events().get(500ms) and is free to do other work between events.
//
//   blocking_events EVENT_URL [seconds=60]
//   e.g. blocking_events http://192.168.1.20:1400/MediaRenderer/RenderingControl/Event
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "uvgena/blocking/blocking.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s EVENT_URL [seconds=60]\n", argv[0]);
        return 2;
    }
    std::string url = argv[1];
    auto duration = std::chrono::seconds(argc > 2 ? std::atoi(argv[2]) : 60);

    uvgena::BackgroundLoop bg;
    uvgena::SubscribeOptions options;
    options.requested_timeout = 600s;
    options.auto_renew = true;
    uvgena::SubscriptionHandlers handlers;
    // Runs on the loop thread: keep it short, never block there.
    handlers.on_renew_failed = [](const uvgena::Error& e) {
        std::fprintf(stderr, "automatic renewal failed: %s\n", e.what());
    };

    uvgena::BlockingSubscription sub;
    try {
        sub = bg.subscribe(url, options, std::move(handlers)).wait(10s);
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "subscribe %s: %s\n", url.c_str(), e.what());
        return 1;
    }
    std::printf("subscribed: %s\n", sub.sid().c_str());

    auto deadline = std::chrono::steady_clock::now() + duration;
    int idle_ticks = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        try {
            auto event = sub.events().get(500ms);
            if (!event) {
                if (sub.events().ended()) break;  // unsubscribed, or the loop stopped
                ++idle_ticks;                     // the thread's other work would go here
                continue;
            }
            std::printf("event seq %u%s\n", event->seq, event->seq_gap() ? " (events missed)" : "");
            for (const auto& variable : event->variables()) {
                std::printf("  %s = %s\n", variable.name.c_str(), variable.value.c_str());
            }
            std::fflush(stdout);
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "subscription ended: %s\n", e.what());
            break;
        }
    }
    std::printf("%d idle half-seconds; unsubscribing\n", idle_ticks);
    try {
        sub.unsubscribe().wait(10s);
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "unsubscribe: %s\n", e.what());
    }
    return 0;
}
