#include "uvgena/gena/callback_policy.hpp"

#include <array>
#include <cstring>
#include <string>

#include "uvgena/core/strings.hpp"

namespace uvgena::gena {
namespace {

// An address as raw bytes: 4 for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6; size 0 when
// unspecified. Ports and scope ids are not part of it.
struct RawIp {
    std::array<unsigned char, 16> bytes{};
    std::size_t size = 0;
};

RawIp raw_of(const SocketAddress& address) noexcept {
    RawIp r;
    SocketAddress a = address.unmapped();
    if (a.is_ipv4()) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr());
        std::memcpy(r.bytes.data(), &sin->sin_addr, 4);
        r.size = 4;
    } else if (a.is_ipv6()) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr());
        std::memcpy(r.bytes.data(), &sin6->sin6_addr, 16);
        r.size = 16;
    }
    return r;
}

bool same_ip(const RawIp& a, const RawIp& b) noexcept {
    return a.size != 0 && a.size == b.size &&
           std::memcmp(a.bytes.data(), b.bytes.data(), a.size) == 0;
}

// True if `a` and `b` agree on the bits set in `mask` (all of the same size).
bool same_network(const RawIp& a, const RawIp& b, const RawIp& mask) noexcept {
    if (a.size == 0 || a.size != b.size || a.size != mask.size) return false;
    for (std::size_t i = 0; i < a.size; ++i) {
        if ((a.bytes[i] & mask.bytes[i]) != (b.bytes[i] & mask.bytes[i])) return false;
    }
    return true;
}

// True if the first `prefix` bits of `a` and `b` agree.
bool prefix_match(const RawIp& a, const RawIp& b, unsigned prefix) noexcept {
    if (a.size == 0 || a.size != b.size || prefix > a.size * 8) return false;
    unsigned full = prefix / 8, rest = prefix % 8;
    if (std::memcmp(a.bytes.data(), b.bytes.data(), full) != 0) return false;
    if (rest == 0) return true;
    unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
    return (a.bytes[full] & mask) == (b.bytes[full] & mask);
}

bool is_loopback_raw(const RawIp& r) noexcept {
    if (r.size == 4) return r.bytes[0] == 127;
    if (r.size == 16) {
        for (std::size_t i = 0; i < 15; ++i) {
            if (r.bytes[i] != 0) return false;
        }
        return r.bytes[15] == 1;
    }
    return false;
}

bool is_private_raw(const RawIp& r) noexcept {
    if (is_loopback_raw(r)) return true;
    if (r.size == 4) {
        const auto& b = r.bytes;
        return b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168) ||
               (b[0] == 169 && b[1] == 254);
    }
    if (r.size == 16) {
        return (r.bytes[0] & 0xFE) == 0xFC ||                        // fc00::/7
               (r.bytes[0] == 0xFE && (r.bytes[1] & 0xC0) == 0x80);  // fe80::/10
    }
    return false;
}

// True if `requester` is on the segment of the interface whose address is `local`, and so is
// `callback`.
bool on_local_segment(const RawIp& callback, const RawIp& requester, const RawIp& local,
                      std::span<const InterfaceNetwork> interfaces) noexcept {
    for (const InterfaceNetwork& net : interfaces) {
        RawIp address = raw_of(net.address);
        if (!same_ip(address, local)) continue;
        RawIp mask = raw_of(net.netmask);
        // A netmask read as an IPv4-mapped address would have been shortened: rebuild it.
        if (mask.size != address.size) continue;
        if (same_network(requester, address, mask) && same_network(callback, address, mask)) {
            return true;
        }
    }
    return false;
}

