// Devices by name: "Living Room" (a friendlyName) or "uuid:RINCON_000E58..." (a UDN) instead
// of a description URL, the way people name their devices.
//
//   ssdp::DeviceDescription d = co_await ssdp::find_device(loop, "Living Room");
//   co_await call_action(loop, *d.service("RenderingControl"), "SetVolume", args);
//
// The name is looked up among the devices that answer an SSDP search (ST upnp:rootdevice):
// their descriptions are read, and a device (root or embedded) matches when its friendlyName
// equals the name ignoring case and surrounding spaces, or its UDN equals it with or without
// "uuid:" (ignoring case). A name that matches nothing, or more than one root device, is an
// error listing what answered, so that the user can pick a UDN.
#pragma once

#include <uv.h>

#include <chrono>
#include <string>
#include <string_view>

#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/ssdp/description.hpp"
#include "uvgena/ssdp/discovery.hpp"

namespace uvgena::ssdp {

/// Options of find_device.
struct UVGENA_API FindDeviceOptions {
    /// Time to collect answers to the search (its MX is lowered to fit). Every answer is
    /// waited for, not only the first: a second device of the same name must be seen.
    std::chrono::milliseconds search_timeout{2000};
    /// Interface to search on (see DiscoverOptions::interface); empty: every interface.
    std::string interface;
    /// Search over IPv6 too.
    bool ipv6 = false;
    /// How each description is fetched (they are read concurrently).
    FetchOptions fetch{};
};

/// True if `device` (not its embedded devices) is called `name`: its friendlyName ignoring
/// case and surrounding spaces, or its UDN with or without "uuid:", ignoring case.
UVGENA_API bool device_has_name(const DeviceInfo& device, std::string_view name);

/// The description of the one device called `name` (see device_has_name; an embedded device
/// matching gives its root's description). Throws Error: ssdp::errc::no_such_device or
/// ambiguous_device naming the devices that answered (friendly name, UDN, location), the
/// errors of starting the search, or errc::invalid_argument for an empty name. Descriptions
/// that cannot be read are skipped (and named in a no_such_device error).
UVGENA_API Task<DeviceDescription> find_device(uv_loop_t* loop, std::string name,
                                               FindDeviceOptions options = {});

/// True if `location_or_name` is a URL (it has a scheme: "http://..."), false for a device
/// name.
UVGENA_API bool is_location(std::string_view location_or_name) noexcept;

/// The description at `location_or_name`: fetched (fetch_description) when it is a URL, else
/// found by find_device with `options`.
UVGENA_API Task<DeviceDescription> describe_device(uv_loop_t* loop, std::string location_or_name,
                                                   FindDeviceOptions options = {});

}  // namespace uvgena::ssdp
