// A consumer of an installed uvgena: subscribes to the event URL given on the command line,
// prints the Volume of the first event (the initial event, SEQ 0, where a RenderingControl
// keeps Volume inside LastChange), unsubscribes and exits 0. Built by the three consumer
// projects beside this file (Makefile + pkg-config, CMake + find_package, meson subproject).
#include <uvgena/uvgena.hpp>

#include <iostream>
#include <string>

uvgena::Task<int> first_volume(uv_loop_t* loop, std::string url) {
    auto sub =
        co_await uvgena::subscribe(loop, url, {.requested_timeout = std::chrono::seconds(60)});
    auto event = co_await sub.events().next();
    if (!event) {
        std::cerr << "no event\n";
        co_return 1;
    }
    std::cout << "uvgena " << uvgena::version() << " (headers " << UVGENA_VERSION_STRING
              << "): SEQ " << event->seq << " Volume " << event->state("Volume").value_or("?")
              << '\n';
    co_await sub.unsubscribe();
    co_return event->state("Volume") ? 0 : 1;
}

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::cerr << "usage: consumer EVENT_SUB_URL\n";
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = uvgena::run(&loop, first_volume(&loop, argv[1]));
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        std::cerr << "the loop did not close clean\n";
        return 1;
    }
    return rc;
} catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 1;
}
