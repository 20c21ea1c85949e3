#include "uvgena/ssdp/description.hpp"

#include <tinyxml2.h>

#include <cstring>

#include "uvgena/core/strings.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/ssdp/message.hpp"

namespace uvgena::ssdp {
namespace {

using tinyxml2::XMLElement;

// Device descriptions use a default namespace, but some devices prefix it; match by the
// local name only.
std::string_view local_name(const XMLElement* e) {
    std::string_view name = e->Name();
    auto colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

const XMLElement* child(const XMLElement* parent, std::string_view name) {
    for (auto* e = parent->FirstChildElement(); e; e = e->NextSiblingElement()) {
        if (local_name(e) == name) return e;
    }
    return nullptr;
}

std::string text_of(const XMLElement* parent, std::string_view name) {
    const XMLElement* e = child(parent, name);
    if (!e || !e->GetText()) return {};
    return std::string(trim(e->GetText()));
}

std::string resolve_url(const std::string& base, const std::string& reference) {
    if (reference.empty()) return {};
    auto resolved = http::resolve_reference(base, reference);
    return resolved ? *resolved : reference;
}

struct Walker {
    const DescriptionLimits& limits;
    const std::string& base;
    std::size_t devices = 0;
    std::size_t services = 0;

    Result<void> read_device(const XMLElement* xml, DeviceInfo& out, std::size_t depth) {
        if (++devices > limits.max_devices || depth > limits.max_depth) {
            return fail(make_error_code(errc::too_large));
        }
        out.device_type = text_of(xml, "deviceType");
        out.friendly_name = text_of(xml, "friendlyName");
        out.manufacturer = text_of(xml, "manufacturer");
        out.manufacturer_url = text_of(xml, "manufacturerURL");
        out.model_name = text_of(xml, "modelName");
        out.model_number = text_of(xml, "modelNumber");
        out.model_description = text_of(xml, "modelDescription");
        out.serial_number = text_of(xml, "serialNumber");
        out.udn = text_of(xml, "UDN");
        out.presentation_url = resolve_url(base, text_of(xml, "presentationURL"));
        if (out.device_type.empty() && out.udn.empty()) {
            return fail(make_error_code(errc::bad_description));
        }
        if (const XMLElement* list = child(xml, "serviceList")) {
            for (auto* s = list->FirstChildElement(); s; s = s->NextSiblingElement()) {
                if (local_name(s) != "service") continue;
                if (++services > limits.max_services) return fail(make_error_code(errc::too_large));
                ServiceInfo info;
                info.service_type = text_of(s, "serviceType");
                info.service_id = text_of(s, "serviceId");
                info.scpd_url = resolve_url(base, text_of(s, "SCPDURL"));
                info.control_url = resolve_url(base, text_of(s, "controlURL"));
                info.event_sub_url = resolve_url(base, text_of(s, "eventSubURL"));
                // A service without a type is unusable; skip it rather than fail the device.
                if (!info.service_type.empty()) out.services.push_back(std::move(info));
            }
        }
        if (const XMLElement* list = child(xml, "deviceList")) {
            for (auto* d = list->FirstChildElement(); d; d = d->NextSiblingElement()) {
                if (local_name(d) != "device") continue;
                DeviceInfo embedded;
                auto r = read_device(d, embedded, depth + 1);
                if (!r) return r;
                out.devices.push_back(std::move(embedded));
            }
        }
        return {};
    }
};

void collect(const DeviceInfo& d, std::vector<const ServiceInfo*>& out) {
    for (const auto& s : d.services) out.push_back(&s);
    for (const auto& e : d.devices) collect(e, out);
}

}  // namespace

std::string ServiceInfo::short_name() const {
    // urn:domain:service:Name:version
    std::string_view t = service_type;
    auto marker = t.find(":service:");
    if (marker == std::string_view::npos) return std::string(t);
    t.remove_prefix(marker + 9);
    return std::string(t.substr(0, t.find(':')));
}

bool ServiceInfo::matches(std::string_view name) const {
    if (name.empty()) return false;
    if (name == service_type || name == service_id) return true;
    if (iequals(name, short_name())) return true;
    // A full type with another version: "urn:…:service:AVTransport:2" matches version 1 and
    // later ones, as search targets do.
    return target_matches(name, service_type);
}

const ServiceInfo* DeviceInfo::service(std::string_view name) const {
    for (const auto* s : all_services()) {
        if (s->matches(name)) return s;
    }
    return nullptr;
}

std::vector<const ServiceInfo*> DeviceInfo::all_services() const {
    std::vector<const ServiceInfo*> out;
    collect(*this, out);
    return out;
}

Result<DeviceDescription> parse_description(std::string_view xml, std::string_view location,
                                            const DescriptionLimits& limits) {
    if (xml.size() > limits.max_bytes) return fail(make_error_code(errc::too_large));
    // Entity definitions are an amplification risk and never appear in real descriptions.
    if (xml.find("<!DOCTYPE") != std::string_view::npos ||
        xml.find("<!ENTITY") != std::string_view::npos) {
        return fail(make_error_code(errc::bad_xml));
    }
    // Trailing NULs are common from embedded HTTP servers.
    while (!xml.empty() && xml.back() == '\0') xml.remove_suffix(1);

    tinyxml2::XMLDocument doc(/*processEntities=*/true, tinyxml2::COLLAPSE_WHITESPACE);
    if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
        return fail(make_error_code(errc::bad_xml));
    }
    const XMLElement* root = doc.RootElement();
    if (!root || local_name(root) != "root") return fail(make_error_code(errc::bad_description));
    const XMLElement* device = child(root, "device");
    if (!device) return fail(make_error_code(errc::bad_description));

    DeviceDescription out;
    out.location = std::string(location);
    out.url_base = out.location;
    std::string url_base = text_of(root, "URLBase");
    if (!url_base.empty() && http::Url::try_parse(url_base).ok()) out.url_base = url_base;
    if (const XMLElement* spec = child(root, "specVersion")) {
        out.spec_major = std::atoi(text_of(spec, "major").c_str());
        out.spec_minor = std::atoi(text_of(spec, "minor").c_str());
    }
    Walker walker{limits, out.url_base};
    auto r = walker.read_device(device, out.root, 0);
    if (!r) return fail(r.error());
    return out;
}

}  // namespace uvgena::ssdp
