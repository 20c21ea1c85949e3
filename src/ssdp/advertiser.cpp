#include "uvgena/ssdp/advertiser.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <random>

#include "sockets.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/net/udp.hpp"
#include "uvgena/ssdp/discovery.hpp"

namespace uvgena::ssdp {

namespace {

void add_target(std::vector<AdvertisedTarget>& out, std::string target, std::string usn) {
    auto same = [&](const AdvertisedTarget& t) { return t.target == target && t.usn == usn; };
    if (std::none_of(out.begin(), out.end(), same))
        out.push_back({std::move(target), std::move(usn)});
}

void add_device(std::vector<AdvertisedTarget>& out, const DeviceInfo& d) {
    add_target(out, d.udn, d.udn);
    add_target(out, d.device_type, d.udn + "::" + d.device_type);
    for (const ServiceInfo& s : d.services) {
        add_target(out, s.service_type, d.udn + "::" + s.service_type);
    }
    for (const DeviceInfo& e : d.devices) add_device(out, e);
}

void check_device(const DeviceInfo& d) {
    if (d.udn.rfind("uuid:", 0) != 0 || d.udn.size() <= 5) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "advertise: UDN '" + d.udn + "' does not start with uuid:");
    }
    if (d.device_type.empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "advertise: device " + d.udn + " has no deviceType");
    }
    for (const DeviceInfo& e : d.devices) check_device(e);
}

// True if `a` is in the subnet of the interface's address (IPv4 or IPv6), or, for an IPv6
// link-local peer, on that very interface (its scope).
bool same_subnet(const SocketAddress& a, const NetworkInterface& ni) {
    if (a.family() != ni.address.family() || ni.netmask.family() != a.family()) return false;
    if (a.is_ipv4()) {
        auto raw = [](const SocketAddress& s) {
            return reinterpret_cast<const sockaddr_in*>(s.sockaddr_ptr())->sin_addr.s_addr;
        };
        return (raw(a) & raw(ni.netmask)) == (raw(ni.address) & raw(ni.netmask));
    }
    if (a.scope_id() != 0) return a.scope_id() == ni.index;
    auto bytes = [](const SocketAddress& s) {
        return reinterpret_cast<const sockaddr_in6*>(s.sockaddr_ptr())->sin6_addr.s6_addr;
    };
    for (int i = 0; i < 16; ++i) {
        if ((bytes(a)[i] & bytes(ni.netmask)[i]) != (bytes(ni.address)[i] & bytes(ni.netmask)[i]))
            return false;
    }
    return true;
}

}  // namespace

std::vector<AdvertisedTarget> advertised_targets(const DeviceInfo& root) {
    std::vector<AdvertisedTarget> out;
    add_target(out, "upnp:rootdevice", root.udn + "::upnp:rootdevice");
    add_device(out, root);
    return out;
}

struct Advertiser::State {
    // Sends the advertisements out of one interface, with that interface's LOCATION.
    struct Endpoint : detail::GroupSender {
        std::string location;
    };

    State(uv_loop_t* l, AdvertiserOptions o)
        : loop(l), options(std::move(o)), rng(std::random_device{}()), scope(l) {}

    uv_loop_t* loop;
    AdvertiserOptions options;
    std::vector<AdvertisedTarget> targets;
    std::vector<Endpoint> endpoints;
    std::vector<UdpSocket> listeners;
    std::size_t answered = 0;
    std::size_t malformed = 0;
    std::size_t dropped = 0;
    std::size_t pending = 0;
    bool stopped = false;
    std::minstd_rand rng;
    Scope scope;

    std::string notify_bytes(const Endpoint& ep, const AdvertisedTarget& t, NotifyType type) const {
        Notify n;
        n.type = type;
        n.host = ep.host;
        n.target = t.target;
        n.usn = t.usn;
        if (type == NotifyType::alive) {
            n.location = ep.location;
            n.server = options.server;
            n.max_age = options.max_age;
        }
        n.boot_id = options.boot_id;
        n.config_id = options.config_id;
        return build_notify(n);
    }

