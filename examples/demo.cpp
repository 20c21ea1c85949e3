// The uvgena quick start: a simulated renderer (volume changing every second, transport
// state, track metadata in DIDL-Lite) published in-process with gena::Publisher, and
// uvgena's own subscription client subscribed to both of its services, printing each event
// with its SEQ and changed variables. Everything runs over loopback on one application-owned
// libuv loop, and ends by itself after a few seconds (or runs on until Ctrl-C).
//
//     bash scripts/demo.sh              # 6 seconds
//     bash scripts/demo.sh --seconds 20
//     bash scripts/demo.sh --forever
#include <uv.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "demo_device.hpp"
#include "uvgena/co/co.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;
using gena::DidlObject;
using gena::LastChangeInstance;
using gena::LastChangeValue;

namespace {

// One line per event: the service, the SEQ, then each changed variable (LastChange unpacked,
// track metadata shown as title / artist / album).
void print_event(const char* service, const Event& event) {
    std::cout << '[' << service << "] SEQ " << event.seq;
    if (event.seq_gap()) std::cout << " (" << event.missed << " missed)";
    if (!event.has_last_change() || !event.last_change()) {
        for (const auto& v : event.variables()) std::cout << "  " << v.name << '=' << v.value;
        std::cout << '\n';
        return;
    }
    for (const LastChangeInstance& instance : event.last_change()->instances) {
        for (const LastChangeValue& v : instance.values) {
            if (v.name.find("MetaData") != std::string::npos) {
                if (v.name != "CurrentTrackMetaData") continue;  // the same DIDL twice
                const auto& didl = event.didl(v.name, instance.id);
                if (didl && !didl->objects.empty()) {
                    const DidlObject& track = didl->objects.front();
                    std::cout << "  track='" << track.title << "' by " << track.artist << " ("
                              << track.album << ')';
                }
                continue;
            }
            if (v.name.find("URI") != std::string::npos) continue;  // long and redundant
            std::cout << "  " << v.name;
            if (!v.channel().empty()) std::cout << '(' << v.channel() << ')';
            std::cout << '=' << v.value;
        }
    }
    std::cout << '\n';
}

Task<void> watch(uv_loop_t* loop, EventListener& listener, std::string url, const char* name) {
    SubscribeOptions options;
    options.requested_timeout = 600s;
    options.auto_renew = true;
    options.listener = &listener;
    Subscription sub = co_await subscribe(loop, url, options);
    std::cout << "subscribed to " << name << " as " << sub.sid() << '\n';
    while (auto event = co_await sub.events().next()) print_event(name, *event);
}

Task<void> demo(uv_loop_t* loop, std::chrono::milliseconds run_for, std::stop_token stop) {
    gena::DemoDeviceOptions device_options;
    device_options.interval = 1s;
    gena::DemoDevice device(loop, device_options);
    device.start();
    std::cout << "demo renderer: " << device.description_url() << '\n';

    ListenerOptions listener_options;
    listener_options.listen_host = "127.0.0.1";
    listener_options.port = 0;
    EventListener listener(loop, listener_options);
    {
        Scope watchers(loop);
        watchers.spawn(
            watch(loop, listener, device.rendering_control_event_url(), "RenderingControl"));
        watchers.spawn(watch(loop, listener, device.av_transport_event_url(), "AVTransport"));
        try {
            co_await with_stop_token(
                [](uv_loop_t* l, std::chrono::milliseconds d) -> Task<void> {
                    co_await sleep_for(l, d);
                }(loop, run_for),
                stop);
        } catch (const Error& e) {
            if (!is_cancelled(e.code())) throw;
        }
        // Unsubscribes every subscription, then the watchers' streams end.
        co_await listener.stop();
        co_await watchers.join();
    }
    co_await device.stop();
    const gena::PublisherStats& stats = device.publisher().stats();
    std::cout << "done: " << device.ticks() << " ticks, " << stats.notifies_sent
              << " NOTIFYs delivered, " << stats.unsubscribes << " unsubscribed\n";
}

// Ctrl-C ends the demo cleanly: a uv_signal on the demo's own loop (the application may
// install signal handlers; the library never does).
struct SignalStop {
    uv_signal_t* handle = new uv_signal_t;
    std::stop_source* source;

    SignalStop(uv_loop_t* loop, std::stop_source* s) : source(s) {
        uv_signal_init(loop, handle);
        handle->data = source;
        uv_signal_start(
            handle,
            [](uv_signal_t* h, int) { static_cast<std::stop_source*>(h->data)->request_stop(); },
            SIGINT);
        uv_unref(reinterpret_cast<uv_handle_t*>(handle));
    }
    ~SignalStop() {
        uv_close(reinterpret_cast<uv_handle_t*>(handle),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
    }
    SignalStop(const SignalStop&) = delete;
    SignalStop& operator=(const SignalStop&) = delete;
};

}  // namespace

int main(int argc, char** argv) {
    std::chrono::milliseconds run_for = 6s;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--forever") == 0) {
            run_for = std::chrono::hours(24 * 365);
        } else if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            run_for = std::chrono::seconds(std::atoi(argv[++i]));
        } else {
            std::cerr << "usage: demo [--seconds N | --forever]\n";
            return 2;
        }
    }
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = 0;
    {
        std::stop_source stop;
        SignalStop on_ctrl_c(&loop, &stop);
        try {
            run(&loop, demo(&loop, run_for, stop.get_token()));
        } catch (const std::exception& e) {
            std::cerr << "demo: " << e.what() << '\n';
            code = 1;
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);  // the signal handle's close callback
    if (uv_loop_close(&loop) != 0) {
        std::cerr << "demo: the loop did not close cleanly\n";
        code = 1;
    }
    return code;
}
