#include "uvgena/subscriber/subscribe_device.hpp"

#include "uvgena/core/error.hpp"

namespace uvgena::ssdp {

Task<gena::Subscription> subscribe(uv_loop_t* loop, const ServiceInfo& service,
                                   gena::SubscribeOptions options,
                                   gena::SubscriptionHandlers handlers) {
    // Copied before the first suspension: the caller's ServiceInfo may be a temporary.
    std::string url = service.event_sub_url;
    std::string name = service.service_type.empty() ? service.service_id : service.service_type;
    if (url.empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "subscribe to " + name + ": the service has no eventSubURL");
    }
    co_return co_await gena::subscribe(loop, std::move(url), options, std::move(handlers));
}

Task<std::string> resolve_event_url(uv_loop_t* loop, std::string target, FetchOptions options) {
    co_return (co_await resolve_target(loop, std::move(target), std::move(options))).event_url;
}

Task<ResolvedTarget> resolve_target(uv_loop_t* loop, std::string target, FetchOptions options) {
    auto hash = target.rfind('#');
    if (hash == std::string::npos) co_return ResolvedTarget{target, {}, {}};
    std::string location = target.substr(0, hash);
    std::string name = target.substr(hash + 1);
    if (name.empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "subscribe to " + target + ": no service name after '#'");
    }
    // A device name ("Living Room#RenderingControl") is looked up by an SSDP search.
    FindDeviceOptions find;
    find.fetch = std::move(options);
    DeviceDescription description = co_await describe_device(loop, location, std::move(find));
    const ServiceInfo* service = description.service(name);
    if (service == nullptr) {
        std::string names;
        for (const ServiceInfo* s : description.root.all_services()) {
            names += (names.empty() ? "" : ", ") + s->short_name();
        }
        throw Error(
            make_error_code(uvgena::errc::invalid_argument),
            "subscribe to " + target + ": no service '" + name + "' in the description" +
                (names.empty() ? std::string(" (it has none)") : " (it has " + names + ")"));
    }
    if (service->event_sub_url.empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "subscribe to " + target + ": service " + service->short_name() +
                        " has no eventSubURL");
    }
    co_return ResolvedTarget{service->event_sub_url, description.location, description.root.udn};
}

Task<gena::Subscription> subscribe_target(uv_loop_t* loop, std::string target,
                                          gena::SubscribeOptions options,
                                          gena::SubscriptionHandlers handlers) {
    std::string url = co_await resolve_event_url(loop, std::move(target));
    co_return co_await gena::subscribe(loop, std::move(url), options, std::move(handlers));
}

}  // namespace uvgena::ssdp
