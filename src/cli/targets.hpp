// The services that `subscribe` and `watch` take: event URLs, "<device>#<service>" and
// "<device>#*", where the device is a description URL, a friendly name or a UDN.
#pragma once

#include <uv.h>

#include <optional>
#include <string>
#include <vector>

#include "uvgena/co/task.hpp"
#include "uvgena/subscriber/subscribe_device.hpp"

namespace uvgena::cli {

/// One service to subscribe to, and what to call it on screen.
struct ServiceTarget : ssdp::ResolvedTarget {
    std::string name;  ///< The service's short name ("RenderingControl"), or the event URL.
};

/// The subscriptions the targets name, in order and without repeats: a plain event URL, the
/// service of "<device>#<service>", every evented service of "<device>#*". Throws the errors
/// of ssdp::resolve_target and ssdp::describe_device.
Task<std::vector<ServiceTarget>> resolve_targets(uv_loop_t* loop, std::vector<std::string> targets);

/// Checks the syntax of one target; the reason if it is bad (a usage error).
std::optional<std::string> bad_target(const std::string& target);

}  // namespace uvgena::cli
