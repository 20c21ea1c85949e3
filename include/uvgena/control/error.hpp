// Errors of the control layer (uvgena::control): SCPDs, SOAP messages, actions.
//
// Two categories, in the pattern of uvgena/http/error.hpp:
//  - `control_category()` for what uvgena itself finds wrong: a malformed SCPD or SOAP
//    message, a limit exceeded, or an action call refused before sending because it does
//    not match the service's SCPD (unknown argument, value out of range, ...);
//  - `upnp_category()` for a SOAP fault answered by a device; the value is the UPnP
//    errorCode itself (401, 402, 501, 600-899), so `code.value() == 402` reads naturally.
//
// The calls that the SCPD refuses map to the UPnP error a conforming device would have
// answered (an unknown argument to 402 Invalid Args, a value out of range to 601, ...), so
// one comparison covers both: `e.code() == control::upnp_condition(402)`.
//
// A fault thrown by `call_action` is an `ActionError` (a uvgena::Error, so a
// std::system_error) that also carries the device's errorDescription.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "uvgena/core/error.hpp"
#include "uvgena/core/export.hpp"

namespace uvgena::control {

/// What the control layer finds wrong.
enum class errc {
    // --- documents ---------------------------------------------------------------------
    bad_scpd = 1,       ///< Not a service description (root is not <scpd>, an action or a
                        ///< state variable without a name, an argument without direction).
    scpd_too_large,     ///< Over a bound of ScpdLimits (bytes, actions, arguments, ...).
    bad_envelope,       ///< Not a SOAP envelope with one action element in its Body.
    wrong_action,       ///< The body names another action than expected (a response that is
                        ///< not <ActionResponse>, a request whose SOAPACTION disagrees).
    bad_soap_action,    ///< A SOAPACTION header that is not "service-type#action".
    bad_fault,          ///< A SOAP Fault without a readable UPnPError errorCode.
    soap_fault,         ///< The body is a SOAP Fault (read it with parse_fault).
    message_too_large,  ///< A SOAP message over SoapLimits.
    invalid_name,       ///< An action or argument name that is not an XML name.
    invalid_character,  ///< A value holding a character XML 1.0 cannot carry (NUL, most
                        ///< control characters): it cannot be sent, escaped or not.
    // --- calls checked against the SCPD (before anything is sent) ------------------------
    unknown_action,      ///< The SCPD has no action of that name.
    unknown_argument,    ///< The action has no argument of that name.
    missing_argument,    ///< An in argument of the action was not given.
    duplicate_argument,  ///< The same argument given twice.
    not_an_input,        ///< An out argument given as input.
    bad_value,           ///< A value that is not of its state variable's dataType.
    value_out_of_range,  ///< A number outside allowedValueRange (or not on its step).
    value_not_allowed,   ///< A string that is not in allowedValueList.
};

/// Category of `control::errc` (name "uvgena.control").
UVGENA_API const std::error_category& control_category() noexcept;

/// Category of the UPnP errors answered by devices in SOAP faults (name "upnp"); the value
/// is the errorCode.
UVGENA_API const std::error_category& upnp_category() noexcept;

/// Makes an error_code from a control condition.
UVGENA_API std::error_code make_error_code(errc e) noexcept;

/// Makes an error_code for a UPnP errorCode answered by a device (e.g. 402).
UVGENA_API std::error_code upnp_error(int error_code) noexcept;

/// The condition "UPnP error `error_code`": equal to upnp_error(error_code) and to the
/// control::errc that uvgena reports instead of sending a call the device would refuse so.
UVGENA_API std::error_condition upnp_condition(int error_code) noexcept;

/// The standard name of a UPnP errorCode ("Invalid Args" for 402); for 700-799 "Action
/// specific error", 800-899 "Vendor specific error", else "Unknown error".
UVGENA_API std::string_view upnp_error_name(int error_code) noexcept;

/// A SOAP fault answered by a device: `code()` is upnp_error(error_code()), what() names
/// the action and the control URL and quotes the device's errorDescription.
class UVGENA_API ActionError : public Error {
  public:
    /// A fault with `error_code` and the device's `description`; `context` names the call.
    ActionError(int error_code, std::string description, const std::string& context);
    /// The UPnP errorCode (401, 402, 501, 600-899, or whatever the device sent).
    int error_code() const noexcept { return code().value(); }
    /// The device's errorDescription (may be empty).
    const std::string& error_description() const noexcept { return description_; }

  private:
    std::string description_;
};

}  // namespace uvgena::control

template <>
struct std::is_error_code_enum<uvgena::control::errc> : std::true_type {};
