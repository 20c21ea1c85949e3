// The NOTIFY listener: one http::Server, a registry of subscriptions by callback path, the
// hold queue for NOTIFYs that overtake their SUBSCRIBE answer, and callback delivery.
#include "uvgena/subscriber/listener.hpp"

#include <algorithm>
#include <bit>
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
std::string plain_ip(const SocketAddress& address) {
    return address.unmapped().ip();
}

using http::url_host;

}  // namespace

void SubscriptionIndex::insert(SubscriptionCore* core) {
    if ((size_ + 1) * 4 > slots_.size() * 3) {
        std::size_t capacity = std::max<std::size_t>(16, slots_.size() * 2);
        std::vector<SubscriptionCore*> old(capacity, nullptr);
        old.swap(slots_);
        shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
        for (SubscriptionCore* c : old) {
            if (c != nullptr) place(c);
        }
    }
    place(core);
    ++size_;
}

void SubscriptionIndex::place(SubscriptionCore* core) noexcept {
    std::size_t mask = slots_.size() - 1;
    std::size_t i = home(core->callback_id());
    while (slots_[i] != nullptr) i = (i + 1) & mask;
    slots_[i] = core;
}

SubscriptionCore* SubscriptionIndex::find(std::uint64_t id) const noexcept {
    if (slots_.empty()) return nullptr;
    std::size_t mask = slots_.size() - 1;
    for (std::size_t i = home(id); slots_[i] != nullptr; i = (i + 1) & mask) {
        if (slots_[i]->callback_id() == id) return slots_[i];
    }
    return nullptr;
}

void SubscriptionIndex::erase(std::uint64_t id) noexcept {
    if (slots_.empty()) return;
    std::size_t mask = slots_.size() - 1;
    std::size_t hole = home(id);
    while (slots_[hole] != nullptr && slots_[hole]->callback_id() != id) hole = (hole + 1) & mask;
    if (slots_[hole] == nullptr) return;
    slots_[hole] = nullptr;
    --size_;
    // Backward-shift deletion: each entry of the run after the hole that may move into it
    // (its home is not between the hole and itself) does, and leaves a hole in turn.
    for (std::size_t j = (hole + 1) & mask; slots_[j] != nullptr; j = (j + 1) & mask) {
        std::size_t k = home(slots_[j]->callback_id());
        bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
        if (stays) continue;
        slots_[hole] = slots_[j];
        slots_[j] = nullptr;
        hole = j;
    }
}

std::vector<SubscriptionCore*> SubscriptionIndex::all() const {
    std::vector<SubscriptionCore*> cores;
    cores.reserve(size_);
    for (SubscriptionCore* c : slots_) {
        if (c != nullptr) cores.push_back(c);
    }
    return cores;
}

ListenerImpl::ListenerImpl(uv_loop_t* l, ListenerOptions o)
    : loop_(l), options_(std::move(o)), stop_once_(l), scope_(l) {
    // Ids start at a random point so that a NOTIFY meant for an earlier run of the program
    // (same port, same path scheme) is not taken for one of ours.
    std::random_device rd;
    next_id_ = ((std::uint64_t{rd()} << 20) ^ rd()) & ((std::uint64_t{1} << 52) - 1);
}

ListenerImpl::~ListenerImpl() {
    close_now();
}

std::shared_ptr<ListenerImpl> ListenerImpl::shared_for(uv_loop_t* loop) {
    static std::mutex mutex;
    static std::unordered_map<uv_loop_t*, std::weak_ptr<ListenerImpl>> registry;
    std::lock_guard lock(mutex);
    for (auto it = registry.begin(); it != registry.end();) {
        it = it->second.expired() ? registry.erase(it) : std::next(it);
    }
    std::weak_ptr<ListenerImpl>& slot = registry[loop];
    std::shared_ptr<ListenerImpl> listener = slot.lock();
    if (!listener || listener->stopped_) {
        listener = std::make_shared<ListenerImpl>(loop, ListenerOptions{});
        slot = listener;
    }
    return listener;
}

