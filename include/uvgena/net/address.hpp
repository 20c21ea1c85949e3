// SocketAddress: an IPv4 or IPv6 address with a port, as a value.
#pragma once

#include <uv.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"

namespace uvgena {

/// An IPv4 or IPv6 socket address (a sockaddr_storage inside). Default-constructed it is
/// unspecified (family AF_UNSPEC).
class UVGENA_API SocketAddress {
  public:
    /// An unspecified address.
    SocketAddress() noexcept;

    /// Parses an IP literal ("192.168.1.20", "::1", "fe80::1%eth0" or "fe80::1%2") with a port.
    static Result<SocketAddress> try_parse(std::string_view ip, std::uint16_t port) noexcept;
    /// Like try_parse, throwing Error(errc::invalid_argument) naming the input.
    static SocketAddress parse(std::string_view ip, std::uint16_t port);
    /// Parses "host:port" with an IP literal host: "1.2.3.4:1400", "[::1]:1400",
    /// "[fe80::1%eth0]:80".
    static Result<SocketAddress> try_parse(std::string_view host_port) noexcept;
    /// Like try_parse(host_port), throwing Error(errc::invalid_argument).
    static SocketAddress parse(std::string_view host_port);
    /// Copies an AF_INET or AF_INET6 sockaddr; fails with errc::invalid_argument otherwise.
    static Result<SocketAddress> from_sockaddr(const sockaddr* sa) noexcept;

    /// 0.0.0.0:port
    static SocketAddress ipv4_any(std::uint16_t port = 0) noexcept;
    /// [::]:port
    static SocketAddress ipv6_any(std::uint16_t port = 0) noexcept;
    /// 127.0.0.1:port
    static SocketAddress ipv4_loopback(std::uint16_t port = 0) noexcept;
    /// [::1]:port
    static SocketAddress ipv6_loopback(std::uint16_t port = 0) noexcept;

    /// AF_INET, AF_INET6 or AF_UNSPEC.
    int family() const noexcept;
    /// True for AF_INET.
    bool is_ipv4() const noexcept;
    /// True for AF_INET6.
    bool is_ipv6() const noexcept;
    /// True unless unspecified.
    bool valid() const noexcept { return is_ipv4() || is_ipv6(); }
    /// True for 127.0.0.0/8 or ::1.
    bool is_loopback() const noexcept;
    /// The port (host byte order).
    std::uint16_t port() const noexcept;
    /// Sets the port.
    void set_port(std::uint16_t port) noexcept;
    /// IPv6 scope id (0 for IPv4).
    std::uint32_t scope_id() const noexcept;
    /// True for an IPv4-mapped IPv6 address (::ffff:a.b.c.d), the form in which a dual-stack
    /// socket reports IPv4 peers.
    bool is_ipv4_mapped() const noexcept;
    /// The IPv4 address (same port) of an IPv4-mapped one; any other address unchanged: for
    /// comparing and printing addresses whatever the family of the socket that saw them.
    SocketAddress unmapped() const noexcept;

    /// The IP alone: "1.2.3.4", "::1", "fe80::1%eth0" (scope by name when it has one).
    std::string ip() const;
    /// "1.2.3.4:1400", "[::1]:1400"; "(unspecified)" when not valid.
    std::string to_string() const;

    /// The sockaddr to hand to libuv / the socket API.
    const sockaddr* sockaddr_ptr() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage_);
    }
    /// Size of the sockaddr for the family (0 when unspecified).
    unsigned sockaddr_len() const noexcept;

    /// Same family, IP, port and scope.
    friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

  private:
    sockaddr_storage storage_;
};

/// Writes to_string().
UVGENA_API std::ostream& operator<<(std::ostream& out, const SocketAddress& address);

}  // namespace uvgena
