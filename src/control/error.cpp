#include "uvgena/control/error.hpp"

#include <string>

namespace uvgena::control {
namespace {

class ControlCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "uvgena.control"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::bad_scpd:
                return "not a valid service description (SCPD)";
            case errc::scpd_too_large:
                return "service description over its bounds";
            case errc::bad_envelope:
                return "not a SOAP envelope with one action element";
            case errc::wrong_action:
                return "SOAP message for another action";
            case errc::bad_soap_action:
                return "malformed SOAPACTION header";
            case errc::bad_fault:
                return "SOAP fault without a readable UPnPError";
            case errc::soap_fault:
                return "SOAP fault";
            case errc::message_too_large:
                return "SOAP message too large";
            case errc::invalid_name:
                return "action or argument name is not an XML name";
            case errc::invalid_character:
                return "value holds a character XML cannot carry";
            case errc::unknown_action:
                return "no such action in the service description";
            case errc::unknown_argument:
                return "no such argument of the action";
            case errc::missing_argument:
                return "in argument missing";
            case errc::duplicate_argument:
                return "argument given twice";
            case errc::not_an_input:
                return "out argument given as input";
            case errc::bad_value:
                return "value not of its dataType";
            case errc::value_out_of_range:
                return "value outside allowedValueRange";
            case errc::value_not_allowed:
                return "value not in allowedValueList";
        }
        return "unknown control error " + std::to_string(value);
    }
    std::error_condition default_error_condition(int value) const noexcept override {
        // What a conforming device answers to the same call (UDA 1.1 section 3.2.2).
        switch (static_cast<errc>(value)) {
            case errc::unknown_action:
                return upnp_condition(401);
            case errc::unknown_argument:
            case errc::missing_argument:
            case errc::duplicate_argument:
            case errc::not_an_input:
                return upnp_condition(402);
            case errc::bad_value:
            case errc::value_not_allowed:
                return upnp_condition(600);
            case errc::value_out_of_range:
                return upnp_condition(601);
            default:
                return {value, *this};
        }
    }
};

class UpnpCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "upnp"; }
    std::string message(int value) const override {
        return "UPnP error " + std::to_string(value) + " " + std::string(upnp_error_name(value));
    }
};

std::string fault_context(const std::string& context, int error_code,
                          const std::string& description) {
    std::string out = context;
    if (!description.empty() && description != upnp_error_name(error_code)) {
        out += (out.empty() ? "" : ": ") + std::string("device says \"") + description + "\"";
    }
    return out;
}

}  // namespace

const std::error_category& control_category() noexcept {
    static const ControlCategory category;
    return category;
}

const std::error_category& upnp_category() noexcept {
    static const UpnpCategory category;
    return category;
}

std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), control_category()};
}

std::error_code upnp_error(int error_code) noexcept {
    return {error_code, upnp_category()};
}

std::error_condition upnp_condition(int error_code) noexcept {
    return {error_code, upnp_category()};
}

std::string_view upnp_error_name(int error_code) noexcept {
    switch (error_code) {
        case 401:
            return "Invalid Action";
        case 402:
            return "Invalid Args";
        case 403:
            return "Out of Sync";
        case 501:
            return "Action Failed";
        case 600:
            return "Argument Value Invalid";
        case 601:
            return "Argument Value Out of Range";
        case 602:
            return "Optional Action Not Implemented";
        case 603:
            return "Out of Memory";
        case 604:
            return "Human Intervention Required";
        case 605:
            return "String Argument Too Long";
        case 606:
            return "Action not authorized";
        case 607:
            return "Signature failure";
        case 608:
            return "Signature missing";
        case 609:
            return "Not encrypted";
        case 610:
            return "Invalid sequence";
        case 611:
            return "Invalid control URL";
        case 612:
            return "No such session";
        default:
            break;
    }
    if (error_code >= 700 && error_code <= 799) return "Action specific error";
    if (error_code >= 800 && error_code <= 899) return "Vendor specific error";
    return "Unknown error";
}

ActionError::ActionError(int error_code, std::string description, const std::string& context)
    : Error(upnp_error(error_code), fault_context(context, error_code, description)),
      description_(std::move(description)) {}

}  // namespace uvgena::control
