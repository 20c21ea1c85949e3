// `uvgena call <device>#<service> <Action> [Name=Value ...]`: calls one SOAP action of a
// device's service and prints its out arguments. The device is a description URL, or a
// friendly name or UDN found by an SSDP search.
//
// Exit codes: 0 answered; 1 the device answered a SOAP fault ("<errorCode> <errorDescription>"
// on stderr) or could not be reached; 2 a usage error, including a call the service's SCPD
// refuses before anything is sent (an unknown action or argument, a value out of range).
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "targets.hpp"
#include "uvgena/control/client.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/ssdp/discovery.hpp"
#include "uvgena/ssdp/find_device.hpp"

namespace uvgena::cli {

namespace {

struct CallArgs {
    std::string target;  // "<location-url>#<service>"
    std::string action;
    std::vector<std::string> assignments;  // "Name=Value"
    double timeout = 10.0;
    bool json = false;
    bool no_check = false;
};

// The in arguments of "Name=Value" words (split at the first '='; a value may be empty or
// hold '=' itself), or the word that is not one.
bool parse_assignments(const std::vector<std::string>& words, control::Arguments& out,
                       std::string& bad) {
    for (const std::string& word : words) {
        auto eq = word.find('=');
        if (eq == std::string::npos || eq == 0) {
            bad = word;
            return false;
        }
        out.emplace_back(word.substr(0, eq), word.substr(eq + 1));
    }
    return true;
}

// True for the errors call_action finds in the call itself, before connecting: the SCPD
// check's, and names or values that no SOAP message can carry.
bool refused_before_sending(const std::error_code& code) {
    if (code.category() != control::control_category()) return false;
    const auto e = static_cast<control::errc>(code.value());
    return e == control::errc::invalid_name || e == control::errc::invalid_character ||
           code.value() >= static_cast<int>(control::errc::unknown_action);
}

// The out arguments as one JSON object, in the device's order.
std::string out_json(const control::Arguments& out) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [name, value] : out) j[name] = value;
    return j.dump();
}

Task<int> call_main(uv_loop_t* loop, CallArgs args, control::Arguments in) {
    const auto hash = args.target.rfind('#');
    const std::string location = args.target.substr(0, hash);
    const std::string name = args.target.substr(hash + 1);
    const auto timeout = std::chrono::milliseconds(static_cast<long>(args.timeout * 1000));

    ssdp::FindDeviceOptions find;  // for a device name: found by an SSDP search
    find.fetch.timeout = timeout;
    ssdp::DeviceDescription description = co_await ssdp::describe_device(loop, location, find);
    const ssdp::ServiceInfo* service = description.service(name);
    if (service == nullptr) {
        std::string names;
        for (const ssdp::ServiceInfo* s : description.root.all_services()) {
            names += (names.empty() ? "" : ", ") + s->short_name();
        }
        co_return error_line(
            "call " + args.target + ": no service '" + name + "' in the description" +
            (names.empty() ? std::string(" (it has none)") : " (it has " + names + ")"));
    }
    if (service->control_url.empty()) {
        co_return error_line("call " + args.target + ": service " + service->short_name() +
                             " has no controlURL");
    }

    control::ActionOptions options;
    options.timeout = timeout;
    options.scpd.timeout = timeout;
    control::Arguments out;
    try {
        if (args.no_check) {
            out = co_await control::call_action(loop, service->control_url, service->service_type,
                                                args.action, in, options);
        } else {
            ssdp::ServiceInfo info = *service;
            out = co_await control::call_action(loop, std::move(info), args.action, in, options);
        }
    } catch (const control::ActionError& fault) {
        // The device's answer: its errorCode and errorDescription, as the UPnP spec names them.
        if (args.json) {
            nlohmann::ordered_json j = {
                {"error",
                 {{"code", fault.error_code()}, {"description", fault.error_description()}}}};
            print_line(j.dump());
        }
        std::string description_text =
            fault.error_description().empty()
                ? std::string(control::upnp_error_name(fault.error_code()))
                : fault.error_description();
        co_return error_line(std::to_string(fault.error_code()) + " " + description_text);
    } catch (const Error& e) {
        // Refused by the SCPD before anything was sent: the command line is wrong.
        if (refused_before_sending(e.code())) {
            co_return error_line(e.what(), kExitUsage);
        }
        throw;
    }
    if (args.json) {
        print_line(out_json(out));
    } else {
        for (const auto& [out_name, value] : out) print_line(out_name + "=" + value);
    }
    co_return 0;
}

}  // namespace

void add_call_command(CLI::App& app, Action& action) {
    auto args = std::make_shared<CallArgs>();
    CLI::App* cmd = app.add_subcommand(
        "call", "Call a SOAP action of a device's service and print its out arguments");
    cmd->add_option("target", args->target,
                    "The service: its device followed by #<service> (short name, full type or "
                    "service id), where the device is its description URL (an SSDP LOCATION), "
                    "its friendly name or its UDN (found by an SSDP search)")
        ->required();
    cmd->add_option("action", args->action, "The action, e.g. SetVolume")->required();
    cmd->add_option("arguments", args->assignments,
                    "Its in arguments as Name=Value (checked against the service's SCPD)");
    cmd->add_option("--timeout", args->timeout,
                    "Seconds for each exchange with the device (default 10)")
        ->check(CLI::Range(0.1, 300.0));
    cmd->add_flag("--json", args->json,
                  "Print the out arguments as one JSON object (a SOAP fault as {\"error\": "
                  "{\"code\", \"description\"}})");
    cmd->add_flag("--no-check", args->no_check,
                  "Send the call as given, without reading the service's SCPD");
    cmd->footer(
        "Example:\n"
        "  uvgena call 'http://192.168.1.20:1400/xml/device_description.xml#RenderingControl' \\\n"
        "      SetVolume InstanceID=0 Channel=Master DesiredVolume=30\n"
        "  uvgena call 'Living Room#RenderingControl' GetVolume InstanceID=0 Channel=Master\n"
        "Prints each out argument as Name=Value (nothing for an action without any).\n"
        "Exit codes: 0 answered; 1 a SOAP fault from the device (its errorCode and "
        "errorDescription on stderr) or the device could not be reached; 2 a usage error, "
        "including a call its SCPD refuses before sending.");
    cmd->callback([&action, args] {
        action = [args] {
            const auto hash = args->target.rfind('#');
            if (hash == std::string::npos || hash + 1 == args->target.size()) {
                return error_line("call " + args->target +
                                      ": the target is <location-url>#<service>, e.g. "
                                      "http://192.168.1.20:1400/xml/"
                                      "device_description.xml#RenderingControl",
                                  kExitUsage);
            }
            if (args->target.ends_with("#*")) {
                return error_line("call " + args->target + ": an action is called on one service",
                                  kExitUsage);
            }
            if (std::optional<std::string> reason = bad_target(args->target)) {
                return error_line("call " + args->target + ": " + *reason, kExitUsage);
            }
            control::Arguments in;
            std::string bad;
            if (!parse_assignments(args->assignments, in, bad)) {
                return error_line("call: '" + bad + "' is not an argument Name=Value", kExitUsage);
            }
            return run_command([args, in](uv_loop_t* loop) { return call_main(loop, *args, in); });
        };
    });
}

}  // namespace uvgena::cli
