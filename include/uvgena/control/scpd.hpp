// UPnP service descriptions (SCPD, UDA 1.1 section 2.5), sans-IO: the XML a device serves at
// a service's SCPDURL, read into its actions (with their arguments) and its state variables
// (with their types and allowed values), and the checks of an action call against them.
//
// fetch_scpd (client.hpp) GETs and caches them; this header does no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"

namespace uvgena::control {

/// Action arguments (in or out) as (name, value) pairs, in order: UPnP arguments are
/// ordered, and the same name could appear twice in a hostile message.
using Arguments = std::vector<std::pair<std::string, std::string>>;

/// The direction of an action argument.
enum class Direction { in, out };

/// One argument of an action.
struct UVGENA_API ArgumentInfo {
    std::string name;                     ///< "DesiredVolume"
    Direction direction = Direction::in;  ///< in: sent by the control point; out: answered.
    std::string related_state_variable;   ///< Gives its type: "Volume"
    bool retval = false;                  ///< Marked <retval/> (the out argument "returned").
};

/// One action of a service.
struct UVGENA_API ActionInfo {
    std::string name;                     ///< "SetVolume"
    std::vector<ArgumentInfo> arguments;  ///< In document order (in ones first by UDA).

    /// The argument named `name`, or nullptr.
    const ArgumentInfo* argument(std::string_view name) const noexcept;
};

/// The allowedValueRange of a numeric state variable, as written (the checks parse it).
struct UVGENA_API AllowedRange {
    std::string minimum;  ///< "0"
    std::string maximum;  ///< "100"
    std::string step;     ///< "1", or empty when the document has none.
};

/// One state variable of a service.
struct UVGENA_API StateVariableInfo {
    std::string name;       ///< "Volume"
    std::string data_type;  ///< UDA dataType: "ui2", "string", "boolean", "i4", "uri", ...
    std::optional<std::string> default_value;   ///< <defaultValue>, if any.
    std::vector<std::string> allowed_values;    ///< <allowedValueList>; empty: any value.
    std::optional<AllowedRange> allowed_range;  ///< <allowedValueRange>, if any.
    bool send_events = true;  ///< sendEvents attribute ("yes" unless "no", as UDA says).
    bool multicast = false;   ///< multicast attribute (UDA 2.0), "yes" only.
};

/// A parsed service description.
struct UVGENA_API Scpd {
    int spec_major = 1;  ///< specVersion.
    int spec_minor = 0;
    std::vector<ActionInfo> actions;                 ///< In document order.
    std::vector<StateVariableInfo> state_variables;  ///< In document order.

    /// The action named `name` (exact, case-sensitive as UPnP names are), or nullptr.
    const ActionInfo* action(std::string_view name) const noexcept;
    /// The state variable named `name`, or nullptr.
    const StateVariableInfo* state_variable(std::string_view name) const noexcept;
};

/// Bounds on what a service description may contain (real ones have at most a few dozen
/// actions and a hundred variables: AVTransport, ~16 KB).
struct UVGENA_API ScpdLimits {
    std::size_t max_bytes = 512 * 1024;      ///< Document size.
    std::size_t max_actions = 512;           ///< Actions.
    std::size_t max_arguments = 64;          ///< Arguments of one action.
    std::size_t max_state_variables = 1024;  ///< State variables.
    std::size_t max_allowed_values = 1024;   ///< Entries of one allowedValueList.
    std::size_t max_name_bytes = 256;        ///< An action, argument or variable name.
};

/// Parses a service description. Never throws (but for memory). Errors: control
/// errc::bad_scpd for a document that is not an SCPD (root not <scpd>, an action, argument
/// or state variable without a name, a direction neither "in" nor "out"); control
/// errc::scpd_too_large beyond `limits`; gena errc::xml_malformed, xml_too_deep,
/// xml_doctype_refused, xml_too_many_elements / xml_too_many_attributes for XML the gena layer's
/// reader refuses (a DOCTYPE is refused: entity bombs). Unknown elements are ignored (vendors add
/// their own), and so is an argument's relatedStateVariable that names no variable (its values are
/// then not checked).
UVGENA_API Result<Scpd> parse_scpd(std::string_view xml, const ScpdLimits& limits = {});

/// Checks `value` against a state variable: its dataType (ui1/ui2/ui4/ui8, i1/i2/i4/i8/int,
/// r4/r8/number/float/fixed.14.4, boolean, char, string, uri, uuid, bin.hex, bin.base64,
/// date/time types by their characters; unknown types accept anything), then its
/// allowedValueRange (minimum, maximum, and step counted from the minimum) and its
/// allowedValueList (exact match). Errors: control errc::bad_value, value_out_of_range,
/// value_not_allowed.
UVGENA_API Result<void> check_value(const StateVariableInfo& variable, std::string_view value);

/// Checks the in arguments of a call to `action` against `scpd` and returns them in the
/// action's order (UPnP arguments are positional: a device may read them by position).
/// Errors, naming nothing (call_action adds the names to the exception): unknown_action,
/// unknown_argument, duplicate_argument, not_an_input, missing_argument, and those of
/// check_value. `bad` (when given) receives the name of the argument at fault.
UVGENA_API Result<Arguments> check_arguments(const Scpd& scpd, std::string_view action,
                                             const Arguments& in, std::string* bad = nullptr);

}  // namespace uvgena::control
