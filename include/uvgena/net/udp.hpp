// UDP over libuv: datagram sockets with multicast, and the host's network interfaces.
//
// Same lifetime rules as TCP: the uv_udp_t and every send request are heap objects handed to
// libuv and freed in its callbacks; awaiters keep only back-pointers. A send owns its bytes,
// so a stopped send only stops waiting (libuv finishes or cancels the request on its own).
// Received datagrams go into a bounded per-socket queue: when it is full the oldest datagram
// is dropped and counted, so a flood of packets costs bounded memory and is visible.
#pragma once

#include <uv.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "uvgena/co/loop_context.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/net/address.hpp"

namespace uvgena {

/// One received datagram.
struct UVGENA_API UdpPacket {
    std::string data;        ///< The payload (at most UdpSocket::max_datagram bytes).
    SocketAddress sender;    ///< Who sent it.
    bool truncated = false;  ///< The datagram was larger than the receive buffer and was cut.
};

namespace detail {
struct IoHandle;
struct UdpHandle;
struct UdpSendOp;

/// Awaiter of UdpSocket::receive.
class [[nodiscard]] UVGENA_API UdpReceiveAwaiter : public StoppableAwaiter<UdpReceiveAwaiter> {
  public:
    explicit UdpReceiveAwaiter(UdpHandle* handle) noexcept : handle_(handle) {
        waiter_.owner = this;
    }
    ~UdpReceiveAwaiter();
    /// The next datagram; throws Error(errc::closed) once the socket is closed,
    /// Error(errc::cancelled) when stopped, or the libuv error that ended receiving.
    UdpPacket await_resume();

  private:
    friend struct UdpHandle;
    friend class StoppableAwaiter<UdpReceiveAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_stop(UdpReceiveAwaiter* self) noexcept;

    UdpHandle* handle_;
    std::optional<UdpPacket> packet_;
    int error_ = 0;
    bool done_ = false;        // resumption decided (datagram, error, close or cancel)
    IoHandle* pin_ = nullptr;  // see src/net/completion.hpp
    Waiter waiter_;
    StopRegistration stop_;
};

/// Awaiter of UdpSocket::send_to.
class [[nodiscard]] UVGENA_API UdpSendAwaiter : public StoppableAwaiter<UdpSendAwaiter> {
  public:
    UdpSendAwaiter(UdpHandle* handle, std::string&& data, const SocketAddress& to) noexcept
        : handle_(handle), data_(std::move(data)), to_(to) {
        waiter_.owner = this;
    }
    ~UdpSendAwaiter();
    /// Returns once the datagram was handed to the kernel; throws Error naming the
    /// destination on failure, Error(errc::cancelled) when stopped.
    void await_resume();

  private:
    friend struct UdpSendOp;
    friend class StoppableAwaiter<UdpSendAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_stop(UdpSendAwaiter* self) noexcept;

    UdpHandle* handle_;
    std::string data_;
    SocketAddress to_;
    UdpSendOp* op_ = nullptr;
    int status_ = 0;
    IoHandle* pin_ = nullptr;  // see src/net/completion.hpp
    Waiter waiter_;
    StopRegistration stop_;
};

}  // namespace detail

/// Options of UdpSocket::bind.
struct UVGENA_API UdpBindOptions {
    /// SO_REUSEADDR (and SO_REUSEPORT where libuv sets it): several sockets of this host may
    /// bind the same port, as every SSDP listener on port 1900 must.
    bool reuse_address = false;
    /// For an IPv6 address: do not receive IPv4-mapped traffic.
    bool ipv6_only = false;
    /// Datagrams kept while nobody receives; beyond it the oldest is dropped and counted.
    std::size_t max_queued = 256;
};

/// A UDP socket bound to a local address. Move-only; destroying or closing it closes the
/// socket (waiting receivers get Error(errc::closed); memory is freed in libuv's close
/// callback). Receiving starts with the first receive() and continues into the bounded
/// queue until close. Several tasks may receive at once (FIFO, one datagram each).
class UVGENA_API UdpSocket {
  public:
    /// Largest datagram received whole (bigger ones arrive truncated).
    static constexpr std::size_t max_datagram = 64 * 1024;

