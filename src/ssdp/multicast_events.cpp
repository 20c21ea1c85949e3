#include "uvgena/ssdp/multicast_events.hpp"

#include <algorithm>

#include "sockets.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/net/udp.hpp"

namespace uvgena::ssdp {

// ---------------------------------------------------------------------------------------
// Listener

struct MulticastEventListener::State {
    State(uv_loop_t* l, const MulticastEventListenerOptions& o)
        : filter(std::max<std::size_t>(o.max_services, 1)),
          events(l, std::max<std::size_t>(o.max_queued, 1), Overflow::drop_oldest),
          scope(l) {}

    MulticastEventFilter filter;
    std::vector<UdpSocket> sockets;
    std::size_t duplicates = 0;
    std::size_t stale = 0;
    std::size_t malformed = 0;
    Channel<ReceivedMulticastEvent> events;
    Scope scope;

    void on_datagram(UdpPacket& packet) {
        auto datagram = detail::parse_received(packet, malformed);
        if (!datagram) return;
        auto event = read_multicast_event(*datagram);
        if (!event) {
            ++malformed;
            log(LogLevel::debug, "ssdp: skipped a multicast event from ", packet.sender, ": ",
                event.error().message());
            return;
        }
        switch (filter.judge(*event)) {
            case EventVerdict::duplicate:
                ++duplicates;
                return;
            case EventVerdict::old_seq:
            case EventVerdict::stale_boot:
                ++stale;
                return;
            case EventVerdict::accept:
                events.push({std::move(*event), false, packet.sender});
                return;
            case EventVerdict::rebooted:
                events.push({std::move(*event), true, packet.sender});
                return;
        }
    }

    static Task<void> receive_loop(State* self, UdpSocket* socket) {
        for (;;) {
            UdpPacket packet = co_await socket->receive();
            self->on_datagram(packet);
        }
    }
};

MulticastEventListener::MulticastEventListener(std::unique_ptr<State> state) noexcept
    : state_(std::move(state)) {}
MulticastEventListener::MulticastEventListener(MulticastEventListener&&) noexcept = default;
MulticastEventListener& MulticastEventListener::operator=(MulticastEventListener&&) noexcept =
    default;
MulticastEventListener::~MulticastEventListener() = default;

MulticastEventListener MulticastEventListener::start(uv_loop_t* loop,
                                                     MulticastEventListenerOptions options) {
    auto state = std::make_unique<State>(loop, options);
    state->sockets = detail::open_group_listeners(loop, {.interface = options.interface,
                                                         .ipv4 = options.ipv4,
                                                         .ipv6 = options.ipv6,
                                                         .group4 = kEventMulticastV4,
                                                         .group6 = kEventMulticastV6,
                                                         .port = options.port,
                                                         .max_queued = 512});
    for (UdpSocket& s : state->sockets) state->scope.spawn(State::receive_loop(state.get(), &s));
    return MulticastEventListener(std::move(state));
}

uvgena::detail::ChannelNextAwaiter<ReceivedMulticastEvent> MulticastEventListener::next() noexcept {
    return state_->events.next();
}

void MulticastEventListener::close() noexcept {
    if (!state_) return;
    state_->scope.request_stop();
    for (UdpSocket& s : state_->sockets) s.close();
    state_->events.close();
}

std::size_t MulticastEventListener::duplicates() const noexcept {
    return state_->duplicates;
}
std::size_t MulticastEventListener::stale() const noexcept {
    return state_->stale;
}
std::size_t MulticastEventListener::malformed() const noexcept {
    return state_->malformed;
}
std::size_t MulticastEventListener::dropped() const noexcept {
    return state_->events.dropped();
}

// ---------------------------------------------------------------------------------------
// Sender

struct MulticastEventSender::State {
    using Endpoint = detail::GroupSender;
    explicit State(uv_loop_t* l) : scope(l) {}
    static Task<void> send_now(State* s, std::string property_set, EventLevel level);
    void post(std::string property_set, EventLevel level);

