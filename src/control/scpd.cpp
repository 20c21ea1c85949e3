// Service descriptions: the parser (over the gena layer's XML reader, which refuses DOCTYPEs
// and bounds elements and attributes) and the checks of values and calls against them.
#include "uvgena/control/scpd.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

#include "gena/xml_tree.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/core/strings.hpp"

namespace uvgena::control {
namespace {

using gena::detail::XmlElement;

// SCPDs use a default namespace, but some devices prefix it: match by the local name only.
std::string_view local_name(XmlElement e) noexcept {
    std::string_view name = e.name();
    auto colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// The first child named `name`; none for none (so that lookups chain over missing elements).
XmlElement child(XmlElement parent, std::string_view name) noexcept {
    if (!parent) return {};
    for (auto e = parent.first_child_element(); e; e = e.next_sibling_element()) {
        if (local_name(e) == name) return e;
    }
    return {};
}

std::string text_of(XmlElement e) {
    std::string text;
    if (e) e.append_text(text);
    return std::string(trim(text));
}

std::string text_of(XmlElement parent, std::string_view name) {
    return text_of(child(parent, name));
}

// A yes/no attribute as UDA spells it; some devices write "1" / "true".
std::optional<bool> yes_no(XmlElement e, std::string_view attribute) {
    for (const auto& a : e.attributes()) {
        if (a.name != attribute) continue;
        std::string_view v = trim(a.value);
        return iequals(v, "yes") || iequals(v, "true") || v == "1";
    }
    return std::nullopt;
}

int small_int(std::string_view text) {
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    return ec == std::errc{} ? value : 0;
}

// Reads every `item` child of `parent`'s `list` child into `out` with `read(element, T&)`,
// at most `max` of them (errc::scpd_too_large beyond). No list: nothing to read.
template <typename T, typename Read>
Result<void> read_list(XmlElement parent, std::string_view list, std::string_view item,
                       std::size_t max, std::vector<T>& out, Read read) {
    XmlElement container = child(parent, list);
    if (!container) return {};
    for (auto e = container.first_child_element(); e; e = e.next_sibling_element()) {
        if (local_name(e) != item) continue;
        if (out.size() >= max) return fail(make_error_code(errc::scpd_too_large));
        T value{};
        if (auto r = read(e, value); !r) return r;
        out.push_back(std::move(value));
    }
    return {};
}

struct Reader {
    const ScpdLimits& limits;

    Result<void> read_name(XmlElement e, std::string& out) const {
        out = text_of(e, "name");
        if (out.empty()) return fail(make_error_code(errc::bad_scpd));
        if (out.size() > limits.max_name_bytes) return fail(make_error_code(errc::scpd_too_large));
        return {};
    }

    Result<void> read_action(XmlElement xml, ActionInfo& out) const {
        if (auto r = read_name(xml, out.name); !r) return r;
        return read_list(
            xml, "argumentList", "argument", limits.max_arguments, out.arguments,
            [this](XmlElement a, ArgumentInfo& argument) { return read_argument(a, argument); });
    }

    Result<void> read_argument(XmlElement a, ArgumentInfo& argument) const {
        if (auto r = read_name(a, argument.name); !r) return r;
        std::string direction = text_of(a, "direction");
        if (iequals(direction, "in")) {
            argument.direction = Direction::in;
        } else if (iequals(direction, "out")) {
            argument.direction = Direction::out;
        } else {
            return fail(make_error_code(errc::bad_scpd));
        }
        argument.related_state_variable = text_of(a, "relatedStateVariable");
        argument.retval = static_cast<bool>(child(a, "retval"));
        return {};
    }

    Result<void> read_variable(XmlElement xml, StateVariableInfo& out) const {
        if (auto r = read_name(xml, out.name); !r) return r;
        out.data_type = text_of(xml, "dataType");
        out.send_events = yes_no(xml, "sendEvents").value_or(true);
        out.multicast = yes_no(xml, "multicast").value_or(false);
        if (XmlElement d = child(xml, "defaultValue")) out.default_value = text_of(d);
        auto read_text = [](XmlElement v, std::string& text) -> Result<void> {
            text = text_of(v);
            return {};
        };
        if (auto r = read_list(xml, "allowedValueList", "allowedValue", limits.max_allowed_values,
                               out.allowed_values, read_text);
            !r) {
            return r;
        }
        if (XmlElement range = child(xml, "allowedValueRange")) {
            out.allowed_range = AllowedRange{text_of(range, "minimum"), text_of(range, "maximum"),
                                             text_of(range, "step")};
        }
        return {};
    }
};

// --- value checks ----------------------------------------------------------------------

enum class Kind {
    unsigned_int,
    signed_int,
    real,
    boolean,
    character,
    uri,
    hex,
    base64,
    date,
    uuid,
    other
};

struct TypeInfo {
    Kind kind = Kind::other;
    long double low = 0, high = 0;  // bounds of the real types
    // Bounds of the integer types, exact (a long double holds every 64-bit integer only where
    // it has a 64-bit mantissa, and not under valgrind, which computes it as a double): the
    // largest value and the largest magnitude of a negative one.
    std::uint64_t int_high = 0, int_low_magnitude = 0;
};

TypeInfo type_info(std::string_view type) {
    auto ui = [](std::uint64_t high) {
        TypeInfo t{Kind::unsigned_int};
        t.int_high = high;
        return t;
    };
    auto si = [](std::uint64_t low_magnitude, std::uint64_t high) {
        TypeInfo t{Kind::signed_int};
        t.int_low_magnitude = low_magnitude;
        t.int_high = high;
        return t;
    };
    if (type == "ui1") return ui(255);
    if (type == "ui2") return ui(65535);
    if (type == "ui4") return ui(4294967295u);
    if (type == "ui8") return ui(std::numeric_limits<std::uint64_t>::max());
    if (type == "i1") return si(128, 127);
    if (type == "i2") return si(32768, 32767);
    if (type == "i4") return si(2147483648u, 2147483647u);
    if (type == "i8" || type == "int") {
        return si(std::uint64_t{1} << 63, std::numeric_limits<std::int64_t>::max());
    }
    if (type == "r4") return {Kind::real, -3.40282347e38L, 3.40282347e38L};
    if (type == "r8" || type == "number" || type == "float" || type == "fixed.14.4") {
        return {Kind::real, -std::numeric_limits<double>::max(),
                std::numeric_limits<double>::max()};
    }
    if (type == "boolean") return {Kind::boolean};
    if (type == "char") return {Kind::character};
    if (type == "uri") return {Kind::uri};
    if (type == "bin.hex") return {Kind::hex};
    if (type == "bin.base64") return {Kind::base64};
    if (type == "date" || type == "dateTime" || type == "dateTime.tz" || type == "time" ||
        type == "time.tz") {
        return {Kind::date};
    }
    if (type == "uuid") return {Kind::uuid};
    return {Kind::other};  // string and anything unknown
}

// A decimal integer filling `text`: its sign (an optional '-' or '+' for signed types) and
// magnitude.
struct ParsedInteger {
    bool negative = false;
    std::uint64_t magnitude = 0;
};

std::optional<ParsedInteger> parse_integer_parts(std::string_view text, bool allow_sign) {
    if (text.empty()) return std::nullopt;
    ParsedInteger out;
    if (allow_sign && (text.front() == '-' || text.front() == '+')) {
        out.negative = text.front() == '-';
        text.remove_prefix(1);
    }
    auto magnitude = parse_unsigned<std::uint64_t>(text);
    if (!magnitude) return std::nullopt;
    out.magnitude = *magnitude;
    return out;
}

// The same as a long double, for the allowedValueRange comparisons (exact for the small
// bounds that ranges have; the type's own bounds are checked exactly by integer_in_type).
std::optional<long double> parse_integer(std::string_view text, bool allow_sign) {
    auto parts = parse_integer_parts(text, allow_sign);
    if (!parts) return std::nullopt;
    auto value = static_cast<long double>(parts->magnitude);
    return parts->negative ? -value : value;
}

bool integer_in_type(const TypeInfo& type, std::string_view text) {
    auto parts = parse_integer_parts(text, type.kind == Kind::signed_int);
    if (!parts) return false;
    return parts->negative ? parts->magnitude <= type.int_low_magnitude
                           : parts->magnitude <= type.int_high;
}

std::optional<long double> parse_real(std::string_view text) {
    if (text.empty()) return std::nullopt;
    if (text.front() == '+') text.remove_prefix(1);
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
        return std::nullopt;
    }
    return static_cast<long double>(value);
}

std::optional<long double> parse_number(const TypeInfo& type, std::string_view text) {
    switch (type.kind) {
        case Kind::unsigned_int:
            return parse_integer(text, false);
        case Kind::signed_int:
            return parse_integer(text, true);
        default:
            return parse_real(text);
    }
}

// Exactly one UTF-8 encoded code point.
bool one_character(std::string_view s) {
    if (s.empty()) return false;
    auto lead = static_cast<unsigned char>(s.front());
    std::size_t length = lead < 0x80           ? 1
                         : (lead >> 5) == 0x6  ? 2
                         : (lead >> 4) == 0xE  ? 3
                         : (lead >> 3) == 0x1E ? 4
                                               : 0;
    if (length == 0 || s.size() != length) return false;
    for (std::size_t i = 1; i < length; ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) return false;
    }
    return true;
}

bool all_of(std::string_view s, bool (*accept)(char)) {
    for (char c : s) {
        if (!accept(c)) return false;
    }
    return true;
}

bool matches_type(const TypeInfo& type, std::string_view value) {
    switch (type.kind) {
        case Kind::unsigned_int:
        case Kind::signed_int:
            return integer_in_type(type, value);
        case Kind::real: {
            auto number = parse_real(value);
            return number && *number >= type.low && *number <= type.high;
        }
        case Kind::boolean:
            return value == "0" || value == "1" || iequals(value, "true") ||
                   iequals(value, "false") || iequals(value, "yes") || iequals(value, "no");
        case Kind::character:
            return one_character(value);
        case Kind::uri:
            // May be empty (SetAVTransportURI("") clears); never holds whitespace.
            return all_of(value, [](char c) { return static_cast<unsigned char>(c) > 0x20; });
        case Kind::hex:
            return value.size() % 2 == 0 && all_of(value, [](char c) { return is_ascii_hex(c); });
        case Kind::base64:
            return all_of(value, [](char c) {
                return is_ascii_alpha(c) || is_ascii_digit(c) || c == '+' || c == '/' || c == '=' ||
                       is_trim_space(c);
            });
        case Kind::date:
            return !value.empty() && all_of(value, [](char c) {
                return is_ascii_digit(c) || c == '-' || c == ':' || c == 'T' || c == 'Z' ||
                       c == '+' || c == '.';
            });
        case Kind::uuid:
            return !value.empty() &&
                   all_of(value, [](char c) { return is_ascii_hex(c) || c == '-'; });
        case Kind::other:
            return true;
    }
    return true;
}

Result<void> check_range(const TypeInfo& type, const AllowedRange& range, std::string_view value) {
    auto number = parse_number(type, value);
    if (!number) return fail(make_error_code(errc::bad_value));
    // A bound that does not parse is the document's fault: it bounds nothing.
    auto minimum = parse_real(range.minimum);
    auto maximum = parse_real(range.maximum);
    if (minimum && *number < *minimum) return fail(make_error_code(errc::value_out_of_range));
    if (maximum && *number > *maximum) return fail(make_error_code(errc::value_out_of_range));
    auto step = parse_real(range.step);
    if (step && *step > 0 && minimum) {
        long double steps = (*number - *minimum) / *step;
        // Reals: a tolerance for the decimal fractions that binary cannot hold exactly.
        long double tolerance = type.kind == Kind::real ? 1e-9L * std::fabs(steps) + 1e-9L : 0;
        if (std::fabs(steps - std::round(steps)) > tolerance) {
            return fail(make_error_code(errc::value_out_of_range));
        }
    }
    return {};
}

}  // namespace

