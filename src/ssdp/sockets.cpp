#include "sockets.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "uvgena/core/log.hpp"
#include "uvgena/ssdp/message.hpp"

namespace uvgena::ssdp {

namespace detail {

namespace {

// fe80::/10 (spelled out: glibc's IN6_IS_ADDR_LINKLOCAL is a C-cast macro).
bool is_link_local(const SocketAddress& a) {
    if (!a.is_ipv6()) return false;
    const unsigned char* b =
        reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr())->sin6_addr.s6_addr;
    return b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
}

}  // namespace

std::vector<NetworkInterface> multicast_addresses(std::string_view name, int family) {
    std::vector<NetworkInterface> found;
    try {
        found = multicast_interfaces(name, family);
    } catch (const Error& e) {
        if (e.code() != make_error_code(uvgena::errc::invalid_argument)) throw;
        // An interface that exists but lacks this family (an IPv6-only link) is no error:
        // the caller may use the other family on it.
        for (const NetworkInterface& ni : network_interfaces()) {
            if (ni.name == name || ni.address.ip() == name) return {};
        }
        throw;
    }
    if (family != AF_INET6) return found;
    std::vector<NetworkInterface> out;
    for (NetworkInterface& ni : found) {
        if (is_link_local(ni.address) && ni.address.scope_id() == 0) continue;
        auto same = std::find_if(out.begin(), out.end(),
                                 [&](const NetworkInterface& o) { return o.name == ni.name; });
        if (same == out.end()) {
            out.push_back(std::move(ni));
        } else if (is_link_local(same->address) && !is_link_local(ni.address)) {
            *same = std::move(ni);
        }
    }
    return out;
}

std::vector<GroupSender> open_group_senders(uv_loop_t* loop, const GroupSpec& spec, int ttl) {
    std::vector<GroupSender> out;
    auto open_family = [&](int family) {
        for (NetworkInterface& ni : multicast_addresses(spec.interface, family)) {
            GroupSender s;
            s.socket = UdpSocket::bind(loop, ni.address, {.max_queued = spec.max_queued});
            s.socket.set_multicast_interface(ni.multicast_interface());
            s.socket.set_multicast_ttl(std::clamp(ttl, 1, 255));
            s.socket.set_multicast_loop(true);
            std::string port = std::to_string(spec.port);
            if (family == AF_INET) {
                s.group = SocketAddress::parse(spec.group4, spec.port);
                s.host = std::string(spec.group4) + ":" + port;
            } else {
                // Link-local groups need the interface as their scope.
                s.group = SocketAddress::parse(std::string(spec.group6) + "%" + ni.name, spec.port);
                std::string upper(spec.group6);
                for (char& c : upper)
                    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                s.host = "[" + upper + "]:" + port;
            }
            s.interface = std::move(ni);
            out.push_back(std::move(s));
        }
    };
    if (spec.ipv4) open_family(AF_INET);
    if (spec.ipv6) open_family(AF_INET6);
    return out;
}

std::vector<UdpSocket> open_group_listeners(uv_loop_t* loop, const GroupSpec& spec) {
    std::vector<UdpSocket> sockets;
    std::string failures;
    auto open_family = [&](int family, std::string_view group) {
        std::vector<NetworkInterface> ifs = multicast_addresses(spec.interface, family);
        if (ifs.empty()) return;
        SocketAddress any = family == AF_INET ? SocketAddress::ipv4_any(spec.port)
                                              : SocketAddress::ipv6_any(spec.port);
        UdpSocket s = UdpSocket::bind(loop, any,
                                      {.reuse_address = true,
                                       .ipv6_only = family == AF_INET6,
                                       .max_queued = spec.max_queued});
        bool joined = false;
        for (const NetworkInterface& ni : ifs) {
            try {
                s.join_group(group, ni.multicast_interface());
                joined = true;
            } catch (const Error& e) {
                // An interface that cannot do multicast must not prevent the others.
                log(LogLevel::warning, "ssdp: ", e.what());
                failures += std::string(failures.empty() ? "" : "; ") + e.what();
            }
        }
        if (joined) sockets.push_back(std::move(s));
    };
    if (spec.ipv4) open_family(AF_INET, spec.group4);
    if (spec.ipv6) open_family(AF_INET6, spec.group6);
    if (sockets.empty()) {
        throw Error(
            make_error_code(uvgena::errc::invalid_argument),
            "no interface could join the multicast group" +
                (failures.empty() ? " (no usable interface" +
                                        (spec.interface.empty()
                                             ? std::string()
                                             : " named '" + std::string(spec.interface) + "'") +
                                        ")"
                                  : ": " + failures));
    }
    return sockets;
}

std::optional<Datagram> parse_received(const UdpPacket& packet, std::size_t& malformed) {
    auto datagram = parse_datagram(packet.data);
    if (!datagram) {
        ++malformed;
        log(LogLevel::debug, "ssdp: skipped a datagram from ", packet.sender, ": ",
            datagram.error().message());
        return std::nullopt;
    }
    return std::move(*datagram);
}

std::string rfc1123_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                  tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    return buf;
}

std::string udn_of(std::string_view usn) {
    return split_usn(usn).udn;
}

}  // namespace detail
}  // namespace uvgena::ssdp
