// TCP streams over libuv: connect, read, write, shutdown.
//
// Every handle and request is a heap object given to libuv and freed in libuv's callback;
// awaiters keep only a back-pointer. Errors are uvgena::Error with uv_category codes and a
// context naming the operation and the address ("connect to 127.0.0.1:9: ECONNREFUSED: ...").
// Cancellation (the task's stop token) resumes the awaiter with Error(errc::cancelled) once
// libuv let go of the operation: a pending connect, write or shutdown is cancelled by closing
// the stream (libuv 1.44 cannot cancel a write); a read just stops waiting (data already
// received stays buffered).
#pragma once

#include <uv.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "uvgena/co/loop_context.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/net/address.hpp"

namespace uvgena {

class TcpStream;

namespace detail {
struct IoHandle;
struct StreamHandle;
struct WriteOp;
class AcceptAwaiter;
class StreamFactory;

/// Awaiter of TcpStream::read / read_some.
class [[nodiscard]] UVGENA_API ReadAwaiter : public StoppableAwaiter<ReadAwaiter> {
  public:
    ReadAwaiter(StreamHandle* handle, std::span<char> buffer, bool copy) noexcept
        : handle_(handle), buffer_(buffer), copy_(copy) {}
    ~ReadAwaiter();
    /// Bytes copied (read) / a view of the buffered bytes (read_some); 0 / empty on EOF.
    std::size_t resume_count();
    /// See resume_count; the view form.
    std::string_view resume_view();

  protected:
    friend struct StreamHandle;
    friend class StoppableAwaiter<ReadAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_stop(ReadAwaiter* self) noexcept;
    // Ends the wait (stop callback, pin) and returns the bytes buffered, 0 at end of
    // stream; throws for a cancelled, closed or failed read.
    std::size_t take_available();
    void unpin_on_resume() noexcept;

    StreamHandle* handle_;
    std::span<char> buffer_;
    bool copy_;
    IoHandle* pin_ = nullptr;  // see src/net/completion.hpp
    int error_ = 0;            // set when failed by close / cancel
    Waiter waiter_;
    StopRegistration stop_;
};

/// `co_await stream.read(buffer)` yields the bytes copied.
class [[nodiscard]] UVGENA_API ReadCopyAwaiter : public ReadAwaiter {
  public:
    using ReadAwaiter::ReadAwaiter;
    std::size_t await_resume() { return resume_count(); }
};

/// `co_await stream.read_some()` yields a view of the stream's buffer.
class [[nodiscard]] UVGENA_API ReadViewAwaiter : public ReadAwaiter {
  public:
    using ReadAwaiter::ReadAwaiter;
    std::string_view await_resume() { return resume_view(); }
};

/// Awaiter of TcpStream::write.
class [[nodiscard]] UVGENA_API WriteAwaiter : public StoppableAwaiter<WriteAwaiter> {
  public:
    WriteAwaiter(StreamHandle* handle, std::string_view data) noexcept
        : handle_(handle), data_(data) {}
    WriteAwaiter(StreamHandle* handle, std::string&& owned) noexcept
        : handle_(handle), owned_(std::move(owned)), has_owned_(true) {}
    ~WriteAwaiter();
    /// Returns once every byte was handed to the kernel; throws on error or cancellation.
    void await_resume();

  private:
    friend struct WriteOp;
    friend struct StreamHandle;
    friend class StoppableAwaiter<WriteAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_stop(WriteAwaiter* self) noexcept;

    StreamHandle* handle_;
    std::string_view data_;
    std::string owned_;
    bool has_owned_ = false;
    WriteOp* op_ = nullptr;
    int status_ = 0;
    bool cancelled_ = false;
    IoHandle* pin_ = nullptr;  // see src/net/completion.hpp
    Waiter waiter_;
    StopRegistration stop_;
};

}  // namespace detail

/// Options of connect().
struct UVGENA_API ConnectOptions {
    /// Bind to this local address first (e.g. to choose the interface; port 0 = any).
    std::optional<SocketAddress> local_address;
    /// Disable Nagle's algorithm on the new connection.
    bool nodelay = true;
};

/// A connected TCP stream. Move-only; destroying or closing it closes the socket (pending
/// operations end with errors, memory is freed in libuv's close callback). One read at a
/// time; writes may overlap (they are queued in order). Reading starts with the first read
/// and continues into a bounded per-stream buffer (64 KiB) while it has room, so that a
/// stream being read does not toggle uv_read_start/stop for every read.
class UVGENA_API TcpStream {
  public:
    /// Size of the per-stream read buffer.
    static constexpr std::size_t read_buffer_size = 64 * 1024;

