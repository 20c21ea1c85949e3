// The heap half of a TcpStream and its write request: shared by the stream's read/write
// (stream.cpp), connect/shutdown (connect.cpp) and the listener, which creates accepted ones.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "net/buffer_pool.hpp"
#include "net/completion.hpp"
#include "uvgena/net/tcp_stream.hpp"

namespace uvgena::detail {

/// Throws the Error for an awaiter status (a libuv code or a sentinel of completion.hpp),
/// `context` naming the operation.
[[noreturn]] void throw_status(int status, const std::string& context);

/// The local or peer address of `tcp` (`get` is uv_tcp_getsockname or uv_tcp_getpeername).
SocketAddress name_of(int (*get)(const uv_tcp_t*, sockaddr*, int*), const uv_tcp_t* tcp,
                      const char* what);

/// Whether a request on the stream `handle` may start: not when the stream is gone or closing
/// (`status` = kClosed) or the stop was already requested (`cancelled`); the awaiter then
/// resumes at once and throws.
bool may_start(const StreamHandle* handle, const std::stop_token* token, int& status,
               bool& cancelled) noexcept;

/// Makes a TcpStream own `handle` (the constructor is private to the public API).
class StreamFactory {
  public:
    static TcpStream adopt(StreamHandle* handle) noexcept { return TcpStream(handle); }
    static StreamHandle* handle_of(const TcpStream& stream) noexcept { return stream.handle_; }
};

/// `co_await wait_readable(stream)`: waits, as read_some does, until bytes or the end of
/// stream arrived, or the stream was closed, the wait cancelled or the read failed; tells
/// none of them apart and never throws. For a wait whose only outcome is to close (the
/// server's close grace, which its timer ends by closing the stream), so that an ending wait
/// costs no exception.
class [[nodiscard]] QuietReadAwaiter final : public ReadAwaiter {
  public:
    using ReadAwaiter::ReadAwaiter;
    void await_resume() noexcept {
        stop_.reset();
        unpin_on_resume();
    }
};

inline QuietReadAwaiter wait_readable(TcpStream& stream) noexcept {
    return QuietReadAwaiter(StreamFactory::handle_of(stream), {}, false);
}

/// For a response that the stream's close follows at once, in the same loop turn: sends what
/// of `data` the socket takes now, marked MSG_MORE, so that the kernel holds a short tail back
/// for the FIN, and the client gets the response and the end of stream in one segment instead
/// of two (one transmission, one wake-up and one ACK less per connection). Returns the bytes
/// sent: 0 if the stream is closed, has writes queued, or the socket is full or failed (a
/// normal write of the rest then reports the error). Unless all was sent and end_output
/// follows, the rest must be written without the flag (which pushes the held bytes out).
std::size_t send_before_close(TcpStream& stream, std::string_view data) noexcept;

/// After send_before_close sent everything: shutdown(SHUT_WR), which sends the FIN with the
/// held bytes. Not left to close(): a close with received bytes unread (a client that sent
/// more after asking to close, in the instant before) resets the connection and drops what
/// is still held, whereas after the shutdown the response and the FIN are already out, as
/// they were when the response was sent at once.
void end_output(TcpStream& stream) noexcept;

/// The heap half of a TcpStream: the uv_tcp_t, the read buffer and the state that libuv's
/// callbacks reach. Owned by the TcpStream; freed as IoHandle says (the TcpStream may still
/// point here after an internal close: a cancelled write closes the socket).
struct StreamHandle final : IoHandle {
    uv_tcp_t tcp;

    // Read side: bytes [begin, end) of buf are received and unconsumed; the first
    // view_pending of them were handed out by read_some and are consumed by the next read.
    std::unique_ptr<char, ReadBufferRelease> buf;
    std::size_t begin = 0;
    std::size_t end = 0;
    std::size_t view_pending = 0;
    bool reading = false;
    // Accepted and never read from: its first read tries the socket directly (read_directly).
    bool fresh = false;
    int read_status = 0;  // 0, UV_EOF or a libuv error, once reading ended
    ReadAwaiter* reader = nullptr;

    WriteOp* spare = nullptr;  // one write request kept for reuse
    std::optional<SocketAddress> peer;

    static StreamHandle* create(uv_loop_t* loop) {
        auto* h = new StreamHandle;
        h->ctx = LoopRef(loop);
        int r = uv_tcp_init(loop, &h->tcp);
        if (r < 0) {
            delete h;
            throw Error(uv_error(r), "uv_tcp_init");
        }
        h->tcp.data = h;
        return h;
    }

    uv_stream_t* stream() noexcept { return reinterpret_cast<uv_stream_t*>(&tcp); }
    uv_handle_t* handle() noexcept { return reinterpret_cast<uv_handle_t*>(&tcp); }

