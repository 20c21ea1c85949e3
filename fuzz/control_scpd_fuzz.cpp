// Fuzzes service description (SCPD) parsing and the checks of calls against it: a malicious
// or broken device serves this XML, and call_action trusts what it says about types.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "uvgena/control/scpd.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view xml(reinterpret_cast<const char*>(data), size);
    auto scpd = uvgena::control::parse_scpd(xml);
    if (!scpd) return 0;
    // Every variable checks its own default and allowed values, and every action a call
    // made of its in arguments with the variables' defaults.
    for (const auto& variable : scpd->state_variables) {
        if (variable.default_value)
            (void)uvgena::control::check_value(variable, *variable.default_value);
        for (const auto& allowed : variable.allowed_values)
            (void)uvgena::control::check_value(variable, allowed);
        if (variable.allowed_range) {
            (void)uvgena::control::check_value(variable, variable.allowed_range->minimum);
            (void)uvgena::control::check_value(variable, variable.allowed_range->maximum);
        }
    }
    for (const auto& action : scpd->actions) {
        uvgena::control::Arguments in;
        for (const auto& argument : action.arguments) {
            const auto* variable = scpd->state_variable(argument.related_state_variable);
            in.emplace_back(argument.name, variable != nullptr && variable->default_value
                                               ? *variable->default_value
                                               : std::string("0"));
        }
        (void)uvgena::control::check_arguments(*scpd, action.name, in);
    }
    return 0;
}
