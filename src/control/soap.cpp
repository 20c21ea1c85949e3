// SOAP envelopes of UPnP actions, both sides (see soap.hpp).
#include "uvgena/control/soap.hpp"

#include <charconv>
#include <initializer_list>
#include <optional>

#include "gena/xml_tree.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/core/strings.hpp"

namespace uvgena::control {
namespace {

using gena::detail::XmlElement;

constexpr std::string_view envelope_open =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>";
constexpr std::string_view envelope_close = "</s:Body></s:Envelope>\n";
constexpr std::string_view content_type = "text/xml; charset=\"utf-8\"";

std::pair<std::string_view, std::string_view> split_name(std::string_view name) noexcept {
    auto colon = name.find(':');
    if (colon == std::string_view::npos) return {{}, name};
    return {name.substr(0, colon), name.substr(colon + 1)};
}

std::string_view local_name(XmlElement e) noexcept {
    return split_name(e.name()).second;
}

// The first child named `name`; none for none (so that lookups chain over missing elements).
XmlElement child(XmlElement parent, std::string_view name) noexcept {
    if (!parent) return {};
    for (auto e = parent.first_child_element(); e; e = e.next_sibling_element()) {
        if (local_name(e) == name) return e;
    }
    return {};
}

// An XML Name without a prefix, as action and argument names are ("A_ARG_TYPE_x", "Speed");
// bytes >= 0x80 are allowed as XML's non-ASCII name characters.
bool is_xml_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    auto start = [](char c) {
        return is_ascii_alpha(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
    };
    if (!start(name.front())) return false;
    for (char c : name) {
        if (!start(c) && !is_ascii_digit(c) && c != '-' && c != '.') return false;
    }
    return true;
}

bool is_xml_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Appends `text` escaped for element content; false (and `out` partly written) if it holds a
// character XML 1.0 cannot carry. With `strict` false such characters are left out instead.
bool append_value(std::string& out, std::string_view text, bool strict = true) {
    bool whitespace_only = !text.empty();
    for (char c : text) whitespace_only = whitespace_only && is_xml_space(c);
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        switch (c) {
            case '&':
                out += "&amp;";
                continue;
            case '<':
                out += "&lt;";
                continue;
            case '>':  // "]]>" must not appear in content
                out += "&gt;";
                continue;
            case '\r':  // a reader turns a raw CR (and CR LF) into LF
                out += "&#13;";
                continue;
            case ' ':
            case '\t':
            case '\n':
                if (whitespace_only) {
                    out += c == ' ' ? "&#32;" : c == '\t' ? "&#9;" : "&#10;";
                } else {
                    out.push_back(c);
                }
                continue;
            default:
                break;
        }
        auto u = static_cast<unsigned char>(c);
        bool invalid = u < 0x20 || (u == 0xEF && i + 2 < text.size() && text[i + 1] == '\xBF' &&
                                    (text[i + 2] == '\xBE' || text[i + 2] == '\xBF'));
        if (invalid) {
            if (strict) return false;
            if (u == 0xEF) i += 2;  // U+FFFE / U+FFFF: three bytes left out
            continue;
        }
        out.push_back(c);
    }
    return true;
}

// A service type fits in a quoted header value and in an attribute: no quote, no '#' (the
// separator of SOAPACTION), no whitespace or control character.
bool is_service_type(std::string_view type) noexcept {
    if (type.empty()) return false;
    for (char c : type) {
        if (c == '"' || c == '#' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7F)
            return false;
    }
    return true;
}

// The body of an action element, <u:NAME xmlns:u="TYPE">args</u:NAME>, between envelope_open
// and envelope_close.
Result<std::string> build_envelope(std::string_view service_type, std::string_view element,
                                   const Arguments& arguments) {
    if (!is_service_type(service_type)) return fail(make_error_code(errc::bad_soap_action));
    if (!is_xml_name(element)) return fail(make_error_code(errc::invalid_name));
    std::string body;
    std::size_t size = envelope_open.size() + envelope_close.size() + 2 * element.size() +
                       service_type.size() + 32;
    for (const auto& [name, value] : arguments) size += 2 * name.size() + value.size() + 5;
    body.reserve(size + size / 8);
    body += envelope_open;
    body += "<u:";
    body += element;
    body += " xmlns:u=\"";
    body += service_type;
    body += "\">";
    for (const auto& [name, value] : arguments) {
        if (!is_xml_name(name)) return fail(make_error_code(errc::invalid_name));
        body += '<';
        body += name;
        body += '>';
        if (!append_value(body, value)) return fail(make_error_code(errc::invalid_character));
        body += "</";
        body += name;
        body += '>';
    }
    body += "</u:";
    body += element;
    body += '>';
    body += envelope_close;
    return body;
}

// The first element of the envelope's Body, read from `body` into `tree`.
Result<XmlElement> body_element(gena::detail::XmlTree& tree, std::string_view body,
                                const SoapLimits& limits) {
    if (body.size() > limits.max_bytes) return fail(make_error_code(errc::message_too_large));
    body = trim(body);
    while (!body.empty() && body.back() == '\0') body.remove_suffix(1);
    if (auto ec = tree.parse(body)) return fail(ec);
    XmlElement root = tree.root();
    if (!root || local_name(root) != "Envelope") return fail(make_error_code(errc::bad_envelope));
    XmlElement soap_body = child(root, "Body");
    if (!soap_body) return fail(make_error_code(errc::bad_envelope));
    XmlElement first = soap_body.first_child_element();
    if (!first) return fail(make_error_code(errc::bad_envelope));
    return first;
}

// The arguments of an action element: each child element's text, unescaped and untrimmed.
Result<Arguments> read_arguments(XmlElement action, const SoapLimits& limits) {
    Arguments out;
    for (auto a = action.first_child_element(); a; a = a.next_sibling_element()) {
        if (out.size() >= limits.max_arguments)
            return fail(make_error_code(errc::message_too_large));
        // Unescaped markup inside a value (a device that forgot to escape its DIDL-Lite)
        // cannot be read back as the text it meant.
        if (a.first_child_element()) return fail(make_error_code(errc::bad_envelope));
        std::string value;
        a.append_text(value);
        out.emplace_back(std::string(local_name(a)), std::move(value));
    }
    return out;
}

// The namespace URI bound to `prefix` on `e` or its two ancestors (the Body and the Envelope).
std::optional<std::string_view> namespace_of(std::string_view prefix,
                                             std::initializer_list<XmlElement> scopes) {
    std::string attribute = prefix.empty() ? "xmlns" : "xmlns:" + std::string(prefix);
    for (XmlElement e : scopes) {
        if (auto uri = e.attribute(attribute)) return uri;
    }
    return std::nullopt;
}

}  // namespace

