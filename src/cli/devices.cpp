#include "devices.hpp"

#include "common.hpp"

namespace uvgena::cli {

nlohmann::json device_json(const ssdp::DeviceInfo& d) {
    nlohmann::json services = nlohmann::json::array();
    for (const ssdp::ServiceInfo& s : d.services) {
        services.push_back({{"name", s.short_name()},
                            {"service_type", s.service_type},
                            {"service_id", s.service_id},
                            {"event_sub_url", s.event_sub_url},
                            {"control_url", s.control_url},
                            {"scpd_url", s.scpd_url}});
    }
    nlohmann::json devices = nlohmann::json::array();
    for (const ssdp::DeviceInfo& e : d.devices) devices.push_back(device_json(e));
    return {{"friendly_name", d.friendly_name},
            {"device_type", d.device_type},
            {"manufacturer", d.manufacturer},
            {"model_name", d.model_name},
            {"model_number", d.model_number},
            {"udn", d.udn},
            {"presentation_url", d.presentation_url},
            {"services", services},
            {"devices", devices}};
}

nlohmann::json discovered_json(const ssdp::DiscoveredDevice& d) {
    nlohmann::json j = {{"udn", d.udn},
                        {"location", d.location},
                        {"server", d.server},
                        {"usn", d.usn},
                        {"targets", d.targets},
                        {"address", d.responder.ip()},
                        {"interface", d.interface},
                        {"max_age", d.max_age.count()}};
    j["boot_id"] = d.boot_id ? nlohmann::json(*d.boot_id) : nlohmann::json(nullptr);
    j["config_id"] = d.config_id ? nlohmann::json(*d.config_id) : nlohmann::json(nullptr);
    return j;
}

void print_device_tree(const ssdp::DeviceInfo& d, int indent) {
    std::string pad(static_cast<std::size_t>(indent), ' ');
    print_line(pad + (d.friendly_name.empty() ? std::string("(no name)") : d.friendly_name) +
               "  [" + d.device_type + "]");
    auto field = [&](const char* name, const std::string& value) {
        if (!value.empty()) print_line(pad + "  " + name + value);
    };
    field("udn           ", d.udn);
    std::string model = d.manufacturer;
    if (!d.model_name.empty()) model += (model.empty() ? "" : " ") + d.model_name;
    if (!d.model_number.empty()) model += " " + d.model_number;
    field("model         ", model);
    field("presentation  ", d.presentation_url);
    for (const ssdp::ServiceInfo& s : d.services) {
        print_line(pad + "  service " + s.short_name());
        print_line(pad + "    type      " + s.service_type);
        print_line(pad + "    id        " + s.service_id);
        print_line(pad + "    event     " +
                   (s.event_sub_url.empty() ? std::string("(none)") : s.event_sub_url));
    }
    for (const ssdp::DeviceInfo& e : d.devices) print_device_tree(e, indent + 2);
}

}  // namespace uvgena::cli