void ListenerImpl::start() {
    if (stopped_) {
        throw Error(make_error_code(uvgena::errc::not_running), "event listener was stopped");
    }
    if (started_) return;
    http::ServerOptions so;
    so.port_range = options_.port == 0 ? 0 : options_.port_range;
    so.limits.max_body_bytes = options_.max_body_bytes;
    so.max_connections = options_.max_connections;
    so.max_connections_per_host = options_.max_connections_per_host;
    so.evict_idle = options_.evict_idle_connections;
    so.header_timeout = options_.header_timeout;
    so.body_timeout = options_.body_timeout;
    so.idle_timeout = options_.idle_timeout;
    so.write_timeout = options_.write_timeout;
    so.close_grace = options_.close_grace;
    so.defer_accept = options_.defer_accept;
    // Answered at once: a NOTIFY is checked, parsed and handed over without waiting, so no
    // coroutine frame is made per request.
    http::ImmediateHandler handler = [this](const http::Request& request,
                                            const http::RequestContext& context) {
        return handle(request, context);
    };
    auto listen_on = [&](SocketAddress address, bool ipv6_only) {
        so.address = address;
        so.ipv6_only = ipv6_only;
        auto server = std::make_unique<http::Server>(loop_, handler, so);
        server->listen();
        server_ = std::move(server);
    };
    if (options_.listen_host.empty()) {
        try {
            listen_on(SocketAddress::ipv6_any(options_.port), false);
        } catch (const Error& e) {
            // No IPv6 on this host (or in this namespace): IPv4 only. A port conflict is a
            // real failure and is reported as such.
            if (e.code() == http::errc::no_free_port || e.code() == uv_error(UV_EADDRINUSE)) {
                throw;
            }
            listen_on(SocketAddress::ipv4_any(options_.port), false);
        }
    } else {
        listen_on(SocketAddress::parse(options_.listen_host, options_.port), false);
    }
    started_ = true;
    log(LogLevel::info, "uvgena: event listener on ", server_->local_address().to_string());
}

void ListenerImpl::close_now() noexcept {
    for (SubscriptionCore* s : subs_.all()) s->end({});
    subs_.clear();
    stopped_ = true;
    started_ = false;
    scope_.request_stop();
    server_.reset();
    stop_once_.finish();  // a stop() in flight returns; later ones return at once
}

Task<void> ListenerImpl::stop() {
    // A second stop() waits for the first (its caller may destroy the listener next).
    std::shared_ptr<ListenerImpl> keep = shared_from_this();
    co_await stop_once_.run([this] { return stop_gracefully(); });
}

Task<void> ListenerImpl::stop_gracefully() {
    if (stopped_) co_return;
    stopped_ = true;
    std::vector<std::shared_ptr<SubscriptionCore>> live;
    live.reserve(subs_.size());
    for (SubscriptionCore* s : subs_.all()) live.push_back(s->shared_from_this());
    {
        Scope unsubscribing(loop_);
        for (auto& s : live) {
            if (std::optional<Task<void>> unsubscribe = s->end_and_unsubscribe(false)) {
                unsubscribing.spawn(std::move(*unsubscribe));
            }
        }
        co_await unsubscribing.join();
    }
    scope_.request_stop();
    co_await scope_.join();
    if (server_) co_await server_->stop(std::chrono::milliseconds(500));
    started_ = false;
}

void ListenerImpl::add(SubscriptionCore* state) {
    subs_.insert(state);
}

void ListenerImpl::remove(std::uint64_t id) noexcept {
    subs_.erase(id);
}

