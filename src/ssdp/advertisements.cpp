// DeviceTracker (sans-IO) and AdvertisementListener (its I/O).
#include <algorithm>

#include "sockets.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/ssdp/discovery.hpp"

namespace uvgena::ssdp {

std::string_view to_string(DeviceEvent event) noexcept {
    switch (event) {
        case DeviceEvent::appeared:
            return "appeared";
        case DeviceEvent::updated:
            return "updated";
        case DeviceEvent::rebooted:
            return "rebooted";
        case DeviceEvent::left:
            return "left";
        case DeviceEvent::expired:
            return "expired";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------------------
// DeviceTracker

DeviceTracker::Entry* DeviceTracker::find(std::string_view udn) {
    auto it = std::find_if(devices_.begin(), devices_.end(),
                           [&](const Entry& e) { return e.udn == udn; });
    return it == devices_.end() ? nullptr : &*it;
}

bool DeviceTracker::knows(std::string_view udn) const {
    return std::any_of(devices_.begin(), devices_.end(),
                       [&](const Entry& e) { return e.udn == udn; });
}

DeviceChange DeviceTracker::change(DeviceEvent event, const Entry& e, const SocketAddress& from) {
    DeviceChange c;
    c.event = event;
    c.udn = e.udn;
    c.location = e.location;
    c.server = e.server;
    c.boot_id = e.boot_id;
    c.config_id = e.config_id;
    c.from = from;
    return c;
}

std::optional<DeviceChange> DeviceTracker::on_alive(const Advertisement& ad,
                                                    const SocketAddress& from,
                                                    Clock::time_point now) {
    std::string udn = detail::udn_of(ad.usn);
    if (udn.empty()) return std::nullopt;
    Clock::time_point expires = now + ad.max_age;
    Entry* e = find(udn);
    if (e == nullptr) {
        if (max_ == 0) return std::nullopt;
        if (devices_.size() >= max_) {
            // Forget the device whose advertisement runs out first: the likeliest to be gone.
            auto oldest = std::min_element(
                devices_.begin(), devices_.end(),
                [](const Entry& a, const Entry& b) { return a.expires < b.expires; });
            devices_.erase(oldest);
        }
        devices_.push_back(Entry{udn, ad.location, ad.server, ad.boot_id, ad.config_id, expires});
        return change(DeviceEvent::appeared, devices_.back(), from);
    }
    // Messages of one device for its several targets arrive in bursts; each one renews.
    e->expires = std::max(e->expires, expires);
    if (ad.boot_id && e->boot_id && *ad.boot_id != *e->boot_id) {
        if (*ad.boot_id < *e->boot_id) return std::nullopt;  // a late message of an old boot
        std::optional<std::uint32_t> previous = e->boot_id;
        e->boot_id = ad.boot_id;
        e->location = ad.location;
        if (!ad.server.empty()) e->server = ad.server;
        e->config_id = ad.config_id;
        DeviceChange c = change(DeviceEvent::rebooted, *e, from);
        c.previous_boot_id = previous;
        return c;
    }
    if (ad.boot_id && !e->boot_id) e->boot_id = ad.boot_id;
    bool moved = !ad.location.empty() && ad.location != e->location;
    bool reconfigured = ad.config_id && ad.config_id != e->config_id;
    if (!ad.server.empty()) e->server = ad.server;
    if (!moved && !reconfigured) return std::nullopt;
    if (moved) e->location = ad.location;
    if (ad.config_id) e->config_id = ad.config_id;
    return change(DeviceEvent::updated, *e, from);
}

std::optional<DeviceChange> DeviceTracker::on_notify(const Notify& notify,
                                                     const SocketAddress& from,
                                                     Clock::time_point now) {
    switch (notify.type) {
        case NotifyType::alive:
            return on_alive(notify, from, now);
        case NotifyType::update: {
            // ssdp:update announces the BOOTID the next alive will carry: not a reboot.
            Entry* e = find(detail::udn_of(notify.usn));
            if (e != nullptr && notify.next_boot_id) {
                e->boot_id = notify.next_boot_id;
                if (!notify.location.empty()) e->location = notify.location;
                if (notify.config_id) e->config_id = notify.config_id;
                e->expires = std::max(e->expires, now + notify.max_age);
            }
            return std::nullopt;
        }
        case NotifyType::byebye: {
            std::string udn = detail::udn_of(notify.usn);
            if (udn.empty()) return std::nullopt;
            auto it = std::find_if(devices_.begin(), devices_.end(),
                                   [&](const Entry& en) { return en.udn == udn; });
            // A device sends one byebye per target (and repeats them): only the first one
            // finds it known, so it leaves once.
            if (it == devices_.end()) return std::nullopt;
            DeviceChange c = change(DeviceEvent::left, *it, from);
            devices_.erase(it);
            return c;
        }
    }
    return std::nullopt;
}

void DeviceTracker::remember(const Advertisement& ad, Clock::time_point now) {
    std::string udn = detail::udn_of(ad.usn);
    if (udn.empty() || max_ == 0) return;
    Entry* e = find(udn);
    if (e == nullptr) {
        if (devices_.size() >= max_) return;  // never evicts a device it heard from
        devices_.push_back(
            Entry{udn, ad.location, ad.server, ad.boot_id, ad.config_id, now + ad.max_age});
        return;
    }
    if (!e->boot_id) e->boot_id = ad.boot_id;
    if (e->location.empty()) e->location = ad.location;
    if (!e->config_id) e->config_id = ad.config_id;
    if (e->server.empty()) e->server = ad.server;
    e->expires = std::max(e->expires, now + ad.max_age);
}

std::optional<DeviceChange> DeviceTracker::on_response(const Advertisement& ad,
                                                       const SocketAddress& from,
                                                       Clock::time_point now) {
    return on_alive(ad, from, now);
}

std::vector<DeviceChange> DeviceTracker::expire(Clock::time_point now) {
    std::vector<DeviceChange> out;
    auto keep = std::stable_partition(devices_.begin(), devices_.end(),
                                      [&](const Entry& e) { return e.expires > now; });
    for (auto it = keep; it != devices_.end(); ++it) {
        out.push_back(change(DeviceEvent::expired, *it, SocketAddress{}));
    }
    devices_.erase(keep, devices_.end());
    return out;
}

// ---------------------------------------------------------------------------------------
// AdvertisementListener

struct AdvertisementListener::State {
    State(uv_loop_t* l, const AdvertisementListenerOptions& o)
        : loop(l),
          options(o),
          tracker(o.max_devices),
          changes(l, std::max<std::size_t>(o.max_queued, 1), Overflow::drop_oldest),
          scope(l) {}

    uv_loop_t* loop;
    AdvertisementListenerOptions options;
    DeviceTracker tracker;
    std::vector<UdpSocket> sockets;
    std::size_t malformed = 0;
    Channel<DeviceChange> changes;
    Scope scope;

    void on_datagram(const UdpPacket& packet) {
        auto datagram = detail::parse_received(packet, malformed);
        if (!datagram) return;
        if (datagram->kind != Kind::notify) return;  // searches of other control points
        auto notify = read_notify(*datagram);
        if (!notify) {
            ++malformed;
            log(LogLevel::debug, "ssdp: skipped a NOTIFY from ", packet.sender, ": ",
                notify.error().message());
            return;
        }
        if (auto c = tracker.on_notify(*notify, packet.sender, DeviceTracker::Clock::now())) {
            changes.push(std::move(*c));
        }
    }

    static Task<void> receive_loop(State* self, UdpSocket* socket) {
        for (;;) self->on_datagram(co_await socket->receive());
    }

    static Task<void> expiry_loop(State* self) {
        for (;;) {
            co_await sleep_for(self->loop, self->options.expiry_check);
            for (DeviceChange& c : self->tracker.expire(DeviceTracker::Clock::now())) {
                self->changes.push(std::move(c));
            }
        }
    }
};

AdvertisementListener::AdvertisementListener(std::unique_ptr<State> state) noexcept
    : state_(std::move(state)) {}
AdvertisementListener::AdvertisementListener(AdvertisementListener&&) noexcept = default;
AdvertisementListener& AdvertisementListener::operator=(AdvertisementListener&&) noexcept = default;
AdvertisementListener::~AdvertisementListener() = default;

AdvertisementListener AdvertisementListener::start(uv_loop_t* loop,
                                                   AdvertisementListenerOptions options) {
    auto state = std::make_unique<State>(loop, options);
    state->sockets = detail::open_group_listeners(loop, {.interface = options.interface,
                                                         .ipv4 = options.ipv4,
                                                         .ipv6 = options.ipv6,
                                                         .group4 = kMulticastV4,
                                                         .group6 = kMulticastV6,
                                                         .port = options.port,
                                                         .max_queued = 512});
    for (UdpSocket& s : state->sockets) state->scope.spawn(State::receive_loop(state.get(), &s));
    state->scope.spawn(State::expiry_loop(state.get()));
    return AdvertisementListener(std::move(state));
}

uvgena::detail::ChannelNextAwaiter<DeviceChange> AdvertisementListener::next() noexcept {
    return state_->changes.next();
}

void AdvertisementListener::close() noexcept {
    if (!state_) return;
    state_->scope.request_stop();
    for (UdpSocket& s : state_->sockets) s.close();
    state_->changes.close();
}

std::size_t AdvertisementListener::malformed() const noexcept {
    return state_->malformed;
}
std::size_t AdvertisementListener::dropped() const noexcept {
    return state_->changes.dropped();
}
std::size_t AdvertisementListener::known_devices() const noexcept {
    return state_->tracker.size();
}

void AdvertisementListener::remember(const DiscoveredDevice& device) {
    Advertisement ad;
    ad.location = device.location;
    ad.usn = device.usn.empty() ? device.udn : device.usn;
    ad.target = device.udn;
    ad.server = device.server;
    ad.max_age = device.max_age;
    ad.boot_id = device.boot_id;
    ad.config_id = device.config_id;
    state_->tracker.remember(ad, DeviceTracker::Clock::now());
}

}  // namespace uvgena::ssdp
