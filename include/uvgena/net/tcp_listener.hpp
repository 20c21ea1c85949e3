// TCP listeners over libuv: bind, listen, accept (same lifetime and error rules as
// tcp_stream.hpp; a stopped accept just stops waiting).
#pragma once

#include <uv.h>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <stop_token>

#include "uvgena/co/loop_context.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/net/address.hpp"
#include "uvgena/net/tcp_stream.hpp"

namespace uvgena {

namespace detail {
struct IoHandle;
struct ListenHandle;

/// Awaiter of TcpListener::accept.
class [[nodiscard]] UVGENA_API AcceptAwaiter : public StoppableAwaiter<AcceptAwaiter> {
  public:
    explicit AcceptAwaiter(ListenHandle* handle) noexcept : handle_(handle) {
        waiter_.owner = this;
    }
    ~AcceptAwaiter();
    /// The accepted connection; throws on error, close or cancellation.
    TcpStream await_resume();

  private:
    friend struct ListenHandle;
    friend class StoppableAwaiter<AcceptAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_stop(AcceptAwaiter* self) noexcept;

    ListenHandle* handle_;
    StreamHandle* accepted_ = nullptr;
    int error_ = 0;
    bool cancelled_ = false;
    bool woken_ = false;
    IoHandle* pin_ = nullptr;  // see src/net/completion.hpp
    Waiter waiter_;
    StopRegistration stop_;
};

}  // namespace detail

/// Options of TcpListener::bind.
struct UVGENA_API ListenOptions {
    int backlog = 511;       ///< listen() backlog.
    bool ipv6_only = false;  ///< For an IPv6 address: do not accept IPv4-mapped connections.
    /// Linux's TCP_DEFER_ACCEPT (nginx's `deferred`): the kernel hands a connection over only
    /// once its first bytes arrived, so that accept() finds the request already there and the
    /// first read of the connection needs no wait. A client that connects and sends nothing
    /// is kept by the kernel (half-open, its SYN-ACK repeated at 1, 2, 4, ... s) for about
    /// this long, rounded up to the next repetition, and then accepted all the same at its
    /// next ACK; its first byte or its FIN before that gets it accepted at once. Zero (the
    /// default): accept at the handshake. No effect where the option does not exist.
    std::chrono::seconds defer_accept{0};
};

/// A listening TCP socket. `co_await accept()` yields the next connection; calling it in a
/// loop is the stream of connections. Several tasks may accept at once (FIFO). Connections
/// arriving while nobody accepts wait in the kernel's backlog.
class UVGENA_API TcpListener {
  public:
    /// A closed listener.
    TcpListener() noexcept = default;
    TcpListener(TcpListener&& other) noexcept;
    TcpListener& operator=(TcpListener&& other) noexcept;
    TcpListener(const TcpListener&) = delete;
    TcpListener& operator=(const TcpListener&) = delete;
    ~TcpListener();

    /// Binds and listens on `address` (IPv4 or IPv6; port 0 picks a free port). Throws Error
    /// ("listen on [::1]:1400: EADDRINUSE: ...").
    static TcpListener bind(uv_loop_t* loop, const SocketAddress& address,
                            ListenOptions options = {});

    /// `co_await accept()`: the next connection. Throws Error(errc::closed) once closed.
    detail::AcceptAwaiter accept() noexcept { return detail::AcceptAwaiter(handle_); }
    /// The bound address (with the real port).
    SocketAddress local_address() const;
    /// The bound port.
    std::uint16_t port() const;
    /// Stops listening; waiting acceptors get Error(errc::closed). Idempotent.
    void close() noexcept;
    /// True until close().
    bool is_open() const noexcept;
    /// The loop (nullptr when closed).
    uv_loop_t* loop() const noexcept;

  private:
    detail::ListenHandle* handle_ = nullptr;
};

}  // namespace uvgena
