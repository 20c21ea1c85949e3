#include "uvgena/net/udp.hpp"

#include <net/if.h>

#include <deque>
#include <memory>
#include <string>

#include "net/status.hpp"
#include "uvgena/core/error.hpp"

namespace uvgena {
namespace detail {
/// The heap half of a UdpSocket: the uv_udp_t, the receive buffer and queue, and the wait
/// list of receivers. Owned by the UdpSocket; freed in the close callback.
struct UdpHandle {
    uv_udp_t udp;
    LoopRef ctx;
    bool closing = false;
    bool receiving = false;
    int receive_error = 0;  // a libuv error that ended receiving, reported once
    std::size_t max_queued = 256;
    std::size_t dropped = 0;
    std::unique_ptr<char[]> buf;
    std::deque<UdpPacket> queue;
    WaiterList receivers;
    SocketAddress local;

    uv_handle_t* handle() noexcept { return reinterpret_cast<uv_handle_t*>(&udp); }

    std::string describe() const { return local.to_string(); }

    void start_receiving() noexcept {
        if (receiving || closing || receive_error != 0) return;
        if (!buf) buf.reset(new char[UdpSocket::max_datagram]);
        int r = uv_udp_recv_start(&udp, &UdpHandle::on_alloc, &UdpHandle::on_recv);
        if (r < 0) {
            receive_error = r;
        } else {
            receiving = true;
        }
    }

    static void on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* out) {
        auto* h = static_cast<UdpHandle*>(handle->data);
        *out = uv_buf_init(h->buf.get(), static_cast<unsigned>(UdpSocket::max_datagram));
    }

    static void on_recv(uv_udp_t* udp, ssize_t nread, const uv_buf_t*, const sockaddr* addr,
                        unsigned flags) {
        auto* h = static_cast<UdpHandle*>(udp->data);
        if (nread == 0 && addr == nullptr) return;  // nothing more to read for now
        if (nread < 0) {
            // Errors such as an ICMP port unreachable for an earlier send are reported to one
            // receiver; receiving goes on.
            Waiter* w = h->receivers.pop_front();
            if (w == nullptr) return;
            auto* aw = static_cast<UdpReceiveAwaiter*>(w->owner);
            aw->error_ = static_cast<int>(nread);
            aw->done_ = true;
            h->ctx->schedule(w);
            return;
        }
        auto sender = SocketAddress::from_sockaddr(addr);
        if (!sender) return;
        UdpPacket packet;
        packet.data.assign(h->buf.get(), static_cast<std::size_t>(nread));
        packet.sender = *sender;
        packet.truncated = (flags & UV_UDP_PARTIAL) != 0;
        if (Waiter* w = h->receivers.pop_front()) {
            auto* aw = static_cast<UdpReceiveAwaiter*>(w->owner);
            aw->packet_.emplace(std::move(packet));
            aw->done_ = true;
            h->ctx->schedule(w);
            return;
        }
        if (h->queue.size() >= h->max_queued) {
            h->queue.pop_front();
            ++h->dropped;
        }
        h->queue.push_back(std::move(packet));
    }

    void close() noexcept {
        if (closing) return;
        closing = true;
        while (Waiter* w = receivers.pop_front()) {
            auto* aw = static_cast<UdpReceiveAwaiter*>(w->owner);
            aw->error_ = kClosed;
            aw->done_ = true;
            aw->handle_ = nullptr;
            ctx->schedule(w);
        }
        // Pending sends complete with UV_ECANCELED before the close callback runs.
        uv_close(handle(),
                 [](uv_handle_t* handle) { delete static_cast<UdpHandle*>(handle->data); });
    }
};

/// One send: the request and the bytes it sends, given to libuv and freed in on_send. The
/// awaiter, while it still waits, is reachable through a back-pointer.
struct UdpSendOp {
    uv_udp_send_t req;
    std::string data;
    UdpSendAwaiter* awaiter = nullptr;
    LoopRef ctx;

    static void on_send(uv_udp_send_t* req, int status) {
        auto* op = static_cast<UdpSendOp*>(req->data);
        UdpSendAwaiter* aw = op->awaiter;
        if (aw != nullptr) {
            aw->op_ = nullptr;
            aw->status_ = status;
            aw->stop_.reset();
            op->ctx->schedule(&aw->waiter_);
        }
        delete op;
    }
};

// ---------------------------------------------------------------------------------------
// Receiving

bool UdpReceiveAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (handle_ == nullptr || handle_->closing) {
        handle_ = nullptr;
        error_ = kClosed;
        return false;
    }
    if (token != nullptr && token->stop_requested()) {
        error_ = kCancelled;
        return false;
    }
    if (!handle_->queue.empty()) {
        packet_.emplace(std::move(handle_->queue.front()));
        handle_->queue.pop_front();
        return false;
    }
    handle_->start_receiving();
    if (handle_->receive_error != 0) {
        error_ = handle_->receive_error;
        return false;
    }
    waiter_.handle = h;
    handle_->receivers.push_back(&waiter_);
    register_stop<UdpReceiveAwaiter, &UdpReceiveAwaiter::on_stop>(stop_, token, this);
    return true;
}

