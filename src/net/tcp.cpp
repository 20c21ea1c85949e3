#include "uvgena/net/tcp.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

#include "net/status.hpp"

namespace uvgena {
namespace detail {
namespace {

[[noreturn]] void throw_status(int status, const std::string& context) {
    if (status == kClosed) throw Error(make_error_code(errc::closed), context + ": stream closed");
    if (status == kInvalid) throw Error(make_error_code(errc::invalid_argument), context);
    if (status == kCancelled) throw Error(make_error_code(errc::cancelled), context);
    throw Error(uv_error(status), context);
}

// Read buffers (TcpStream::read_buffer_size each) are mapped from the system instead of taken
// from the heap: a burst of connections otherwise leaves 64 KiB holes in the heap that small
// long-lived objects then fill, so that the burst's memory stays resident (measured: 0.15-0.25
// KiB of RSS per idle subscription at 10,000). A mapping only makes the pages a connection
// touches resident and goes back to the system whole. A few are kept per thread for reuse, so
// that connections opened one after another cost no system call.
class ReadBuffers {
  public:
    // A buffer, or null if the system has no memory left.
    static char* take() noexcept {
        // Constructed on first use in each thread; at thread exit it unmaps the kept buffers
        // (the cache itself is trivial, so a stream freed later still finds it, marked dead).
        thread_local Drain drain;
        (void)drain;
        Cache& c = cache_;
        if (c.count > 0) return c.spare[--c.count];
        void* p = ::mmap(nullptr, TcpStream::read_buffer_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
    }

    static void give_back(char* buffer) noexcept {
        if (buffer == nullptr) return;
        Cache& c = cache_;
        if (!c.dead && c.count < kKept) {
            c.spare[c.count++] = buffer;
        } else {
            unmap(buffer);
        }
    }

  private:
    static constexpr std::size_t kKept = 8;
    struct Cache {
        char* spare[kKept];
        std::size_t count;
        bool dead;
    };
    struct Drain {
        Drain() = default;
        Drain(const Drain&) = delete;
        Drain& operator=(const Drain&) = delete;
        ~Drain() {
            while (cache_.count > 0) unmap(cache_.spare[--cache_.count]);
            cache_.dead = true;
        }
    };
    static void unmap(char* buffer) noexcept { ::munmap(buffer, TcpStream::read_buffer_size); }

    static thread_local constinit inline Cache cache_{};
};

struct ReadBufferRelease {
    void operator()(char* buffer) const noexcept { ReadBuffers::give_back(buffer); }
};

}  // namespace

/// The heap half of a TcpStream: the uv_tcp_t, the read buffer and the state that libuv's
/// callbacks reach. Owned by the TcpStream; freed in the close callback.
struct StreamHandle {
    uv_tcp_t tcp;
    LoopRef ctx;
    bool closing = false;
    // The TcpStream may still point here after an internal close (a cancelled write closes
    // the socket): the object goes away once both the owner let go and libuv closed it.
    bool owned = true;
    bool close_done = false;

    // Read side: bytes [begin, end) of buf are received and unconsumed; the first
    // view_pending of them were handed out by read_some and are consumed by the next read.
    std::unique_ptr<char, ReadBufferRelease> buf;
    std::size_t begin = 0;
    std::size_t end = 0;
    std::size_t view_pending = 0;
    bool reading = false;
    int read_status = 0;  // 0, UV_EOF or a libuv error, once reading ended
    ReadAwaiter* reader = nullptr;

    WriteOp* spare = nullptr;  // one write request kept for reuse
    std::optional<SocketAddress> peer;
    // Awaiters whose resumption was completed by a callback but may wait in the ready queue
    // (the time slice): the memory stays until each has resumed or died, even if the owner
    // lets go and libuv closes the socket meanwhile.
    int pins = 0;

    /// One such awaiter is done with this object.
    void unpin() noexcept {
        if (--pins == 0 && !owned && close_done) delete this;
    }

