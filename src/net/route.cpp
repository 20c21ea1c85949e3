#include "net/route.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "uvgena/core/error.hpp"

namespace uvgena::net {

Result<SocketAddress> local_address_towards(const SocketAddress& peer) noexcept {
    if (!peer.valid()) return fail(uvgena::errc::invalid_argument);
    int fd = ::socket(peer.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(uv_error(-errno));
    // Connecting a UDP socket only selects the route and the source address; nothing is sent.
    SocketAddress probe = peer;
    if (probe.port() == 0) probe.set_port(9);
    Result<SocketAddress> result = fail(uvgena::errc::invalid_argument);
    if (::connect(fd, probe.sockaddr_ptr(), probe.sockaddr_len()) != 0) {
        result = fail(uv_error(-errno));
    } else {
        sockaddr_storage local{};
        socklen_t len = sizeof local;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
            result = fail(uv_error(-errno));
        } else {
            result = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&local));
        }
    }
    ::close(fd);
    return result;
}

}  // namespace uvgena::net
