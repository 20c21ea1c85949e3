// set_volume.cpp for a threaded program: uvgena runs in a BackgroundLoop (a uv loop in a
// thread of its own) and this thread blocks in wait() and get(), the way SoCo is used:
//
//     sub = device.renderingControl.subscribe()
//     device.renderingControl.SetVolume([("InstanceID", 0), ("Channel", "Master"),
//                                        ("DesiredVolume", 30)])
//     event = sub.events.get(timeout=5)
//
//   set_volume_blocking LOCATION#RenderingControl VOLUME
//
// Prints "volume 30 confirmed by event SEQ 5 after 12 ms"; exit 1 if the call fails or no
// event confirms it within 5 s.
#include <chrono>
#include <cstdio>
#include <string>

#include "uvgena/blocking/blocking.hpp"
#include "uvgena/control/client.hpp"
#include "uvgena/ssdp/discovery.hpp"

using namespace std::chrono_literals;

namespace {

// True when `event` says that Volume (channel Master, instance 0) is `volume`.
bool shows_volume(const uvgena::Event& event, const std::string& volume) {
    if (!event.last_change()) return false;
    const auto* instance = event.last_change()->instance("0");
    const auto* variable = instance != nullptr ? instance->find("Volume", "Master") : nullptr;
    return variable != nullptr && variable->value == volume;
}

}  // namespace

int main(int argc, char** argv) {
    std::string target = argc > 1 ? argv[1] : "";
    const auto hash = target.rfind('#');
    if (argc < 3 || hash == std::string::npos) {
        std::fprintf(stderr, "usage: %s LOCATION#RenderingControl VOLUME\n", argv[0]);
        return 2;
    }
    const std::string location = target.substr(0, hash);
    const std::string service_name = target.substr(hash + 1);
    const std::string volume = argv[2];

    uvgena::BackgroundLoop bg;
    try {
        // Any coroutine of the library runs on the loop thread through run(): here the
        // description, then the action.
        uvgena::ssdp::DeviceDescription description =
            bg.run([location](uv_loop_t* loop) {
                  return uvgena::ssdp::fetch_description(loop, location);
              }).wait(10s);
        const uvgena::ssdp::ServiceInfo* found = description.service(service_name);
        if (found == nullptr) {
            std::fprintf(stderr, "%s: no such service\n", target.c_str());
            return 1;
        }
        const uvgena::ssdp::ServiceInfo service = *found;

        // Subscribe first: the initial event carries the volume before the change.
        uvgena::BlockingSubscription sub = bg.subscribe(service.event_sub_url).wait(10s);
        std::optional<uvgena::Event> initial = sub.events().get(5s);
        if (initial && shows_volume(*initial, volume)) {
            std::printf("volume %s already\n", volume.c_str());
            sub.unsubscribe().wait(10s);
            return 0;
        }

        const auto sent = std::chrono::steady_clock::now();
        bg.run([service, volume](uv_loop_t* loop) {
              uvgena::control::Arguments in{
                  {"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", volume}};
              return uvgena::control::call_action(loop, service, "SetVolume", std::move(in));
          }).wait(10s);

        // The events until one shows the new volume (another change may come first).
        const auto deadline = sent + 5s;
        int status = 1;
        while (std::chrono::steady_clock::now() < deadline) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            std::optional<uvgena::Event> event = sub.events().get(left);
            if (!event) {
                if (sub.events().ended()) break;
                continue;
            }
            if (shows_volume(*event, volume)) {
                const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - sent);
                std::printf("volume %s confirmed by event SEQ %u after %lld ms\n", volume.c_str(),
                            event->seq, static_cast<long long>(ms.count()));
                status = 0;
                break;
            }
        }
        if (status != 0)
            std::fprintf(stderr, "no event confirmed volume %s within 5 s\n", volume.c_str());
        sub.unsubscribe().wait(10s);
        return status;
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s\n", e.what());  // a SOAP fault names its errorCode
        return 1;
    }
}
