#include "uvgena/ssdp/discovery.hpp"

#include <algorithm>
#include <unordered_map>

#include "fetch_document.hpp"
#include "sockets.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/core/version.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/error.hpp"

namespace uvgena::ssdp {

std::string default_product_token() {
    return product_token();
}

// ---------------------------------------------------------------------------------------
// Search

/// The heap state of a Search: sockets, the results, and the tasks that feed them. The
/// scope is the last member, so its tasks die before anything they use.
struct Search::State {
    using Endpoint = detail::GroupSender;

    State(uv_loop_t* l, DiscoverOptions o) : loop(l), options(std::move(o)), results(l), scope(l) {}

    uv_loop_t* loop;
    DiscoverOptions options;
    std::vector<NetworkInterface> interfaces;
    std::vector<Endpoint> endpoints;
    std::vector<DiscoveredDevice> devices;
    std::unordered_map<std::string, std::size_t> index;  // UDN -> devices[i]
    std::size_t malformed = 0;
    std::size_t overflowed = 0;
    std::size_t senders_left = 0;
    Channel<DiscoveredDevice> results;
    Scope scope;

    void finish() noexcept {
        results.close();
        scope.request_stop();
    }

    void on_datagram(const UdpPacket& packet, const Endpoint& ep) {
        auto datagram = detail::parse_received(packet, malformed);
        if (!datagram) return;
        // Our own M-SEARCH comes back when multicast loops; other hosts' searches and
        // advertisements reach this port only by accident. None of them is an answer.
        if (datagram->kind != Kind::response) return;
        auto ad = read_response(*datagram);
        if (!ad) {
            ++malformed;
            log(LogLevel::debug, "ssdp: skipped a search response from ", packet.sender, ": ",
                ad.error().message());
            return;
        }
        std::string udn = detail::udn_of(ad->usn);
        auto it = index.find(udn);
        if (it != index.end()) {
            DiscoveredDevice& d = devices[it->second];
            if (std::find(d.targets.begin(), d.targets.end(), ad->target) == d.targets.end()) {
                d.targets.push_back(ad->target);
            }
            return;
        }
        if (devices.size() >= options.max_devices) {
            ++overflowed;
            return;
        }
        DiscoveredDevice d;
        d.udn = udn;
        d.location = ad->location;
        d.server = ad->server;
        d.usn = ad->usn;
        d.targets.push_back(ad->target);
        d.max_age = ad->max_age;
        d.boot_id = ad->boot_id;
        d.config_id = ad->config_id;
        d.responder = packet.sender;
        d.interface = ep.interface.name;
        index.emplace(udn, devices.size());
        devices.push_back(d);
        results.push(std::move(d));
    }

    static Task<void> receive_loop(State* self, Endpoint* ep) {
        for (;;) {
            UdpPacket packet = co_await ep->socket.receive();
            self->on_datagram(packet, *ep);
        }
    }

    static Task<void> send_loop(State* self, Endpoint* ep) {
        SearchRequest req;
        req.host = ep->host;
        req.search_target = self->options.search_target;
        req.mx = self->options.mx;
        req.user_agent = default_product_token();
        std::string bytes = build_search(req);
        for (int i = 0; i < self->options.sends; ++i) {
            if (i > 0) co_await sleep_for(self->loop, self->options.resend_interval);
            try {
                co_await ep->socket.send_to(bytes, ep->group);
            } catch (const Error& e) {
                if (is_cancelled(e.code())) throw;
                // One interface failing (e.g. no route for multicast) must not end the
                // search on the others.
                log(LogLevel::warning, "ssdp: M-SEARCH on ", ep->interface.name, ": ", e.what());
                break;
            }
        }
    }

