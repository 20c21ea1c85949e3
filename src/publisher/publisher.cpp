// The publisher's subscription table (removal, expiry), its end (stop, shutdown) and its
// public face. Moderation is in service.cpp, requests in requests.cpp, delivery in
// delivery.cpp.
#include "uvgena/publisher/publisher.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include "publisher/publisher_impl.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/log.hpp"

namespace uvgena::gena {

using detail::Subscriber;

Publisher::Impl::Impl(uv_loop_t* l, PublisherOptions o)
    : loop(l),
      options(std::move(o)),
      idle_event(l, true),
      stop_once(l),
      scope(std::make_unique<Scope>(l)) {
    options.max_queued_events = std::max<std::size_t>(options.max_queued_events, 2);
    options.max_concurrent_notifies = std::max<std::size_t>(options.max_concurrent_notifies, 1);
    options.max_consecutive_failures = std::max(options.max_consecutive_failures, 1u);
    options.max_notifies_per_host = std::max<std::size_t>(options.max_notifies_per_host, 1);
    options.max_connects_per_host = std::max<std::size_t>(options.max_connects_per_host, 1);
    options.max_host_backoff = std::max(options.max_host_backoff, options.host_backoff);
}

// Ends everything at once (the Publisher's destructor). Destroying the server is safe while
// a stop() waits for it (http::Server keeps what that stop() needs); the stop() calls in
// flight then find the work done and return.
void Publisher::Impl::shutdown() noexcept {
    if (shut_down) return;
    shut_down = true;
    stopped = true;
    actions_stop.request_stop();
    server.reset();
    forget_all();
    scope.reset();
    stop_once.finish();
}

void Publisher::Impl::forget_all() noexcept {
    while (!by_sid.empty()) remove(by_sid.begin()->second);
    ready.clear();
    for (auto& [key, h] : hosts) {
        for (auto& sub : h.parked) sub->parked = false;
        h.parked.clear();
    }
    parked = 0;
    for (auto& s : services) {
        s->impl_->flush_stop.request_stop();
        s->impl_->flush_at.reset();
    }
}

Service::Impl* Publisher::Impl::find_service(std::string_view path) const noexcept {
    for (const auto& s : services) {
        if (s->impl_->event_path == path) return s->impl_.get();
    }
    return nullptr;
}

std::pair<Service::Impl*, detail::Route> Publisher::Impl::route(
    std::string_view path) const noexcept {
    for (const auto& s : services) {
        Service::Impl* service = s->impl_.get();
        if (service->event_path == path) return {service, detail::Route::event};
        if (!service->control_path.empty() && service->control_path == path) {
            return {service, detail::Route::control};
        }
        if (!service->scpd_path.empty() && service->scpd_path == path) {
            return {service, detail::Route::scpd};
        }
    }
    return {nullptr, detail::Route::event};
}

void Publisher::Impl::remove(std::shared_ptr<Subscriber> sub) noexcept {
    if (sub->removed) return;
    sub->removed = true;
    sub->stop.request_stop();
    sub->queue.clear();
    by_sid.erase(sub->sid);
    if (auto it = per_host.find(sub->host_key); it != per_host.end()) {
        if (--it->second == 0) per_host.erase(it);
    }
    if (auto it = hosts.find(sub->delivery_host); it != hosts.end()) {
        detail::HostState& h = it->second;
        if (sub->parked) {
            auto p = std::find(h.parked.begin(), h.parked.end(), sub);
            if (p != h.parked.end()) {
                h.parked.erase(p);
                --parked;
            }
            sub->parked = false;
        }
        if (h.subscribers > 0) --h.subscribers;
        forget_host_if_unused(sub->delivery_host);
    }
    if (auto it = sub->service->per_host.find(sub->host_key); it != sub->service->per_host.end()) {
        if (--it->second == 0) sub->service->per_host.erase(it);
    }
    auto& list = sub->service->subscribers;
    std::size_t i = sub->service_index;
    if (i < list.size() && list[i] == sub) {
        if (i + 1 != list.size()) {
            list[i] = std::move(list.back());
            list[i]->service_index = i;
        }
        list.pop_back();
    }
}

void Publisher::Impl::ensure_sweeping() {
    if (sweeping || stopped) return;
    sweeping = true;
    scope->spawn(sweep());
}

Task<void> Publisher::Impl::sweep() {
    struct Leave {
        Impl* impl;
        ~Leave() { impl->sweeping = false; }
    } leave{this};
    while (!by_sid.empty() && !stopped) {
        try {
            co_await sleep_for(loop, options.sweep_interval);
        } catch (const Error& e) {
            if (is_cancelled(e.code())) co_return;
            throw;
        }
        Clock::time_point now = Clock::now();
        std::vector<std::shared_ptr<Subscriber>> expired;
        std::vector<std::shared_ptr<Subscriber>> failing;
        for (const auto& [sid, sub] : by_sid) {
            if (sub->expires <= now) {
                expired.push_back(sub);
            } else if (sub->failing_since &&
                       now - *sub->failing_since >= options.max_failing_time) {
                // Its host's back-off may keep it from failing again for long: it is dropped
                // here once it has failed without a success for max_failing_time.
                failing.push_back(sub);
            }
        }
        for (auto& sub : failing) {
            log(LogLevel::warning, "gena publisher: subscriber ", sub->sid, " of ",
                sub->service->event_path, " dropped after failing for ",
                std::chrono::duration_cast<std::chrono::seconds>(now - *sub->failing_since).count(),
                " s");
            ++stats.subscribers_dropped;
            remove(std::move(sub));
        }
        for (auto& sub : expired) {
            if (log_enabled(LogLevel::info)) {
                log(LogLevel::info, "gena publisher: subscription ", sub->sid, " expired");
            }
            ++stats.expired;
            remove(std::move(sub));
        }
    }
}

// The graceful end, a coroutine holding the Impl: the Publisher may be destroyed while it is
// suspended. A second call waits for the first (see co/once.hpp), so that "stop() returned"
// always means the server and the deliveries are gone.
Task<void> Publisher::Impl::stop(std::shared_ptr<Impl> self, std::chrono::milliseconds grace) {
    Impl& impl = *self;
    co_await impl.stop_once.run([&impl, grace] { return impl.drain(grace); });
}

Task<void> Publisher::Impl::drain(std::chrono::milliseconds grace) {
    stopped = true;
    if (server) co_await server->stop(grace);
    // The own server gave its calls `grace`; the handlers still running (or called through
    // someone else's server) end now.
    actions_stop.request_stop();
    // The Publisher was destroyed meanwhile: shutdown() ended everything.
    if (shut_down) co_return;
    forget_all();
    scope->request_stop();
    co_await scope->join();
    maybe_idle();
}

// ---------------------------------------------------------------------------------------
// Publisher: the public face

Publisher::Publisher(uv_loop_t* loop, PublisherOptions options)
    : impl_(std::make_shared<Impl>(loop, std::move(options))) {}

// A stop() in flight may hold the Impl a while longer: shutdown() ends everything now, so
// that nothing runs for a Publisher that is gone (issue 17, bug 3).
Publisher::~Publisher() {
    impl_->shutdown();
}

Service& Publisher::add_service(ServiceConfig config) {
    const std::string* paths[] = {&config.event_path, &config.control_path, &config.scpd_path};
    for (std::size_t i = 0; i < std::size(paths); ++i) {
        const std::string& path = *paths[i];
        if (path.empty()) continue;
        bool twice = false;
        for (std::size_t j = 0; j < i; ++j) twice = twice || *paths[j] == path;
        if (twice || impl_->route(path).first != nullptr) {
            throw_error(uvgena::errc::invalid_argument, "path already published: " + path);
        }
    }
    auto impl = Service::Impl::make(impl_.get(), std::move(config));
    impl_->services.push_back(std::unique_ptr<Service>(new Service(std::move(impl))));
    return *impl_->services.back();
}

Service* Publisher::find_service(std::string_view event_path) noexcept {
    for (const auto& s : impl_->services) {
        if (s->impl_->event_path == event_path) return s.get();
    }
    return nullptr;
}

bool Publisher::handles(std::string_view target) const noexcept {
    return impl_->route(detail::path_of(target)).first != nullptr;
}

Task<http::Response> Publisher::handle(const http::Request& request,
                                       const http::RequestContext& context) {
    return Impl::answer(impl_, request, context);
}

http::Handler Publisher::handler(http::Handler fallback) {
    return [weak = std::weak_ptr<Impl>(impl_), fallback = std::move(fallback)](
               const http::Request& request,
               const http::RequestContext& context) -> Task<http::Response> {
        if (std::shared_ptr<Impl> impl = weak.lock();
            impl && impl->route(detail::path_of(request.target)).first != nullptr) {
            return Impl::answer(std::move(impl), request, context);
        }
        if (fallback) return fallback(request, context);
        return []() -> Task<http::Response> {
            http::Response r;
            r.status = 404;
            co_return r;
        }();
    };
}

void Publisher::listen(http::ServerOptions options, http::Handler fallback) {
    if (impl_->server || impl_->stopped) {
        throw_error(uvgena::errc::invalid_argument, "Publisher::listen called twice or after stop");
    }
    auto server = std::make_unique<http::Server>(impl_->loop, handler(std::move(fallback)),
                                                 std::move(options));
    server->listen();
    impl_->server = std::move(server);
}

http::Server* Publisher::server() noexcept {
    return impl_->server.get();
}

Task<void> Publisher::stop(std::chrono::milliseconds grace) {
    return Impl::stop(impl_, grace);
}

Task<void> Publisher::idle() {
    std::shared_ptr<Impl> impl = impl_;
    while (!impl->is_idle()) co_await impl->idle_event.wait();
}

const PublisherStats& Publisher::stats() const noexcept {
    return impl_->stats;
}

std::size_t Publisher::subscriber_count() const noexcept {
    return impl_->by_sid.size();
}

namespace {

SubscriberInfo info_of(const Subscriber& s) {
    SubscriberInfo info;
    info.sid = s.sid;
    info.event_path = s.service->event_path;
    for (const detail::Target& t : s.callbacks) info.callbacks.push_back(t.url.to_string());
    info.requester = s.requester;
    info.timeout = s.timeout;
    info.expires = s.expires;
    info.next_seq = s.next_seq;
    info.queued = s.queue.size();
    info.active = s.active;
    info.delivered = s.delivered;
    info.failed = s.failed;
    info.consecutive_failures = s.consecutive_failures;
    info.coalesced = s.coalesced;
    info.dropped = s.dropped;
    return info;
}

}  // namespace

std::vector<SubscriberInfo> Publisher::subscribers() const {
    std::vector<SubscriberInfo> out;
    out.reserve(impl_->by_sid.size());
    for (const auto& s : impl_->services) {
        for (const auto& sub : s->impl_->subscribers) out.push_back(info_of(*sub));
    }
    return out;
}

std::optional<SubscriberInfo> Publisher::subscriber(std::string_view sid) const {
    auto it = impl_->by_sid.find(std::string(sid));
    if (it == impl_->by_sid.end()) return std::nullopt;
    return info_of(*it->second);
}

const PublisherOptions& Publisher::options() const noexcept {
    return impl_->options;
}

uv_loop_t* Publisher::loop() const noexcept {
    return impl_->loop;
}

}  // namespace uvgena::gena