    /// A pinned awaiter resumes: gives its pin back and returns this stream, or nullptr if
    /// the owner let go while the resumption waited (the stream is closed and may be gone).
    StreamHandle* unpin_on_resume() noexcept {
        bool still_owned = owned;
        unpin();
        return still_owned ? this : nullptr;
    }

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
    ~StreamHandle();

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
            buf.reset(ReadBuffers::take());
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
            r->pinned_ = true;
            ++h->pins;
            h->ctx->resume_or_defer(&r->waiter_);
        }
    }

    /// The owner lets go: closes the socket; the memory goes with the close callback.
    void release() noexcept {
        owned = false;
        if (!close_done) {
            close();
        } else if (pins == 0) {
            delete this;
        }
    }

    static void on_close(uv_handle_t* handle) {
        auto* h = static_cast<StreamHandle*>(handle->data);
        h->close_done = true;
        if (!h->owned && h->pins == 0) delete h;
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
            aw->pinned_ = true;
            ++h->pins;
            h->ctx->resume_or_defer(&aw->waiter_);
        }
    }
};

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
        ctx->schedule(&r->waiter_);
    }
    // Pending connect, write and shutdown requests complete with UV_ECANCELED before the
    // close callback frees this object.
    uv_close(handle(), &StreamHandle::on_close);
}

// ---------------------------------------------------------------------------------------
// Reading

ReadAwaiter::~ReadAwaiter() {
    stop_.reset();
    if (handle_ != nullptr && handle_->reader == this) handle_->reader = nullptr;
    if (pinned_) handle_->unpin();
}

void ReadAwaiter::unpin_on_resume() noexcept {
    if (!pinned_) return;
    pinned_ = false;
    handle_ = handle_->unpin_on_resume();
    if (handle_ == nullptr) error_ = kClosed;
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
    s->ctx->schedule(&self->waiter_);
}

void ReadAwaiter::finish_status() const {
    if (error_ == kCancelled) throw_status(kCancelled, "read");
    if (error_ == kClosed) throw_status(kClosed, "read");
    if (error_ == kInvalid) throw_status(kInvalid, "read into an empty buffer");
}

std::size_t ReadAwaiter::resume_count() {
    stop_.reset();
    unpin_on_resume();
    finish_status();
    StreamHandle* s = handle_;
    std::size_t avail = s->end - s->begin;
    if (avail > 0) {
        std::size_t n = std::min(avail, buffer_.size());
        std::memcpy(buffer_.data(), s->buf.get() + s->begin, n);
        s->begin += n;
        if (s->begin == s->end) s->begin = s->end = 0;
        s->start_reading();
        return n;
    }
    if (s->read_status == UV_EOF) return 0;
    throw_status(s->read_status, "read from " + s->describe_peer());
}

std::string_view ReadAwaiter::resume_view() {
    stop_.reset();
    unpin_on_resume();
    finish_status();
    StreamHandle* s = handle_;
    std::size_t avail = s->end - s->begin;
    if (avail > 0) {
        s->view_pending = avail;
        s->start_reading();
        return std::string_view(s->buf.get() + s->begin, avail);
    }
    if (s->read_status == UV_EOF) return {};
    throw_status(s->read_status, "read from " + s->describe_peer());
}

// ---------------------------------------------------------------------------------------
// Writing

WriteAwaiter::~WriteAwaiter() {
    stop_.reset();
    if (op_ != nullptr) {
        // The task died with the write pending: libuv may still read the caller's bytes, so
        // the stream is closed; the request is freed in its callback.
        op_->awaiter = nullptr;
        handle_->close();
    }
    if (pinned_) handle_->unpin();
}

bool WriteAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (handle_ == nullptr || handle_->closing) {
        status_ = kClosed;
        return false;
    }
    if (token != nullptr && token->stop_requested()) {
        cancelled_ = true;
        return false;
    }
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
    if (pinned_) {
        pinned_ = false;
        handle_ = handle_->unpin_on_resume();
        if (handle_ == nullptr && status_ < 0) status_ = kClosed;
    }
    if (cancelled_) throw_status(kCancelled, "write");
    if (status_ == kClosed || status_ == kInvalid) throw_status(status_, "write");
    if (status_ < 0) throw_status(status_, "write to " + handle_->describe_peer());
}

