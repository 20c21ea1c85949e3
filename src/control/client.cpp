// fetch_scpd with its process-wide cache, and call_action over the http client.
#include "uvgena/control/client.hpp"

#include <algorithm>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "ssdp/fetch_document.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/ssdp/discovery.hpp"

namespace uvgena::control {
namespace {

// Process-wide: descriptions are immutable once parsed and shared by pointer, so readers on
// any thread need no lock; the mutex guards the map only, never across I/O.
class ScpdCache {
  public:
    static constexpr std::size_t capacity = 256;

    std::shared_ptr<const Scpd> find(const std::string& url) {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(url);
        return it == entries_.end() ? nullptr : it->second;
    }
    void store(const std::string& url, std::shared_ptr<const Scpd> scpd) {
        std::lock_guard lock(mutex_);
        auto [it, inserted] = entries_.insert_or_assign(url, std::move(scpd));
        if (!inserted) return;
        order_.push_back(url);
        while (order_.size() > capacity) {
            entries_.erase(order_.front());
            order_.pop_front();
        }
    }
    void forget(std::string_view url) {
        std::lock_guard lock(mutex_);
        if (url.empty()) {
            entries_.clear();
            order_.clear();
            return;
        }
        entries_.erase(std::string(url));
        order_.erase(std::remove(order_.begin(), order_.end(), url), order_.end());
    }

  private:
    std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<const Scpd>> entries_;
    std::deque<std::string> order_;  // insertion order, for eviction
};

ScpdCache& cache() {
    static ScpdCache instance;
    return instance;
}

std::string describe_call(std::string_view action, std::string_view control_url) {
    return "call " + std::string(action) + " at " + std::string(control_url);
}

// Sends a checked (or unchecked) call and reads its answer.
Task<Arguments> send_call(uv_loop_t* loop, std::string control_url, ActionRequest request,
                          ActionOptions options) {
    const std::string context = describe_call(request.action, control_url);
    auto message = build_request(request);
    if (!message) throw Error(message.error(), context);
    http::ClientOptions client;
    client.timeout = options.timeout;
    client.connect_timeout = std::min(options.timeout, options.connect_timeout);
    client.max_response_bytes = options.max_response_bytes;
    client.local_address = options.local_address;
    client.stop = options.stop;
    message->headers.add("User-Agent", ssdp::default_product_token());
    http::Response response;
    try {
        response = co_await http::request(loop, "POST", std::string_view(control_url),
                                          std::move(message->headers), std::move(message->body),
                                          std::move(client));
    } catch (const Error& e) {
        throw Error(e.code(), context + ": " + context_of(e));
    }
    SoapLimits limits = options.limits;
    limits.max_bytes = std::max(limits.max_bytes, options.max_response_bytes);
    if (response.status == 200) {
        auto out = parse_response(response.body, request.action, limits);
        if (out) co_return std::move(*out);
        if (out.error() != errc::soap_fault) throw Error(out.error(), context);
        // A fault with status 200 (not what UDA says, but seen): still the device's answer.
    }
    if (response.status == 200 || response.status == 500) {
        auto fault = parse_fault(response.body, limits);
        if (fault) throw ActionError(fault->error_code, fault->error_description, context);
    }
    throw Error(http::status_error(response.status), context);
}

}  // namespace

Task<std::shared_ptr<const Scpd>> fetch_scpd(uv_loop_t* loop, std::string url,
                                             ScpdFetchOptions options) {
    if (options.use_cache) {
        if (auto cached = cache().find(url)) co_return cached;
    }
    const std::string context = "fetch service description " + url;
    std::string body = co_await ssdp::detail::fetch_document(
        loop, url, "fetch service description", options.timeout, options.limits.max_bytes,
        options.local_address);
    auto scpd = parse_scpd(body, options.limits);
    if (!scpd) throw Error(scpd.error(), context);
    auto shared = std::make_shared<const Scpd>(std::move(*scpd));
    cache().store(url, shared);
    co_return shared;
}

void forget_scpd(std::string_view url) {
    cache().forget(url);
}

Task<Arguments> call_action(uv_loop_t* loop, std::string control_url, std::string service_type,
                            std::string action, Arguments in, ActionOptions options) {
    // A named request, not an aggregate temporary inside co_await: g++ 12 copies those into
    // the frame byte for byte and destroys both copies (README, "Using the library").
    ActionRequest request{std::move(service_type), std::move(action), std::move(in)};
    co_return co_await send_call(loop, std::move(control_url), std::move(request),
                                 std::move(options));
}

Task<Arguments> call_action(uv_loop_t* loop, std::string control_url, std::string service_type,
                            std::string action, Arguments in, std::shared_ptr<const Scpd> scpd,
                            ActionOptions options) {
    if (!scpd) throw Error(make_error_code(uvgena::errc::invalid_argument), "call_action: no SCPD");
    std::string bad;
    auto ordered = check_arguments(*scpd, action, in, &bad);
    if (!ordered) {
        throw Error(ordered.error(), describe_call(action, control_url) +
                                         ": refused before sending: " +
                                         (bad == action ? "action " : "argument ") + bad);
    }
    ActionRequest request{std::move(service_type), std::move(action), std::move(*ordered)};
    co_return co_await send_call(loop, std::move(control_url), std::move(request),
                                 std::move(options));
}

Task<Arguments> call_action(uv_loop_t* loop, ssdp::ServiceInfo service, std::string action,
                            Arguments in, ActionOptions options) {
    std::shared_ptr<const Scpd> scpd = co_await fetch_scpd(loop, service.scpd_url, options.scpd);
    co_return co_await call_action(loop, std::move(service.control_url),
                                   std::move(service.service_type), std::move(action),
                                   std::move(in), std::move(scpd), std::move(options));
}

}  // namespace uvgena::control
