// Sets a renderer's volume and waits for the event that confirms it: the device description
// names the RenderingControl service, its SCPD types the mirrored state and checks the call,
// and the mirror (uvgena::StateMirror) shows the volume the device itself evented.
// Usage: set_volume DESCRIPTION_URL VOLUME (e.g. the description URL `uvgena serve-demo`
// prints).
#include <chrono>
#include <iostream>
#include <string>

#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/control/client.hpp"
#include "uvgena/ssdp/discovery.hpp"
#include "uvgena/subscriber/service_state.hpp"
#include "uvgena/subscriber/subscribe_device.hpp"

uvgena::Task<int> set_volume(uv_loop_t* loop, std::string location, std::string volume) {
    using namespace std::chrono_literals;
    uvgena::ssdp::DeviceDescription device =
        co_await uvgena::ssdp::fetch_description(loop, location);
    const uvgena::ssdp::ServiceInfo* rc = device.service("RenderingControl");
    if (rc == nullptr) {
        std::cerr << "no RenderingControl at " << location << '\n';
        co_return 1;
    }
    uvgena::gena::StateMirrorOptions options;  // owns memory: a named variable, not inline
    options.scpd = co_await uvgena::control::fetch_scpd(loop, rc->scpd_url);
    uvgena::StateMirror mirror(
        loop,
        co_await uvgena::ssdp::subscribe(loop, *rc, {.auto_renew = true, .auto_resubscribe = true}),
        options);
    const uvgena::ServiceState& state = mirror.state();
    while (state.stale()) {  // the initial event: the whole state
        if (!co_await uvgena::with_timeout(loop, mirror.changed(), 5s)) co_return 1;
    }
    std::cout << "Volume " << state.get_int("Volume", {.channel = "Master"}).value_or(-1) << '\n';

    uvgena::control::Arguments in = {
        {"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", volume}};
    co_await uvgena::control::call_action(loop, *rc, "SetVolume", in);
    // The answer says the call was taken; the event says the device's state changed.
    while (state.get("Volume", {.channel = "Master"}) != volume || state.stale()) {
        if (!co_await uvgena::with_timeout(loop, mirror.changed(), 5s)) co_return 1;
    }
    std::cout << "Volume " << volume << ", confirmed by the device's event\n";
    co_await mirror.unsubscribe();
    co_return 0;
}

int main(int argc, char** argv) try {
    if (argc != 3) return std::cerr << "usage: set_volume DESCRIPTION_URL VOLUME\n", 2;
    return uvgena::run(uv_default_loop(), set_volume(uv_default_loop(), argv[1], argv[2]));
} catch (const std::exception& e) {
    std::cerr << e.what() << '\n';
    return 1;
}