    MulticastEventSenderOptions options;
    std::vector<Endpoint> endpoints;
    std::uint32_t seq = 0;
    Scope scope;  // posted sends; last, so that they die first
};

MulticastEventSender::MulticastEventSender(std::shared_ptr<State> state) noexcept
    : state_(std::move(state)) {}
MulticastEventSender::MulticastEventSender(MulticastEventSender&&) noexcept = default;
MulticastEventSender& MulticastEventSender::operator=(MulticastEventSender&&) noexcept = default;
MulticastEventSender::~MulticastEventSender() = default;

MulticastEventSender MulticastEventSender::create(uv_loop_t* loop,
                                                  MulticastEventSenderOptions options) {
    if (options.usn.rfind("uuid:", 0) != 0 || options.service_id.empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "multicast events: USN must start with uuid: and SVCID must be set");
    }
    auto state = std::make_shared<State>(loop);
    state->options = options;
    state->endpoints = detail::open_group_senders(loop,
                                                  {.interface = options.interface,
                                                   .ipv4 = options.ipv4,
                                                   .ipv6 = options.ipv6,
                                                   .group4 = kEventMulticastV4,
                                                   .group6 = kEventMulticastV6,
                                                   .port = options.port},
                                                  options.ttl);
    if (state->endpoints.empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "multicast events: no network interface to send on");
    }
    return MulticastEventSender(std::move(state));
}

Task<void> MulticastEventSender::State::send_now(State* s, std::string property_set,
                                                 EventLevel level) {
    MulticastEvent event;
    event.usn = s->options.usn;
    event.service_id = s->options.service_id;
    event.seq = s->seq;
    event.level = level;
    event.boot_id = s->options.boot_id;
    event.body = std::move(property_set);
    // SEQ wraps to 1, never 0: 0 means "the first event" to a receiver.
    s->seq = s->seq == 0xFFFFFFFFu ? 1 : s->seq + 1;
    std::size_t sent = 0;
    std::string last_error;
    for (State::Endpoint& ep : s->endpoints) {
        event.host = ep.host;
        try {
            co_await ep.socket.send_to(build_multicast_event(event), ep.group);
            ++sent;
        } catch (const Error& e) {
            if (is_cancelled(e.code())) throw;
            log(LogLevel::warning, "ssdp: multicast event on ", ep.interface.name, ": ", e.what());
            last_error = e.what();
        }
    }
    if (sent == 0) {
        throw Error(
            make_error_code(uvgena::errc::closed),
            "multicast event SEQ " + std::to_string(event.seq) + " sent nowhere: " + last_error);
    }
}

Task<void> MulticastEventSender::send(std::string property_set, EventLevel level) {
    State* s = state_.get();
    if (s == nullptr) throw Error(make_error_code(uvgena::errc::closed), "multicast event send");
    co_await State::send_now(s, std::move(property_set), level);
}

void MulticastEventSender::State::post(std::string property_set, EventLevel level) {
    scope.spawn([](State* self, std::string body, EventLevel lvl) -> Task<void> {
        try {
            co_await send_now(self, std::move(body), lvl);
        } catch (const Error& e) {
            if (!is_cancelled(e.code())) log(LogLevel::warning, "ssdp: ", e.what());
        }
    }(this, std::move(property_set), level));
}

void MulticastEventSender::post(std::string property_set, EventLevel level) {
    if (state_) state_->post(std::move(property_set), level);
}

std::function<void(std::string)> MulticastEventSender::sink(EventLevel level) {
    std::weak_ptr<State> weak = state_;
    return [weak, level](std::string property_set) {
        if (auto s = weak.lock()) s->post(std::move(property_set), level);
    };
}

std::uint32_t MulticastEventSender::next_seq() const noexcept {
    return state_->seq;
}

void MulticastEventSender::set_boot_id(std::uint32_t boot_id) noexcept {
    state_->options.boot_id = boot_id;
    state_->seq = 0;
}

void MulticastEventSender::close() noexcept {
    if (!state_) return;
    for (State::Endpoint& ep : state_->endpoints) ep.socket.close();
}

}  // namespace uvgena::ssdp
