// Error conditions of the GENA layer (uvgena::gena): reading event bodies, reading and
// deciding on SUBSCRIBE / NOTIFY messages. Same pattern as uvgena/core/error.hpp.
#pragma once

#include <string>
#include <system_error>

#include "uvgena/core/export.hpp"

namespace uvgena::gena {

/// What went wrong in the GENA layer.
enum class errc {
    // --- event bodies -----------------------------------------------------------------
    xml_malformed = 1,    ///< The body is not well-formed XML (tinyxml2 refused it).
    xml_wrong_root,       ///< The root element is not <propertyset> (or <Event>, <DIDL-Lite>).
    xml_too_deep,         ///< Element nesting beyond the parser's depth limit.
    xml_doctype_refused,  ///< A <!DOCTYPE> / <!ENTITY> declaration (refused: entity bombs).
    body_too_large,       ///< The body exceeds the configured size limit.
    no_such_variable,     ///< The event has no variable of that name.
    not_didl,             ///< The variable's value is not a DIDL-Lite document.
    // --- typed access to values -------------------------------------------------------
    value_not_integer,   ///< The value is not a decimal integer.
    value_out_of_range,  ///< The integer does not fit the requested range.
    value_not_boolean,   ///< The value is not 0/1/true/false/yes/no.
    // --- SUBSCRIBE responses (subscriber side) ----------------------------------------
    bad_request,          ///< The peer answered 400 Bad Request.
    precondition_failed,  ///< 412: subscription unknown or expired (or bad CALLBACK/NT).
    server_error,         ///< The peer answered 5xx.
    unexpected_status,    ///< Any other non-200 status.
    missing_sid,          ///< A 200 answer to SUBSCRIBE without a usable SID header.
    // --- requests (device side / NOTIFY listener) -------------------------------------
    missing_nt,               ///< NT header missing.
    bad_nt,                   ///< NT is not "upnp:event".
    missing_nts,              ///< NTS header missing.
    bad_nts,                  ///< NTS is not "upnp:propchange".
    bad_seq,                  ///< SEQ missing, not a number, or beyond 32 bits.
    unknown_sid,              ///< The SID is not (or no longer) known.
    bad_callback,             ///< CALLBACK missing, unparsable, not http://, or over the bounds.
    sid_with_nt_or_callback,  ///< SID together with NT or CALLBACK (UDA: 400).
    bad_timeout,              ///< A TIMEOUT header that cannot be read.
    bad_method,               ///< Not a method this function handles.
    repeated_header,          ///< NT, NTS, SID or SEQ sent more than once (ambiguous: which wins?).
    // --- event bodies, continued (appended so that the values above stay the same) ------
    xml_too_many_attributes,  ///< Over max_xml_attributes_per_element / max_xml_attributes.
    xml_too_many_elements,    ///< A document has more than max_xml_elements elements.
};

/// Category of `errc` (name "uvgena.gena").
UVGENA_API const std::error_category& gena_category() noexcept;

/// Makes an error_code from a GENA condition.
UVGENA_API std::error_code make_error_code(errc e) noexcept;

}  // namespace uvgena::gena

template <>
struct std::is_error_code_enum<uvgena::gena::errc> : std::true_type {};
