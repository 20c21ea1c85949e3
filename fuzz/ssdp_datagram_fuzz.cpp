// Fuzzes the SSDP datagram parser and every typed reader on top of it, as a control point
// and a device receive them from anyone on the LAN.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "uvgena/ssdp/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace uvgena::ssdp;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    auto datagram = parse_datagram(bytes);
    if (!datagram) return 0;
    (void)read_search(*datagram, true);
    (void)read_search(*datagram, false);
    if (auto ad = read_response(*datagram)) {
        (void)split_usn(ad->usn);
        (void)target_matches("urn:schemas-upnp-org:service:AVTransport:1", ad->target);
    }
    (void)read_notify(*datagram);
    static MulticastEventFilter filter(64);
    if (auto event = read_multicast_event(*datagram)) (void)filter.judge(*event);
    return 0;
}
