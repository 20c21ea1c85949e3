// Internal helpers of the ssdp I/O: group listening sockets, dates, product token.
#pragma once

#include <uv.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "uvgena/net/udp.hpp"
#include "uvgena/ssdp/message.hpp"

namespace uvgena::ssdp::detail {

/// Which groups to listen to, on which port and interfaces.
struct GroupSpec {
    std::string_view interface;  ///< Name or address; empty: every interface.
    bool ipv4 = true;
    bool ipv6 = false;
    std::string_view group4;
    std::string_view group6;
    std::uint16_t port = 0;
    std::size_t max_queued = 256;
};

/// The addresses to use for multicast of `family` on `name` (see multicast_interfaces), at
/// most one per interface for IPv6: a global or unique-local address rather than a
/// link-local one (a LOCATION with a zone is awkward for peers), never a link-local one
/// without its scope, and never twice the same interface (joining a group twice on one
/// interface fails). Empty, not an error, when the interface `name` exists but has no
/// address of this family; throws like multicast_interfaces when `name` matches nothing.
std::vector<NetworkInterface> multicast_addresses(std::string_view name, int family);

/// A socket that sends to a multicast group out of one interface.
struct GroupSender {
    UdpSocket socket;            ///< Bound to the interface's address (any port).
    NetworkInterface interface;  ///< The interface and the address sent from.
    SocketAddress group;         ///< The group and port, with the interface's scope for IPv6.
    std::string host;            ///< HOST header: "239.255.255.250:1900", "[FF02::C]:1900".
};

/// One GroupSender per address that multicast_addresses gives for each family of `spec`
/// (multicast TTL / hop limit `ttl`, loop on so that this host's listeners hear it too).
/// Throws Error if a socket cannot be opened; an empty result is for the caller to judge.
std::vector<GroupSender> open_group_senders(uv_loop_t* loop, const GroupSpec& spec, int ttl);

/// Binds `spec.port` (shared: SO_REUSEADDR) once per family and joins the group on every
/// chosen interface. An interface that refuses to join is logged and skipped; throws Error
/// if no interface could join.
std::vector<UdpSocket> open_group_listeners(uv_loop_t* loop, const GroupSpec& spec);

/// The datagram in `packet`, or empty when it does not parse: then `malformed` is counted and
/// the reason logged at debug level. The first step of every SSDP receiver.
std::optional<Datagram> parse_received(const UdpPacket& packet, std::size_t& malformed);

/// The current time as an RFC 1123 date ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string rfc1123_now();

/// The UDN of a USN ("uuid:X" of "uuid:X::urn:..."), or the whole USN if it has none.
std::string udn_of(std::string_view usn);

}  // namespace uvgena::ssdp::detail
