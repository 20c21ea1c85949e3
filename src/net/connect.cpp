// Connect and shutdown of a TcpStream: one request each, cancelled by closing the stream.
#include "uvgena/net/tcp_stream.hpp"

#include <string>

#include "net/stream_handle.hpp"

namespace uvgena {
namespace detail {

namespace {

class StreamReqAwaiter;

struct StreamReqOp {
    union {
        uv_connect_t connect;
        uv_shutdown_t shutdown;
    } req;
    StreamReqAwaiter* awaiter = nullptr;
};

class StreamReqAwaiter : public StoppableAwaiter<StreamReqAwaiter> {
  public:
    enum class Kind { connect, shutdown };
    StreamReqAwaiter(StreamHandle* handle, Kind kind, const SocketAddress* target) noexcept
        : handle_(handle), kind_(kind), target_(target) {}
    ~StreamReqAwaiter() {
        stop_.reset();
        if (op_ != nullptr) {
            op_->awaiter = nullptr;
            handle_->close();
        }
        drop_pin(pin_);
    }
    void await_resume() {
        stop_.reset();
        if (!resumed(pin_)) {
            handle_ = nullptr;
            if (status_ == 0) status_ = kClosed;
        }
        std::string what = kind_ == Kind::connect ? "connect to " + target_->to_string()
                           : handle_ != nullptr   ? "shutdown of " + handle_->describe_peer()
                                                  : std::string("shutdown of a closed stream");
        if (cancelled_) throw_status(kCancelled, what);
        if (status_ != 0) throw_status(status_, what);
    }

  private:
    friend class StoppableAwaiter<StreamReqAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token) {
        if (!may_start(handle_, token, status_, cancelled_)) return false;
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
        return keep_if_started(r, op, op_, stop_, status_);
    }

    static void finish(StreamReqOp* op, int status) {
        StreamReqAwaiter* aw = op->awaiter;
        delete op;
        if (aw == nullptr) return;
        aw->op_ = nullptr;
        aw->status_ = status;
        complete(aw->pin_, aw->handle_, &aw->waiter_);
    }
    static void on_connect(uv_connect_t* req, int status) {
        finish(static_cast<StreamReqOp*>(req->data), status);
    }
    static void on_shutdown(uv_shutdown_t* req, int status) {
        finish(static_cast<StreamReqOp*>(req->data), status);
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
    IoHandle* pin_ = nullptr;  // see completion.hpp
    Waiter waiter_;
    StopRegistration stop_;
};

}  // namespace
}  // namespace detail

Task<void> TcpStream::shutdown() {
    detail::StreamHandle* h = handle_;
    co_await detail::StreamReqAwaiter(h, detail::StreamReqAwaiter::Kind::shutdown, nullptr);
}

Task<TcpStream> connect(uv_loop_t* loop, SocketAddress address, ConnectOptions options) {
    if (!address.valid()) {
        throw Error(make_error_code(errc::invalid_argument), "connect to an unspecified address");
    }
    detail::StreamHandle* h = detail::StreamHandle::create(loop);
    TcpStream stream = detail::StreamFactory::adopt(h);  // closes it if anything below throws
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

}  // namespace uvgena
