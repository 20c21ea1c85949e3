// DemoDevice: a simulated UPnP MediaRenderer on the Publisher, for the quick-start demo, the
// `uvgena serve-demo` command, tests and benchmarks. It serves a valid device description,
// the SCPD documents of RenderingControl and AVTransport, answers their main SOAP actions
// (GetVolume, SetVolume, GetMute, SetMute; SetAVTransportURI, Play, Pause, Stop,
// GetTransportInfo) and events both services through LastChange, like real renderers do.
// The SCPDs and the actions are the Publisher's (ServiceConfig::scpd, Service::on_action).
// A timer can make it "play": each tick changes the volume, and every few ticks the track
// (with DIDL-Lite metadata) and the transport state.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "uvgena/co/task.hpp"
#include "uvgena/net/address.hpp"
#include "uvgena/publisher/publisher.hpp"

namespace uvgena::gena {

/// Configuration of a DemoDevice.
struct DemoDeviceOptions {
    /// Where to listen (default 127.0.0.1, any free port).
    SocketAddress address = SocketAddress::ipv4_loopback(0);
    /// If the port is taken, try the next ones up to this many (0: the port or an error).
    std::uint16_t port_range = 0;
    /// Interval of the simulated changes; 0 disables the timer (use tick()).
    std::chrono::milliseconds interval{1'000};
    /// LastChange moderation of both services (UPnP AV suggests 200 ms; 0: none).
    std::chrono::milliseconds moderation{0};
    /// Shown in the description.
    std::string friendly_name = "uvgena demo renderer";
    /// The device's UDN ("uuid:..."); empty: a random one.
    std::string udn;
    /// Subscription handling (limits, CALLBACK scope, delivery).
    PublisherOptions publisher{};
};

/// A simulated renderer: an http::Server with a Publisher and the device's documents.
/// Not copyable or movable. Loop thread only.
class DemoDevice {
  public:
    /// Event path of RenderingControl.
    static constexpr std::string_view rendering_control_event = "/RenderingControl/event";
    /// Event path of AVTransport.
    static constexpr std::string_view av_transport_event = "/AVTransport/event";
    /// Path of the device description.
    static constexpr std::string_view description_path = "/description.xml";

    /// A device on `loop`; start() makes it listen.
    explicit DemoDevice(uv_loop_t* loop, DemoDeviceOptions options = {});
    DemoDevice(const DemoDevice&) = delete;
    DemoDevice& operator=(const DemoDevice&) = delete;
    ~DemoDevice();

    /// Binds, listens and starts the simulation timer (if any). Throws what
    /// http::Server::listen throws.
    void start();
    /// Stops the timer, the server (with `grace`) and the publisher. Idempotent: a call while
    /// another runs returns when the device has stopped. Destroying the device while a stop()
    /// is suspended is safe.
    Task<void> stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

    /// "http://127.0.0.1:PORT" (IPv6 hosts bracketed), from start() on.
    std::string base_url() const;
    /// The URL of the device description.
    std::string description_url() const;
    /// The eventSubURL of RenderingControl.
    std::string rendering_control_event_url() const;
    /// The eventSubURL of AVTransport.
    std::string av_transport_event_url() const;
    /// The device's UDN.
    const std::string& udn() const noexcept;
    /// The device description document.
    std::string description() const;

    /// One step of the simulation: the volume moves; every 3rd tick the transport state
    /// toggles, every 5th the track changes.
    void tick();
    /// Number of ticks so far.
    std::uint64_t ticks() const noexcept;

    /// Current volume (0..100).
    int volume() const noexcept;
    /// Sets the volume (clamped to 0..100) and events it, as SetVolume does.
    void set_volume(int volume);
    /// Current mute state.
    bool muted() const noexcept;
    /// Sets mute and events it.
    void set_mute(bool mute);
    /// Current TransportState ("STOPPED", "PLAYING", "PAUSED_PLAYBACK").
    const std::string& transport_state() const noexcept;
    /// Sets TransportState and events it.
    void set_transport_state(std::string state);
    /// Sets the current track (URI, DIDL-Lite metadata) and events it.
    void set_track(std::string uri, std::string didl_metadata);

    /// The publisher (stats, subscribers).
    Publisher& publisher() noexcept;
    /// The server (address, stats); nullptr before start().
    http::Server* server() noexcept;

  private:
    struct Impl;
    // Shared with a stop() in flight, which may outlive the device.
    std::shared_ptr<Impl> impl_;
};

/// A DIDL-Lite document for one music track (title, artist, album, duration, resource URI).
std::string demo_track_didl(std::string_view title, std::string_view artist, std::string_view album,
                            std::string_view duration, std::string_view uri);

}  // namespace uvgena::gena
