// TCP over libuv: resolve, connect, streams and listeners. Each has its own header; this one
// includes them all, as it did when it held them.
#pragma once

#include "uvgena/net/resolve.hpp"       // IWYU pragma: export
#include "uvgena/net/tcp_listener.hpp"  // IWYU pragma: export
#include "uvgena/net/tcp_stream.hpp"    // IWYU pragma: export
