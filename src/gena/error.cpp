#include "uvgena/gena/error.hpp"

namespace uvgena::gena {
namespace {

class GenaCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "uvgena.gena"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::xml_malformed:
                return "malformed XML";
            case errc::xml_wrong_root:
                return "unexpected XML root element";
            case errc::xml_too_deep:
                return "XML nested too deeply";
            case errc::xml_doctype_refused:
                return "XML DOCTYPE/ENTITY declarations are refused";
            case errc::body_too_large:
                return "event body too large";
            case errc::no_such_variable:
                return "no such state variable";
            case errc::not_didl:
                return "value is not a DIDL-Lite document";
            case errc::value_not_integer:
                return "value is not an integer";
            case errc::value_out_of_range:
                return "integer value out of range";
            case errc::value_not_boolean:
                return "value is not a boolean";
            case errc::bad_request:
                return "400 Bad Request";
            case errc::precondition_failed:
                return "412 Precondition Failed";
            case errc::server_error:
                return "server error (5xx)";
            case errc::unexpected_status:
                return "unexpected HTTP status";
            case errc::missing_sid:
                return "SID header missing";
            case errc::missing_nt:
                return "NT header missing";
            case errc::bad_nt:
                return "NT header is not upnp:event";
            case errc::missing_nts:
                return "NTS header missing";
            case errc::bad_nts:
                return "NTS header is not upnp:propchange";
            case errc::bad_seq:
                return "SEQ header missing or not a 32-bit unsigned integer";
            case errc::unknown_sid:
                return "unknown subscription id";
            case errc::bad_callback:
                return "CALLBACK header missing or invalid";
            case errc::sid_with_nt_or_callback:
                return "SID given together with NT or CALLBACK";
            case errc::bad_timeout:
                return "TIMEOUT header invalid";
            case errc::bad_method:
                return "unexpected HTTP method";
            case errc::repeated_header:
                return "a GENA header field sent more than once";
            case errc::xml_too_many_attributes:
                return "XML element or document with too many attributes";
            case errc::xml_too_many_elements:
                return "XML document with too many elements";
        }
        return "unknown gena error " + std::to_string(value);
    }
};

}  // namespace

const std::error_category& gena_category() noexcept {
    static const GenaCategory category;
    return category;
}

std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), gena_category()};
}

}  // namespace uvgena::gena
