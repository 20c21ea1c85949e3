// LastChangeState: the device side of LastChange (AVTransport, RenderingControl): it keeps
// the full state of every instance and the changes not yet evented, and renders either as a
// LastChange document. A Publisher service created with a LastChange namespace owns one.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/gena/event_builder.hpp"

namespace uvgena::gena {

/// Aggregates state-variable changes per InstanceID into LastChange documents.
///
///     LastChangeState lc("urn:schemas-upnp-org:metadata-1-0/AVT/");
///     lc.set("0", "TransportState", "PLAYING");
///     lc.set("0", "Volume", "12", {{"channel", "Master"}});
///     std::string changes = lc.take_changes();  // only what changed since the last take
///     std::string all = lc.full_document();     // every variable (for an initial event)
///
/// A variable is identified by its instance, name and attributes (Volume channel="Master" and
/// Volume channel="LF" are two variables). Setting a variable twice before the changes are
/// taken keeps only the last value, in the position of the first change.
class UVGENA_API LastChangeState {
  public:
    /// An empty state in namespace `ns` (e.g. "urn:schemas-upnp-org:metadata-1-0/RCS/").
    explicit LastChangeState(std::string ns);

    /// Sets a variable of `instance` and records it as changed. Throws
    /// uvgena::Error(invalid_argument) for an invalid variable or attribute name.
    void set(std::string_view instance, std::string_view name, std::string_view value,
             std::initializer_list<NameValue> attributes = {});
    /// Same, with the attributes as a span.
    void set(std::string_view instance, std::string_view name, std::string_view value,
             std::span<const NameValue> attributes);

    /// True if some variable changed since the last take_changes().
    bool has_changes() const noexcept { return changed_count_ > 0; }
    /// The LastChange document of the changes since the last call, then forgets them.
    std::string take_changes();
    /// The LastChange document of the changes so far, without forgetting them.
    std::string changes_document() const;
    /// The LastChange document with every variable of every instance.
    std::string full_document() const;
    /// The current value of a variable, or nullptr.
    const std::string* value(std::string_view instance, std::string_view name,
                             std::initializer_list<NameValue> attributes = {}) const;
    /// The namespace.
    const std::string& name_space() const noexcept { return ns_; }

  private:
    struct Variable {
        std::string name;
        std::vector<std::pair<std::string, std::string>> attributes;
        std::string value;
        std::size_t changed_order = 0;  // 0: unchanged since the last take; else 1-based order
    };
    struct Instance {
        std::string id;
        std::vector<Variable> variables;
    };
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    std::string render(bool changes_only) const;
    static std::size_t find(const Instance& instance, std::string_view name,
                            std::span<const NameValue> attributes);

    std::string ns_;
    std::vector<Instance> instances_;
    std::size_t changed_count_ = 0;
};

}  // namespace uvgena::gena
