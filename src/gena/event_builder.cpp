#include "uvgena/gena/event_builder.hpp"

#include "uvgena/core/error.hpp"

namespace uvgena::gena {
namespace {

void require_name(std::string_view name) {
    if (!is_valid_variable_name(name)) {
        throw_error(uvgena::errc::invalid_argument,
                    "not a valid XML element name: '" + std::string(name) + "'");
    }
}

}  // namespace

bool is_valid_variable_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 256) return false;
    auto alpha = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    };
    if (!alpha(name.front())) return false;
    for (char c : name) {
        if (!alpha(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-') return false;
    }
    return true;
}

std::string build_property_set(std::span<const NameValue> variables) {
    std::size_t size = 128;
    for (const auto& v : variables) {
        require_name(v.name);
        size += 40 + 2 * v.name.size() + v.value.size() + v.value.size() / 4;
    }
    std::string out;
    out.reserve(size);
    out +=
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">";
    for (const auto& v : variables) {
        out += "<e:property><";
        out += v.name;
        out += '>';
        append_escaped_xml(out, v.value);
        out += "</";
        out += v.name;
        out += "></e:property>";
    }
    out += "</e:propertyset>\n";
    return out;
}

std::string build_property_set(std::initializer_list<NameValue> variables) {
    return build_property_set(std::span<const NameValue>(variables.begin(), variables.size()));
}

LastChangeBuilder::LastChangeBuilder(std::string ns) : ns_(std::move(ns)) {}

LastChangeBuilder& LastChangeBuilder::instance(std::string_view id) {
    for (std::size_t i = 0; i < instances_.size(); ++i) {
        if (instances_[i].id == id) {
            current_ = i;
            return *this;
        }
    }
    instances_.push_back({std::string(id), {}});
    current_ = instances_.size() - 1;
    return *this;
}

LastChangeBuilder& LastChangeBuilder::set(std::string_view name, std::string_view value,
                                          std::initializer_list<NameValue> attributes) {
    require_name(name);
    for (const auto& a : attributes) require_name(a.name);
    if (instances_.empty()) instance("0");
    std::string& out = instances_[current_].content;
    out += '<';
    out += name;
    for (const auto& a : attributes) {
        out += ' ';
        out += a.name;
        out += "=\"";
        append_escaped_xml(out, a.value);
        out += '"';
    }
    out += " val=\"";
    append_escaped_xml(out, value);
    out += "\"/>";
    return *this;
}

std::string LastChangeBuilder::document() const {
    std::string out = "<Event xmlns=\"";
    append_escaped_xml(out, ns_);
    out += "\">";
    for (const auto& inst : instances_) {
        out += "<InstanceID val=\"";
        append_escaped_xml(out, inst.id);
        out += "\">";
        out += inst.content;
        out += "</InstanceID>";
    }
    out += "</Event>";
    return out;
}

}  // namespace uvgena::gena
