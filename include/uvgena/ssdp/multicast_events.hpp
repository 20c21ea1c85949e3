// Multicast eventing (UPnP Device Architecture 1.1, section 4.3.3): a device sends the
// changes of variables marked multicast as `NOTIFY * HTTP/1.0` to 239.255.255.246:7900, with
// USN, SVCID, SEQ, LVL and BOOTID.UPNP.ORG; any control point listens without subscribing.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "uvgena/co/channel.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/net/address.hpp"
#include "uvgena/ssdp/message.hpp"

namespace uvgena::ssdp {

/// A multicast event accepted by a listener.
struct UVGENA_API ReceivedMulticastEvent {
    MulticastEvent event;   ///< Headers and the property set body.
    bool rebooted = false;  ///< The first event of a new BOOTID of this device.
    SocketAddress from;     ///< The sender.
};

/// Options of a MulticastEventListener.
struct UVGENA_API MulticastEventListenerOptions {
    /// Interface (name or address); empty: every interface that is up.
    std::string interface;
    bool ipv4 = true;   ///< Listen on 239.255.255.246.
    bool ipv6 = false;  ///< Listen on [FF02::130] too.
    /// Services whose SEQ is remembered (see MulticastEventFilter).
    std::size_t max_services = 1024;
    /// Events buffered for next(); beyond it the oldest is dropped and counted.
    std::size_t max_queued = 256;
    /// The port (7900; another value only for tests).
    std::uint16_t port = kEventPort;
};

/// Receives multicast events and yields the new ones: resends (same SEQ), backward SEQs and
/// stale BOOTIDs are discarded and counted. Move-only; destroying it closes its sockets.
class UVGENA_API MulticastEventListener {
  public:
    /// Binds port 7900 (shared) and joins the group on the chosen interfaces. Throws Error.
    static MulticastEventListener start(uv_loop_t* loop,
                                        MulticastEventListenerOptions options = {});

    MulticastEventListener(MulticastEventListener&&) noexcept;
    MulticastEventListener& operator=(MulticastEventListener&&) noexcept;
    ~MulticastEventListener();

    /// `co_await next()`: the next accepted event, or std::nullopt after close().
    uvgena::detail::ChannelNextAwaiter<ReceivedMulticastEvent> next() noexcept;
    /// Stops listening; next() yields what is buffered, then std::nullopt.
    void close() noexcept;
    /// Events discarded as duplicates (a resend of the last SEQ).
    std::size_t duplicates() const noexcept;
    /// Events discarded for a SEQ behind the last one, or a BOOTID older than one seen.
    std::size_t stale() const noexcept;
    /// Datagrams that were not valid multicast events.
    std::size_t malformed() const noexcept;
    /// Accepted events dropped because nobody read them in time.
    std::size_t dropped() const noexcept;

    struct UVGENA_LOCAL State;

  private:
    UVGENA_LOCAL explicit MulticastEventListener(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

/// Options of a MulticastEventSender.
struct UVGENA_API MulticastEventSenderOptions {
    std::string usn;            ///< USN of the service's device ("uuid:…::urn:…:service:X:1").
    std::string service_id;     ///< SVCID ("urn:upnp-org:serviceId:X").
    std::uint32_t boot_id = 1;  ///< BOOTID.UPNP.ORG of the device.
    /// Interface (name or address) to send from; empty: every interface that is up.
    std::string interface;
    bool ipv4 = true;   ///< Send to 239.255.255.246.
    bool ipv6 = false;  ///< Send to [FF02::130] too.
    int ttl = 4;        ///< Multicast TTL.
    /// The port (7900; another value only for tests).
    std::uint16_t port = kEventPort;
};

/// Sends the multicast events of one service, numbering them (SEQ 0, 1, ... and after
/// 4294967295 back to 1, as GENA does). Move-only.
class UVGENA_API MulticastEventSender {
  public:
    /// Opens one socket per interface. Throws Error.
    static MulticastEventSender create(uv_loop_t* loop, MulticastEventSenderOptions options);

    MulticastEventSender(MulticastEventSender&&) noexcept;
    MulticastEventSender& operator=(MulticastEventSender&&) noexcept;
    ~MulticastEventSender();

    /// Sends `property_set` (a complete <e:propertyset> document) with the next SEQ on every
    /// interface. Throws Error only if it could be sent on none.
    Task<void> send(std::string property_set, EventLevel level = EventLevel::general);
    /// Sends `property_set` soon, without waiting (in order with other posts; a failure is
    /// logged). For code that is not a coroutine, such as a Publisher's multicast sink.
    void post(std::string property_set, EventLevel level = EventLevel::general);
    /// A function that posts each property set it gets to this sender: plug it into
    /// gena::ServiceConfig::multicast_sink. Called after the sender is gone, it does nothing.
    std::function<void(std::string)> sink(EventLevel level = EventLevel::general);
    /// The SEQ the next send() will carry.
    std::uint32_t next_seq() const noexcept;
    /// Changes BOOTID (after a reboot) and restarts SEQ at 0.
    void set_boot_id(std::uint32_t boot_id) noexcept;
    /// Closes the sockets.
    void close() noexcept;

    struct UVGENA_LOCAL State;

  private:
    UVGENA_LOCAL explicit MulticastEventSender(std::shared_ptr<State> state) noexcept;
    std::shared_ptr<State> state_;
};

}  // namespace uvgena::ssdp
