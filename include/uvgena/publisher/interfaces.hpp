// The host's interface addresses, for the publisher's CALLBACK checks (CallStranger): the
// I/O half of gena/callback_policy.hpp, which decides from the list alone.
#pragma once

#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/gena/callback_policy.hpp"

namespace uvgena::gena {

/// The host's interface addresses with netmasks (uv_interface_addresses); empty on failure.
UVGENA_API std::vector<InterfaceNetwork> local_interface_networks();

}  // namespace uvgena::gena
