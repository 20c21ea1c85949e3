// `uvgena describe <location-url>`: fetch one device description and print its tree.
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "devices.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/ssdp/discovery.hpp"

namespace uvgena::cli {

namespace {

struct DescribeArgs {
    std::string location;
    double timeout = 5.0;
    bool json = false;
};

Task<int> describe_main(uv_loop_t* loop, DescribeArgs args) {
    ssdp::DeviceDescription d = co_await ssdp::fetch_description(
        loop, args.location,
        {.timeout = std::chrono::milliseconds(static_cast<long>(args.timeout * 1000))});
    if (args.json) {
        nlohmann::json j = {
            {"location", d.location},
            {"url_base", d.url_base},
            {"spec_version", std::to_string(d.spec_major) + "." + std::to_string(d.spec_minor)},
            {"device", device_json(d.root)}};
        print_line(j.dump(2));
    } else {
        print_line("location " + d.location);
        print_device_tree(d.root, 0);
    }
    co_return 0;
}

}  // namespace

void add_describe_command(CLI::App& app, Action& action) {
    auto args = std::make_shared<DescribeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "describe", "Read a device description and print its devices and services");
    cmd->add_option("location", args->location,
                    "URL of the description (an SSDP LOCATION, e.g. from `uvgena discover`)")
        ->required();
    cmd->add_option("--timeout", args->timeout, "Seconds to wait for the device (default 5)")
        ->check(CLI::Range(0.1, 120.0));
    cmd->add_flag("--json", args->json, "Print JSON instead of a tree");
    cmd->callback([&action, args] {
        action = [args] {
            std::string reason;
            auto url = http::Url::try_parse(args->location, &reason);
            if (!url || url->scheme != "http") {
                return error_line("describe " + args->location + ": not an http URL" +
                                      (reason.empty() ? std::string() : " (" + reason + ")"),
                                  kExitUsage);
            }
            return run_command([args](uv_loop_t* loop) { return describe_main(loop, *args); });
        };
    });
}

}  // namespace uvgena::cli