// Addresses no single TCP peer lives at: IPv4 "this network" (0/8), multicast (224/4),
// reserved and limited broadcast (240/4, 255.255.255.255); IPv6 unspecified and multicast
// (ff00::/8); and the broadcast and network addresses of any local IPv4 subnet wider than
// /31 (e.g. 10.77.0.255 on an interface in 10.77.0.0/24). A NOTIFY there would reach every
// host of the segment or none.
bool is_non_unicast_raw(const RawIp& r, std::span<const InterfaceNetwork> interfaces) noexcept {
    if (r.size == 4) {
        if (r.bytes[0] == 0 || r.bytes[0] >= 224) return true;
        for (const InterfaceNetwork& net : interfaces) {
            RawIp address = raw_of(net.address), mask = raw_of(net.netmask);
            if (address.size != 4 || mask.size != 4 || !same_network(r, address, mask)) continue;
            unsigned host_bits = 0;
            for (std::size_t i = 0; i < 4; ++i) {
                host_bits += static_cast<unsigned>(
                    __builtin_popcount(static_cast<unsigned char>(~mask.bytes[i])));
            }
            if (host_bits < 2) continue;  // /31 and /32 have no broadcast address
            bool all_ones = true, all_zeros = true;
            for (std::size_t i = 0; i < 4; ++i) {
                unsigned char host = static_cast<unsigned char>(r.bytes[i] & ~mask.bytes[i]);
                unsigned char full = static_cast<unsigned char>(~mask.bytes[i]);
                if (host != full) all_ones = false;
                if (host != 0) all_zeros = false;
            }
            if (all_ones || all_zeros) return true;
        }
        return false;
    }
    if (r.size == 16) {
        if (r.bytes[0] == 0xFF) return true;
        for (unsigned char b : r.bytes) {
            if (b != 0) return false;
        }
        return true;  // ::
    }
    return true;
}

}  // namespace

bool is_unicast_callback_address(const SocketAddress& ip,
                                 std::span<const InterfaceNetwork> interfaces) noexcept {
    return !is_non_unicast_raw(raw_of(ip), interfaces);
}

Result<IpNetwork> IpNetwork::parse(std::string_view text) {
    text = trim(text);
    std::string_view ip = text;
    std::optional<unsigned> prefix;
    if (auto slash = text.find('/'); slash != std::string_view::npos) {
        ip = text.substr(0, slash);
        prefix = parse_unsigned<unsigned>(text.substr(slash + 1));
        if (!prefix) return fail(uvgena::errc::invalid_argument);
    }
    auto address = SocketAddress::try_parse(ip, 0);
    if (!address) return fail(uvgena::errc::invalid_argument);
    unsigned bits = address->is_ipv4() ? 32u : 128u;
    if (prefix && *prefix > bits) return fail(uvgena::errc::invalid_argument);
    return IpNetwork{*address, prefix.value_or(bits)};
}

bool IpNetwork::contains(const SocketAddress& ip) const noexcept {
    RawIp net = raw_of(address), candidate = raw_of(ip);
    // A network written in IPv4 form is compared with IPv4 (and IPv4-mapped) addresses.
    return prefix_match(net, candidate, prefix);
}

bool is_private_address(const SocketAddress& ip) noexcept {
    return is_private_raw(raw_of(ip));
}

bool callback_allowed(const SocketAddress& callback_ip, const CallbackCheck& check) noexcept {
    RawIp callback = raw_of(callback_ip);
    if (callback.size == 0) return false;
    // Broadcast and multicast targets are refused in every scope, `any` included: they are
    // never one control point, and a NOTIFY there is a reflected flood.
    if (is_non_unicast_raw(callback, check.interfaces)) return false;
    if (check.scope == CallbackScope::any) return true;
    for (const IpNetwork& net : check.extra_allowed) {
        if (net.contains(callback_ip)) return true;
    }
    RawIp requester = raw_of(check.requester);
    if (same_ip(callback, requester)) return true;
    // Loopback to loopback stays on this host, whatever the family.
    if (is_loopback_raw(callback) && is_loopback_raw(requester)) return true;
    if (check.scope == CallbackScope::same_host) return false;
    RawIp local = raw_of(check.local);
    if (on_local_segment(callback, requester, local, check.interfaces)) return true;
    if (check.scope == CallbackScope::private_networks) {
        return is_private_raw(requester) && is_private_raw(callback);
    }
    return false;
}

}  // namespace uvgena::gena