    static Task<void> deadline(State* self) {
        co_await sleep_for(self->loop, self->options.timeout);
        self->finish();
    }
};

Search::Search(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
Search::Search(Search&&) noexcept = default;
Search& Search::operator=(Search&&) noexcept = default;
Search::~Search() = default;

Search Search::start(uv_loop_t* loop, DiscoverOptions options) {
    if (options.search_target.empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument), "search: empty search target");
    }
    options.sends = std::clamp(options.sends, 1, 3);
    // Devices answer within MX seconds: MX must leave them time within the timeout.
    int fit = static_cast<int>(options.timeout.count() / 1000);
    options.mx = std::clamp(std::min(options.mx, std::max(fit, 1)), 1, 5);
    options.ttl = std::clamp(options.ttl, 1, 255);
    auto state = std::make_unique<State>(loop, options);
    state->endpoints = detail::open_group_senders(loop,
                                                  {.interface = options.interface,
                                                   .ipv4 = options.ipv4,
                                                   .ipv6 = options.ipv6,
                                                   .group4 = kMulticastV4,
                                                   .group6 = kMulticastV6,
                                                   .port = options.port,
                                                   .max_queued = 512},
                                                  options.ttl);
    for (const State::Endpoint& ep : state->endpoints) state->interfaces.push_back(ep.interface);
    if (state->endpoints.empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "search: no network interface to search on" +
                        (options.interface.empty() ? std::string()
                                                   : " (asked for '" + options.interface + "')"));
    }
    // Endpoints no longer move: the tasks may point at them.
    for (State::Endpoint& ep : state->endpoints) {
        state->scope.spawn(State::receive_loop(state.get(), &ep));
        state->scope.spawn(State::send_loop(state.get(), &ep));
    }
    state->scope.spawn(State::deadline(state.get()));
    return Search(std::move(state));
}

uvgena::detail::ChannelNextAwaiter<DiscoveredDevice> Search::next() noexcept {
    return state_->results.next();
}

void Search::stop() noexcept {
    if (state_) state_->finish();
}

const std::vector<DiscoveredDevice>& Search::devices() const noexcept {
    return state_->devices;
}
std::size_t Search::malformed() const noexcept {
    return state_->malformed;
}
std::size_t Search::overflowed() const noexcept {
    return state_->overflowed;
}
const std::vector<NetworkInterface>& Search::interfaces() const noexcept {
    return state_->interfaces;
}

Task<std::vector<DiscoveredDevice>> discover(uv_loop_t* loop, DiscoverOptions options) {
    Search search = Search::start(loop, std::move(options));
    while (co_await search.next()) {
    }
    co_return search.devices();
}

// ---------------------------------------------------------------------------------------
// Descriptions

namespace detail {

Task<std::string> fetch_document(uv_loop_t* loop, std::string url, std::string what,
                                 std::chrono::milliseconds timeout, std::size_t max_bytes,
                                 std::optional<SocketAddress> local_address) {
    http::ClientOptions client;
    client.timeout = timeout;
    client.connect_timeout = std::min(timeout, client.connect_timeout);
    client.max_response_bytes = max_bytes;
    client.local_address = local_address;
    http::Headers headers;
    headers.add("User-Agent", default_product_token());
    const std::string context = what + " " + url;
    http::Response response;
    try {
        response = co_await http::request(loop, "GET", std::string_view(url), std::move(headers),
                                          {}, client);
    } catch (const Error& e) {
        // The http layer names the host; the caller wants the document's URL.
        if (std::string_view(e.what()).find(url) != std::string_view::npos) throw;
        throw Error(e.code(), context + ": " + context_of(e));
    }
    if (response.status < 200 || response.status > 299) {
        // The status category's message says "HTTP 404 Not Found".
        throw Error(http::status_error(response.status), context);
    }
    co_return std::move(response.body);
}

}  // namespace detail

Task<DeviceDescription> fetch_description(uv_loop_t* loop, std::string location,
                                          FetchOptions options) {
    std::string body =
        co_await detail::fetch_document(loop, location, "fetch description", options.timeout,
                                        options.limits.max_bytes, options.local_address);
    auto description = parse_description(body, location, options.limits);
    if (!description) {
        throw Error(description.error(), "fetch description " + location);
    }
    co_return std::move(*description);
}

}  // namespace uvgena::ssdp