std::string soap_action_header(std::string_view service_type, std::string_view action) {
    std::string out;
    out.reserve(service_type.size() + action.size() + 3);
    out += '"';
    out += service_type;
    out += '#';
    out += action;
    out += '"';
    return out;
}

Result<std::pair<std::string, std::string>> parse_soap_action_header(std::string_view value) {
    value = trim(value);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
    }
    auto hash = value.rfind('#');
    if (hash == std::string_view::npos || hash == 0 || hash + 1 == value.size()) {
        return fail(make_error_code(errc::bad_soap_action));
    }
    std::string_view type = value.substr(0, hash);
    std::string_view action = value.substr(hash + 1);
    if (!is_service_type(type) || !is_xml_name(action)) {
        return fail(make_error_code(errc::bad_soap_action));
    }
    return std::pair{std::string(type), std::string(action)};
}

Result<SoapMessage> build_request(const ActionRequest& request) {
    auto body = build_envelope(request.service_type, request.action, request.arguments);
    if (!body) return fail(body.error());
    SoapMessage out;
    out.headers.add("Content-Type", std::string(content_type));
    out.headers.add("SOAPACTION", soap_action_header(request.service_type, request.action));
    out.body = std::move(*body);
    return out;
}

Result<Arguments> parse_response(std::string_view body, std::string_view action,
                                 const SoapLimits& limits) {
    gena::detail::XmlTreeLease tree;
    auto element = body_element(*tree, body, limits);
    if (!element) return fail(element.error());
    std::string_view name = local_name(*element);
    if (name == "Fault") return fail(make_error_code(errc::soap_fault));
    // Some devices write the element's case their own way ("setvolumeResponse").
    if (name.size() != action.size() + 8 || !iequals(name.substr(0, action.size()), action) ||
        name.substr(action.size()) != "Response") {
        return fail(make_error_code(errc::wrong_action));
    }
    return read_arguments(*element, limits);
}