// ---------------------------------------------------------------------------------------
// Connect and shutdown: one request each, cancelled by closing the stream.

namespace {

class StreamReqAwaiter;

struct StreamReqOp {
    union {
        uv_connect_t connect;
        uv_shutdown_t shutdown;
    } req;
    StreamReqAwaiter* awaiter = nullptr;
};

class StreamReqAwaiter {
  public:
    enum class Kind { connect, shutdown };
    StreamReqAwaiter(StreamHandle* handle, Kind kind, const SocketAddress* target) noexcept
        : handle_(handle), kind_(kind), target_(target) {}
    StreamReqAwaiter(const StreamReqAwaiter&) = delete;
    StreamReqAwaiter& operator=(const StreamReqAwaiter&) = delete;
    ~StreamReqAwaiter() {
        stop_.reset();
        if (op_ != nullptr) {
            op_->awaiter = nullptr;
            handle_->close();
        }
        if (pinned_) handle_->unpin();
    }

    bool await_ready() const noexcept { return false; }
    template <typename P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return suspend(h, stop_token_of(h));
    }
    void await_resume() {
        stop_.reset();
        if (pinned_) {
            pinned_ = false;
            handle_ = handle_->unpin_on_resume();
            if (handle_ == nullptr && status_ == 0) status_ = kClosed;
        }
        std::string what = kind_ == Kind::connect ? "connect to " + target_->to_string()
                           : handle_ != nullptr   ? "shutdown of " + handle_->describe_peer()
                                                  : std::string("shutdown of a closed stream");
        if (cancelled_) throw_status(kCancelled, what);
        if (status_ != 0) throw_status(status_, what);
    }

  private:
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token) {
        if (handle_ == nullptr || handle_->closing) {
            status_ = kClosed;
            return false;
        }
        if (token != nullptr && token->stop_requested()) {
            cancelled_ = true;
            return false;
        }
        auto* op = new StreamReqOp;
        op->awaiter = this;
        waiter_.handle = h;
        register_stop<StreamReqAwaiter, &StreamReqAwaiter::on_stop>(stop_, token, this);
        int r;
        if (kind_ == Kind::connect) {
            op->req.connect.data = op;
            r = uv_tcp_connect(&op->req.connect, &handle_->tcp, target_->sockaddr_ptr(),
                               &StreamReqAwaiter::on_connect);
        } else {
            op->req.shutdown.data = op;
            r = uv_shutdown(&op->req.shutdown, handle_->stream(), &StreamReqAwaiter::on_shutdown);
        }
        if (r < 0) {
            stop_.reset();
            delete op;
            status_ = r;
            return false;
        }
        op_ = op;
        return true;
    }

    static void complete(StreamReqOp* op, int status) {
        StreamReqAwaiter* aw = op->awaiter;
        delete op;
        if (aw == nullptr) return;
        aw->op_ = nullptr;
        aw->status_ = status;
        aw->pinned_ = true;
        ++aw->handle_->pins;
        aw->handle_->ctx->resume_or_defer(&aw->waiter_);
    }
    static void on_connect(uv_connect_t* req, int status) {
        complete(static_cast<StreamReqOp*>(req->data), status);
    }
    static void on_shutdown(uv_shutdown_t* req, int status) {
        complete(static_cast<StreamReqOp*>(req->data), status);
    }
    static void on_stop(StreamReqAwaiter* self) noexcept {
        if (self->op_ == nullptr) return;
        self->cancelled_ = true;
        self->handle_->close();
    }

    StreamHandle* handle_;
    Kind kind_;
    const SocketAddress* target_;
    StreamReqOp* op_ = nullptr;
    int status_ = 0;
    bool cancelled_ = false;
    bool pinned_ = false;  // see StreamHandle::pins
    Waiter waiter_;
    StopRegistration stop_;
};

// ---------------------------------------------------------------------------------------
// Resolve

struct ResolveOp;

