// Devices by name: an SSDP search for root devices, their descriptions read concurrently,
// and the one whose friendlyName or UDN is the name.
#include "uvgena/ssdp/find_device.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "uvgena/co/scope.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/strings.hpp"
#include "uvgena/ssdp/message.hpp"

namespace uvgena::ssdp {

namespace {

std::string_view without_uuid(std::string_view udn) noexcept {
    if (udn.size() >= 5 && iequals(udn.substr(0, 5), "uuid:")) udn.remove_prefix(5);
    return udn;
}

// `device` or one of its embedded devices is called `name`.
bool tree_has_name(const DeviceInfo& device, std::string_view name) {
    if (device_has_name(device, name)) return true;
    return std::any_of(device.devices.begin(), device.devices.end(),
                       [&](const DeviceInfo& d) { return tree_has_name(d, name); });
}

struct Candidate {
    DiscoveredDevice found;
    std::optional<DeviceDescription> description;
    std::string error;  // why the description could not be read
};

Task<void> read_description(uv_loop_t* loop, Candidate& candidate, FetchOptions options) {
    try {
        candidate.description =
            co_await fetch_description(loop, candidate.found.location, std::move(options));
    } catch (const Error& e) {
        candidate.error = e.what();
    }
}

// "'Living Room' (uuid:..., http://...)" for the messages.
std::string describe_candidate(const Candidate& c) {
    std::string name = c.description ? "'" + c.description->root.friendly_name + "' (" : "(";
    return name + c.found.udn + ", " + c.found.location + ")";
}

}  // namespace

bool device_has_name(const DeviceInfo& device, std::string_view name) {
    name = trim(name);
    if (name.empty()) return false;
    if (iequals(trim(device.friendly_name), name)) return true;
    std::string_view udn = without_uuid(device.udn);
    return !udn.empty() && iequals(udn, without_uuid(name));
}

Task<DeviceDescription> find_device(uv_loop_t* loop, std::string name, FindDeviceOptions options) {
    const std::string context = "find device '" + name + "'";
    if (trim(name).empty()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument), context + ": empty name");
    }
    DiscoverOptions search;
    search.search_target = "upnp:rootdevice";
    search.timeout = options.search_timeout;
    search.interface = options.interface;
    search.ipv6 = options.ipv6;
    std::vector<DiscoveredDevice> found = co_await discover(loop, search);

    std::vector<Candidate> candidates;
    candidates.reserve(found.size());
    for (DiscoveredDevice& d : found) candidates.push_back(Candidate{std::move(d), {}, {}});
    {
        Scope readers(loop);
        for (Candidate& c : candidates) readers.spawn(read_description(loop, c, options.fetch));
        co_await readers.join();
    }

    std::vector<const Candidate*> matches;
    for (const Candidate& c : candidates) {
        if (c.description && tree_has_name(c.description->root, name)) matches.push_back(&c);
    }
    if (matches.size() == 1) co_return std::move(*matches.front()->description);

    std::string listed;
    if (matches.empty()) {
        for (const Candidate& c : candidates) {
            listed += (listed.empty() ? "" : ", ") + describe_candidate(c) +
                      (c.error.empty() ? "" : " [" + c.error + "]");
        }
        throw Error(
            make_error_code(errc::no_such_device),
            context + ": " +
                (candidates.empty() ? std::string("no device answered the search within ") +
                                          std::to_string(options.search_timeout.count()) + " ms"
                                    : "the devices that answered are " + listed));
    }
    for (const Candidate* c : matches)
        listed += (listed.empty() ? "" : ", ") + describe_candidate(*c);
    throw Error(make_error_code(errc::ambiguous_device),
                context + ": " + std::to_string(matches.size()) + " devices have that name, " +
                    listed + "; name one by its UDN");
}

bool is_location(std::string_view location_or_name) noexcept {
    auto scheme_end = location_or_name.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0) return false;
    return std::all_of(location_or_name.begin(), location_or_name.begin() + scheme_end, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
    });
}

Task<DeviceDescription> describe_device(uv_loop_t* loop, std::string location_or_name,
                                        FindDeviceOptions options) {
    if (is_location(location_or_name)) {
        co_return co_await fetch_description(loop, std::move(location_or_name),
                                             std::move(options.fetch));
    }
    co_return co_await find_device(loop, std::move(location_or_name), std::move(options));
}

}  // namespace uvgena::ssdp
