// Reading the body of a GENA NOTIFY (UPnP Device Architecture 1.1, section 4.3): the
// <e:propertyset> document, the LastChange document nested in it (AVTransport,
// RenderingControl, Sonos Queue, ...) and DIDL-Lite metadata nested in variables.
//
// Pure functions over bytes: no I/O. Values stay strings (exactly the text the device sent,
// entities decoded, whitespace kept); typed helpers live in values.hpp.
//
// Leniency (real devices send broken bodies; damage stays local):
// - trailing NULs and whitespace after the document are ignored; an empty body is an event
//   with no variables;
// - elements are matched by local name and namespace URI, never by prefix; a propertyset in
//   no namespace at all is accepted (SoCo returns nothing for it), a wrong namespace is not;
// - a nested document (LastChange, DIDL-Lite) that does not parse is retried once after a
//   repair pass (a bare `&` becomes `&amp;`, an attribute without a value such as Sonos'
//   `<res x-rincon-stream>` becomes `x-rincon-stream=""`, a `<` inside an attribute value is
//   escaped); if it still fails, only that value carries the error, the rest of the event is
//   intact;
// - bytes that are not UTF-8 are passed through unchanged (values are byte strings);
// - <!DOCTYPE> / <!ENTITY> are refused (errc::xml_doctype_refused); nesting is bounded by
//   tinyxml2's depth limit (errc::xml_too_deep); the body size by ParseOptions; attributes
//   per element and elements per document by max_xml_attributes_per_element and
//   max_xml_elements (below), so that reading any body costs time linear in its size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/gena/error.hpp"
#include "uvgena/gena/xml_scanner.hpp"

namespace uvgena::gena {

/// Namespace URI of the property set (`urn:schemas-upnp-org:event-1-0`).
inline constexpr std::string_view event_namespace = "urn:schemas-upnp-org:event-1-0";
/// Namespace URI of DIDL-Lite.
inline constexpr std::string_view didl_namespace = "urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/";
/// Namespace URI of Dublin Core elements (dc:title, dc:creator) in DIDL-Lite.
inline constexpr std::string_view dc_namespace = "http://purl.org/dc/elements/1.1/";
/// Namespace URI of the UPnP elements (upnp:class, upnp:album, ...) in DIDL-Lite.
inline constexpr std::string_view upnp_namespace = "urn:schemas-upnp-org:metadata-1-0/upnp/";

/// An XML attribute: name as written (prefix kept) and decoded value.
struct UVGENA_API Attribute {
    std::string name;   ///< Qualified name as written, e.g. "channel" or "dlna:profileID".
    std::string value;  ///< Decoded value.
};

/// One evented state variable of a property set.
struct UVGENA_API Variable {
    std::string name;   ///< Local name as the device sent it, prefix dropped ("LastChange").
    std::string value;  ///< Text content, entities decoded, whitespace kept ("" when empty).
    std::string ns;     ///< Namespace URI of the element ("" when none, the usual case).
};

/// The variables of a property set, in the order received. Repeats are kept; lookups by
/// name return the last occurrence (a later value supersedes an earlier one).
class UVGENA_API Variables {
  public:
    using const_iterator = std::vector<Variable>::const_iterator;

    /// Iteration in received order.
    const_iterator begin() const noexcept { return items_.begin(); }
    /// Iteration in received order.
    const_iterator end() const noexcept { return items_.end(); }
    /// Number of variables (repeats counted).
    std::size_t size() const noexcept { return items_.size(); }
    /// True when there is no variable.
    bool empty() const noexcept { return items_.empty(); }
    /// The i-th variable in received order.
    const Variable& operator[](std::size_t i) const noexcept { return items_[i]; }

    /// The last variable with this local name, or nullptr.
    const Variable* find(std::string_view name) const noexcept;
    /// The value of the last variable with this local name, if any.
    std::optional<std::string_view> get(std::string_view name) const noexcept;
    /// The value of the last variable with this name; throws uvgena::Error
    /// (errc::no_such_variable, naming it) when absent.
    const std::string& at(std::string_view name) const;
    /// True when a variable of this name exists.
    bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

    /// Appends a variable (used by the parser and by publishers building an event).
    void add(std::string name, std::string value, std::string ns = {});
    /// Reserves room for `n` variables.
    void reserve(std::size_t n);