void UdpReceiveAwaiter::on_stop(UdpReceiveAwaiter* self) noexcept {
    if (self->done_ || self->handle_ == nullptr) return;
    self->done_ = true;
    self->waiter_.unlink();
    self->error_ = kCancelled;
    self->handle_->ctx->schedule(&self->waiter_);
}

UdpPacket UdpReceiveAwaiter::await_resume() {
    stop_.reset();
    if (packet_) return std::move(*packet_);
    if (error_ == kCancelled) throw Error(make_error_code(errc::cancelled), "UDP receive");
    if (error_ == kClosed || error_ == 0) {
        throw Error(make_error_code(errc::closed), "UDP receive: socket closed");
    }
    throw Error(uv_error(error_), "UDP receive on " + handle_->describe());
}

// ---------------------------------------------------------------------------------------
// Sending

UdpSendAwaiter::~UdpSendAwaiter() {
    stop_.reset();
    // The op owns its bytes: libuv may finish it after the task is gone.
    if (op_ != nullptr) op_->awaiter = nullptr;
}

bool UdpSendAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (handle_ == nullptr || handle_->closing) {
        status_ = kClosed;
        return false;
    }
    if (token != nullptr && token->stop_requested()) {
        status_ = kCancelled;
        return false;
    }
    if (!to_.valid()) {
        status_ = UV_EINVAL;
        return false;
    }
    // Datagrams almost always go straight into the kernel: no request, no loop turn.
    uv_buf_t first = uv_buf_init(data_.data(), static_cast<unsigned>(data_.size()));
    int n = uv_udp_try_send(&handle_->udp, &first, 1, to_.sockaddr_ptr());
    if (n >= 0) return false;
    if (n != UV_EAGAIN && n != UV_ENOSYS) {
        status_ = n;
        return false;
    }
    auto* op = new UdpSendOp;
    op->req.data = op;
    op->data = std::move(data_);
    op->awaiter = this;
    op->ctx = handle_->ctx;
    uv_buf_t buf = uv_buf_init(op->data.data(), static_cast<unsigned>(op->data.size()));
    int r = uv_udp_send(&op->req, &handle_->udp, &buf, 1, to_.sockaddr_ptr(), &UdpSendOp::on_send);
    if (r < 0) {
        delete op;
        status_ = r;
        return false;
    }
    op_ = op;
    waiter_.handle = h;
    register_stop<UdpSendAwaiter, &UdpSendAwaiter::on_stop>(stop_, token, this);
    return true;
}

void UdpSendAwaiter::on_stop(UdpSendAwaiter* self) noexcept {
    if (self->op_ == nullptr) return;
    // libuv cannot cancel a queued send; the op owns its bytes, so stop waiting for it.
    self->op_->awaiter = nullptr;
    self->op_->ctx->schedule(&self->waiter_);
    self->op_ = nullptr;
    self->status_ = kCancelled;
}

void UdpSendAwaiter::await_resume() {
    stop_.reset();
    if (status_ == 0) return;
    if (status_ == kCancelled) throw Error(make_error_code(errc::cancelled), "UDP send");
    if (status_ == kClosed) throw Error(make_error_code(errc::closed), "UDP send: socket closed");
    throw Error(uv_error(status_), "UDP send to " + to_.to_string());
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// UdpSocket

UdpSocket::UdpSocket(UdpSocket&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}

UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
    if (this != &other) {
        close();
        handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
}

UdpSocket::~UdpSocket() {
    close();
}

UdpSocket UdpSocket::bind(uv_loop_t* loop, const SocketAddress& address, UdpBindOptions options) {
    if (!address.valid()) {
        throw Error(make_error_code(errc::invalid_argument), "bind UDP to an unspecified address");
    }
    auto* h = new detail::UdpHandle;
    h->ctx = detail::LoopRef(loop);
    h->max_queued = options.max_queued > 0 ? options.max_queued : 1;
    int r = uv_udp_init(loop, &h->udp);
    if (r < 0) {
        delete h;
        throw Error(uv_error(r), "uv_udp_init");
    }
    h->udp.data = h;
    UdpSocket socket;
    socket.handle_ = h;  // closes the handle if anything below throws
    unsigned flags = 0;
    if (options.reuse_address) flags |= UV_UDP_REUSEADDR;
    if (options.ipv6_only && address.is_ipv6()) flags |= UV_UDP_IPV6ONLY;
    r = uv_udp_bind(&h->udp, address.sockaddr_ptr(), flags);
    if (r < 0) throw Error(uv_error(r), "bind UDP " + address.to_string());
    sockaddr_storage ss{};
    int len = sizeof ss;
    r = uv_udp_getsockname(&h->udp, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r < 0) throw Error(uv_error(r), "getsockname of UDP " + address.to_string());
    h->local = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).value();
    return socket;
}

