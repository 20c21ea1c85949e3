#include "uvgena/net/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <charconv>
#include <cstring>
#include <ostream>

namespace uvgena {
namespace {

sockaddr_in* as_in(sockaddr_storage& s) noexcept {
    return reinterpret_cast<sockaddr_in*>(&s);
}
const sockaddr_in* as_in(const sockaddr_storage& s) noexcept {
    return reinterpret_cast<const sockaddr_in*>(&s);
}
sockaddr_in6* as_in6(sockaddr_storage& s) noexcept {
    return reinterpret_cast<sockaddr_in6*>(&s);
}
const sockaddr_in6* as_in6(const sockaddr_storage& s) noexcept {
    return reinterpret_cast<const sockaddr_in6*>(&s);
}

Failure invalid() noexcept {
    return fail(errc::invalid_argument);
}

}  // namespace

SocketAddress::SocketAddress() noexcept {
    std::memset(&storage_, 0, sizeof storage_);
    storage_.ss_family = AF_UNSPEC;
}

Result<SocketAddress> SocketAddress::try_parse(std::string_view ip, std::uint16_t port) noexcept {
    if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN + IF_NAMESIZE) return invalid();
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
    std::memcpy(text, ip.data(), ip.size());
    text[ip.size()] = '\0';
    SocketAddress a;
    if (ip.find(':') == std::string_view::npos) {
        sockaddr_in* in = as_in(a.storage_);
        if (inet_pton(AF_INET, text, &in->sin_addr) != 1) return invalid();
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        return a;
    }
    sockaddr_in6* in6 = as_in6(a.storage_);
    char* percent = std::strchr(text, '%');
    std::uint32_t scope = 0;
    if (percent != nullptr) {
        *percent = '\0';
        const char* zone = percent + 1;
        std::size_t zone_len = std::strlen(zone);
        if (zone_len == 0) return invalid();
        auto [end, ec] = std::from_chars(zone, zone + zone_len, scope);
        if (ec != std::errc() || end != zone + zone_len) {
            scope = if_nametoindex(zone);
            if (scope == 0) return invalid();
        }
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1) return invalid();
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    in6->sin6_scope_id = scope;
    return a;
}

SocketAddress SocketAddress::parse(std::string_view ip, std::uint16_t port) {
    auto r = try_parse(ip, port);
    if (!r) throw Error(r.error(), "invalid IP address \"" + std::string(ip) + "\"");
    return *r;
}

Result<SocketAddress> SocketAddress::try_parse(std::string_view host_port) noexcept {
    std::string_view host;
    std::string_view port_text;
    if (!host_port.empty() && host_port.front() == '[') {
        auto close = host_port.find(']');
        if (close == std::string_view::npos || close + 1 >= host_port.size() ||
            host_port[close + 1] != ':') {
            return invalid();
        }
        host = host_port.substr(1, close - 1);
        port_text = host_port.substr(close + 2);
    } else {
        auto colon = host_port.rfind(':');
        if (colon == std::string_view::npos) return invalid();
        host = host_port.substr(0, colon);
        if (host.find(':') != std::string_view::npos) return invalid();  // IPv6 needs [ ]
        port_text = host_port.substr(colon + 1);
    }
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port > 65535) {
        return invalid();
    }
    return try_parse(host, static_cast<std::uint16_t>(port));
}

SocketAddress SocketAddress::parse(std::string_view host_port) {
    auto r = try_parse(host_port);
    if (!r) throw Error(r.error(), "invalid socket address \"" + std::string(host_port) + "\"");
    return *r;
}

Result<SocketAddress> SocketAddress::from_sockaddr(const sockaddr* sa) noexcept {
    if (sa == nullptr) return invalid();
    SocketAddress a;
    if (sa->sa_family == AF_INET) {
        std::memcpy(&a.storage_, sa, sizeof(sockaddr_in));
    } else if (sa->sa_family == AF_INET6) {
        std::memcpy(&a.storage_, sa, sizeof(sockaddr_in6));
    } else {
        return invalid();
    }
    return a;
}

namespace {
// The well-known addresses, built as the sockaddr they are (never invalid).
SocketAddress ipv4_address(std::uint32_t host_order, std::uint16_t port) noexcept {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(host_order);
    in.sin_port = htons(port);
    return *SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in));
}
SocketAddress ipv6_address(const in6_addr& address, std::uint16_t port) noexcept {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_addr = address;
    in6.sin6_port = htons(port);
    return *SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6));
}
}  // namespace

