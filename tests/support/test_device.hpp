// The test device shared by the fault, soak, hostile and link-cut tests: the demo renderer
// (examples/demo_renderer, the one device fixture) with one more service, /svc/event, that
// events one plain state variable, so that each test says only how its device differs
// (address, publisher options, variable) and when it vanishes, reboots or comes back.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "demo_device.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/net/address.hpp"
#include "uvgena/publisher/publisher.hpp"

namespace uvtest {

/// A demo renderer with one more service at /svc/event holding one state variable, listening
/// on an address of its own. stop() and start() play a device that vanishes and comes back
/// (or reboots): the new device listens on the same address and knows none of the old SIDs.
class TestDevice {
  public:
    /// Listens at once on `address` (port 0: a free one, kept across restarts); the service's
    /// one state variable is `variable`, initially `value`. Throws what Publisher::listen throws.
    explicit TestDevice(
        uv_loop_t* loop, uvgena::gena::PublisherOptions options = {},
        const uvgena::SocketAddress& address = uvgena::SocketAddress::ipv4_loopback(),
        std::string variable = "Volume", std::string value = "0");
    TestDevice(const TestDevice&) = delete;
    TestDevice& operator=(const TestDevice&) = delete;

    /// The running device's publisher (only between start and stop).
    uvgena::gena::Publisher& publisher() noexcept { return device_->publisher(); }
    /// The bound address.
    const uvgena::SocketAddress& address() const noexcept { return address_; }
    /// The event URL, "http://ip:port/svc/event".
    std::string url() const { return "http://" + address_.to_string() + "/svc/event"; }
    /// The event URL, parsed.
    uvgena::http::Url event_url() const { return uvgena::http::Url::parse(url()); }

    /// Sets the variable (evented to the subscribers); a restart starts from the last value.
    void set(std::string value);
    /// Stops the device (gracefully, within `grace`) and destroys it: the address refuses
    /// connections until start(). Does nothing when stopped. The TestDevice may be destroyed
    /// while this is suspended.
    uvgena::Task<void> stop(std::chrono::milliseconds grace = std::chrono::milliseconds(100));
    /// A new device on the same address, with no memory of earlier subscriptions; its
    /// variable holds `value` (by default the last value set). Throws std::logic_error when
    /// running.
    void start(std::optional<std::string> value = std::nullopt);
    /// A reboot: stop() then start(value).
    uvgena::Task<void> restart(std::optional<std::string> value = std::nullopt);

    /// What a control point on the LAN sends, unchecked by any client logic: a SUBSCRIBE
    /// (TIMEOUT 300 s) from the local address `from` naming `callback`, then `second` if not
    /// empty. The answer's status; 0 if none. (Plain strings, not a braced list: GCC 12
    /// mishandles initializer lists in co_await.)
    uvgena::Task<int> subscribe_from(std::string callback, std::string from = "127.0.0.1",
                                     std::string second = {}) const;

  private:
    uv_loop_t* loop_;
    uvgena::gena::PublisherOptions options_;
    uvgena::SocketAddress address_;
    std::string variable_;
    std::string value_;
    std::unique_ptr<uvgena::gena::DemoDevice> device_;
    uvgena::gena::Service* service_ = nullptr;
};

}  // namespace uvtest
