// Name resolution over libuv (uv_getaddrinfo in its threadpool). A stopped resolve is
// uv_cancel'ed; the task resumes with Error(errc::cancelled).
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/net/address.hpp"

namespace uvgena {

/// Options of resolve().
struct UVGENA_API ResolveOptions {
    int family = AF_UNSPEC;     ///< AF_INET, AF_INET6 or AF_UNSPEC.
    bool numeric_host = false;  ///< Accept IP literals only (no name service lookup).
};

/// Resolves `host` with uv_getaddrinfo (threadpool) into TCP addresses carrying `port`,
/// without duplicates, in the resolver's order. Throws Error ("resolve NAME: EAI_NONAME...").
UVGENA_API Task<std::vector<SocketAddress>> resolve(uv_loop_t* loop, std::string host,
                                                    std::uint16_t port = 0,
                                                    ResolveOptions options = {});

}  // namespace uvgena