class ResolveAwaiter {
  public:
    ResolveAwaiter(uv_loop_t* loop, const std::string& host, const addrinfo& hints) noexcept
        : loop_(loop), host_(host), hints_(hints) {}
    ResolveAwaiter(const ResolveAwaiter&) = delete;
    ResolveAwaiter& operator=(const ResolveAwaiter&) = delete;
    ~ResolveAwaiter();

    bool await_ready() const noexcept { return false; }
    template <typename P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return suspend(h, stop_token_of(h));
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> await_resume() {
        stop_.reset();
        if (cancelled_) throw_status(kCancelled, "resolve " + host_);
        if (status_ != 0) throw_status(status_, "resolve " + host_);
        return {std::exchange(result_, nullptr), &uv_freeaddrinfo};
    }

  private:
    friend struct ResolveOp;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_stop(ResolveAwaiter* self) noexcept;

    uv_loop_t* loop_;
    const std::string& host_;
    addrinfo hints_;
    ResolveOp* op_ = nullptr;
    addrinfo* result_ = nullptr;
    int status_ = 0;
    bool cancelled_ = false;
    std::coroutine_handle<> continuation_;
    StopRegistration stop_;
};

struct ResolveOp {
    uv_getaddrinfo_t req;
    ResolveAwaiter* awaiter = nullptr;

    static void on_done(uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* op = static_cast<ResolveOp*>(req->data);
        ResolveAwaiter* aw = op->awaiter;
        delete op;
        if (aw == nullptr) {
            if (res != nullptr) uv_freeaddrinfo(res);
            return;
        }
        aw->op_ = nullptr;
        aw->status_ = status;
        aw->result_ = res;
        aw->continuation_.resume();
    }
};

ResolveAwaiter::~ResolveAwaiter() {
    stop_.reset();
    if (op_ != nullptr) {
        op_->awaiter = nullptr;
        uv_cancel(reinterpret_cast<uv_req_t*>(&op_->req));
    }
    if (result_ != nullptr) uv_freeaddrinfo(result_);
}

bool ResolveAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (token != nullptr && token->stop_requested()) {
        cancelled_ = true;
        return false;
    }
    auto* op = new ResolveOp;
    op->req.data = op;
    op->awaiter = this;
    continuation_ = h;
    register_stop<ResolveAwaiter, &ResolveAwaiter::on_stop>(stop_, token, this);
    // libuv copies the host name and hints into its own request memory.
    int r = uv_getaddrinfo(loop_, &op->req, &ResolveOp::on_done, host_.c_str(), nullptr, &hints_);
    if (r < 0) {
        stop_.reset();
        delete op;
        status_ = r;
        return false;
    }
    op_ = op;
    return true;
}