  private:
    std::vector<Variable> items_;
};

/// One variable inside a LastChange <InstanceID>: `<Volume channel="Master" val="12"/>`.
struct UVGENA_API LastChangeValue {
    std::string name;                   ///< Local name ("Volume", "NextTrackURI").
    std::string value;                  ///< The `val` attribute, else the element's text.
    std::vector<Attribute> attributes;  ///< Every other attribute (e.g. channel="Master").

    /// The attribute of that name (as written), if present.
    std::optional<std::string_view> attribute(std::string_view attr_name) const noexcept;
    /// The `channel` attribute, "" when absent.
    std::string_view channel() const noexcept;
};

/// The variables of one instance (`<InstanceID val="0">`, Sonos `<QueueID val="0">`).
struct UVGENA_API LastChangeInstance {
    std::string element;                  ///< Local name of the element ("InstanceID").
    std::string id;                       ///< Its `val` attribute ("0").
    std::vector<LastChangeValue> values;  ///< In document order, repeats kept.

    /// The value to use for `name`: the last one without a channel attribute; failing that
    /// the one with channel="Master"; failing that the first of that name. nullptr if none.
    const LastChangeValue* find(std::string_view name) const noexcept;
    /// The value of `name` for exactly this channel (e.g. "LF"), or nullptr.
    const LastChangeValue* find(std::string_view name, std::string_view channel) const noexcept;
    /// Shorthand for find(name)->value.
    std::optional<std::string_view> get(std::string_view name) const noexcept;
};

/// A parsed LastChange document (`<Event xmlns="urn:schemas-upnp-org:metadata-1-0/AVT/">`).
struct UVGENA_API LastChange {
    std::string ns;                             ///< Default namespace of <Event> ("" if none).
    std::vector<LastChangeInstance> instances;  ///< In document order.
    bool repaired = false;                      ///< True if it parsed only after the repair pass.

    /// The instance with this id (default "0"), or nullptr.
    const LastChangeInstance* instance(std::string_view id = "0") const noexcept;
};

/// Parses a LastChange document (the already unescaped value of the LastChange variable).
/// Any namespace is accepted; the root's local name must be "Event". An empty (or
/// whitespace-only) text gives a LastChange with no instances.
UVGENA_API Result<LastChange> parse_last_change(std::string_view xml);

/// A child element of a DIDL-Lite object, other than <res>: kept so that nothing the
/// device sent is lost (dc:title, upnp:class, r:streamContent, desc, ...).
struct UVGENA_API DidlElement {
    std::string name;                   ///< Local name ("title", "streamContent").
    std::string ns;                     ///< Namespace URI (resolved; see parse_didl).
    std::string text;                   ///< Text content.
    std::vector<Attribute> attributes;  ///< Attributes as written.
};

/// A <res> of a DIDL-Lite object.
struct UVGENA_API DidlResource {
    std::string uri;                    ///< The element's text (the resource URI).
    std::string protocol_info;          ///< protocolInfo attribute ("" when absent).
    std::vector<Attribute> attributes;  ///< Every attribute, protocolInfo included.

    /// The attribute of that name, if present (e.g. "duration", "size", "bitrate").
    std::optional<std::string_view> attribute(std::string_view name) const noexcept;
    /// The duration attribute ("0:05:18"), "" when absent.
    std::string_view duration() const noexcept;
};

/// A DIDL-Lite <item> or <container>.
struct UVGENA_API DidlObject {
    bool is_container = false;            ///< <container> rather than <item>.
    std::string id;                       ///< id attribute.
    std::string parent_id;                ///< parentID attribute.
    bool restricted = false;              ///< restricted attribute ("1"/"true").
    std::string title;                    ///< dc:title.
    std::string creator;                  ///< dc:creator.
    std::string artist;                   ///< first upnp:artist.
    std::string album;                    ///< upnp:album.
    std::string upnp_class;               ///< upnp:class ("object.item.audioItem.musicTrack").
    std::string album_art_uri;            ///< first upnp:albumArtURI.
    std::vector<DidlResource> resources;  ///< <res> elements in order.
    std::vector<DidlElement> elements;    ///< Every other child element, in order.
    std::vector<Attribute> attributes;    ///< Attributes of <item>/<container> as written.

