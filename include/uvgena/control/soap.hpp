// SOAP 1.1 for UPnP actions (UDA 1.1 section 3.2), sans-IO, both sides of the exchange:
//
//   control point                                  device
//   build_request  ── POST, SOAPACTION, envelope ──▶  parse_request
//   parse_response ◀── 200, <ActionResponse>  ───── build_response
//   parse_fault    ◀── 500, <s:Fault> UPnPError ─── build_fault
//
// Values are text: the builders escape them (& < > and CR, which XML would turn into LF;
// a value of whitespace only is written as character references, since XML readers drop
// whitespace-only text), so any string a device can hold travels unchanged, XML included
// (DIDL-Lite metadata is sent as escaped text, as UPnP wants). A value holding a character
// XML 1.0 cannot carry at all (NUL, other C0 controls but tab, LF and CR, U+FFFE, U+FFFF)
// is refused: errc::invalid_character. The parsers read through the gena layer's XML reader
// (bounded, DOCTYPE refused) and match elements by local name, whatever the prefixes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "uvgena/control/scpd.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/http/message.hpp"

namespace uvgena::control {

/// An action call: which service, which action, the in arguments in order.
struct UVGENA_API ActionRequest {
    std::string service_type;  ///< "urn:schemas-upnp-org:service:RenderingControl:1"
    std::string action;        ///< "SetVolume"
    Arguments arguments;       ///< {{"InstanceID", "0"}, {"Channel", "Master"}, ...}
};

/// A SOAP fault's UPnPError.
struct UVGENA_API Fault {
    int error_code = 501;           ///< 401, 402, 501, 600-899, ...
    std::string error_description;  ///< "Invalid Args"; may be empty.
};

/// A SOAP message ready to send: the header fields it needs (Content-Type, and SOAPACTION
/// for a request) and the body. The HTTP framing (method, status, Host, Content-Length) is
/// the sender's: a request is POSTed to the control URL, a fault answered with status 500.
struct UVGENA_API SoapMessage {
    http::Headers headers;
    std::string body;
};

/// Bounds on a SOAP message read.
struct UVGENA_API SoapLimits {
    std::size_t max_bytes = 1024 * 1024;  ///< Body size.
    std::size_t max_arguments = 256;      ///< Arguments of the action element.
};

/// The SOAPACTION header value for `action` of `service_type`, quoted as UDA wants:
/// "\"urn:schemas-upnp-org:service:RenderingControl:1#SetVolume\"".
UVGENA_API std::string soap_action_header(std::string_view service_type, std::string_view action);

/// Reads a SOAPACTION header value (quoted or not) into (service type, action). Error:
/// errc::bad_soap_action when there is no '#' or either part is empty.
UVGENA_API Result<std::pair<std::string, std::string>> parse_soap_action_header(
    std::string_view value);

/// Client side: the request for `request` (headers Content-Type and SOAPACTION, and the
/// envelope with the arguments in the given order). Errors: errc::invalid_name for an
/// action or argument name that is not an XML name, errc::bad_soap_action for a service
/// type that cannot be quoted in a header (empty, or holding '"', '#', spaces or controls),
/// errc::invalid_character for a value XML cannot carry.
UVGENA_API Result<SoapMessage> build_request(const ActionRequest& request);

/// Client side: the out arguments of a response to `action`, in the device's order, their
/// values unescaped (never trimmed: a string may start with a space; but a value a device
/// wrote as raw whitespace only reads as "", as both XML readers drop such text). Errors:
/// errc::soap_fault when the body is a Fault (read it with parse_fault), errc::wrong_action
/// when the element is not <`action`Response>, errc::bad_envelope for anything but an
/// envelope with one action element whose arguments hold text only, errc::message_too_large
/// beyond `limits`, and the gena layer's XML errors (xml_malformed, ...).
UVGENA_API Result<Arguments> parse_response(std::string_view body, std::string_view action,
                                            const SoapLimits& limits = {});

/// Client side: the UPnPError of a fault. Errors: errc::bad_fault for a body that is a
/// Fault without a decimal errorCode in detail/UPnPError, errc::bad_envelope for a body
/// that is no Fault at all, errc::message_too_large, and the gena layer's XML errors.
UVGENA_API Result<Fault> parse_fault(std::string_view body, const SoapLimits& limits = {});

/// Device side: the call in a POSTed request, from its SOAPACTION header value and body.
/// Errors: errc::bad_soap_action, errc::wrong_action when the body's action element or its
/// namespace disagree with the header, and those of parse_response (but soap_fault).
UVGENA_API Result<ActionRequest> parse_request(std::string_view soap_action_header_value,
                                               std::string_view body,
                                               const SoapLimits& limits = {});

/// Device side: the 200 answer to `action` of `service_type` with the out arguments in
/// order. Errors as build_request.
UVGENA_API Result<SoapMessage> build_response(std::string_view service_type,
                                              std::string_view action, const Arguments& out);

/// Device side: the body of a fault (to send with status 500). Never fails: characters XML
/// cannot carry are left out of the description.
UVGENA_API SoapMessage build_fault(const Fault& fault);

/// Device side: the fault to answer for an error of parse_request or check_arguments:
/// 401 Invalid Action, 402 Invalid Args, 600 Argument Value Invalid, 601 Argument Value
/// Out of Range as upnp_condition() maps them, a UPnP error as is, else 501 Action Failed.
UVGENA_API Fault fault_for(std::error_code error);

}  // namespace uvgena::control
