// Which local address reaches a peer: the route lookup behind the CALLBACK URL.
//
// Private to the library (the subscriber layer uses it to tell a device where to send its
// NOTIFYs). It asks the kernel, not libuv: a connected UDP socket's local name is the source
// address the routing table picks for that destination; nothing is sent.
#pragma once

#include "uvgena/core/result.hpp"
#include "uvgena/net/address.hpp"

namespace uvgena::net {

/// The local address a socket would use to reach `peer` (its port is the ephemeral one the
/// probe got, meaningless to callers). Fails with errc::invalid_argument for an unspecified
/// address, else with the system's error (e.g. ENETUNREACH for an unroutable destination).
Result<SocketAddress> local_address_towards(const SocketAddress& peer) noexcept;

}  // namespace uvgena::net
