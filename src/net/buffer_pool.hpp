// The pool of TCP read buffers (one per stream being read, TcpStream::read_buffer_size each).
#pragma once

#include <memory>

namespace uvgena::detail {

/// A read buffer, or null if the system has no memory left.
char* take_read_buffer() noexcept;
/// Gives a buffer from take_read_buffer back (null is ignored).
void give_back_read_buffer(char* buffer) noexcept;

/// Deleter of a read buffer held in a unique_ptr.
struct ReadBufferRelease {
    void operator()(char* buffer) const noexcept { give_back_read_buffer(buffer); }
};

}  // namespace uvgena::detail
