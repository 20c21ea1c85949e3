// Internal helpers of the ssdp I/O: group listening sockets, dates, product token.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "uvgena/co/udp.hpp"

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

/// Binds `spec.port` (shared: SO_REUSEADDR) once per family and joins the group on every
/// chosen interface. An interface that refuses to join is logged and skipped; throws Error
/// if no interface could join.
std::vector<UdpSocket> open_group_listeners(uv_loop_t* loop, const GroupSpec& spec);

/// The current time as an RFC 1123 date ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string rfc1123_now();

/// The context part of a system_error's what() ("context: message" without the message),
/// for rethrowing with more context without repeating the message.
std::string context_of(const std::system_error& e);

/// The UDN of a USN ("uuid:X" of "uuid:X::urn:..."), or the whole USN if it has none.
std::string udn_of(std::string_view usn);

}  // namespace uvgena::ssdp::detail
