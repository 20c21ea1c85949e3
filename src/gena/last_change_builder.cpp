#include "uvgena/gena/last_change_builder.hpp"

#include <algorithm>

#include "uvgena/core/error.hpp"
#include "uvgena/gena/event_body.hpp"

namespace uvgena::gena {
namespace {

void require_name(std::string_view name) {
    if (!is_valid_variable_name(name)) {
        throw_error(
            uvgena::errc::invalid_argument,
            "not a valid LastChange variable or attribute name: '" + std::string(name) + "'");
    }
}

}  // namespace

LastChangeState::LastChangeState(std::string ns) : ns_(std::move(ns)) {}

std::size_t LastChangeState::find(const Instance& instance, std::string_view name,
                                  std::span<const NameValue> attributes) {
    for (std::size_t i = 0; i < instance.variables.size(); ++i) {
        const Variable& v = instance.variables[i];
        if (v.name != name || v.attributes.size() != attributes.size()) continue;
        bool same = true;
        for (const NameValue& a : attributes) {
            auto it = std::find_if(v.attributes.begin(), v.attributes.end(),
                                   [&](const auto& kv) { return kv.first == a.name; });
            if (it == v.attributes.end() || it->second != a.value) {
                same = false;
                break;
            }
        }
        if (same) return i;
    }
    return npos;
}

void LastChangeState::set(std::string_view instance, std::string_view name, std::string_view value,
                          std::initializer_list<NameValue> attributes) {
    set(instance, name, value, std::span<const NameValue>(attributes.begin(), attributes.size()));
}

void LastChangeState::set(std::string_view instance, std::string_view name, std::string_view value,
                          std::span<const NameValue> attributes) {
    require_name(name);
    for (const NameValue& a : attributes) {
        require_name(a.name);
        if (a.name == "val") {
            throw_error(uvgena::errc::invalid_argument,
                        "LastChange attribute 'val' is reserved for the value");
        }
    }
    auto inst = std::find_if(instances_.begin(), instances_.end(),
                             [&](const Instance& i) { return i.id == instance; });
    if (inst == instances_.end()) {
        instances_.push_back({std::string(instance), {}});
        inst = instances_.end() - 1;
    }
    std::size_t index = find(*inst, name, attributes);
    if (index == npos) {
        Variable fresh;
        fresh.name = std::string(name);
        for (const NameValue& a : attributes) {
            fresh.attributes.emplace_back(std::string(a.name), std::string(a.value));
        }
        inst->variables.push_back(std::move(fresh));
        index = inst->variables.size() - 1;
    }
    Variable* v = &inst->variables[index];
    v->value = std::string(value);
    if (v->changed_order == 0) v->changed_order = ++changed_count_;
}

std::string LastChangeState::render(bool changes_only) const {
    std::string out = "<Event xmlns=\"";
    append_escaped_xml(out, ns_);
    out += "\">";
    // Changed variables in the order of their first change, grouped by instance in the order
    // the instances were first seen.
    for (const Instance& inst : instances_) {
        std::vector<const Variable*> chosen;
        for (const Variable& v : inst.variables) {
            if (!changes_only || v.changed_order != 0) chosen.push_back(&v);
        }
        if (chosen.empty()) continue;
        if (changes_only) {
            std::sort(chosen.begin(), chosen.end(), [](const Variable* a, const Variable* b) {
                return a->changed_order < b->changed_order;
            });
        }
        out += "<InstanceID val=\"";
        append_escaped_xml(out, inst.id);
        out += "\">";
        for (const Variable* v : chosen) {
            out += '<';
            out += v->name;
            for (const auto& [attr, attr_value] : v->attributes) {
                out += ' ';
                out += attr;
                out += "=\"";
                append_escaped_xml(out, attr_value);
                out += '"';
            }
            out += " val=\"";
            append_escaped_xml(out, v->value);
            out += "\"/>";
        }
        out += "</InstanceID>";
    }
    out += "</Event>";
    return out;
}

std::string LastChangeState::take_changes() {
    std::string doc = render(true);
    for (Instance& inst : instances_) {
        for (Variable& v : inst.variables) v.changed_order = 0;
    }
    changed_count_ = 0;
    return doc;
}

std::string LastChangeState::changes_document() const {
    return render(true);
}

std::string LastChangeState::full_document() const {
    return render(false);
}

const std::string* LastChangeState::value(std::string_view instance, std::string_view name,
                                          std::initializer_list<NameValue> attributes) const {
    for (const Instance& inst : instances_) {
        if (inst.id != instance) continue;
        std::size_t index =
            find(inst, name, std::span<const NameValue>(attributes.begin(), attributes.size()));
        return index == npos ? nullptr : &inst.variables[index].value;
    }
    return nullptr;
}

}  // namespace uvgena::gena
