// SSDP discovery over UDP (UPnP Device Architecture 1.1, section 1): searching for devices
// (M-SEARCH), fetching their descriptions, and watching their advertisements (ssdp:alive,
// ssdp:byebye, reboots seen through BOOTID.UPNP.ORG).
//
// Datagrams that do not parse are counted and skipped, never fatal: a LAN holds every kind
// of device. Every table is bounded.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "uvgena/co/channel.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/net/address.hpp"
#include "uvgena/net/udp.hpp"
#include "uvgena/ssdp/description.hpp"
#include "uvgena/ssdp/message.hpp"

namespace uvgena::ssdp {

/// The SERVER / USER-AGENT value uvgena sends ("OS/version UPnP/1.1 product/version").
UVGENA_API std::string default_product_token();

/// Options of a search.
struct UVGENA_API DiscoverOptions {
    /// ST: "ssdp:all", "upnp:rootdevice", "uuid:…", or a device or service type
    /// ("urn:schemas-upnp-org:service:RenderingControl:1").
    std::string search_target = "ssdp:all";
    /// How long responses are collected after the first M-SEARCH.
    std::chrono::milliseconds timeout{3000};
    /// MX: devices answer after a random delay of up to MX seconds (1..5). It is lowered to
    /// fit in `timeout` so that every device has time to answer.
    int mx = 2;
    /// M-SEARCHes sent per interface (1..3): UDP may lose one, so UDA suggests resending.
    int sends = 2;
    /// Delay between two sends of the M-SEARCH.
    std::chrono::milliseconds resend_interval{500};
    /// Interface to search on (a name like "eth0" or one of its addresses); empty: every
    /// interface that is up, loopback only when there is no other.
    std::string interface;
    /// Search over IPv4 (239.255.255.250).
    bool ipv4 = true;
    /// Search over IPv6 too ([FF02::C], link-local scope).
    bool ipv6 = false;
    /// Multicast TTL / hop limit of the M-SEARCH (UDA's default is 2).
    int ttl = 2;
    /// At most this many devices are collected; further ones are counted and skipped.
    std::size_t max_devices = 1024;
    /// Destination port (1900; another value only for tests with a private responder).
    std::uint16_t port = kPort;
};

/// A device that answered a search: one entry per device (per UDN), however many of its
/// services answered.
struct UVGENA_API DiscoveredDevice {
    std::string udn;                         ///< "uuid:…" (the USN's first part).
    std::string location;                    ///< LOCATION: the description URL.
    std::string server;                      ///< SERVER header.
    std::string usn;                         ///< USN of the first response.
    std::vector<std::string> targets;        ///< Every ST it answered with, in order.
    std::chrono::seconds max_age{1800};      ///< CACHE-CONTROL max-age.
    std::optional<std::uint32_t> boot_id;    ///< BOOTID.UPNP.ORG, if sent.
    std::optional<std::uint32_t> config_id;  ///< CONFIGID.UPNP.ORG, if sent.
    SocketAddress responder;                 ///< The address the response came from.
    std::string interface;                   ///< Name of the interface searched on.
};

/// A running search: yields each device as its first response arrives, until the timeout.
/// Move-only; destroying it stops the search and closes its sockets.
class UVGENA_API Search {
  public:
    /// Opens one socket per interface and starts sending M-SEARCH. Throws Error if no
    /// interface matches `options.interface` or no socket can be opened.
    static Search start(uv_loop_t* loop, DiscoverOptions options = {});

    Search(Search&&) noexcept;
    Search& operator=(Search&&) noexcept;
    ~Search();

    /// `co_await next()`: the next new device, or std::nullopt once the search is over.
    uvgena::detail::ChannelNextAwaiter<DiscoveredDevice> next() noexcept;
    /// Ends the search now: next() yields what is buffered, then std::nullopt.
    void stop() noexcept;
    /// Every device seen so far, merged (all their targets).
    const std::vector<DiscoveredDevice>& devices() const noexcept;
    /// Datagrams that were not valid search responses (skipped).
    std::size_t malformed() const noexcept;
    /// Devices skipped because max_devices was reached.
    std::size_t overflowed() const noexcept;
    /// The interfaces searched on.
    const std::vector<NetworkInterface>& interfaces() const noexcept;

    struct UVGENA_LOCAL State;