SocketAddress SocketAddress::ipv4_any(std::uint16_t port) noexcept {
    return ipv4_address(INADDR_ANY, port);
}

SocketAddress SocketAddress::ipv6_any(std::uint16_t port) noexcept {
    return ipv6_address(in6addr_any, port);
}

SocketAddress SocketAddress::ipv4_loopback(std::uint16_t port) noexcept {
    return ipv4_address(INADDR_LOOPBACK, port);
}

SocketAddress SocketAddress::ipv6_loopback(std::uint16_t port) noexcept {
    return ipv6_address(in6addr_loopback, port);
}

int SocketAddress::family() const noexcept {
    return storage_.ss_family;
}
bool SocketAddress::is_ipv4() const noexcept {
    return storage_.ss_family == AF_INET;
}
bool SocketAddress::is_ipv6() const noexcept {
    return storage_.ss_family == AF_INET6;
}

bool SocketAddress::is_loopback() const noexcept {
    if (is_ipv4()) return (ntohl(as_in(storage_)->sin_addr.s_addr) >> 24) == 127;
    if (is_ipv6()) return IN6_IS_ADDR_LOOPBACK(&as_in6(storage_)->sin6_addr);
    return false;
}

std::uint16_t SocketAddress::port() const noexcept {
    if (is_ipv4()) return ntohs(as_in(storage_)->sin_port);
    if (is_ipv6()) return ntohs(as_in6(storage_)->sin6_port);
    return 0;
}

void SocketAddress::set_port(std::uint16_t port) noexcept {
    if (is_ipv4()) as_in(storage_)->sin_port = htons(port);
    if (is_ipv6()) as_in6(storage_)->sin6_port = htons(port);
}

std::uint32_t SocketAddress::scope_id() const noexcept {
    return is_ipv6() ? as_in6(storage_)->sin6_scope_id : 0;
}

bool SocketAddress::is_ipv4_mapped() const noexcept {
    return is_ipv6() && IN6_IS_ADDR_V4MAPPED(&as_in6(storage_)->sin6_addr);
}

SocketAddress SocketAddress::unmapped() const noexcept {
    if (!is_ipv4_mapped()) return *this;
    SocketAddress a;
    sockaddr_in* in = as_in(a.storage_);
    in->sin_family = AF_INET;
    std::memcpy(&in->sin_addr, &as_in6(storage_)->sin6_addr.s6_addr[12], 4);
    in->sin_port = as_in6(storage_)->sin6_port;
    return a;
}

std::string SocketAddress::ip() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (is_ipv4()) {
        inet_ntop(AF_INET, &as_in(storage_)->sin_addr, text, sizeof text);
        return text;
    }
    if (is_ipv6()) {
        inet_ntop(AF_INET6, &as_in6(storage_)->sin6_addr, text, sizeof text);
        std::string out = text;
        if (std::uint32_t scope = scope_id(); scope != 0) {
            char name[IF_NAMESIZE] = {};
            out += '%';
            out +=
                if_indextoname(scope, name) != nullptr ? std::string(name) : std::to_string(scope);
        }
        return out;
    }
    return {};
}

std::string SocketAddress::to_string() const {
    if (is_ipv4()) return ip() + ':' + std::to_string(port());
    if (is_ipv6()) return '[' + ip() + "]:" + std::to_string(port());
    return "(unspecified)";
}

unsigned SocketAddress::sockaddr_len() const noexcept {
    if (is_ipv4()) return sizeof(sockaddr_in);
    if (is_ipv6()) return sizeof(sockaddr_in6);
    return 0;
}

// Exported here: the header declares it as a friend, where UVGENA_API cannot go.
UVGENA_API bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
    if (a.family() != b.family()) return false;
    if (a.is_ipv4()) {
        return as_in(a.storage_)->sin_addr.s_addr == as_in(b.storage_)->sin_addr.s_addr &&
               a.port() == b.port();
    }
    if (a.is_ipv6()) {
        return std::memcmp(&as_in6(a.storage_)->sin6_addr, &as_in6(b.storage_)->sin6_addr,
                           sizeof(in6_addr)) == 0 &&
               a.port() == b.port() && a.scope_id() == b.scope_id();
    }
    return true;
}

std::ostream& operator<<(std::ostream& out, const SocketAddress& address) {
    return out << address.to_string();
}

}  // namespace uvgena
