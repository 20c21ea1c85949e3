// The device side of SSDP: an Advertiser answers M-SEARCH for a device's targets and
// announces the device with ssdp:alive (at start and periodically) and ssdp:byebye (at stop).
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/ssdp/description.hpp"
#include "uvgena/ssdp/message.hpp"

namespace uvgena::ssdp {

/// One (NT/ST, USN) pair a device advertises.
struct UVGENA_API AdvertisedTarget {
    std::string target;  ///< "upnp:rootdevice", "uuid:…", a device or service type.
    std::string usn;     ///< "uuid:…::upnp:rootdevice", "uuid:…", "uuid:…::urn:…".
};

/// The targets UDA 1.1 section 1.2.2 lists for a root device: upnp:rootdevice, its UDN and
/// type; the UDN and type of every embedded device; every distinct service type per device.
UVGENA_API std::vector<AdvertisedTarget> advertised_targets(const DeviceInfo& root);

/// Options of an Advertiser.
struct UVGENA_API AdvertiserOptions {
    /// The device tree (types, UDNs, services); UDNs must start with "uuid:".
    DeviceInfo device;
    /// LOCATION of the description. "{ip}" in it is replaced, per interface, by that
    /// interface's address (bracketed for IPv6: "http://{ip}:80/d.xml" becomes
    /// "http://[fd00::1]:80/d.xml"), so that a device bound to every interface is reachable
    /// on each.
    std::string location;
    /// SERVER header; empty: default_product_token().
    std::string server;
    /// CACHE-CONTROL max-age (UDA: at least 1800 s).
    std::chrono::seconds max_age{1800};
    /// Interval of ssdp:alive; 0: a third of max_age (UDA: less than half).
    std::chrono::milliseconds alive_interval{0};
    /// Each announcement (alive at start, byebye) is sent this many times (UDP is lossy).
    int repeats = 2;
    /// BOOTID.UPNP.ORG and CONFIGID.UPNP.ORG.
    std::uint32_t boot_id = 1;
    std::uint32_t config_id = 1;
    /// Interface (name or address); empty: every interface that is up.
    std::string interface;
    /// Advertise over IPv4 (239.255.255.250).
    bool ipv4 = true;
    /// Advertise over IPv6 too ([FF02::C], link-local scope), from one address per
    /// interface (a global or unique-local one when the interface has it).
    bool ipv6 = false;
    /// Multicast TTL (IPv4) / hop limit (IPv6).
    int ttl = 2;
    /// Upper bound on the random delay before answering a search (the delay is at most MX
    /// seconds anyway); lower it in tests.
    std::chrono::milliseconds max_response_delay{5000};
    /// Searches being answered at once; more are dropped and counted (flood protection).
    std::size_t max_pending_responses = 64;
    /// The port (1900; another value only for tests).
    std::uint16_t port = kPort;
};

/// Answers M-SEARCH and sends alive/byebye for one root device. Move-only.
class UVGENA_API Advertiser {
  public:
    /// Binds port 1900 (shared) on the chosen interfaces and families, sends the first
    /// ssdp:alive burst and starts answering. Throws Error (bad options, no usable interface).
    static Advertiser start(uv_loop_t* loop, AdvertiserOptions options);

    Advertiser(Advertiser&&) noexcept;
    Advertiser& operator=(Advertiser&&) noexcept;
    /// Closes without byebye (use stop() for a clean goodbye).
    ~Advertiser();

    /// Sends ssdp:byebye for every target and closes. Errors are logged, not thrown.
    Task<void> stop();
    /// Closes at once, without byebye.
    void close() noexcept;
    /// Sends one alive burst now (e.g. after a configuration change).
    Task<void> announce();
    /// Searches answered (one per M-SEARCH that matched something).
    std::size_t searches_answered() const noexcept;
    /// Datagrams that were not valid searches (skipped).
    std::size_t malformed() const noexcept;
    /// Searches dropped because too many were pending.
    std::size_t dropped() const noexcept;
    /// The targets advertised.
    const std::vector<AdvertisedTarget>& targets() const noexcept;

    struct UVGENA_LOCAL State;

  private:
    UVGENA_LOCAL explicit Advertiser(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

}  // namespace uvgena::ssdp
