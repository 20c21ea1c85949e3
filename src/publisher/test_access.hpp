// Test access to a Publisher's internals: what no application may do, but tests need (e.g.
// the SEQ wrap from 4294967295 to 1 without sending four billion events). Private header.
#pragma once

#include <cstdint>
#include <string_view>

#include "uvgena/publisher/publisher.hpp"

namespace uvgena::gena::detail {

/// The friend of Publisher that tests use.
struct PublisherTestAccess {
    /// Sets the SEQ the next NOTIFY to `sid` will carry. False if `sid` is unknown.
    static bool set_next_seq(Publisher& publisher, std::string_view sid, std::uint32_t seq);
};

}  // namespace uvgena::gena::detail