    /// A closed socket.
    UdpSocket() noexcept = default;
    UdpSocket(UdpSocket&& other) noexcept;
    UdpSocket& operator=(UdpSocket&& other) noexcept;
    UdpSocket(const UdpSocket&) = delete;
    UdpSocket& operator=(const UdpSocket&) = delete;
    ~UdpSocket();

    /// Binds to `address` (port 0 picks a free port). Throws Error ("bind UDP
    /// 0.0.0.0:1900: EADDRINUSE: ...").
    static UdpSocket bind(uv_loop_t* loop, const SocketAddress& address,
                          UdpBindOptions options = {});

    /// Joins multicast `group` ("239.255.255.250", "ff02::c") on the interface with local
    /// address `interface_address` ("192.168.1.5"; for IPv6 "::%eth0" or an address with
    /// its scope), or on the system's choice when empty. Throws Error naming the group.
    void join_group(std::string_view group, std::string_view interface_address = {});
    /// Leaves a group joined with join_group. Throws Error naming the group.
    void leave_group(std::string_view group, std::string_view interface_address = {});
    /// Sends multicast datagrams out of the interface with this local address (IPv4) or
    /// scope ("::%eth0", IPv6). Throws Error.
    void set_multicast_interface(std::string_view interface_address);
    /// Hop limit of multicast datagrams (1 = this link only, the SSDP default is 2..4).
    void set_multicast_ttl(int ttl);
    /// Whether this host's own sockets receive the multicast datagrams it sends.
    void set_multicast_loop(bool enable);
    /// Allows sending to broadcast addresses.
    void set_broadcast(bool enable);

    /// `co_await send_to(bytes, destination)`: sends one datagram (the socket keeps the
    /// bytes until libuv is done with them).
    detail::UdpSendAwaiter send_to(std::string data, const SocketAddress& destination) noexcept {
        return detail::UdpSendAwaiter(handle_, std::move(data), destination);
    }
    /// `co_await receive()`: the next datagram with its sender.
    detail::UdpReceiveAwaiter receive() noexcept { return detail::UdpReceiveAwaiter(handle_); }

    /// The bound address (with the real port).
    SocketAddress local_address() const;
    /// Datagrams dropped because the queue was full.
    std::size_t dropped() const noexcept;
    /// Datagrams waiting in the queue.
    std::size_t queued() const noexcept;
    /// Closes the socket; waiting receivers get Error(errc::closed). Idempotent.
    void close() noexcept;
    /// True until close() (or a move from it).
    bool is_open() const noexcept;
    /// The loop (nullptr when closed).
    uv_loop_t* loop() const noexcept;

  private:
    detail::UdpHandle* handle_ = nullptr;
};

/// One address of a network interface of this host (as uv_interface_addresses reports it:
/// only interfaces that are up).
struct UVGENA_API NetworkInterface {
    std::string name;       ///< "eth0", "lo".
    unsigned index = 0;     ///< Interface index (the IPv6 scope id), 0 if unknown.
    SocketAddress address;  ///< The address (port 0); IPv6 link-local ones carry the scope.
    SocketAddress netmask;  ///< Its netmask (port 0).
    bool internal = false;  ///< A loopback interface.

    /// The string that join_group / set_multicast_interface take for this interface:
    /// the IPv4 address, or "::%index" for IPv6.
    std::string multicast_interface() const;
};

/// The addresses of this host's interfaces that are up. Throws Error on failure.
UVGENA_API std::vector<NetworkInterface> network_interfaces();

/// The IPv4 (family AF_INET) or IPv6 (AF_INET6) addresses to use for multicast on
/// `name` (an interface name or one of its addresses), or, when `name` is empty, on every
/// non-loopback interface; loopback only when no other interface is up. Throws
/// Error(errc::invalid_argument) naming `name` if it matches nothing.
UVGENA_API std::vector<NetworkInterface> multicast_interfaces(std::string_view name, int family);

}  // namespace uvgena