  private:
    UVGENA_LOCAL explicit Search(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

/// Searches and returns every device that answered before the timeout, in the order they
/// first answered. Throws Error like Search::start.
UVGENA_API Task<std::vector<DiscoveredDevice>> discover(uv_loop_t* loop,
                                                        DiscoverOptions options = {});

/// Options of fetch_description.
struct UVGENA_API FetchOptions {
    /// Time for the whole request.
    std::chrono::milliseconds timeout{5000};
    /// Bounds on the document.
    DescriptionLimits limits{};
    /// Leave from this local address (to choose the interface).
    std::optional<SocketAddress> local_address{};
};

/// GETs the device description at `location` and parses it. Throws Error naming the
/// location: the http layer's errors (bad URL, refused, timeout), an http status error for
/// a non-2xx answer, or ssdp::errc::bad_xml / bad_description / too_large.
UVGENA_API Task<DeviceDescription> fetch_description(uv_loop_t* loop, std::string location,
                                                     FetchOptions options = {});

// --------------------------------------------------------------------------------------
// Advertisements
// --------------------------------------------------------------------------------------

/// What happened to a device, as advertisements tell it.
enum class DeviceEvent {
    appeared,  ///< First alive (or search response) from this device.
    updated,   ///< Same boot, but its LOCATION or CONFIGID changed.
    rebooted,  ///< BOOTID.UPNP.ORG went up: it restarted and lost its subscriptions.
    left,      ///< ssdp:byebye.
    expired,   ///< No alive within its max-age.
};

/// Name of a DeviceEvent ("appeared", ...).
UVGENA_API std::string_view to_string(DeviceEvent event) noexcept;

/// One change of a device's presence.
struct UVGENA_API DeviceChange {
    DeviceEvent event = DeviceEvent::appeared;
    std::string udn;                       ///< "uuid:…"
    std::string location;                  ///< Last known LOCATION (may be empty for byebye).
    std::string server;                    ///< Last known SERVER.
    std::optional<std::uint32_t> boot_id;  ///< Current BOOTID, if known.
    std::optional<std::uint32_t> previous_boot_id;  ///< For `rebooted`: the one before.
    std::optional<std::uint32_t> config_id;         ///< CONFIGID, if known.
    SocketAddress from;  ///< Sender of the datagram (unset for `expired`).
};

/// Sans-IO: remembers devices by UDN from advertisements and search responses, and says
/// what changed. Bounded: beyond `max_devices`, the device closest to expiry is forgotten.
class UVGENA_API DeviceTracker {
  public:
    using Clock = std::chrono::steady_clock;

    explicit DeviceTracker(std::size_t max_devices = 1024) : max_(max_devices) {}

    /// Takes a NOTIFY (alive, byebye or update) received at `now`.
    std::optional<DeviceChange> on_notify(const Notify& notify, const SocketAddress& from,
                                          Clock::time_point now);
    /// Takes a search response received at `now` (it carries the same fields as alive).
    std::optional<DeviceChange> on_response(const Advertisement& ad, const SocketAddress& from,
                                            Clock::time_point now);
    /// Forgets the devices whose max-age ran out by `now` and reports them.
    std::vector<DeviceChange> expire(Clock::time_point now);
    /// Takes a device known otherwise (a search response `ad`, or only its UDN in `ad.usn`:
    /// a device one is subscribed to) as known, reporting nothing, so that its byebye and a
    /// later alive with a higher BOOTID are reported. For a device already known it only
    /// fills in what is missing (BOOTID, LOCATION, CONFIGID) and extends its max-age.
    void remember(const Advertisement& ad, Clock::time_point now);
    /// Number of devices known.
    std::size_t size() const noexcept { return devices_.size(); }
    /// True if the device is known.
    bool knows(std::string_view udn) const;

  private:
    struct Entry {
        std::string udn;
        std::string location;
        std::string server;
        std::optional<std::uint32_t> boot_id;
        std::optional<std::uint32_t> config_id;
        Clock::time_point expires;
    };
    std::optional<DeviceChange> on_alive(const Advertisement& ad, const SocketAddress& from,
                                         Clock::time_point now);
    Entry* find(std::string_view udn);
    static DeviceChange change(DeviceEvent event, const Entry& e, const SocketAddress& from);

    std::size_t max_;
    std::vector<Entry> devices_;
};

/// Options of an AdvertisementListener.
struct UVGENA_API AdvertisementListenerOptions {
    /// Interface to listen on (name or address); empty: every interface that is up.
    std::string interface;
    bool ipv4 = true;                ///< Listen on 239.255.255.250.
    bool ipv6 = false;               ///< Listen on [FF02::C] too.
    std::size_t max_devices = 1024;  ///< Devices remembered.
    std::size_t max_queued = 256;    ///< Changes buffered for next(); oldest dropped beyond.
    /// How often max-ages are checked.
    std::chrono::milliseconds expiry_check{1000};
    /// The port (1900; another value only for tests).
    std::uint16_t port = kPort;
};

/// Listens to SSDP advertisements and yields device changes: appeared, updated, rebooted,
/// left, expired. A `rebooted` device lost its subscriptions: resubscribe at once.
/// Move-only; destroying it closes its sockets.
class UVGENA_API AdvertisementListener {
  public:
    /// Binds port 1900 (shared with other listeners on this host) and joins the group on
    /// every chosen interface. Throws Error.
    static AdvertisementListener start(uv_loop_t* loop, AdvertisementListenerOptions options = {});

    AdvertisementListener(AdvertisementListener&&) noexcept;
    AdvertisementListener& operator=(AdvertisementListener&&) noexcept;
    ~AdvertisementListener();

    /// `co_await next()`: the next change, or std::nullopt after close().
    uvgena::detail::ChannelNextAwaiter<DeviceChange> next() noexcept;
    /// Stops listening; next() yields what is buffered, then std::nullopt.
    void close() noexcept;
    /// Datagrams that were not valid advertisements (skipped).
    std::size_t malformed() const noexcept;
    /// Changes dropped because nobody read them in time.
    std::size_t dropped() const noexcept;
    /// Number of devices currently known.
    std::size_t known_devices() const noexcept;
    /// Takes `device` as known without reporting it (DeviceTracker::remember): a device one
    /// subscribed to, whose last alive came before this listener started, so that its byebye
    /// (and a higher BOOTID, if `device.boot_id` is set) is reported.
    void remember(const DiscoveredDevice& device);

    struct UVGENA_LOCAL State;

  private:
    UVGENA_LOCAL explicit AdvertisementListener(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

}  // namespace uvgena::ssdp
