// Printing of devices and services for `uvgena discover` and `uvgena describe`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "uvgena/ssdp/description.hpp"
#include "uvgena/ssdp/discovery.hpp"

namespace uvgena::cli {

/// JSON of a device tree: names, types, UDN, URLs, services, embedded devices.
nlohmann::json device_json(const ssdp::DeviceInfo& device);

/// JSON of a search result (what the SSDP response said).
nlohmann::json discovered_json(const ssdp::DiscoveredDevice& device);

/// Prints a device tree, indented by `indent` spaces: each device with its services' type,
/// id and event URL, then its embedded devices.
void print_device_tree(const ssdp::DeviceInfo& device, int indent = 0);

}  // namespace uvgena::cli
