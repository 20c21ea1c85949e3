// Target resolution shared by `subscribe` and `watch` (see targets.hpp).
#include "targets.hpp"

#include <algorithm>
#include <chrono>

#include "uvgena/core/error.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/ssdp/find_device.hpp"

namespace uvgena::cli {

namespace {

// Time allowed to fetch a description.
constexpr std::chrono::milliseconds kDescriptionTimeout{5000};

}  // namespace

Task<std::vector<ServiceTarget>> resolve_targets(uv_loop_t* loop,
                                                 std::vector<std::string> targets) {
    std::vector<ServiceTarget> resolved;
    ssdp::FetchOptions fetch;
    fetch.timeout = kDescriptionTimeout;
    for (const std::string& target : targets) {
        std::vector<ServiceTarget> these;
        if (target.ends_with("#*")) {
            ssdp::FindDeviceOptions find;
            find.fetch = fetch;
            ssdp::DeviceDescription d =
                co_await ssdp::describe_device(loop, target.substr(0, target.size() - 2), find);
            for (const ssdp::ServiceInfo* service : d.root.all_services()) {
                if (service->event_sub_url.empty()) continue;
                ServiceTarget t;
                t.event_url = service->event_sub_url;
                t.location = d.location;
                t.udn = d.root.udn;
                t.name = service->short_name();
                these.push_back(std::move(t));
            }
            if (these.empty()) {
                throw Error(make_error_code(uvgena::errc::invalid_argument),
                            "subscribe to " + target + ": the device has no evented service");
            }
        } else {
            ServiceTarget t;
            static_cast<ssdp::ResolvedTarget&>(t) =
                co_await ssdp::resolve_target(loop, target, fetch);
            auto hash = target.rfind('#');
            t.name = hash == std::string::npos ? target : target.substr(hash + 1);
            these.push_back(std::move(t));
        }
        for (ServiceTarget& t : these) {
            bool seen = std::any_of(resolved.begin(), resolved.end(),
                                    [&](const auto& r) { return r.event_url == t.event_url; });
            if (!seen) resolved.push_back(std::move(t));
        }
    }
    co_return resolved;
}

std::optional<std::string> bad_target(const std::string& target) {
    std::string url_part = target;
    if (auto hash = target.rfind('#'); hash != std::string::npos) {
        url_part = target.substr(0, hash);
        if (hash + 1 == target.size()) {
            return "no service name after '#' (e.g. ...description.xml#RenderingControl)";
        }
        // A device name ("Living Room#RenderingControl") is looked up by discovery.
        if (!ssdp::is_location(url_part)) {
            if (url_part.find_first_not_of(" \t") == std::string::npos) {
                return "no device before '#' (a description URL, a friendly name or a UDN)";
            }
            return std::nullopt;
        }
    }
    std::string reason;
    Result<http::Url> url = http::Url::try_parse(url_part, &reason);
    if (!url) return reason;
    if (url->scheme != "http") return std::string("not an http:// URL");
    return std::nullopt;
}

}  // namespace uvgena::cli
