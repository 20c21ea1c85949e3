// The host's interface list (the I/O half of the CALLBACK checks) and its cache.
#include "uvgena/publisher/interfaces.hpp"

#include <uv.h>

#include "publisher/publisher_impl.hpp"

namespace uvgena::gena {

std::vector<InterfaceNetwork> local_interface_networks() {
    std::vector<InterfaceNetwork> out;
    uv_interface_address_t* list = nullptr;
    int count = 0;
    if (uv_interface_addresses(&list, &count) != 0) return out;
    out.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        const uv_interface_address_t& entry = list[i];
        auto address =
            SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&entry.address));
        auto mask = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&entry.netmask));
        if (!address || !mask) continue;
        out.push_back({*address, *mask});
    }
    uv_free_interface_addresses(list, count);
    return out;
}

const std::vector<InterfaceNetwork>& detail::InterfaceCache::get() {
    Clock::time_point now = Clock::now();
    if (!read_ || now - read_at_ > std::chrono::seconds(10)) {
        list_ = local_interface_networks();
        read_ = true;
        read_at_ = now;
    }
    return list_;
}

}  // namespace uvgena::gena
