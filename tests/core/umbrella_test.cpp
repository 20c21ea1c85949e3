// The umbrella header is self-contained and the DESIGN.md example compiles as written.
#include "uvgena/uvgena.hpp"

#include <doctest/doctest.h>

#include <chrono>

namespace {

using namespace std::chrono_literals;

// The program of DESIGN.md's "API shape", compiled against the real headers.
[[maybe_unused]] uvgena::Task<> watch(uv_loop_t* loop) {
    auto sub = co_await uvgena::subscribe(
        loop, "http://192.168.1.20:1400/MediaRenderer/RenderingControl/Event",
        {.requested_timeout = std::chrono::seconds(600), .auto_renew = true});
    while (auto event = co_await sub.events().next()) {
        (void)event->seq;
        (void)event->variables();
    }
}

}  // namespace

TEST_SUITE("core.umbrella") {
    TEST_CASE("the umbrella header exposes every layer") {
        CHECK(uvgena::gena::next_seq(4294967295u) == 1u);
        CHECK(uvgena::ssdp::target_matches("ssdp:all", "upnp:rootdevice"));
        CHECK(uvgena::http::default_port("http") == 80);
    }
}
