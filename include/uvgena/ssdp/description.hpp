// UPnP device descriptions (UDA 1.1 section 2.3), sans-IO: the XML a device serves at the
// LOCATION of its SSDP messages, read into a tree of devices and their services with every
// URL resolved against URLBase or the description's own location.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"

namespace uvgena::ssdp {

/// One service of a device, with absolute URLs.
struct UVGENA_API ServiceInfo {
    std::string service_type;   ///< "urn:schemas-upnp-org:service:RenderingControl:1"
    std::string service_id;     ///< "urn:upnp-org:serviceId:RenderingControl"
    std::string scpd_url;       ///< Absolute URL of the service description.
    std::string control_url;    ///< Absolute URL for SOAP actions.
    std::string event_sub_url;  ///< Absolute URL for SUBSCRIBE; empty if the service has none.

    /// The short name: the type's name part ("RenderingControl").
    std::string short_name() const;
    /// True if `name` is this service's full type, its id, or its short name (any version).
    bool matches(std::string_view name) const;
};

/// A device (the root one or an embedded one).
struct UVGENA_API DeviceInfo {
    std::string device_type;  ///< "urn:schemas-upnp-org:device:MediaRenderer:1"
    std::string friendly_name;
    std::string manufacturer;
    std::string manufacturer_url;
    std::string model_name;
    std::string model_number;
    std::string model_description;
    std::string serial_number;
    std::string udn;               ///< "uuid:…"
    std::string presentation_url;  ///< Absolute, or empty.
    std::vector<ServiceInfo> services;
    std::vector<DeviceInfo> devices;  ///< Embedded devices.

    /// The first service, depth first (this device's own services before embedded ones),
    /// that `matches(name)`; nullptr if none.
    const ServiceInfo* service(std::string_view name) const;
    /// Every service of this device and its embedded devices, depth first.
    std::vector<const ServiceInfo*> all_services() const;
};

/// A parsed description document.
struct UVGENA_API DeviceDescription {
    std::string location;  ///< Where it was fetched from.
    std::string url_base;  ///< The base used to resolve relative URLs.
    int spec_major = 1;    ///< specVersion.
    int spec_minor = 0;
    DeviceInfo root;  ///< The root device.

    /// Shortcut for root.service(name).
    const ServiceInfo* service(std::string_view name) const { return root.service(name); }
};

/// Bounds on what a description may contain.
struct UVGENA_API DescriptionLimits {
    std::size_t max_bytes = 512 * 1024;  ///< Document size.
    std::size_t max_devices = 64;        ///< Root plus embedded devices.
    std::size_t max_services = 256;      ///< Services over all devices.
    std::size_t max_depth = 8;           ///< Nesting of embedded devices.
};

/// Parses a device description fetched from `location`. Never throws; errors are
/// ssdp::errc::bad_xml, bad_description or too_large.
UVGENA_API Result<DeviceDescription> parse_description(std::string_view xml,
                                                       std::string_view location,
                                                       const DescriptionLimits& limits = {});

}  // namespace uvgena::ssdp
