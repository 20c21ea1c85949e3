// From a description to a subscription: subscribe to a ServiceInfo directly, or to
// "<location-url>#<service>" (the description is fetched and the service looked up).
#pragma once

#include <uv.h>

#include <string>
#include <string_view>

#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/ssdp/description.hpp"
#include "uvgena/ssdp/discovery.hpp"
#include "uvgena/ssdp/find_device.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace uvgena::ssdp {

/// Subscribes to the events of `service` (its eventSubURL), as gena::subscribe does. Throws
/// Error(uvgena::errc::invalid_argument) naming the service if it has no eventSubURL, else
/// what gena::subscribe throws.
UVGENA_API Task<gena::Subscription> subscribe(uv_loop_t* loop, const ServiceInfo& service,
                                              gena::SubscribeOptions options = {},
                                              gena::SubscriptionHandlers handlers = {});

/// The event URL that `target` names: `target` itself for a plain URL, or, for
/// "<location-url>#<service>", the eventSubURL of the service (short name, full type or
/// service id) in the description at location-url, which is fetched. Instead of a location
/// URL, a device name ("Living Room#RenderingControl": a friendlyName or a UDN) is looked up
/// among the devices that answer an SSDP search (find_device). Throws Error: the errors of
/// fetch_description or find_device, or uvgena::errc::invalid_argument naming the service
/// and listing the ones the device has.
UVGENA_API Task<std::string> resolve_event_url(uv_loop_t* loop, std::string target,
                                               FetchOptions options = {});

/// What a subscription target names (see resolve_target).
struct ResolvedTarget {
    std::string event_url;  ///< The event subscription URL.
    std::string location;   ///< For "<location-url>#<service>" (or a device name): the
                            ///< description URL, else empty.
    std::string udn;        ///< For "<location-url>#<service>": the root device's UDN (what a
                            ///< DeviceFollower follows), else empty.
};

/// As resolve_event_url, and also says which device the service belongs to, so that the
/// subscription can follow the device's advertisements (ssdp::DeviceFollower).
UVGENA_API Task<ResolvedTarget> resolve_target(uv_loop_t* loop, std::string target,
                                               FetchOptions options = {});

/// Subscribes to `target`: an event URL, or "<location-url>#<service>" (see
/// resolve_event_url).
UVGENA_API Task<gena::Subscription> subscribe_target(uv_loop_t* loop, std::string target,
                                                     gena::SubscribeOptions options = {},
                                                     gena::SubscriptionHandlers handlers = {});

}  // namespace uvgena::ssdp

namespace uvgena {
using ssdp::subscribe;
}  // namespace uvgena
