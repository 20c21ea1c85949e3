// print_volume.cpp for a threaded program: the mirror of the renderer's RenderingControl
// state lives in a BackgroundLoop (a uv loop in a thread of its own), and this thread blocks
// in changed() and reads values with get(), from any thread, without touching the loop.
//
//   print_volume_blocking EVENT_SUB_URL
//
// Prints "Volume 20" at once (the initial event), then a line per change; a resubscription
// restores the state if events were lost. Exit 1 when the subscription fails or ends by an
// error.
#include <chrono>
#include <iostream>
#include <string>

#include "uvgena/blocking/blocking.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) try {
    if (argc != 2) return std::cerr << "usage: print_volume_blocking EVENT_SUB_URL\n", 2;
    uvgena::BackgroundLoop bg;
    uvgena::SubscribeOptions options;
    options.auto_renew = true;
    options.auto_resubscribe = true;
    uvgena::BlockingStateMirror mirror = bg.mirror(argv[1], options).wait(10s);
    while (auto changes = mirror.changed()) {  // coalesced if this thread is slow
        if (changes->contains("Volume", {.channel = "Master"})) {
            std::cout << "Volume " << mirror.get("Volume", {.channel = "Master"}).value_or("?")
                      << (mirror.stale() ? " (stale: resubscribing)" : "") << std::endl;
        }
    }
} catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 1;
}