    /// Asks the kernel for the peer's address once (a reset peer can no longer be asked).
    void remember_peer() noexcept {
        if (peer) return;
        sockaddr_storage ss{};
        int len = sizeof ss;
        if (uv_tcp_getpeername(&tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
            auto a = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
            if (a) peer = *a;
        }
    }

    std::string describe_peer() {
        remember_peer();
        return peer ? peer->to_string() : std::string("(unknown peer)");
    }

    void close() noexcept;
    ~StreamHandle() override;

    // Makes the free tail as large as possible without moving bytes a view still shows.
    std::size_t make_room() noexcept {
        if (view_pending == 0) {
            if (begin == end) {
                begin = end = 0;
            } else if (begin > 0 && TcpStream::read_buffer_size - end < 4096) {
                std::memmove(buf.get(), buf.get() + begin, end - begin);
                end -= begin;
                begin = 0;
            }
        }
        return TcpStream::read_buffer_size - end;
    }

    void start_reading() noexcept {
        if (reading || read_status != 0 || closing) return;
        if (!buf) {
            buf.reset(take_read_buffer());
            if (!buf) {
                read_status = UV_ENOMEM;
                return;
            }
        }
        if (make_room() == 0) return;
        int r = uv_read_start(stream(), &StreamHandle::on_alloc, &StreamHandle::on_read);
        if (r < 0) {
            read_status = r;
        } else {
            reading = true;
        }
    }

    /// The first read of an accepted connection: one non-blocking recv() into the buffer,
    /// before libuv is asked to watch the socket. A client's request is usually there by the
    /// time its connection is accepted (always with TCP_DEFER_ACCEPT, see ListenOptions), so
    /// a connection answered and closed within the same loop turn is never added to epoll:
    /// no epoll_ctl(ADD), no wake-up for its bytes. uv_read_start only queues the watcher
    /// until the loop polls next; the close removes it from that queue (only libuv's
    /// unconditional epoll_ctl(DEL) stays). Returns true if it received bytes or ended
    /// reading (end of stream, error): what libuv's read callback would have reported.
    bool read_directly() noexcept;

    void stop_reading() noexcept {
        if (!reading) return;
        uv_read_stop(stream());
        reading = false;
    }

    static void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* out) {
        auto* h = static_cast<StreamHandle*>(handle->data);
        std::size_t room = h->make_room();
        *out = uv_buf_init(h->buf.get() + h->end, static_cast<unsigned>(room));
    }

    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
        auto* h = static_cast<StreamHandle*>(stream->data);
        if (nread > 0) {
            h->end += static_cast<std::size_t>(nread);
            // Backpressure: stop only when the buffer is full.
            if (h->make_room() == 0) h->stop_reading();
        } else if (nread == 0) {
            return;
        } else if (nread == UV_ENOBUFS) {
            h->stop_reading();
            return;
        } else {
            h->read_status = static_cast<int>(nread);
            h->stop_reading();
        }
        if (h->reader != nullptr && (h->begin < h->end || h->read_status != 0)) {
            ReadAwaiter* r = h->reader;
            h->reader = nullptr;
            complete(r->pin_, h, &r->waiter_);
        }
    }

    /// The owner lets go: closes the socket; the memory goes with the close callback.
    void release() noexcept { disown(this); }

    static void on_close(uv_handle_t* handle) {
        static_cast<StreamHandle*>(handle->data)->close_finished();
    }
};

/// A write request and, for write(std::string&&), the bytes it owns. Given to libuv and
/// taken back in on_write; the awaiter holds only a back-pointer.
struct WriteOp {
    uv_write_t req;
    StreamHandle* handle = nullptr;
    WriteAwaiter* awaiter = nullptr;
    std::string owned;

    static void on_write(uv_write_t* req, int status) {
        auto* op = static_cast<WriteOp*>(req->data);
        WriteAwaiter* aw = op->awaiter;
        StreamHandle* h = op->handle;
        op->awaiter = nullptr;
        // Keep one request for the next write; a large owned buffer is not kept.
        if (op->owned.capacity() > 4096) {
            std::string().swap(op->owned);
        } else {
            op->owned.clear();
        }
        if (h->spare == nullptr) {
            h->spare = op;
        } else {
            delete op;
        }
        if (aw != nullptr) {
            aw->op_ = nullptr;
            aw->status_ = status;
            complete(aw->pin_, h, &aw->waiter_);
        }
    }
};

inline bool may_start(const StreamHandle* handle, const std::stop_token* token, int& status,
                      bool& cancelled) noexcept {
    if (handle == nullptr || handle->closing) {
        status = kClosed;
        return false;
    }
    if (token != nullptr && token->stop_requested()) {
        cancelled = true;
        return false;
    }
    return true;
}

}  // namespace uvgena::detail