std::shared_ptr<const SubConfig> ListenerImpl::intern(std::shared_ptr<SubConfig> config) {
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

const std::string* ListenerImpl::callback_prefix(const std::optional<SocketAddress>& local) {
    std::string host;
    if (!options_.advertise_host.empty()) {
        host = url_host(options_.advertise_host);
    } else if (!options_.listen_host.empty()) {
        host = url_host(options_.listen_host);
    } else if (local) {
        host = url_host(plain_ip(*local));
    } else if (server_) {
        host = url_host(plain_ip(server_->local_address()));
    } else {
        host = "127.0.0.1";
    }
    std::uint16_t port = options_.advertise_port != 0 ? options_.advertise_port
                         : server_                    ? server_->port()
                                                      : options_.port;
    std::string url = "http://";
    url += host;
    url += ':';
    url += std::to_string(port);
    url += kPathPrefix;
    for (const auto& known : callback_prefixes_) {
        if (*known == url) return known.get();
    }
    callback_prefixes_.push_back(std::make_unique<const std::string>(std::move(url)));
    return callback_prefixes_.back().get();
}

void ListenerImpl::queue_renewal(SubscriptionCore& state) {
    if (stopped_) return;
    std::weak_ptr<SubscriptionCore> weak = state.weak_from_this();
    if (!state.enter_renewal_queue()) return;
    try {
        renewal_queue_.push_back(std::move(weak));
    } catch (...) {
        (void)state.leave_renewal_queue(nullptr);  // not queued after all; starts nothing
        throw;
    }
    start_queued_renewals();
}

void ListenerImpl::renewal_done() noexcept {
    if (renewals_in_flight_ > 0) --renewals_in_flight_;
    start_queued_renewals();
}

void ListenerImpl::start_queued_renewals() noexcept {
    // Not while closing: the scope that would run them is going away.
    if (stopped_) return;
    std::size_t limit = std::max<std::size_t>(options_.max_renewals_in_flight, 1);
    while (renewals_in_flight_ < limit && !renewal_queue_.empty()) {
        std::shared_ptr<SubscriptionCore> state = renewal_queue_.front().lock();
        renewal_queue_.pop_front();
        if (!state) continue;
        // Ended or resubscribing meanwhile, or renewed by hand (its new grant has its own
        // renewal time): it starts nothing.
        ++renewals_in_flight_;
        if (!state->leave_renewal_queue(this)) --renewals_in_flight_;
    }
}

void ListenerImpl::queue_callback(std::shared_ptr<SubscriptionCore> state, Event event) {
    callback_queue_.emplace_back(std::move(state), std::move(event));
    if (delivering_) return;
    delivering_ = true;
    try {
        uvgena::spawn(loop_, deliver_callbacks(shared_from_this()));
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
        // Ending a subscription or leaving callback mode takes its entries out of the queue
        // (SubscriptionCore::end, set_handlers), so the callback is there; checked again so
        // that no callback can run after its subscription ended. `state` keeps the core alive
        // and the HandlerCall the callback: it may replace the handlers or drop the
        // subscription.
        SubscriptionCore::HandlerCall call(*state);
        if (const EventCallback* callback = state->callback()) {
            call_user(self.get(), "event callback", [&] { (*callback)(std::move(event)); });
        }
    }
    self->delivering_ = false;
    co_return;
}

std::vector<Event> ListenerImpl::take_callbacks(const SubscriptionCore& state) {
    std::vector<Event> taken;
    auto mine = [&](const auto& entry) { return entry.first.get() == &state; };
    if (std::none_of(callback_queue_.begin(), callback_queue_.end(), mine)) return taken;
    std::deque<std::pair<std::shared_ptr<SubscriptionCore>, Event>> others;
    for (auto& entry : callback_queue_) {
        if (mine(entry)) {
            taken.push_back(std::move(entry.second));
        } else {
            others.push_back(std::move(entry));
        }
    }
    callback_queue_.swap(others);
    return taken;
}

void ListenerImpl::drop_callbacks(const SubscriptionCore& state) noexcept {
    std::erase_if(callback_queue_, [&](const auto& entry) { return entry.first.get() == &state; });
}

void ListenerImpl::release(std::shared_ptr<ListenerImpl>& listener) noexcept {
    if (!listener) return;
    if (listener.use_count() == 1 && listener->in_user_code_ > 0) {
        // The last reference dropped from user code that one of the listener's tasks runs:
        // destroy it from the loop instead, after that task has moved on.
        try {
            uv_loop_t* loop = listener->loop_;
            uvgena::spawn(loop, [](std::shared_ptr<ListenerImpl>) -> Task<void> {
                co_return;
            }(std::move(listener)));
            return;
        } catch (...) {
        }
    }
    listener.reset();
}

http::Response ListenerImpl::handle(const http::Request& request,
                                    const http::RequestContext& context) {
    SubscriptionCore* sub = nullptr;
    std::string_view target = request.target;
    if (target.substr(0, kPathPrefix.size()) == kPathPrefix) {
        if (auto id = parse_unsigned<std::uint64_t>(target.substr(kPathPrefix.size()))) {
            sub = subs_.find(*id);
        }
    }
    NotifyDecision decision = check_notify(
        request, [sub](std::string_view sid) { return sub != nullptr && sub->admits(sid); });
    if (!decision.accepted()) {
        if (decision.status == 412) {
            ++stats_.unknown;
        } else {
            ++stats_.bad_requests;
        }
        if (log_enabled(LogLevel::debug)) {
            log(LogLevel::debug, "uvgena: NOTIFY ", request.target, " from ",
                context.peer.to_string(), " answered ", decision.status, ": ",
                decision.reason.message());
        }
        return make_notify_response(decision);
    }
    if (std::optional<SocketAddress> source = sub->required_source();
        source && plain_ip(context.peer) != plain_ip(*source)) {
        ++stats_.unknown;
        ++stats_.wrong_source;
        log(LogLevel::warning, "uvgena: NOTIFY for ", decision.sid, " from ",
            context.peer.to_string(), " refused: the device is ", source->to_string());
        decision.status = 412;
        decision.reason = make_error_code(errc::unknown_sid);
        return make_notify_response(decision);
    }
    ++stats_.notifications;
    Event event;
    event.sid = std::move(decision.sid);
    event.seq = decision.seq;
    event.timestamp = std::chrono::system_clock::now();
    event.service = sub->url_text();
    // SID and SEQ first: an exact retransmission is answered 200 and counted as a duplicate
    // by the subscription, but its body, which nobody will see, is not parsed (a hostile peer
    // replaying a SEQ with a costly body buys no parsing work).
    if (sub->drops_as_retransmission(event.sid, event.seq)) {
        ++stats_.duplicates_not_parsed;
    } else {
        Result<PropertySet> parsed = PropertySet::parse(request.body, options_.parse);
        if (parsed) {
            event.properties = std::move(*parsed);
        } else {
            event.parse_error = parsed.error();
            ++stats_.parse_errors;
            log(LogLevel::warning, "uvgena: NOTIFY for ", event.sid, " SEQ ", event.seq,
                ": body not parsed (", parsed.error().message(), "); delivered without variables");
        }
        if (sub->keeps_body()) event.body = request.body;
    }
    decision.sid.clear();
    sub->on_notify(std::move(event));
    return make_notify_response(decision);
}

}  // namespace detail

