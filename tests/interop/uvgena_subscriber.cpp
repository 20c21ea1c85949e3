// uvgena's subscription client as a small program, for interop scripts: subscribes to one
// event URL, prints "SUBSCRIBED <sid>", then one line per event ("EVENT <seq> Volume=<v>
// TransportState=<s>", the values LastChange or the property set carried), and unsubscribes
// after COUNT events or TIMEOUT seconds.
//
// Usage: uvgena_subscriber EVENT_URL LISTEN_HOST COUNT TIMEOUT_SECONDS
// Exit: 0 when COUNT events arrived with SEQ 0, 1, ... and the unsubscribe succeeded.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "uvgena/co/co.hpp"
#include "uvgena/gena/listener.hpp"
#include "uvgena/gena/subscription.hpp"

using namespace uvgena;

namespace {

Task<int> watch(uv_loop_t* loop, std::string url, std::string host, int count, int seconds) {
    ListenerOptions lo;
    lo.listen_host = std::move(host);
    lo.port = 0;
    EventListener listener(loop, lo);
    int code = 0;
    try {
        SubscribeOptions so;
        so.requested_timeout = std::chrono::seconds(300);
        so.listener = &listener;
        Subscription sub = co_await subscribe(loop, url, so);
        std::cout << "SUBSCRIBED " << sub.sid() << std::endl;
        auto events = [](Subscription& s, int n) -> Task<int> {
            for (int i = 0; i < n; ++i) {
                std::optional<Event> e = co_await s.events().next();
                if (!e) co_return 1;
                std::cout << "EVENT " << e->seq;
                for (const char* name : {"Volume", "TransportState"}) {
                    if (auto v = e->state(name)) std::cout << ' ' << name << '=' << *v;
                }
                std::cout << std::endl;
                if (e->seq != static_cast<std::uint32_t>(i)) co_return 1;
            }
            co_return 0;
        };
        code = co_await with_timeout(loop, events(sub, count), std::chrono::seconds(seconds));
        co_await sub.unsubscribe(true);
        std::cout << "UNSUBSCRIBED ok" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "uvgena_subscriber: " << e.what() << std::endl;
        code = 1;
    }
    co_await listener.stop();
    co_return code;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::cerr << "usage: uvgena_subscriber EVENT_URL LISTEN_HOST COUNT TIMEOUT_SECONDS\n";
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = run(&loop, watch(&loop, argv[1], argv[2], std::atoi(argv[3]), std::atoi(argv[4])));
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) code = 1;
    return code;
}