    /// The first child element with this local name (any namespace), or nullptr.
    const DidlElement* find(std::string_view local_name) const noexcept;
    /// The first child element with this namespace URI and local name, or nullptr.
    const DidlElement* find(std::string_view ns, std::string_view local_name) const noexcept;
};

/// A parsed DIDL-Lite document.
struct UVGENA_API DidlLite {
    std::vector<DidlObject> objects;  ///< Items and containers in document order.
    bool repaired = false;            ///< True if it parsed only after the repair pass.
};

/// Parses a DIDL-Lite document (leading whitespace allowed). Children are matched by
/// namespace URI; an undeclared `dc:` / `upnp:` prefix (sloppy devices) falls back to the
/// conventional namespace. Fails with errc::not_didl when the root is not <DIDL-Lite> or the
/// text is empty, errc::xml_malformed when it does not parse even after the repair pass.
UVGENA_API Result<DidlLite> parse_didl(std::string_view xml);

// The bounds on every XML document read here (max_xml_attributes_per_element, ...) are in
// uvgena/gena/xml_scanner.hpp, with the reader switch.

/// Limits and choices for PropertySet::parse.
struct UVGENA_API ParseOptions {
    std::size_t max_body_bytes = 4u << 20;  ///< Larger bodies fail with body_too_large.
    bool parse_last_change = true;          ///< Parse a LastChange variable eagerly (else never).
};

/// A parsed NOTIFY body: its variables, the LastChange document if there is one (parsed
/// once, eagerly), and DIDL-Lite values parsed lazily on request and cached.
/// Copies share the DIDL cache entries already made. Not for concurrent use across threads.
class UVGENA_API PropertySet {
  public:
    /// Parses a NOTIFY body. Fails only when the document itself is unusable (malformed,
    /// wrong root, too deep, DOCTYPE, too large); broken nested documents do not fail it.
    static Result<PropertySet> parse(std::string_view body, const ParseOptions& options = {});

    /// An empty property set (no variables).
    PropertySet() = default;

    /// The variables in received order.
    const Variables& variables() const noexcept { return variables_; }

    /// The LastChange document, parsed: fails with errc::no_such_variable when the event has
    /// no LastChange variable (or options.parse_last_change was false), with the parse
    /// error when it is broken (only this value is spoilt). With several LastChange
    /// variables, the last one.
    const Result<LastChange>& last_change() const noexcept;
    /// True if the event carries a LastChange variable that was parsed (well or not).
    bool has_last_change() const noexcept { return last_change_.has_value(); }

    /// The current value of a state variable wherever it was evented: a top-level variable
    /// of that name, else the LastChange value of that name in the given instance.
    std::optional<std::string_view> state(std::string_view name,
                                          std::string_view instance_id = "0") const noexcept;

    /// The DIDL-Lite document in the variable `name` (top level, else in the LastChange
    /// instance `instance_id`), parsed on first call and cached. Errors:
    /// errc::no_such_variable, errc::not_didl (empty or not DIDL), errc::xml_malformed.
    /// The reference stays valid as long as this PropertySet (or a copy) lives.
    const Result<DidlLite>& didl(std::string_view name, std::string_view instance_id = "0") const;

    /// True if the body parsed only after trailing garbage (NULs, whitespace) was cut.
    bool trimmed() const noexcept { return trimmed_; }

  private:
    struct DidlCacheEntry {
        std::string key;
        std::shared_ptr<const Result<DidlLite>> didl;
    };
    Variables variables_;
    std::optional<Result<LastChange>> last_change_;
    mutable std::vector<DidlCacheEntry> didl_cache_;
    bool trimmed_ = false;
};

/// Escapes text for XML content or a double-quoted attribute (& < > " ').
UVGENA_API std::string escape_xml(std::string_view text);
/// Appends the escaped text to `out`.
UVGENA_API void append_escaped_xml(std::string& out, std::string_view text);

/// Repairs common damage in device XML so that a strict parser accepts it: a `&` that
/// does not start an entity or character reference becomes `&amp;`; in start tags an
/// attribute without a value gets `=""` and a `<` inside a quoted value becomes `&lt;`.
/// Everything else is copied unchanged. Used as a retry after a parse failure.
UVGENA_API std::string repair_xml(std::string_view xml);

}  // namespace uvgena::gena
