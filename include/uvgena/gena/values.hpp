// Typed access to state-variable values, which stay strings in events. Each helper returns
// a Result (errors in the GENA category); `.value()` on it throws uvgena::Error.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <string_view>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/gena/error.hpp"

namespace uvgena::gena {

/// Reads a decimal integer (optional sign, surrounding ASCII whitespace ignored) and checks
/// it lies in [min, max]. Errors: value_not_integer, value_out_of_range.
UVGENA_API Result<std::int64_t> to_integer(
    std::string_view text, std::int64_t min = std::numeric_limits<std::int64_t>::min(),
    std::int64_t max = std::numeric_limits<std::int64_t>::max());

/// Reads a decimal integer into the range of `Int` (e.g. to_integer_as<std::uint16_t>).
template <typename Int>
Result<Int> to_integer_as(std::string_view text) {
    static_assert(std::numeric_limits<Int>::is_integer && sizeof(Int) <= 8);
    constexpr auto lo = static_cast<std::int64_t>(std::numeric_limits<Int>::min());
    constexpr auto hi = std::numeric_limits<Int>::max() >
                                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                            ? std::numeric_limits<std::int64_t>::max()
                            : static_cast<std::int64_t>(std::numeric_limits<Int>::max());
    auto r = to_integer(text, lo, hi);
    if (!r) return fail(r.error());
    return static_cast<Int>(*r);
}

/// Reads a UPnP boolean: "0"/"1", "true"/"false", "yes"/"no" (case-insensitive, surrounding
/// whitespace ignored). Error: value_not_boolean.
UVGENA_API Result<bool> to_boolean(std::string_view text);

/// Reads a UPnP duration "H+:MM:SS[.F+]" (CurrentTrackDuration, res@duration) into
/// milliseconds. "NOT_IMPLEMENTED" and malformed text fail with value_not_integer.
UVGENA_API Result<std::chrono::milliseconds> to_duration(std::string_view text);

}  // namespace uvgena::gena
