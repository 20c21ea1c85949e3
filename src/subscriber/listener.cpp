// The NOTIFY listener: one http::Server, a registry of subscriptions by callback path, the
// hold queue for NOTIFYs that overtake their SUBSCRIBE answer, and callback delivery.
#include "uvgena/subscriber/listener.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <string_view>

#include "subscriber/subscription_impl.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/core/strings.hpp"
#include "uvgena/gena/protocol.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/http/url.hpp"

namespace uvgena::gena {
namespace detail {
namespace {

// Callback paths are "/uvgena/<id>": the id is the registry key, so a lookup is one hash of
// an integer, and a NOTIFY for a subscription that is gone is told apart from garbage.
constexpr std::string_view kPathPrefix = "/uvgena/";

// The IP of an address for comparisons: IPv4-mapped IPv6 ("::ffff:10.0.0.1", as a dual-stack
// socket reports IPv4 peers) becomes the IPv4 form.
std::string plain_ip(const SocketAddress& address) { return address.unmapped().ip(); }

using http::url_host;

Task<http::Response> handle_task(ListenerImpl* self, const http::Request& request,
                                 const http::RequestContext& context);

}  // namespace

Result<SocketAddress> local_address_towards(const SocketAddress& device) noexcept {
    if (!device.valid()) return fail(uvgena::errc::invalid_argument);
    int fd = ::socket(device.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(uv_error(-errno));
    // Connecting a UDP socket only selects the route and the source address; nothing is sent.
    SocketAddress probe = device;
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

ListenerImpl::ListenerImpl(uv_loop_t* l, ListenerOptions o)
    : loop(l), options(std::move(o)), scope_(l) {
    // Ids start at a random point so that a NOTIFY meant for an earlier run of the program
    // (same port, same path scheme) is not taken for one of ours.
    std::random_device rd;
    next_id_ = ((std::uint64_t{rd()} << 20) ^ rd()) & ((std::uint64_t{1} << 52) - 1);
}

ListenerImpl::~ListenerImpl() { close_now(); }

std::shared_ptr<ListenerImpl> ListenerImpl::shared_for(uv_loop_t* loop) {
    static std::mutex mutex;
    static std::unordered_map<uv_loop_t*, std::weak_ptr<ListenerImpl>> registry;
    std::lock_guard lock(mutex);
    for (auto it = registry.begin(); it != registry.end();) {
        it = it->second.expired() ? registry.erase(it) : std::next(it);
    }
    std::weak_ptr<ListenerImpl>& slot = registry[loop];
    std::shared_ptr<ListenerImpl> listener = slot.lock();
    if (!listener || listener->stopped) {
        listener = std::make_shared<ListenerImpl>(loop, ListenerOptions{});
        slot = listener;
    }
    return listener;
}

void ListenerImpl::start() {
    if (stopped) {
        throw Error(make_error_code(uvgena::errc::not_running), "event listener was stopped");
    }
    if (started) return;
    http::ServerOptions so;
    so.port_range = options.port == 0 ? 0 : options.port_range;
    so.limits.max_body_bytes = options.max_body_bytes;
    so.max_connections = options.max_connections;
    so.evict_idle = options.evict_idle_connections;
    so.header_timeout = options.header_timeout;
    so.body_timeout = options.body_timeout;
    so.idle_timeout = options.idle_timeout;
    so.write_timeout = options.write_timeout;
    so.close_grace = options.close_grace;
    http::Handler handler = [this](const http::Request& request,
                                   const http::RequestContext& context) {
        return handle_task(this, request, context);
    };
    auto listen_on = [&](SocketAddress address, bool ipv6_only) {
        so.address = address;
        so.ipv6_only = ipv6_only;
        auto server = std::make_unique<http::Server>(loop, handler, so);
        server->listen();
        server_ = std::move(server);
    };
    if (options.listen_host.empty()) {
        try {
            listen_on(SocketAddress::ipv6_any(options.port), false);
        } catch (const Error& e) {
            // No IPv6 on this host (or in this namespace): IPv4 only. A port conflict is a
            // real failure and is reported as such.
            if (e.code() == http::errc::no_free_port || e.code() == uv_error(UV_EADDRINUSE)) {
                throw;
            }
            listen_on(SocketAddress::ipv4_any(options.port), false);
        }
    } else {
        listen_on(SocketAddress::parse(options.listen_host, options.port), false);
    }
    started = true;
    log(LogLevel::info, "uvgena: event listener on ", server_->local_address().to_string());
}

void ListenerImpl::close_now() noexcept {
    std::vector<SubState*> live;
    live.reserve(subs.size());
    for (auto& entry : subs) live.push_back(entry.second);
    for (SubState* s : live) s->end({});
    subs.clear();
    stopped = true;
    started = false;
    scope_.request_stop();
    server_.reset();
}

Task<void> ListenerImpl::stop() {
    if (stopped) co_return;
    stopped = true;
    std::shared_ptr<ListenerImpl> keep = shared_from_this();
    std::vector<std::shared_ptr<SubState>> live;
    live.reserve(subs.size());
    for (auto& entry : subs) live.push_back(entry.second->shared_from_this());
    {
        Scope unsubscribing(loop);
        for (auto& s : live) {
            bool send = s->subscribed() && s->device_address.has_value();
            std::string sid = s->sid;
            s->end({});
            if (send) {
                unsubscribing.spawn(send_unsubscribe(loop, s->config->url, s->device_address.get(),
                                                     sid, s->config->timeout,
                                                     s->config->user_agent, false));
            }
        }
        co_await unsubscribing.join();
    }
    scope_.request_stop();
    co_await scope_.join();
    if (server_) co_await server_->stop(std::chrono::milliseconds(500));
    started = false;
}

std::uint64_t ListenerImpl::add(SubState* state) {
    std::uint64_t id = next_id_++;
    subs.emplace(id, state);
    return id;
}

void ListenerImpl::remove(std::uint64_t id) noexcept { subs.erase(id); }

std::shared_ptr<const SubConfig> ListenerImpl::intern(std::shared_ptr<SubConfig> config) {
    if (config->has_handlers()) return config;
    std::weak_ptr<const SubConfig>& slot = configs_[config->url_text];
    if (std::shared_ptr<const SubConfig> known = slot.lock();
        known && known->same_settings(*config)) {
        return known;
    }
    slot = config;
    if (configs_.size() >= 2 * configs_swept_size_) {
        std::erase_if(configs_, [](const auto& entry) { return entry.second.expired(); });
        configs_swept_size_ = std::max<std::size_t>(configs_.size(), 16);
    }
    return config;
}

std::string ListenerImpl::callback_url(const std::optional<SocketAddress>& local,
                                       std::uint64_t id) const {
    std::string host;
    if (!options.advertise_host.empty()) {
        host = url_host(options.advertise_host);
    } else if (!options.listen_host.empty()) {
        host = url_host(options.listen_host);
    } else if (local) {
        host = url_host(plain_ip(*local));
    } else if (server_) {
        host = url_host(plain_ip(server_->local_address()));
    } else {
        host = "127.0.0.1";
    }
    std::uint16_t port = options.advertise_port != 0 ? options.advertise_port
                         : server_                   ? server_->port()
                                                     : options.port;
    std::string url = "http://";
    url += host;
    url += ':';
    url += std::to_string(port);
    url += kPathPrefix;
    url += std::to_string(id);
    return url;
}

void ListenerImpl::queue_renewal(SubState& state) {
    if (stopped || state.renewal_queued) return;
    renewal_queue_.push_back(state.weak_from_this());
    state.renewal_queued = true;
    start_queued_renewals();
}

void ListenerImpl::renewal_done() noexcept {
    if (renewals_in_flight_ > 0) --renewals_in_flight_;
    start_queued_renewals();
}

void ListenerImpl::start_queued_renewals() noexcept {
    // Not while closing: the scope that would run them is going away.
    if (stopped) return;
    std::size_t limit = std::max<std::size_t>(options.max_renewals_in_flight, 1);
    while (renewals_in_flight_ < limit && !renewal_queue_.empty()) {
        std::shared_ptr<SubState> state = renewal_queue_.front().lock();
        renewal_queue_.pop_front();
        if (!state) continue;
        state->renewal_queued = false;
        // Ended or resubscribing meanwhile, or renewed by hand (its new grant has its own
        // renewal time): nothing to do.
        if (state->listener != this || state->phase != SubState::Phase::active ||
            state->background_busy || state->schedule.renew_at()) {
            continue;
        }
        ++renewals_in_flight_;
        if (!state->start_auto_renewal()) --renewals_in_flight_;
    }
}

void ListenerImpl::queue_callback(std::shared_ptr<SubState> state, Event event) {
    callback_queue_.emplace_back(std::move(state), std::move(event));
    if (delivering_) return;
    delivering_ = true;
    try {
        uvgena::spawn(loop, deliver_callbacks(shared_from_this()));
    } catch (const std::exception& e) {
        delivering_ = false;
        log(LogLevel::error, "uvgena: cannot schedule event delivery: ", e.what());
    }
}

// Runs in the loop's own scope, never in the listener's: a callback may drop the last
// reference to the listener, which then must not be inside one of its own tasks.
Task<void> ListenerImpl::deliver_callbacks(std::shared_ptr<ListenerImpl> self) {
    while (!self->callback_queue_.empty()) {
        // Named members, not a structured binding: clang 14 cannot capture one in a lambda.
        auto entry = std::move(self->callback_queue_.front());
        self->callback_queue_.pop_front();
        auto& state = entry.first;
        auto& event = entry.second;
        std::shared_ptr<const EventCallback> callback = state->callback;
        if (callback) {
            call_user(self.get(), "event callback", [&] { (*callback)(std::move(event)); });
        } else {
            // The callback was removed meanwhile: the event goes back to the queue.
            state->channel().push(std::move(event));
        }
    }
    self->delivering_ = false;
    co_return;
}

void ListenerImpl::release(std::shared_ptr<ListenerImpl>& listener) noexcept {
    if (!listener) return;
    if (listener.use_count() == 1 && listener->in_user_code > 0) {
        // The last reference dropped from user code that one of the listener's tasks runs:
        // destroy it from the loop instead, after that task has moved on.
        try {
            uv_loop_t* loop = listener->loop;
            uvgena::spawn(loop, [](std::shared_ptr<ListenerImpl>) -> Task<void> { co_return; }(
                                    std::move(listener)));
            return;
        } catch (...) {
        }
    }
    listener.reset();
}

http::Response ListenerImpl::handle(const http::Request& request,
                                    const http::RequestContext& context) {
    SubState* sub = nullptr;
    std::string_view target = request.target;
    if (target.substr(0, kPathPrefix.size()) == kPathPrefix) {
        if (auto id = parse_unsigned<std::uint64_t>(target.substr(kPathPrefix.size()))) {
            if (auto it = subs.find(*id); it != subs.end()) sub = it->second;
        }
    }
    NotifyDecision decision = check_notify(request, [sub](std::string_view sid) {
        return sub != nullptr && (sid == sub->sid || sub->holding());
    });
    if (!decision.accepted()) {
        if (decision.status == 412) {
            ++stats.unknown;
        } else {
            ++stats.bad_requests;
        }
        if (log_enabled(LogLevel::debug)) {
            log(LogLevel::debug, "uvgena: NOTIFY ", request.target, " from ",
                context.peer.to_string(), " answered ", decision.status, ": ",
                decision.reason.message());
        }
        return make_notify_response(decision);
    }
    if (sub->config->check_source && sub->device_address &&
        plain_ip(context.peer) != plain_ip(sub->device_address.get())) {
        ++stats.unknown;
        ++stats.wrong_source;
        log(LogLevel::warning, "uvgena: NOTIFY for ", decision.sid, " from ",
            context.peer.to_string(), " refused: the device is ",
            sub->device_address.get().to_string());
        decision.status = 412;
        decision.reason = make_error_code(errc::unknown_sid);
        return make_notify_response(decision);
    }
    ++stats.notifications;
    Event event;
    event.sid = std::move(decision.sid);
    event.seq = decision.seq;
    event.timestamp = std::chrono::system_clock::now();
    event.service = sub->url_text();
    Result<PropertySet> parsed = PropertySet::parse(request.body, options.parse);
    if (parsed) {
        event.properties = std::move(*parsed);
    } else {
        event.parse_error = parsed.error();
        ++stats.parse_errors;
        log(LogLevel::warning, "uvgena: NOTIFY for ", event.sid, " SEQ ", event.seq,
            ": body not parsed (", parsed.error().message(), "); delivered without variables");
    }
    if (sub->config->keep_body) event.body = request.body;
    decision.sid.clear();
    if (event.sid == sub->sid) {
        sub->accept(std::move(event));
    } else {
        sub->hold(std::move(event));
    }
    return make_notify_response(decision);
}

namespace {
Task<http::Response> handle_task(ListenerImpl* self, const http::Request& request,
                                 const http::RequestContext& context) {
    co_return self->handle(request, context);
}
}  // namespace

}  // namespace detail

EventListener::EventListener(uv_loop_t* loop, ListenerOptions options)
    : impl_(std::make_shared<detail::ListenerImpl>(loop, std::move(options))) {}

EventListener::~EventListener() {
    impl_->close_now();
    detail::ListenerImpl::release(impl_);
}

void EventListener::start() { impl_->start(); }

Task<void> EventListener::stop() { return impl_->stop(); }

bool EventListener::running() const noexcept { return impl_->started && !impl_->stopped; }

std::uint16_t EventListener::port() const {
    return impl_->server() != nullptr ? impl_->server()->port() : 0;
}

SocketAddress EventListener::local_address() const {
    return impl_->server() != nullptr ? impl_->server()->local_address() : SocketAddress();
}

std::size_t EventListener::subscription_count() const noexcept { return impl_->subs.size(); }

const ListenerStats& EventListener::stats() const noexcept {
    if (const http::Server* server = impl_->server(); server != nullptr) {
        impl_->stats.connections_evicted = server->stats().connections_evicted;
        impl_->stats.connections_refused = server->stats().connections_refused;
    }
    return impl_->stats;
}

uv_loop_t* EventListener::loop() const noexcept { return impl_->loop; }

}  // namespace uvgena::gena