const ArgumentInfo* ActionInfo::argument(std::string_view wanted) const noexcept {
    for (const auto& a : arguments) {
        if (a.name == wanted) return &a;
    }
    return nullptr;
}

const ActionInfo* Scpd::action(std::string_view wanted) const noexcept {
    for (const auto& a : actions) {
        if (a.name == wanted) return &a;
    }
    return nullptr;
}

const StateVariableInfo* Scpd::state_variable(std::string_view wanted) const noexcept {
    for (const auto& v : state_variables) {
        if (v.name == wanted) return &v;
    }
    return nullptr;
}

Result<Scpd> parse_scpd(std::string_view xml, const ScpdLimits& limits) {
    if (xml.size() > limits.max_bytes) return fail(make_error_code(errc::scpd_too_large));
    // Trailing NULs and whitespace are common from embedded HTTP servers.
    xml = trim(xml);
    while (!xml.empty() && xml.back() == '\0') xml.remove_suffix(1);
    gena::detail::XmlTreeLease tree;
    if (auto ec = tree->parse(xml)) return fail(ec);
    XmlElement root = tree->root();
    if (!root || local_name(root) != "scpd") return fail(make_error_code(errc::bad_scpd));

    Scpd out;
    if (XmlElement spec = child(root, "specVersion")) {
        out.spec_major = small_int(text_of(spec, "major"));
        out.spec_minor = small_int(text_of(spec, "minor"));
    }
    Reader reader{limits};
    auto actions = read_list(
        root, "actionList", "action", limits.max_actions, out.actions,
        [&reader](XmlElement e, ActionInfo& action) { return reader.read_action(e, action); });
    if (!actions) return fail(actions.error());
    auto variables =
        read_list(root, "serviceStateTable", "stateVariable", limits.max_state_variables,
                  out.state_variables, [&reader](XmlElement e, StateVariableInfo& variable) {
                      return reader.read_variable(e, variable);
                  });
    if (!variables) return fail(variables.error());
    return out;
}

