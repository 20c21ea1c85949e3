// Subscribes to a UPnP service's events and prints them as they arise (the SoCo example
// "print out the events as they arise"). Usage: print_events EVENT_SUB_URL
#include <iostream>

#include "uvgena/co/scope.hpp"
#include "uvgena/subscriber/subscription.hpp"

uvgena::Task<> print_events(uv_loop_t* loop, std::string url) {
    auto sub = co_await uvgena::subscribe(loop, url, {.auto_renew = true});
    while (auto event = co_await sub.events().next()) {
        std::cout << "SEQ " << event->seq << '\n';
        for (const auto& v : event->variables())
            std::cout << "  " << v.name << " = " << v.value << '\n';
    }
}

int main(int argc, char** argv) try {
    if (argc != 2) return std::cerr << "usage: print_events EVENT_SUB_URL\n", 2;
    uvgena::run(uv_default_loop(), print_events(uv_default_loop(), argv[1]));
} catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 1;
}