void ResolveAwaiter::on_stop(ResolveAwaiter* self) noexcept {
    if (self->op_ == nullptr) return;
    self->cancelled_ = true;
    // If the lookup already runs in the threadpool, uv_cancel fails and the awaiter resumes
    // when it completes; either way libuv's callback comes from the loop, later.
    uv_cancel(reinterpret_cast<uv_req_t*>(&self->op_->req));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Listening

/// The heap half of a TcpListener; freed in the close callback.
struct ListenHandle {
    uv_tcp_t tcp;
    LoopRef ctx;
    bool closing = false;
    bool pending = false;  // libuv holds an accepted connection for us
    int error = 0;         // a listen error not yet reported to an acceptor
    WaiterList acceptors;
    SocketAddress local;

    uv_stream_t* stream() noexcept { return reinterpret_cast<uv_stream_t*>(&tcp); }

    StreamHandle* accept_one(int& error_out) noexcept {
        pending = false;
        StreamHandle* s = nullptr;
        try {
            s = StreamHandle::create(ctx->loop());
        } catch (const Error& e) {
            error_out = e.code().value();
            return nullptr;
        } catch (...) {
            error_out = UV_ENOMEM;
            return nullptr;
        }
        int r = uv_accept(stream(), s->stream());
        if (r < 0) {
            s->release();
            error_out = r;
            return nullptr;
        }
        // The peer is named in error messages, and a reset peer can no longer be asked. Only
        // the address is kept: formatting it would cost more than the rest of the accept.
        s->remember_peer();
        return s;
    }

    static void on_connection(uv_stream_t* server, int status) {
        auto* h = static_cast<ListenHandle*>(server->data);
        Waiter* w = h->acceptors.pop_front();
        if (status < 0) {
            if (w == nullptr) {
                h->error = status;
                return;
            }
            auto* aw = static_cast<AcceptAwaiter*>(w->owner);
            aw->error_ = status;
            aw->woken_ = true;
            w->handle.resume();  // inline: the error message names the listener
            return;
        }
        h->pending = true;
        if (w == nullptr) return;  // libuv stops accepting until accept() is called
        auto* aw = static_cast<AcceptAwaiter*>(w->owner);
        aw->accepted_ = h->accept_one(aw->error_);
        aw->woken_ = true;
        // Only a successful accept may wait in the ready queue: its resumption does not
        // touch the listener, which may be closed and freed meanwhile.
        if (aw->accepted_ != nullptr) {
            h->ctx->resume_or_defer(w);
        } else {
            w->handle.resume();
        }
    }

    void close() noexcept {
        if (closing) return;
        closing = true;
        while (Waiter* w = acceptors.pop_front()) {
            auto* aw = static_cast<AcceptAwaiter*>(w->owner);
            aw->error_ = kClosed;
            aw->handle_ = nullptr;
            ctx->schedule(w);
        }
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp),
                 [](uv_handle_t* handle) { delete static_cast<ListenHandle*>(handle->data); });
    }
};

AcceptAwaiter::~AcceptAwaiter() {
    stop_.reset();
    if (accepted_ != nullptr) accepted_->release();
}

bool AcceptAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (handle_ == nullptr || handle_->closing) {
        handle_ = nullptr;
        error_ = kClosed;
        return false;
    }
    if (token != nullptr && token->stop_requested()) {
        cancelled_ = true;
        return false;
    }
    if (handle_->error != 0) {
        error_ = std::exchange(handle_->error, 0);
        return false;
    }
    if (handle_->pending) {
        accepted_ = handle_->accept_one(error_);
        return false;
    }
    waiter_.handle = h;
    register_stop<AcceptAwaiter, &AcceptAwaiter::on_stop>(stop_, token, this);
    handle_->acceptors.push_back(&waiter_);
    return true;
}

void AcceptAwaiter::on_stop(AcceptAwaiter* self) noexcept {
    // Woken (its resumption may wait in the ready queue): the accept already happened.
    if (self->handle_ == nullptr || self->woken_ || !self->waiter_.linked()) return;
    self->waiter_.unlink();
    self->cancelled_ = true;
    LoopContext* ctx = self->handle_->ctx.get();
    self->handle_ = nullptr;
    ctx->schedule(&self->waiter_);
}

TcpStream AcceptAwaiter::await_resume() {
    stop_.reset();
    if (cancelled_) throw_status(kCancelled, "accept");
    if (error_ == kClosed) throw_status(kClosed, "accept");
    if (error_ != 0) throw_status(error_, "accept on " + handle_->local.to_string());
    return TcpStream(std::exchange(accepted_, nullptr));
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

Task<void> TcpStream::shutdown() {
    detail::StreamHandle* h = handle_;
    co_await detail::StreamReqAwaiter(h, detail::StreamReqAwaiter::Kind::shutdown, nullptr);
}

namespace {

SocketAddress name_of(int (*get)(const uv_tcp_t*, sockaddr*, int*), const uv_tcp_t* tcp,
                      const char* what) {
    sockaddr_storage ss{};
    int len = sizeof ss;
    int r = get(tcp, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r < 0) throw Error(uv_error(r), what);
    return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).value();
}

}  // namespace

SocketAddress TcpStream::peer_address() const {
    if (!is_open()) throw Error(make_error_code(errc::closed), "peer address of a closed stream");
    if (handle_->peer) return *handle_->peer;
    SocketAddress a = name_of(&uv_tcp_getpeername, &handle_->tcp, "getpeername");
    handle_->peer = a;
    return a;
}