Result<void> check_value(const StateVariableInfo& variable, std::string_view value) {
    TypeInfo type = type_info(variable.data_type);
    if (!matches_type(type, value)) return fail(make_error_code(errc::bad_value));
    bool numeric =
        type.kind == Kind::unsigned_int || type.kind == Kind::signed_int || type.kind == Kind::real;
    if (variable.allowed_range && numeric) {
        if (auto r = check_range(type, *variable.allowed_range, value); !r) return r;
    }
    if (!variable.allowed_values.empty()) {
        bool listed = false;
        for (const auto& allowed : variable.allowed_values) listed = listed || allowed == value;
        if (!listed) return fail(make_error_code(errc::value_not_allowed));
    }
    return {};
}

Result<Arguments> check_arguments(const Scpd& scpd, std::string_view action_name,
                                  const Arguments& in, std::string* bad) {
    auto refuse = [bad](errc e, std::string_view name) {
        if (bad != nullptr) *bad = std::string(name);
        return fail(make_error_code(e));
    };
    const ActionInfo* action = scpd.action(action_name);
    if (action == nullptr) return refuse(errc::unknown_action, action_name);
    for (std::size_t i = 0; i < in.size(); ++i) {
        const auto& [name, value] = in[i];
        const ArgumentInfo* argument = action->argument(name);
        if (argument == nullptr) return refuse(errc::unknown_argument, name);
        if (argument->direction != Direction::in) return refuse(errc::not_an_input, name);
        for (std::size_t j = 0; j < i; ++j) {
            if (in[j].first == name) return refuse(errc::duplicate_argument, name);
        }
        if (const auto* variable = scpd.state_variable(argument->related_state_variable)) {
            if (auto r = check_value(*variable, value); !r)
                return refuse(static_cast<errc>(r.error().value()), name);
        }
    }
    Arguments ordered;
    for (const auto& argument : action->arguments) {
        if (argument.direction != Direction::in) continue;
        const std::pair<std::string, std::string>* given = nullptr;
        for (const auto& a : in) {
            if (a.first == argument.name) given = &a;
        }
        if (given == nullptr) return refuse(errc::missing_argument, argument.name);
        ordered.push_back(*given);
    }
    return ordered;
}

}  // namespace uvgena::control
