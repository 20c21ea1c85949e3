// Prints a renderer's volume whenever it changes, from a mirror of its RenderingControl state
// (uvgena::StateMirror): the initial event gives the volume at once, then every change, and
// a resubscription restores the state if events were lost. Usage: print_volume EVENT_SUB_URL
#include <iostream>
#include <string>

#include "uvgena/co/scope.hpp"
#include "uvgena/subscriber/service_state.hpp"
#include "uvgena/subscriber/subscription.hpp"

uvgena::Task<> print_volume(uv_loop_t* loop, std::string url) {
    uvgena::StateMirror mirror(
        loop,
        co_await uvgena::subscribe(loop, url, {.auto_renew = true, .auto_resubscribe = true}));
    while (auto changes = co_await mirror.changed()) {  // coalesced if we are slow
        if (changes->contains("Volume", {.channel = "Master"})) {
            const uvgena::ServiceState& state = mirror.state();
            std::cout << "Volume " << state.get("Volume", {.channel = "Master"}).value_or("?")
                      << (state.stale() ? " (stale: resubscribing)" : "") << std::endl;
        }
    }
}

int main(int argc, char** argv) try {
    if (argc != 2) return std::cerr << "usage: print_volume EVENT_SUB_URL\n", 2;
    uvgena::run(uv_default_loop(), print_volume(uv_default_loop(), argv[1]));
} catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 1;
}
