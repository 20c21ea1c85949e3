// The fixture of the blocking tests that talk to a device: a ScriptedDevice on a
// BackgroundLoop of its own, and the subscriber's BackgroundLoop with a NOTIFY listener.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <utility>

#include "support/gena_device.hpp"
#include "uvgena/blocking/background_loop.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace blocking_test {

using namespace uvgena;
using namespace std::chrono_literals;
using gena_test::ScriptedDevice;

// A device on a loop of its own (another BackgroundLoop), and a NOTIFY listener on
// 127.0.0.1 on the subscriber's loop: every test talks over loopback only.
class Fixture {
  public:
    explicit Fixture(BackgroundLoopOptions bg_options = {}) : bg(bg_options) {
        device =
            device_loop.run([](uv_loop_t* loop) { return std::make_unique<ScriptedDevice>(loop); })
                .wait(10s);
        // The listener lives on the subscriber's loop and dies there, when it stops.
        listener = bg.run([this](uv_loop_t* loop) {
                         gena::ListenerOptions o;
                         o.listen_host = "127.0.0.1";
                         o.port = 0;
                         auto l = std::make_shared<EventListener>(loop, o);
                         bg.keep_until_stop(l);
                         return l.get();
                     }).wait(10s);
        url = device->event_url();
    }
    ~Fixture() {
        // The subscriber side first (its UNSUBSCRIBEs need the device), then the device,
        // which dies on its own loop thread.
        bg.stop();
        try {
            device_loop
                .run([d = std::move(device)]() mutable -> Task<void> {
                    co_await d->stop();
                    d.reset();
                })
                .wait(10s);
        } catch (const std::exception& e) {
            FAIL_CHECK("device shutdown: " << e.what());
        }
    }
    Fixture(const Fixture&) = delete;
    Fixture& operator=(const Fixture&) = delete;

    SubscribeOptions options() const {
        SubscribeOptions o;
        o.requested_timeout = 300s;
        o.listener = listener;
        return o;
    }

    // Reads a device counter on the device's loop.
    template <typename F>
    auto on_device(F f) {
        return device_loop.run([d = device.get(), f] { return f(*d); }).wait(10s);
    }

    // Sends one event with Volume = `volume` to every subscription; returns once answered.
    void notify_volume(const std::string& volume) {
        device_loop
            .run([d = device.get(), volume]() {
                return d->notify_all({{"Volume", volume}});
            })
            .wait(10s);
    }

    BackgroundLoop device_loop;
    BackgroundLoop bg;
    std::unique_ptr<ScriptedDevice> device;
    EventListener* listener = nullptr;
    std::string url;
};

}  // namespace blocking_test
