// The status sentinels that the I/O awaiters of net/ (TCP and UDP) keep beside libuv's codes.
#pragma once

namespace uvgena::detail {

// Positive, so that they never collide with a libuv status (always negative) or success (0).
inline constexpr int kClosed = 1;     ///< The handle closed before the operation completed.
inline constexpr int kInvalid = 2;    ///< The operation was refused before it started.
inline constexpr int kCancelled = 3;  ///< The awaiting task's stop token was triggered.

}  // namespace uvgena::detail