EventListener::EventListener(uv_loop_t* loop, ListenerOptions options)
    : impl_(std::make_shared<detail::ListenerImpl>(loop, std::move(options))) {}

EventListener::~EventListener() {
    impl_->close_now();
    detail::ListenerImpl::release(impl_);
}

void EventListener::start() {
    impl_->start();
}

Task<void> EventListener::stop() {
    return impl_->stop();
}

bool EventListener::running() const noexcept {
    return impl_->started_ && !impl_->stopped_;
}

std::uint16_t EventListener::port() const {
    return impl_->server() != nullptr ? impl_->server()->port() : 0;
}

SocketAddress EventListener::local_address() const {
    return impl_->server() != nullptr ? impl_->server()->local_address() : SocketAddress();
}

std::size_t EventListener::subscription_count() const noexcept {
    return impl_->subs_.size();
}

const ListenerStats& EventListener::stats() const noexcept {
    if (const http::Server* server = impl_->server(); server != nullptr) {
        impl_->stats_.connections_evicted = server->stats().connections_evicted;
        impl_->stats_.connections_refused = server->stats().connections_refused;
        impl_->stats_.connections_refused_host_share =
            server->stats().connections_refused_host_share;
    }
    return impl_->stats_;
}

uv_loop_t* EventListener::loop() const noexcept {
    return impl_->loop_;
}

}  // namespace uvgena::gena
