// TcpListener: a listening socket whose accept() yields TcpStreams.
#include "uvgena/net/tcp_listener.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include "net/stream_handle.hpp"

namespace uvgena {
namespace detail {

/// The heap half of a TcpListener; freed in the close callback.
struct ListenHandle final : IoHandle {
    uv_tcp_t tcp;
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
        s->fresh = true;
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
            complete(aw->pin_, h, w);  // pinned: the error message names the listener
            return;
        }
        h->pending = true;
        if (w == nullptr) return;  // libuv stops accepting until accept() is called
        auto* aw = static_cast<AcceptAwaiter*>(w->owner);
        aw->accepted_ = h->accept_one(aw->error_);
        aw->woken_ = true;
        complete(aw->pin_, h, w);
    }

    void close() noexcept {
        if (closing) return;
        closing = true;
        while (Waiter* w = acceptors.pop_front()) {
            auto* aw = static_cast<AcceptAwaiter*>(w->owner);
            aw->error_ = kClosed;
            aw->handle_ = nullptr;
            wake_later(ctx.get(), w);
        }
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* handle) {
            static_cast<ListenHandle*>(handle->data)->close_finished();
        });
    }
};

// Set before listen(), so that no connection is accepted without it.
static int defer_accept(const uv_tcp_t& tcp, const ListenOptions& options) noexcept {
#ifdef TCP_DEFER_ACCEPT
    uv_os_fd_t fd = -1;
    int r = uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp), &fd);
    if (r < 0) return r;
    auto seconds = options.defer_accept.count();
    int value = seconds > 3600 ? 3600 : static_cast<int>(seconds);
    if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &value, sizeof value) != 0) {
        return uv_translate_sys_error(errno);
    }
#else
    (void)tcp;
    (void)options;
#endif
    return 0;
}

AcceptAwaiter::~AcceptAwaiter() {
    stop_.reset();
    if (accepted_ != nullptr) accepted_->release();
    drop_pin(pin_);
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
    wake_later(ctx, &self->waiter_);
}

TcpStream AcceptAwaiter::await_resume() {
    stop_.reset();
    if (cancelled_) throw_status(kCancelled, "accept");
    if (error_ == kClosed) throw_status(kClosed, "accept");
    // The listener may be closed by now; its memory stays until this awaiter dies (pin_).
    if (error_ != 0) throw_status(error_, "accept on " + handle_->local.to_string());
    return TcpStream(std::exchange(accepted_, nullptr));
}

}  // namespace detail

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
    if (r == 0 && options.defer_accept.count() > 0) r = detail::defer_accept(h->tcp, options);
    if (r == 0) r = uv_listen(h->stream(), options.backlog, &detail::ListenHandle::on_connection);
    if (r < 0) throw Error(uv_error(r), "listen on " + address.to_string());
    h->local = detail::name_of(&uv_tcp_getsockname, &h->tcp, "getsockname");
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
    detail::IoHandle::disown(std::exchange(handle_, nullptr));
}

bool TcpListener::is_open() const noexcept {
    return handle_ != nullptr && !handle_->closing;
}

uv_loop_t* TcpListener::loop() const noexcept {
    return handle_ != nullptr ? handle_->ctx->loop() : nullptr;
}

}  // namespace uvgena