SocketAddress TcpStream::local_address() const {
    if (!is_open()) throw Error(make_error_code(errc::closed), "local address of a closed stream");
    return name_of(&uv_tcp_getsockname, &handle_->tcp, "getsockname");
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

Task<TcpStream> connect(uv_loop_t* loop, SocketAddress address, ConnectOptions options) {
    if (!address.valid()) {
        throw Error(make_error_code(errc::invalid_argument), "connect to an unspecified address");
    }
    detail::StreamHandle* h = detail::StreamHandle::create(loop);
    TcpStream stream(h);  // closes the socket if anything below throws
    if (options.local_address) {
        int r = uv_tcp_bind(&h->tcp, options.local_address->sockaddr_ptr(), 0);
        if (r < 0) {
            throw Error(uv_error(r), "bind to " + options.local_address->to_string() +
                                         " to connect to " + address.to_string());
        }
    }
    co_await detail::StreamReqAwaiter(h, detail::StreamReqAwaiter::Kind::connect, &address);
    h->peer = address;
    if (options.nodelay) uv_tcp_nodelay(&h->tcp, 1);
    co_return stream;
}

Task<std::vector<SocketAddress>> resolve(uv_loop_t* loop, std::string host, std::uint16_t port,
                                         ResolveOptions options) {
    addrinfo hints{};
    hints.ai_family = options.family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    if (options.numeric_host) hints.ai_flags |= AI_NUMERICHOST;
    auto list = co_await detail::ResolveAwaiter(loop, host, hints);
    std::vector<SocketAddress> out;
    for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
        auto a = SocketAddress::from_sockaddr(ai->ai_addr);
        if (!a) continue;
        SocketAddress address = *a;
        address.set_port(port);
        if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
    }
    if (out.empty()) throw Error(uv_error(UV_EAI_NONAME), "resolve " + host + ": no TCP address");
    co_return out;
}

// ---------------------------------------------------------------------------------------
// TcpListener

TcpListener::TcpListener(TcpListener&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)) {}

TcpListener& TcpListener::operator=(TcpListener&& other) noexcept {
    if (this != &other) {
        close();
        handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
}

TcpListener::~TcpListener() {
    close();
}

TcpListener TcpListener::bind(uv_loop_t* loop, const SocketAddress& address,
                              ListenOptions options) {
    auto* h = new detail::ListenHandle;
    h->ctx = detail::LoopRef(loop);
    int r = uv_tcp_init(loop, &h->tcp);
    if (r < 0) {
        delete h;
        throw Error(uv_error(r), "uv_tcp_init");
    }
    h->tcp.data = h;
    TcpListener listener;
    listener.handle_ = h;  // closes the handle if anything below throws
    unsigned flags = options.ipv6_only && address.is_ipv6() ? UV_TCP_IPV6ONLY : 0;
    r = uv_tcp_bind(&h->tcp, address.sockaddr_ptr(), flags);
    if (r == 0) r = uv_listen(h->stream(), options.backlog, &detail::ListenHandle::on_connection);
    if (r < 0) throw Error(uv_error(r), "listen on " + address.to_string());
    h->local = name_of(&uv_tcp_getsockname, &h->tcp, "getsockname");
    return listener;
}

SocketAddress TcpListener::local_address() const {
    if (!is_open()) throw Error(make_error_code(errc::closed), "address of a closed listener");
    return handle_->local;
}

std::uint16_t TcpListener::port() const {
    return local_address().port();
}

void TcpListener::close() noexcept {
    if (handle_ == nullptr) return;
    handle_->close();
    handle_ = nullptr;
}

bool TcpListener::is_open() const noexcept {
    return handle_ != nullptr && !handle_->closing;
}

uv_loop_t* TcpListener::loop() const noexcept {
    return handle_ != nullptr ? handle_->ctx->loop() : nullptr;
}

}  // namespace uvgena
