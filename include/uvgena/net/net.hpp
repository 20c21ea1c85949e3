// Umbrella header of the network layer: socket addresses, TCP streams and listeners, UDP,
// and name resolution, each an awaitable over libuv.
#pragma once

#include "uvgena/net/address.hpp"  // IWYU pragma: export
#include "uvgena/net/tcp.hpp"      // IWYU pragma: export
#include "uvgena/net/udp.hpp"      // IWYU pragma: export