    Task<void> send_all(NotifyType type, int repeats) {
        for (int r = 0; r < repeats; ++r) {
            if (r > 0) co_await sleep_for(loop, std::chrono::milliseconds(100));
            for (Endpoint& ep : endpoints) {
                for (const AdvertisedTarget& t : targets) {
                    try {
                        co_await ep.socket.send_to(notify_bytes(ep, t, type), ep.group);
                    } catch (const Error& e) {
                        if (is_cancelled(e.code())) throw;
                        log(LogLevel::warning, "ssdp: advertise on ", ep.interface.name, ": ",
                            e.what());
                    }
                }
            }
        }
    }

    // The endpoint whose LOCATION the searcher at `peer` can reach: same subnet, else same
    // family, else any.
    const Endpoint& endpoint_for(const SocketAddress& peer) const {
        for (const Endpoint& ep : endpoints) {
            if (same_subnet(peer, ep.interface)) return ep;
        }
        for (const Endpoint& ep : endpoints) {
            if (ep.interface.address.family() == peer.family()) return ep;
        }
        return endpoints.front();
    }

    // The responses one search deserves: (ST, USN) pairs, without repeats.
    std::vector<AdvertisedTarget> answers(std::string_view st) const {
        std::vector<AdvertisedTarget> out;
        bool all = st == "ssdp:all";
        for (const AdvertisedTarget& t : targets) {
            if (!target_matches(st, t.target)) continue;
            if (all || t.target == st) {
                add_target(out, t.target, t.usn);
            } else {
                // A search for an older version of a type is answered with that version.
                std::string udn = split_usn(t.usn).udn;
                add_target(out, std::string(st), udn + "::" + std::string(st));
            }
        }
        return out;
    }

    static Task<void> respond(State* self, UdpSocket* socket, SocketAddress peer,
                              std::vector<AdvertisedTarget> replies,
                              std::chrono::milliseconds delay) {
        struct Pending {
            std::size_t& n;
            ~Pending() { --n; }
        } guard{self->pending};
        co_await sleep_for(self->loop, delay);
        const Endpoint& ep = self->endpoint_for(peer);
        std::string date = detail::rfc1123_now();
        for (const AdvertisedTarget& t : replies) {
            Advertisement ad;
            ad.location = ep.location;
            ad.usn = t.usn;
            ad.target = t.target;
            ad.server = self->options.server;
            ad.max_age = self->options.max_age;
            ad.boot_id = self->options.boot_id;
            ad.config_id = self->options.config_id;
            co_await socket->send_to(build_response(ad, date), peer);
        }
    }

    void on_datagram(UdpSocket* socket, const UdpPacket& packet) {
        auto datagram = detail::parse_received(packet, malformed);
        if (!datagram) return;
        if (datagram->kind != Kind::search) return;  // other devices' advertisements
        auto search = read_search(*datagram, true);
        if (!search) {
            ++malformed;
            log(LogLevel::debug, "ssdp: skipped an M-SEARCH from ", packet.sender, ": ",
                search.error().message());
            return;
        }
        std::vector<AdvertisedTarget> replies = answers(search->search_target);
        if (replies.empty()) return;
        if (pending >= options.max_pending_responses) {
            ++dropped;
            return;
        }
        ++pending;
        ++answered;
        // UDA: answer after a random delay within MX, so that devices do not all answer at once.
        auto bound = std::min<std::int64_t>(std::int64_t{search->mx} * 1000,
                                            options.max_response_delay.count());
        std::uniform_int_distribution<std::int64_t> pick(0, std::max<std::int64_t>(bound - 1, 0));
        scope.spawn(respond(this, socket, packet.sender, std::move(replies),
                            std::chrono::milliseconds(pick(rng))));
    }

    static Task<void> receive_loop(State* self, UdpSocket* socket) {
        for (;;) {
            UdpPacket packet = co_await socket->receive();
            self->on_datagram(socket, packet);
        }
    }