namespace {

void check_open(const detail::UdpHandle* h, const char* what) {
    if (h == nullptr || h->closing) {
        throw Error(make_error_code(errc::closed), std::string(what) + " on a closed UDP socket");
    }
}

}  // namespace

void UdpSocket::join_group(std::string_view group, std::string_view interface_address) {
    check_open(handle_, "join multicast group");
    std::string g(group);
    std::string i(interface_address);
    int r = uv_udp_set_membership(&handle_->udp, g.c_str(), i.empty() ? nullptr : i.c_str(),
                                  UV_JOIN_GROUP);
    if (r < 0) {
        throw Error(uv_error(r),
                    "join multicast group " + g + (i.empty() ? std::string() : " on " + i));
    }
}

void UdpSocket::leave_group(std::string_view group, std::string_view interface_address) {
    check_open(handle_, "leave multicast group");
    std::string g(group);
    std::string i(interface_address);
    int r = uv_udp_set_membership(&handle_->udp, g.c_str(), i.empty() ? nullptr : i.c_str(),
                                  UV_LEAVE_GROUP);
    if (r < 0) {
        throw Error(uv_error(r),
                    "leave multicast group " + g + (i.empty() ? std::string() : " on " + i));
    }
}

void UdpSocket::set_multicast_interface(std::string_view interface_address) {
    check_open(handle_, "set multicast interface");
    std::string i(interface_address);
    int r = uv_udp_set_multicast_interface(&handle_->udp, i.c_str());
    if (r < 0) throw Error(uv_error(r), "set multicast interface " + i);
}

void UdpSocket::set_multicast_ttl(int ttl) {
    check_open(handle_, "set multicast TTL");
    int r = uv_udp_set_multicast_ttl(&handle_->udp, ttl);
    if (r < 0) throw Error(uv_error(r), "set multicast TTL " + std::to_string(ttl));
}

void UdpSocket::set_multicast_loop(bool enable) {
    check_open(handle_, "set multicast loop");
    int r = uv_udp_set_multicast_loop(&handle_->udp, enable ? 1 : 0);
    if (r < 0) throw Error(uv_error(r), "set multicast loop");
}

void UdpSocket::set_broadcast(bool enable) {
    check_open(handle_, "set broadcast");
    int r = uv_udp_set_broadcast(&handle_->udp, enable ? 1 : 0);
    if (r < 0) throw Error(uv_error(r), "set broadcast");
}

SocketAddress UdpSocket::local_address() const {
    check_open(handle_, "local address");
    return handle_->local;
}

std::size_t UdpSocket::dropped() const noexcept {
    return handle_ != nullptr ? handle_->dropped : 0;
}

std::size_t UdpSocket::queued() const noexcept {
    return handle_ != nullptr ? handle_->queue.size() : 0;
}

void UdpSocket::close() noexcept {
    if (handle_ == nullptr) return;
    std::exchange(handle_, nullptr)->close();
}

bool UdpSocket::is_open() const noexcept {
    return handle_ != nullptr && !handle_->closing;
}

uv_loop_t* UdpSocket::loop() const noexcept {
    return handle_ != nullptr ? handle_->ctx->loop() : nullptr;
}

// ---------------------------------------------------------------------------------------
// Interfaces

std::string NetworkInterface::multicast_interface() const {
    if (address.is_ipv4()) return address.ip();
    return "::%" + name;
}

std::vector<NetworkInterface> network_interfaces() {
    uv_interface_address_t* list = nullptr;
    int count = 0;
    int r = uv_interface_addresses(&list, &count);
    if (r < 0) throw Error(uv_error(r), "list network interfaces");
    std::vector<NetworkInterface> out;
    for (int i = 0; i < count; ++i) {
        const uv_interface_address_t& ia = list[i];
        auto address = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&ia.address));
        auto netmask = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&ia.netmask));
        if (!address) continue;
        NetworkInterface ni;
        ni.name = ia.name;
        ni.index = if_nametoindex(ia.name);
        ni.address = *address;
        ni.address.set_port(0);
        if (netmask) ni.netmask = *netmask;
        ni.internal = ia.is_internal != 0;
        out.push_back(std::move(ni));
    }
    uv_free_interface_addresses(list, count);
    return out;
}

std::vector<NetworkInterface> multicast_interfaces(std::string_view name, int family) {
    std::vector<NetworkInterface> all = network_interfaces();
    std::vector<NetworkInterface> out;
    std::vector<NetworkInterface> loopback;
    for (NetworkInterface& ni : all) {
        if (ni.address.family() != family) continue;
        if (!name.empty()) {
            if (ni.name == name || ni.address.ip() == name) out.push_back(std::move(ni));
        } else if (ni.internal) {
            loopback.push_back(std::move(ni));
        } else {
            out.push_back(std::move(ni));
        }
    }
    if (!name.empty() && out.empty()) {
        throw Error(make_error_code(errc::invalid_argument),
                    "no " + std::string(family == AF_INET6 ? "IPv6" : "IPv4") +
                        " address on network interface '" + std::string(name) + "'");
    }
    if (out.empty()) return loopback;
    return out;
}

}  // namespace uvgena
