// Random bytes from the operating system's CSPRNG (getrandom(2)): what a secret the library
// hands out (a subscription id, the only credential for renewing and cancelling a
// subscription) must come from. A seeded PRNG such as std::mt19937_64 is predictable from a
// few of its outputs and duplicated by fork(); the kernel generator is neither.
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "uvgena/core/export.hpp"

namespace uvgena {

/// Fills `out` with bytes of the kernel's CSPRNG (getrandom(2), blocking only until the pool
/// is first initialised at boot). Throws uvgena::Error when the kernel refuses: never a
/// weaker fallback.
UVGENA_API void os_random_bytes(std::span<std::byte> out);

/// 16 bytes of os_random_bytes, e.g. for a random UUID.
UVGENA_API std::array<std::byte, 16> os_random_16();

}  // namespace uvgena
