// TcpStream: reading into the per-stream buffer and writing, over the StreamHandle.
#include "uvgena/net/tcp_stream.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "net/stream_handle.hpp"

namespace uvgena {
namespace detail {

void throw_status(int status, const std::string& context) {
    if (status == kClosed) throw Error(make_error_code(errc::closed), context + ": stream closed");
    if (status == kInvalid) throw Error(make_error_code(errc::invalid_argument), context);
    if (status == kCancelled) throw Error(make_error_code(errc::cancelled), context);
    throw Error(uv_error(status), context);
}

SocketAddress name_of(int (*get)(const uv_tcp_t*, sockaddr*, int*), const uv_tcp_t* tcp,
                      const char* what) {
    sockaddr_storage ss{};
    int len = sizeof ss;
    int r = get(tcp, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r < 0) throw Error(uv_error(r), what);
    return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).value();
}

StreamHandle::~StreamHandle() {
    delete spare;
}

void StreamHandle::close() noexcept {
    if (closing) return;
    closing = true;
    reading = false;
    if (reader != nullptr) {
        ReadAwaiter* r = reader;
        reader = nullptr;
        r->error_ = kClosed;
        r->handle_ = nullptr;
        wake_later(ctx.get(), &r->waiter_);
    }
    // Pending connect, write and shutdown requests complete with UV_ECANCELED before the
    // close callback frees this object.
    uv_close(handle(), &StreamHandle::on_close);
}

// ---------------------------------------------------------------------------------------
// Reading

bool StreamHandle::read_directly() noexcept {
    fresh = false;
    if (reading || read_status != 0 || closing) return false;
    if (!buf) {
        buf.reset(take_read_buffer());
        if (!buf) return false;  // start_reading reports it
    }
    std::size_t room = make_room();
    uv_os_fd_t fd = -1;
    if (room == 0 || uv_fileno(handle(), &fd) != 0) return false;
    ssize_t n = 0;
    do {
        n = ::recv(fd, buf.get() + end, room, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        end += static_cast<std::size_t>(n);
        return true;
    }
    if (n == 0) {
        read_status = UV_EOF;
        return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    // As libuv's read callback would report it (ECONNRESET, ...).
    read_status = uv_translate_sys_error(errno);
    return true;
}

ReadAwaiter::~ReadAwaiter() {
    stop_.reset();
    if (handle_ != nullptr && handle_->reader == this) handle_->reader = nullptr;
    drop_pin(pin_);
}

void ReadAwaiter::unpin_on_resume() noexcept {
    if (!resumed(pin_)) {
        handle_ = nullptr;
        error_ = kClosed;
    }
}

bool ReadAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (handle_ == nullptr || handle_->closing) {
        handle_ = nullptr;
        error_ = kClosed;
        return false;
    }
    if (token != nullptr && token->stop_requested()) {
        handle_ = nullptr;
        error_ = kCancelled;
        return false;
    }
    if (copy_ && buffer_.empty()) {
        error_ = kInvalid;
        return false;
    }
    StreamHandle* s = handle_;
    if (s->reader != nullptr) {
        throw Error(make_error_code(errc::invalid_argument),
                    "read: another read is already waiting on this TCP stream");
    }
    // What the previous read_some showed is consumed now.
    s->begin += s->view_pending;
    s->view_pending = 0;
    if (s->begin < s->end || s->read_status != 0) return false;
    if (s->fresh && s->read_directly()) return false;
    s->start_reading();
    if (s->read_status != 0) return false;
    waiter_.handle = h;
    register_stop<ReadAwaiter, &ReadAwaiter::on_stop>(stop_, token, this);
    s->reader = this;
    return true;
}

void ReadAwaiter::on_stop(ReadAwaiter* self) noexcept {
    StreamHandle* s = self->handle_;
    if (s == nullptr || s->reader != self) return;
    // Nothing to cancel in libuv: reading goes on into the buffer, so no byte is lost.
    s->reader = nullptr;
    self->handle_ = nullptr;
    self->error_ = kCancelled;
    wake_later(s->ctx.get(), &self->waiter_);
}

std::size_t ReadAwaiter::take_available() {
    stop_.reset();
    unpin_on_resume();
    if (error_ == kCancelled) throw_status(kCancelled, "read");
    if (error_ == kClosed) throw_status(kClosed, "read");
    if (error_ == kInvalid) throw_status(kInvalid, "read into an empty buffer");
    StreamHandle* s = handle_;
    std::size_t avail = s->end - s->begin;
    if (avail == 0 && s->read_status != UV_EOF) {
        throw_status(s->read_status, "read from " + s->describe_peer());
    }
    return avail;
}

std::size_t ReadAwaiter::resume_count() {
    std::size_t avail = take_available();
    if (avail == 0) return 0;  // end of stream
    StreamHandle* s = handle_;
    std::size_t n = std::min(avail, buffer_.size());
    std::memcpy(buffer_.data(), s->buf.get() + s->begin, n);
    s->begin += n;
    if (s->begin == s->end) s->begin = s->end = 0;
    s->start_reading();
    return n;
}

std::string_view ReadAwaiter::resume_view() {
    std::size_t avail = take_available();
    if (avail == 0) return {};  // end of stream
    StreamHandle* s = handle_;
    s->view_pending = avail;
    s->start_reading();
    return std::string_view(s->buf.get() + s->begin, avail);
}

// ---------------------------------------------------------------------------------------
// Writing

// Linux's flags; elsewhere the bytes go out at once (and the FIN with end_output after them).
#ifdef MSG_MORE
constexpr int kHoldBack = MSG_MORE;
#else
constexpr int kHoldBack = 0;
#endif
#ifdef MSG_NOSIGNAL
constexpr int kNoSignal = MSG_NOSIGNAL;
#else
constexpr int kNoSignal = 0;
#endif

std::size_t send_before_close(TcpStream& stream, std::string_view data) noexcept {
    StreamHandle* h = StreamFactory::handle_of(stream);
    uv_os_fd_t fd = -1;
    if (h == nullptr || h->closing || h->tcp.write_queue_size != 0 || data.empty() ||
        uv_fileno(h->handle(), &fd) != 0) {
        return 0;
    }
    ssize_t n = 0;
    do {
        n = ::send(fd, data.data(), data.size(), kHoldBack | MSG_DONTWAIT | kNoSignal);
    } while (n < 0 && errno == EINTR);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void end_output(TcpStream& stream) noexcept {
    StreamHandle* h = StreamFactory::handle_of(stream);
    uv_os_fd_t fd = -1;
    if (h == nullptr || h->closing || uv_fileno(h->handle(), &fd) != 0) return;
    ::shutdown(fd, SHUT_WR);
}

WriteAwaiter::~WriteAwaiter() {
    stop_.reset();
    if (op_ != nullptr) {
        // The task died with the write pending: libuv may still read the caller's bytes, so
        // the stream is closed; the request is freed in its callback.
        op_->awaiter = nullptr;
        handle_->close();
    }
    drop_pin(pin_);
}

bool WriteAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (!may_start(handle_, token, status_, cancelled_)) return false;
    std::string_view data = has_owned_ ? std::string_view(owned_) : data_;
    if (data.empty()) return false;
    if (data.size() > UINT_MAX) {
        status_ = kInvalid;
        return false;
    }
    // Most writes fit in the socket buffer: try first, without a request or a loop turn.
    std::size_t offset = 0;
    uv_buf_t first =
        uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    int n = uv_try_write(handle_->stream(), &first, 1);
    if (n >= 0) {
        offset = static_cast<std::size_t>(n);
        if (offset == data.size()) return false;
    } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
        status_ = n;
        return false;
    }
    WriteOp* op = handle_->spare != nullptr ? std::exchange(handle_->spare, nullptr) : new WriteOp;
    op->req.data = op;
    op->handle = handle_;
    op->awaiter = this;
    const char* bytes = data.data();
    if (has_owned_) {
        op->owned = std::move(owned_);
        bytes = op->owned.data();
    }
    waiter_.handle = h;
    register_stop<WriteAwaiter, &WriteAwaiter::on_stop>(stop_, token, this);
    uv_buf_t rest =
        uv_buf_init(const_cast<char*>(bytes + offset), static_cast<unsigned>(data.size() - offset));
    int r = uv_write(&op->req, handle_->stream(), &rest, 1, &WriteOp::on_write);
    if (r < 0) {
        stop_.reset();
        op->awaiter = nullptr;
        if (handle_->spare == nullptr) {
            op->owned.clear();
            handle_->spare = op;
        } else {
            delete op;
        }
        status_ = r;
        return false;
    }
    op_ = op;
    return true;
}

void WriteAwaiter::on_stop(WriteAwaiter* self) noexcept {
    if (self->op_ == nullptr) return;
    // libuv 1.44 cannot cancel a write: closing the stream makes it complete with
    // UV_ECANCELED (from the loop, later), and the awaiter resumes then.
    self->cancelled_ = true;
    self->handle_->close();
}

void WriteAwaiter::await_resume() {
    stop_.reset();
    if (!resumed(pin_)) {
        handle_ = nullptr;
        if (status_ < 0) status_ = kClosed;
    }
    if (cancelled_) throw_status(kCancelled, "write");
    if (status_ == kClosed || status_ == kInvalid) throw_status(status_, "write");
    if (status_ < 0) throw_status(status_, "write to " + handle_->describe_peer());
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// TcpStream

TcpStream::TcpStream(TcpStream&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}

TcpStream& TcpStream::operator=(TcpStream&& other) noexcept {
    if (this != &other) {
        close();
        handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
}

TcpStream::~TcpStream() {
    close();
}

bool TcpStream::is_open() const noexcept {
    return handle_ != nullptr && !handle_->closing;
}

void TcpStream::close() noexcept {
    if (handle_ == nullptr) return;
    std::exchange(handle_, nullptr)->release();
}
SocketAddress TcpStream::peer_address() const {
    if (!is_open()) throw Error(make_error_code(errc::closed), "peer address of a closed stream");
    if (handle_->peer) return *handle_->peer;
    SocketAddress a = detail::name_of(&uv_tcp_getpeername, &handle_->tcp, "getpeername");
    handle_->peer = a;
    return a;
}

SocketAddress TcpStream::local_address() const {
    if (!is_open()) throw Error(make_error_code(errc::closed), "local address of a closed stream");
    return detail::name_of(&uv_tcp_getsockname, &handle_->tcp, "getsockname");
}

void TcpStream::set_nodelay(bool enable) {
    if (!is_open()) throw Error(make_error_code(errc::closed), "nodelay on a closed stream");
    int r = uv_tcp_nodelay(&handle_->tcp, enable ? 1 : 0);
    if (r < 0) throw Error(uv_error(r), "set TCP_NODELAY");
}

void TcpStream::set_keepalive(unsigned delay_seconds) {
    if (!is_open()) throw Error(make_error_code(errc::closed), "keepalive on a closed stream");
    int r = uv_tcp_keepalive(&handle_->tcp, delay_seconds > 0 ? 1 : 0, delay_seconds);
    if (r < 0) throw Error(uv_error(r), "set SO_KEEPALIVE");
}

void TcpStream::consume(std::size_t n) noexcept {
    if (handle_ != nullptr) handle_->view_pending = std::min(handle_->view_pending, n);
}

std::size_t TcpStream::buffered() const noexcept {
    return handle_ != nullptr ? handle_->end - handle_->begin - handle_->view_pending : 0;
}

std::size_t TcpStream::write_queue_size() const noexcept {
    return handle_ != nullptr ? handle_->tcp.write_queue_size : 0;
}

uv_loop_t* TcpStream::loop() const noexcept {
    return handle_ != nullptr ? handle_->ctx->loop() : nullptr;
}

}  // namespace uvgena