Result<Fault> parse_fault(std::string_view body, const SoapLimits& limits) {
    gena::detail::XmlTreeLease tree;
    auto element = body_element(*tree, body, limits);
    if (!element) return fail(element.error());
    if (local_name(*element) != "Fault") return fail(make_error_code(errc::bad_envelope));
    XmlElement error = child(child(*element, "detail"), "UPnPError");
    if (!error) return fail(make_error_code(errc::bad_fault));
    std::string code_text, description;
    if (XmlElement e = child(error, "errorCode")) e.append_text(code_text);
    if (XmlElement e = child(error, "errorDescription")) e.append_text(description);
    std::string_view code = trim(code_text);
    int value = 0;
    auto [end, ec] = std::from_chars(code.data(), code.data() + code.size(), value);
    if (code.empty() || ec != std::errc{} || end != code.data() + code.size()) {
        return fail(make_error_code(errc::bad_fault));
    }
    return Fault{value, std::string(trim(description))};
}

Result<ActionRequest> parse_request(std::string_view soap_action_header_value,
                                    std::string_view body, const SoapLimits& limits) {
    auto header = parse_soap_action_header(soap_action_header_value);
    if (!header) return fail(header.error());
    gena::detail::XmlTreeLease tree;
    auto element = body_element(*tree, body, limits);
    if (!element) return fail(element.error());
    auto [prefix, name] = split_name(element->name());
    if (name != header->second) return fail(make_error_code(errc::wrong_action));
    XmlElement root = tree->root();
    XmlElement soap_body = child(root, "Body");
    auto uri = namespace_of(prefix, {*element, soap_body, root});
    if (uri && *uri != header->first) return fail(make_error_code(errc::wrong_action));
    auto arguments = read_arguments(*element, limits);
    if (!arguments) return fail(arguments.error());
    return ActionRequest{std::move(header->first), std::move(header->second),
                         std::move(*arguments)};
}

Result<SoapMessage> build_response(std::string_view service_type, std::string_view action,
                                   const Arguments& out) {
    if (!is_xml_name(action)) return fail(make_error_code(errc::invalid_name));
    auto body = build_envelope(service_type, std::string(action) + "Response", out);
    if (!body) return fail(body.error());
    SoapMessage message;
    message.headers.add("Content-Type", std::string(content_type));
    message.body = std::move(*body);
    return message;
}

SoapMessage build_fault(const Fault& fault) {
    SoapMessage message;
    message.headers.add("Content-Type", std::string(content_type));
    std::string& body = message.body;
    body += envelope_open;
    body +=
        "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>"
        "<detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>";
    body += std::to_string(fault.error_code);
    body += "</errorCode><errorDescription>";
    append_value(body, fault.error_description, /*strict=*/false);
    body += "</errorDescription></UPnPError></detail></s:Fault>";
    body += envelope_close;
    return message;
}

Fault fault_for(std::error_code error) {
    std::error_condition condition = error.default_error_condition();
    int code = condition.category() == upnp_category() ? condition.value() : 501;
    if (error.category() == control_category()) {
        switch (static_cast<errc>(error.value())) {
            case errc::bad_soap_action:
            case errc::wrong_action:
                code = 401;
                break;
            case errc::bad_envelope:
            case errc::invalid_name:
            case errc::invalid_character:
                code = 402;
                break;
            default:
                break;
        }
    }
    return Fault{code, std::string(upnp_error_name(code))};
}

}  // namespace uvgena::control
