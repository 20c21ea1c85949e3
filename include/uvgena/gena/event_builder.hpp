// Building event bodies on the device side (publisher): the property set of a NOTIFY and
// the LastChange document that AVTransport / RenderingControl style services event.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/gena/event_body.hpp"

namespace uvgena::gena {

/// A variable to publish: name and (unescaped) value.
struct UVGENA_API NameValue {
    std::string_view name;   ///< An XML name, e.g. "Volume", "LastChange".
    std::string_view value;  ///< Any text; escaped by the builder.
};

/// True if `name` is usable as an element name: [A-Za-z_][A-Za-z0-9_.-]* (no prefix).
UVGENA_API bool is_valid_variable_name(std::string_view name) noexcept;

/// Builds `<?xml?><e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"><e:property>
/// <Name>value</Name></e:property>...</e:propertyset>`, one e:property per variable, values
/// escaped. Throws uvgena::Error(uvgena::errc::invalid_argument) for an invalid name.
UVGENA_API std::string build_property_set(std::span<const NameValue> variables);
/// Same, from a braced list: build_property_set({{"Volume", "12"}}).
UVGENA_API std::string build_property_set(std::initializer_list<NameValue> variables);

/// Builds a LastChange document, e.g. for RenderingControl:
///
///     LastChangeBuilder lc("urn:schemas-upnp-org:metadata-1-0/RCS/");
///     lc.instance("0").set("Volume", "12", {{"channel", "Master"}}).set("Mute", "0");
///     std::string body = build_property_set({{"LastChange", lc.document()}});
///
/// document() gives `<Event xmlns="..."><InstanceID val="0"><Volume channel="Master"
/// val="12"/>...</InstanceID></Event>`, attribute values escaped; build_property_set escapes
/// the whole document once more into the property, as UDA requires.
class UVGENA_API LastChangeBuilder {
  public:
    /// An empty document in namespace `ns` (AVT: "urn:schemas-upnp-org:metadata-1-0/AVT/").
    explicit LastChangeBuilder(std::string ns);

    /// Starts (or continues) the instance with this id; later set() calls go into it.
    LastChangeBuilder& instance(std::string_view id);
    /// Adds `<name [attributes] val="value"/>` to the current instance (instance "0" if none
    /// was started). Throws uvgena::Error(invalid_argument) for an invalid name.
    LastChangeBuilder& set(std::string_view name, std::string_view value,
                           std::initializer_list<NameValue> attributes = {});

    /// The document text (unescaped XML).
    std::string document() const;
    /// True if nothing was set.
    bool empty() const noexcept { return instances_.empty(); }

  private:
    struct Instance {
        std::string id;
        std::string content;  // serialised variable elements
    };
    std::string ns_;
    std::vector<Instance> instances_;
    std::size_t current_ = 0;
};

}  // namespace uvgena::gena
