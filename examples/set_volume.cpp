// Set a renderer's volume and wait for the event that confirms it: the device's own word that
// the change happened, rather than the bare 200 of the SOAP call. Event-driven: one coroutine
// on the application's uv loop. Compare with set_volume_blocking.cpp.
//
//   set_volume LOCATION#RenderingControl VOLUME
//   e.g. set_volume 'http://192.168.1.20:1400/xml/device_description.xml#RenderingControl' 30
//
// Prints "volume 30 confirmed by event SEQ 5 after 12 ms"; exit 1 if the call fails or no
// event confirms it within 5 s.
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "uvgena/co/co.hpp"
#include "uvgena/control/client.hpp"
#include "uvgena/ssdp/discovery.hpp"
#include "uvgena/subscriber/subscribe_device.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace std::chrono_literals;

namespace {

// True when `event` says that Volume (channel Master, instance 0) is `volume`.
bool shows_volume(const uvgena::Event& event, const std::string& volume) {
    if (!event.last_change()) return false;
    const auto* instance = event.last_change()->instance("0");
    const auto* variable = instance != nullptr ? instance->find("Volume", "Master") : nullptr;
    return variable != nullptr && variable->value == volume;
}

uvgena::Task<int> set_and_confirm(uv_loop_t* loop, std::string target, std::string volume) {
    const auto hash = target.rfind('#');
    uvgena::ssdp::DeviceDescription description =
        co_await uvgena::ssdp::fetch_description(loop, target.substr(0, hash));
    const uvgena::ssdp::ServiceInfo* found = description.service(target.substr(hash + 1));
    if (found == nullptr) {
        std::fprintf(stderr, "%s: no such service\n", target.c_str());
        co_return 1;
    }
    uvgena::ssdp::ServiceInfo service = *found;

    // Subscribe first: the initial event carries the volume before the change.
    uvgena::Subscription sub = co_await uvgena::subscribe(loop, service);
    std::optional<uvgena::Event> initial = co_await sub.events().next();
    if (initial && shows_volume(*initial, volume)) {
        std::printf("volume %s already\n", volume.c_str());
        co_await sub.unsubscribe(false);
        co_return 0;
    }

    // Arguments in a named variable: g++ 12 cannot compile a braced list inside co_await.
    uvgena::control::Arguments in{
        {"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", volume}};
    const auto sent = std::chrono::steady_clock::now();
    co_await uvgena::control::call_action(loop, service, "SetVolume", in);

    // The events until one shows the new volume (another change may come first).
    auto confirmation = [](uvgena::Subscription& s,
                           std::string want) -> uvgena::Task<std::optional<uvgena::Event>> {
        while (auto event = co_await s.events().next()) {
            if (shows_volume(*event, want)) co_return event;
        }
        co_return std::nullopt;
    };
    int status = 1;
    try {
        std::optional<uvgena::Event> event =
            co_await uvgena::with_timeout(loop, confirmation(sub, volume), 5s);
        if (event) {
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - sent);
            std::printf("volume %s confirmed by event SEQ %u after %lld ms\n", volume.c_str(),
                        event->seq, static_cast<long long>(ms.count()));
            status = 0;
        } else {
            std::fprintf(stderr, "the subscription ended before the confirmation\n");
        }
    } catch (const std::system_error& e) {
        if (!uvgena::is_timeout(e.code())) throw;
        std::fprintf(stderr, "no event confirmed volume %s within 5 s\n", volume.c_str());
    }
    co_await sub.unsubscribe(false);
    co_return status;
}

}  // namespace

int main(int argc, char** argv) {
    std::string target = argc > 1 ? argv[1] : "";
    if (argc < 3 || target.rfind('#') == std::string::npos) {
        std::fprintf(stderr, "usage: %s LOCATION#RenderingControl VOLUME\n", argv[0]);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    int status = 1;
    auto run = [](uv_loop_t* l, std::string t, std::string v, int& out) -> uvgena::Task<void> {
        try {
            out = co_await set_and_confirm(l, std::move(t), std::move(v));
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "%s\n", e.what());  // a SOAP fault names its errorCode
        }
    };
    uvgena::spawn(&loop, run(&loop, target, argv[2], status));
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? status : 1;
}