    static Task<void> alive_loop(State* self) {
        co_await self->send_all(NotifyType::alive, self->options.repeats);
        for (;;) {
            co_await sleep_for(self->loop, self->options.alive_interval);
            co_await self->send_all(NotifyType::alive, 1);
        }
    }

    void close() noexcept {
        stopped = true;
        scope.request_stop();
        for (UdpSocket& s : listeners) s.close();
        for (Endpoint& ep : endpoints) ep.socket.close();
    }
};

Advertiser::Advertiser(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
Advertiser::Advertiser(Advertiser&&) noexcept = default;
Advertiser& Advertiser::operator=(Advertiser&&) noexcept = default;
Advertiser::~Advertiser() {
    if (state_) state_->close();
}

Advertiser Advertiser::start(uv_loop_t* loop, AdvertiserOptions options) {
    check_device(options.device);
    if (options.location.empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument), "advertise: empty LOCATION");
    }
    if (options.server.empty()) options.server = default_product_token();
    if (options.alive_interval.count() <= 0) {
        options.alive_interval =
            std::chrono::duration_cast<std::chrono::milliseconds>(options.max_age) / 3;
    }
    options.alive_interval = std::max(options.alive_interval, std::chrono::milliseconds(10));
    options.repeats = std::clamp(options.repeats, 1, 3);
    auto state = std::make_unique<State>(loop, options);
    state->targets = advertised_targets(options.device);
    detail::GroupSpec groups{.interface = options.interface,
                             .ipv4 = options.ipv4,
                             .ipv6 = options.ipv6,
                             .group4 = kMulticastV4,
                             .group6 = kMulticastV6,
                             .port = options.port};
    for (detail::GroupSender& sender : detail::open_group_senders(loop, groups, options.ttl)) {
        State::Endpoint ep{std::move(sender), options.location};
        if (auto at = ep.location.find("{ip}"); at != std::string::npos) {
            ep.location.replace(at, 4, http::url_host(ep.interface.address.ip()));
        }
        state->endpoints.push_back(std::move(ep));
    }
    if (state->endpoints.empty()) {
        throw Error(
            make_error_code(uvgena::errc::invalid_argument),
            std::string("advertise: no ") +
                (options.ipv4 && options.ipv6 ? "IPv4 or IPv6"
                 : options.ipv6               ? "IPv6"
                                              : "IPv4") +
                " network interface" +
                (options.interface.empty() ? std::string() : " named '" + options.interface + "'"));
    }
    state->listeners = detail::open_group_listeners(loop, groups);
    for (UdpSocket& s : state->listeners) state->scope.spawn(State::receive_loop(state.get(), &s));
    state->scope.spawn(State::alive_loop(state.get()));
    return Advertiser(std::move(state));
}

Task<void> Advertiser::stop() {
    State* s = state_.get();
    if (s == nullptr || s->stopped) co_return;
    s->stopped = true;
    s->scope.request_stop();
    co_await s->scope.join();
    for (UdpSocket& l : s->listeners) l.close();
    try {
        co_await s->send_all(NotifyType::byebye, s->options.repeats);
    } catch (const Error& e) {
        log(LogLevel::warning, "ssdp: byebye: ", e.what());
    }
    for (State::Endpoint& ep : s->endpoints) ep.socket.close();
}

void Advertiser::close() noexcept {
    if (state_) state_->close();
}

Task<void> Advertiser::announce() {
    State* s = state_.get();
    if (s == nullptr || s->stopped) {
        throw Error(make_error_code(uvgena::errc::not_running), "advertise: stopped");
    }
    co_await s->send_all(NotifyType::alive, 1);
}

std::size_t Advertiser::searches_answered() const noexcept {
    return state_->answered;
}
std::size_t Advertiser::malformed() const noexcept {
    return state_->malformed;
}
std::size_t Advertiser::dropped() const noexcept {
    return state_->dropped;
}
const std::vector<AdvertisedTarget>& Advertiser::targets() const noexcept {
    return state_->targets;
}

}  // namespace uvgena::ssdp