    /// A closed stream.
    TcpStream() noexcept = default;
    TcpStream(TcpStream&& other) noexcept;
    TcpStream& operator=(TcpStream&& other) noexcept;
    TcpStream(const TcpStream&) = delete;
    TcpStream& operator=(const TcpStream&) = delete;
    ~TcpStream();

    /// True until close() (or a move from it).
    bool is_open() const noexcept;

    /// `co_await read(buf)`: waits until some bytes arrived and copies up to buf.size() of
    /// them; 0 means end of stream. Throws Error on a socket error (e.g. ECONNRESET).
    detail::ReadCopyAwaiter read(std::span<char> buffer) noexcept {
        return detail::ReadCopyAwaiter(handle_, buffer, true);
    }
    /// `co_await read_some()`: waits until some bytes arrived and returns a view of all bytes
    /// buffered, valid until the next read/read_some/close; the view counts as consumed then.
    /// Empty means end of stream. Zero-copy form for parsers.
    detail::ReadViewAwaiter read_some() noexcept {
        return detail::ReadViewAwaiter(handle_, {}, false);
    }
    /// Marks only the first `n` bytes of the view returned by the last read_some as
    /// consumed; the rest stays buffered and comes first in the next read (for a parser that
    /// stopped mid-buffer, e.g. at the end of one pipelined request).
    void consume(std::size_t n) noexcept;

    /// `co_await write(data)`: writes every byte. `data` must stay valid until the write
    /// returns. A stopped write closes the stream (libuv cannot cancel a pending write).
    detail::WriteAwaiter write(std::string_view data) noexcept {
        return detail::WriteAwaiter(handle_, data);
    }
    /// Writes a C string (without its terminator).
    detail::WriteAwaiter write(const char* data) noexcept {
        return detail::WriteAwaiter(handle_, std::string_view(data));
    }
    /// Writes every byte of `data`, taking ownership (no copy, no lifetime constraint).
    detail::WriteAwaiter write(std::string&& data) noexcept {
        return detail::WriteAwaiter(handle_, std::move(data));
    }

    /// Sends FIN after the queued writes (half-close); reading stays possible.
    Task<void> shutdown();
    /// Closes the socket now; a waiting reader gets Error(errc::closed), pending writes
    /// Error(UV_ECANCELED). Idempotent.
    void close() noexcept;

    /// Address of the peer.
    SocketAddress peer_address() const;
    /// Local address of the socket.
    SocketAddress local_address() const;
    /// Enables or disables TCP_NODELAY.
    void set_nodelay(bool enable);
    /// Enables TCP keep-alive with the given initial delay in seconds (0 disables it).
    void set_keepalive(unsigned delay_seconds);
    /// Bytes received and not yet consumed.
    std::size_t buffered() const noexcept;
    /// Bytes queued in libuv, not yet handed to the kernel.
    std::size_t write_queue_size() const noexcept;
    /// The loop (nullptr when closed).
    uv_loop_t* loop() const noexcept;

  private:
    // Only connect() and accept make a stream from a handle.
    friend class detail::AcceptAwaiter;
    friend class detail::StreamFactory;
    explicit TcpStream(detail::StreamHandle* handle) noexcept : handle_(handle) {}

    detail::StreamHandle* handle_ = nullptr;
};

/// Connects to `address` (binding `options.local_address` first if given). Throws Error
/// naming the address: "connect to 127.0.0.1:9: ECONNREFUSED: connection refused".
UVGENA_API Task<TcpStream> connect(uv_loop_t* loop, SocketAddress address,
                                   ConnectOptions options = {});

}  // namespace uvgena
