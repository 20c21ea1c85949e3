// Which CALLBACK URLs a publisher accepts: the defence against CallStranger (CVE-2020-12695),
// where a SUBSCRIBE makes a device send its NOTIFYs to a host of the attacker's choosing
// (data exfiltration, reflected floods, scans of the device's own LAN). Sans-IO: addresses
// in, a decision out; the publisher supplies the interface list (publisher/interfaces.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/net/address.hpp"

namespace uvgena::gena {

/// How far from the requester a CALLBACK host may be.
enum class CallbackScope {
    /// Only the requester's own address (loopback counts as one host).
    same_host,
    /// The requester's own address, or, when the requester is on the network segment of the
    /// interface the SUBSCRIBE arrived on, any address of that segment. The default: what a
    /// control point on the LAN needs, and nothing a remote requester can abuse.
    same_segment,
    /// For routed private LANs (several subnets behind one router, where pupnp's strict
    /// same-subnet check broke real installations): a requester with a private address
    /// (10/8, 172.16/12, 192.168/16, 169.254/16, fc00::/7, fe80::/10, loopback) may name any
    /// private address; a public requester is held to same_segment.
    private_networks,
    /// No check. Only for closed test setups: this is the CallStranger hole.
    any,
};

/// One address of a local interface with its netmask (see local_interface_networks()).
struct UVGENA_API InterfaceNetwork {
    SocketAddress address;  ///< The interface's address (port ignored).
    SocketAddress netmask;  ///< Its netmask, same family (port ignored).
};

/// An IP network in CIDR form, e.g. 192.168.0.0/16 or fd00::/8.
struct UVGENA_API IpNetwork {
    SocketAddress address;  ///< Network address (port ignored).
    unsigned prefix = 0;    ///< Prefix length in bits.

    /// Parses "192.168.0.0/16", "fd00::/8" or a bare address (a host network). Fails with
    /// uvgena::errc::invalid_argument.
    static Result<IpNetwork> parse(std::string_view text);
    /// True if `ip` (IPv4-mapped IPv6 counted as IPv4) is inside this network.
    bool contains(const SocketAddress& ip) const noexcept;
};

/// The facts a CALLBACK decision is made from.
struct UVGENA_API CallbackCheck {
    SocketAddress requester;                       ///< The SUBSCRIBE's peer address.
    SocketAddress local;                           ///< The address the SUBSCRIBE arrived on.
    std::span<const InterfaceNetwork> interfaces;  ///< The host's interfaces.
    CallbackScope scope = CallbackScope::same_segment;
    std::span<const IpNetwork> extra_allowed;  ///< Networks always allowed in addition.
};

/// True if a NOTIFY may be sent to `callback_ip` (an IP literal; the port is ignored).
/// IPv4-mapped IPv6 addresses are compared as IPv4, IPv6 scope ids are ignored. Broadcast,
/// multicast and unspecified addresses are refused in every scope (see
/// is_unicast_callback_address).
UVGENA_API bool callback_allowed(const SocketAddress& callback_ip,
                                 const CallbackCheck& check) noexcept;

/// False for addresses that are not one host: IPv4 0/8, multicast 224/4, 240/4 and
/// 255.255.255.255, IPv6 :: and ff00::/8, and the broadcast and network addresses of the
/// IPv4 subnets of `interfaces` (wider than /31), e.g. 10.77.0.255 on 10.77.0.0/24.
UVGENA_API bool is_unicast_callback_address(const SocketAddress& ip,
                                            std::span<const InterfaceNetwork> interfaces) noexcept;

/// True for loopback, RFC 1918, link-local (IPv4 and IPv6) and unique-local IPv6 addresses.
UVGENA_API bool is_private_address(const SocketAddress& ip) noexcept;

}  // namespace uvgena::gena
