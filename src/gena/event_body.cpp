// Reading NOTIFY bodies: property set, LastChange, DIDL-Lite (see event_body.hpp).
#include "uvgena/gena/event_body.hpp"

#include <algorithm>

#include "gena/xml_util.hpp"
#include "uvgena/core/strings.hpp"

namespace uvgena::gena {

namespace detail {

std::error_code parse_with_repair(XmlTree& tree, std::string_view text, bool& repaired) {
    repaired = false;
    auto ec = tree.parse(text);
    if (ec != errc::xml_malformed) return ec;
    std::string fixed = repair_xml(text);
    if (fixed == text) return ec;
    auto ec2 = tree.parse_owned(std::move(fixed));
    if (ec2) return ec;  // report the original failure, not the repaired one's
    repaired = true;
    return {};
}

namespace {

void read_attributes(XmlElement e, std::vector<Attribute>& out, std::string_view skip) {
    for (const auto& a : e.attributes()) {
        std::string_view name = a.name;
        if (name == skip) continue;
        if (name.substr(0, 5) == "xmlns" && (name.size() == 5 || name[5] == ':')) continue;
        out.push_back({std::string(name), std::string(a.value)});
    }
}

}  // namespace

void read_last_change(XmlElement event, NsScope& scope, LastChange& out) {
    auto root_mark = scope.mark();
    scope.push_declarations(event);
    if (auto ns = scope.resolve(split_qname(event.name()).first)) out.ns = std::string(*ns);
    for (auto inst = event.first_child_element(); inst; inst = inst.next_sibling_element()) {
        LastChangeInstance instance;
        instance.element = std::string(split_qname(inst.name()).second);
        if (auto id = inst.attribute("val")) instance.id = *id;
        std::size_t count = 0;
        for (auto v = inst.first_child_element(); v; v = v.next_sibling_element()) ++count;
        instance.values.reserve(count);
        for (auto v = inst.first_child_element(); v; v = v.next_sibling_element()) {
            LastChangeValue value;
            value.name = std::string(split_qname(v.name()).second);
            if (auto val = v.attribute("val")) {
                value.value = *val;
            } else {
                v.append_text(value.value);
            }
            read_attributes(v, value.attributes, "val");
            instance.values.push_back(std::move(value));
        }
        out.instances.push_back(std::move(instance));
    }
    scope.pop(root_mark);
}

}  // namespace detail

// --------------------------------------------------------------------------------------
// Variables, LastChange, DIDL accessors

const Variable* Variables::find(std::string_view name) const noexcept {
    for (auto it = items_.rbegin(); it != items_.rend(); ++it) {
        if (it->name == name) return &*it;
    }
    return nullptr;
}

std::optional<std::string_view> Variables::get(std::string_view name) const noexcept {
    if (auto* v = find(name)) return std::string_view{v->value};
    return std::nullopt;
}

const std::string& Variables::at(std::string_view name) const {
    if (auto* v = find(name)) return v->value;
    throw_error(errc::no_such_variable, "state variable " + std::string(name));
}

void Variables::reserve(std::size_t n) {
    items_.reserve(n);
}

void Variables::add(std::string name, std::string value, std::string ns) {
    items_.push_back({std::move(name), std::move(value), std::move(ns)});
}

namespace {

std::optional<std::string_view> find_attribute(const std::vector<Attribute>& attrs,
                                               std::string_view name) noexcept {
    for (const auto& a : attrs) {
        if (a.name == name) return std::string_view{a.value};
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string_view> LastChangeValue::attribute(
    std::string_view attr_name) const noexcept {
    return find_attribute(attributes, attr_name);
}

std::string_view LastChangeValue::channel() const noexcept {
    return attribute("channel").value_or(std::string_view{});
}

const LastChangeValue* LastChangeInstance::find(std::string_view name) const noexcept {
    const LastChangeValue* plain = nullptr;
    const LastChangeValue* master = nullptr;
    const LastChangeValue* first = nullptr;
    for (const auto& v : values) {
        if (v.name != name) continue;
        if (first == nullptr) first = &v;
        auto channel = v.attribute("channel");
        if (!channel) {
            plain = &v;
        } else if (*channel == "Master" && master == nullptr) {
            master = &v;
        }
    }
    return plain != nullptr ? plain : master != nullptr ? master : first;
}

const LastChangeValue* LastChangeInstance::find(std::string_view name,
                                                std::string_view channel) const noexcept {
    for (const auto& v : values) {
        if (v.name == name && v.channel() == channel) return &v;
    }
    return nullptr;
}

std::optional<std::string_view> LastChangeInstance::get(std::string_view name) const noexcept {
    if (auto* v = find(name)) return std::string_view{v->value};
    return std::nullopt;
}

const LastChangeInstance* LastChange::instance(std::string_view id) const noexcept {
    for (const auto& i : instances) {
        if (i.id == id) return &i;
    }
    return nullptr;
}

std::optional<std::string_view> DidlResource::attribute(std::string_view name) const noexcept {
    return find_attribute(attributes, name);
}

std::string_view DidlResource::duration() const noexcept {
    return attribute("duration").value_or(std::string_view{});
}

const DidlElement* DidlObject::find(std::string_view local_name) const noexcept {
    for (const auto& e : elements) {
        if (e.name == local_name) return &e;
    }
    return nullptr;
}

const DidlElement* DidlObject::find(std::string_view ns,
                                    std::string_view local_name) const noexcept {
    for (const auto& e : elements) {
        if (e.name == local_name && e.ns == ns) return &e;
    }
    return nullptr;
}

// --------------------------------------------------------------------------------------
// Parsers

Result<LastChange> parse_last_change(std::string_view xml) {
    xml = detail::trim_document(xml);
    LastChange out;
    if (xml.empty()) return out;
    detail::XmlTreeLease lease;
    detail::XmlTree& tree = *lease;
    if (auto ec = detail::parse_with_repair(tree, xml, out.repaired)) return fail(ec);
    auto root = tree.root();
    if (detail::split_qname(root.name()).second != "Event") return fail(errc::xml_wrong_root);
    detail::NsScope scope;
    detail::read_last_change(root, scope, out);
    return out;
}

namespace {

bool truthy(std::string_view v) noexcept {
    return v == "1" || v == "true" || v == "True" || v == "TRUE" || v == "yes";
}

std::string_view didl_child_namespace(const detail::NsScope& scope, std::string_view prefix) {
    if (auto ns = scope.resolve(prefix)) return *ns;
    // Undeclared prefix: sloppy devices write dc:/upnp: without declaring them.
    if (prefix == "dc") return dc_namespace;
    if (prefix == "upnp") return upnp_namespace;
    return {};
}

DidlObject read_didl_object(detail::XmlElement e, detail::NsScope& scope, bool container) {
    DidlObject obj;
    obj.is_container = container;
    if (auto v = e.attribute("id")) obj.id = *v;
    if (auto v = e.attribute("parentID")) obj.parent_id = *v;
    if (auto v = e.attribute("restricted")) obj.restricted = truthy(*v);
    detail::read_attributes(e, obj.attributes, {});
    for (auto c = e.first_child_element(); c; c = c.next_sibling_element()) {
        auto mark = scope.mark();
        scope.push_declarations(c);
        auto [prefix, local] = detail::split_qname(c.name());
        std::string_view ns = didl_child_namespace(scope, prefix);
        if (local == "res") {
            DidlResource res;
            c.append_text(res.uri);
            if (auto p = c.attribute("protocolInfo")) res.protocol_info = *p;
            detail::read_attributes(c, res.attributes, {});
            obj.resources.push_back(std::move(res));
        } else {
            DidlElement el;
            el.name = std::string(local);
            el.ns = std::string(ns);
            c.append_text(el.text);
            detail::read_attributes(c, el.attributes, {});
            std::string* field = nullptr;
            if (ns == dc_namespace) {
                if (local == "title") field = &obj.title;
                if (local == "creator") field = &obj.creator;
            } else if (ns == upnp_namespace) {
                if (local == "class") field = &obj.upnp_class;
                if (local == "album") field = &obj.album;
                if (local == "artist") field = &obj.artist;
                if (local == "albumArtURI") field = &obj.album_art_uri;
            }
            if (field != nullptr && field->empty()) *field = el.text;
            obj.elements.push_back(std::move(el));
        }
        scope.pop(mark);
    }
    return obj;
}

}  // namespace

Result<DidlLite> parse_didl(std::string_view xml) {
    xml = detail::trim_document(xml);
    if (xml.empty() || xml.front() != '<') return fail(errc::not_didl);
    DidlLite out;
    detail::XmlTreeLease lease;
    detail::XmlTree& tree = *lease;
    if (auto ec = detail::parse_with_repair(tree, xml, out.repaired)) return fail(ec);
    auto root = tree.root();
    if (detail::split_qname(root.name()).second != "DIDL-Lite") return fail(errc::not_didl);
    detail::NsScope scope;
    scope.push_declarations(root);
    for (auto c = root.first_child_element(); c; c = c.next_sibling_element()) {
        auto local = detail::split_qname(c.name()).second;
        if (local != "item" && local != "container") continue;
        auto mark = scope.mark();
        scope.push_declarations(c);
        out.objects.push_back(read_didl_object(c, scope, local == "container"));
        scope.pop(mark);
    }
    return out;
}

namespace {

/// A property-set element: the right local name, in the event namespace or (leniently) in
/// no namespace at all when written without a prefix.
bool is_event_element(detail::XmlElement e, const detail::NsScope& scope,
                      std::string_view local_name) {
    auto [prefix, local] = detail::split_qname(e.name());
    if (local != local_name) return false;
    auto ns = scope.resolve(prefix);
    return ns && (*ns == event_namespace || (ns->empty() && prefix.empty()));
}

}  // namespace

Result<PropertySet> PropertySet::parse(std::string_view body, const ParseOptions& options) {
    if (body.size() > options.max_body_bytes) return fail(errc::body_too_large);
    PropertySet out;
    std::string_view text = body;
    while (!text.empty() && detail::is_trim_char(text.back())) text.remove_suffix(1);
    out.trimmed_ = text.size() != body.size();
    while (!text.empty() && detail::is_trim_char(text.front())) text.remove_prefix(1);
    if (text.empty()) return out;

    detail::XmlTreeLease lease;
    detail::XmlTree& tree = *lease;
    if (auto ec = tree.parse(text)) return fail(ec);
    auto root = tree.root();
    detail::NsScope scope;
    scope.push_declarations(root);
    if (!is_event_element(root, scope, "propertyset")) return fail(errc::xml_wrong_root);

    bool has_last_change = false;
    detail::XmlElement inline_event;
    std::size_t count = 0;
    for (auto prop = root.first_child_element(); prop; prop = prop.next_sibling_element()) {
        for (auto var = prop.first_child_element(); var; var = var.next_sibling_element()) {
            ++count;
        }
    }
    out.variables_.reserve(count);
    for (auto prop = root.first_child_element(); prop; prop = prop.next_sibling_element()) {
        auto prop_mark = scope.mark();
        scope.push_declarations(prop);
        if (is_event_element(prop, scope, "property")) {
            for (auto var = prop.first_child_element(); var; var = var.next_sibling_element()) {
                auto var_mark = scope.mark();
                scope.push_declarations(var);
                auto [prefix, local] = detail::split_qname(var.name());
                std::string_view ns = scope.resolve(prefix).value_or(std::string_view{});
                if (ns == event_namespace) ns = {};
                std::string value;
                var.append_text(value);
                if (local == "LastChange") {
                    has_last_change = true;
                    // Some devices put the <Event> document unescaped inside LastChange.
                    inline_event = value.find('<') == std::string::npos ? var.first_child_element()
                                                                        : detail::XmlElement{};
                }
                out.variables_.add(std::string(local), std::move(value), std::string(ns));
                scope.pop(var_mark);
            }
        }
        scope.pop(prop_mark);
    }

    if (options.parse_last_change && has_last_change) {
        if (inline_event && detail::split_qname(inline_event.name()).second == "Event") {
            LastChange lc;
            detail::NsScope inner;
            detail::read_last_change(inline_event, inner, lc);
            out.last_change_.emplace(std::move(lc));
        } else {
            out.last_change_.emplace(parse_last_change(out.variables_.at("LastChange")));
        }
    }
    return out;
}

const Result<LastChange>& PropertySet::last_change() const noexcept {
    static const Result<LastChange> absent{fail(errc::no_such_variable)};
    return last_change_ ? *last_change_ : absent;
}

std::optional<std::string_view> PropertySet::state(std::string_view name,
                                                   std::string_view instance_id) const noexcept {
    if (auto v = variables_.get(name)) return v;
    if (last_change_ && last_change_->ok()) {
        if (auto* inst = (*last_change_)->instance(instance_id)) return inst->get(name);
    }
    return std::nullopt;
}

const Result<DidlLite>& PropertySet::didl(std::string_view name,
                                          std::string_view instance_id) const {
    std::string key;
    key.reserve(name.size() + 1 + instance_id.size());
    key.append(name).push_back('\x1f');
    key.append(instance_id);
    for (const auto& entry : didl_cache_) {
        if (entry.key == key) return *entry.didl;
    }
    std::optional<std::string_view> text = variables_.get(name);
    if (!text && last_change_ && last_change_->ok()) {
        if (auto* inst = (*last_change_)->instance(instance_id)) text = inst->get(name);
    }
    auto parsed = std::make_shared<const Result<DidlLite>>(
        text ? parse_didl(*text) : Result<DidlLite>(fail(errc::no_such_variable)));
    didl_cache_.push_back({std::move(key), parsed});
    return *parsed;
}

// --------------------------------------------------------------------------------------
// Escaping and repair

void append_escaped_xml(std::string& out, std::string_view text) {
    for (char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&apos;";
                break;
            default:
                out.push_back(c);
        }
    }
}

std::string escape_xml(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    append_escaped_xml(out, text);
    return out;
}

namespace {

/// True if s[i] == '&' starts "&name;", "&#123;" or "&#x1F;".
bool starts_reference(std::string_view s, std::size_t i) noexcept {
    std::size_t j = i + 1;
    if (j < s.size() && s[j] == '#') {
        ++j;
        bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
        if (hex) ++j;
        std::size_t start = j;
        while (j < s.size() && j - start < 10 && (hex ? is_ascii_hex(s[j]) : is_ascii_digit(s[j])))
            ++j;
        return j > start && j < s.size() && s[j] == ';';
    }
    std::size_t start = j;
    while (j < s.size() && j - start < 32 &&
           (is_ascii_alpha(s[j]) || is_ascii_digit(s[j]) || s[j] == '_' || s[j] == '.' ||
            s[j] == '-')) {
        ++j;
    }
    return j > start && j < s.size() && s[j] == ';' && is_ascii_alpha(s[start]);
}

void append_text_repaired(std::string& out, char c, std::string_view s, std::size_t i) {
    if (c == '&' && !starts_reference(s, i)) {
        out += "&amp;";
    } else {
        out.push_back(c);
    }
}

}  // namespace

std::string repair_xml(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 32);
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n) {
        char c = s[i];
        if (c != '<' || i + 1 >= n || !(is_ascii_alpha(s[i + 1]) || s[i + 1] == '_')) {
            append_text_repaired(out, c, s, i);
            ++i;
            continue;
        }
        // A start tag: copy the name, then fix its attributes.
        out.push_back('<');
        ++i;
        while (i < n && !is_trim_space(s[i]) && s[i] != '>' && s[i] != '/') out.push_back(s[i++]);
        while (i < n) {
            while (i < n && is_trim_space(s[i])) out.push_back(s[i++]);
            if (i >= n) break;
            if (s[i] == '>') {
                out.push_back(s[i++]);
                break;
            }
            if (s[i] == '/') {
                out.push_back(s[i++]);
                continue;
            }
            if (s[i] == '<') break;  // an unclosed tag: let the parser report it
            std::size_t name_start = i;
            while (i < n && !is_trim_space(s[i]) && s[i] != '=' && s[i] != '>' && s[i] != '/' &&
                   s[i] != '<') {
                out.push_back(s[i++]);
            }
            if (i == name_start) {  // a stray character such as a quote: drop it
                ++i;
                continue;
            }
            std::size_t after_name = i;
            while (i < n && is_trim_space(s[i])) ++i;
            if (i >= n || s[i] != '=') {
                out += "=\"\"";
                i = after_name;
                continue;
            }
            out.push_back('=');
            ++i;
            while (i < n && is_trim_space(s[i])) ++i;
            if (i < n && (s[i] == '"' || s[i] == '\'')) {
                char quote = s[i++];
                out.push_back(quote);
                while (i < n && s[i] != quote) {
                    if (s[i] == '<') {
                        out += "&lt;";
                    } else {
                        append_text_repaired(out, s[i], s, i);
                    }
                    ++i;
                }
                if (i < n) ++i;
                out.push_back(quote);
            } else {  // an unquoted value: quote it
                out.push_back('"');
                while (i < n && !is_trim_space(s[i]) && s[i] != '>' && s[i] != '<') {
                    if (s[i] == '"') {
                        out += "&quot;";
                    } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '>') {
                        break;
                    } else {
                        append_text_repaired(out, s[i], s, i);
                    }
                    ++i;
                }
                out.push_back('"');
            }
        }
    }
    return out;
}

}  // namespace uvgena::gena
