// `uvgena discover`: search the network, then read each device's description.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "devices.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/ssdp/discovery.hpp"

namespace uvgena::cli {

namespace {

struct DiscoverArgs {
    double timeout = 3.0;
    std::string interface;
    std::string target = "ssdp:all";
    int mx = 2;
    bool ipv6 = false;
    bool json = false;
};

// One description location and what answered from it (a root device and its embedded
// devices share one).
struct Found {
    ssdp::DiscoveredDevice first;
    std::vector<std::string> udns;
    std::optional<ssdp::DeviceDescription> description;
    std::string error;
};

Task<void> describe_one(uv_loop_t* loop, Found& found, std::chrono::milliseconds timeout) {
    try {
        found.description =
            co_await ssdp::fetch_description(loop, found.first.location, {.timeout = timeout});
    } catch (const std::exception& e) {
        found.error = e.what();
    }
}

Task<int> discover_main(uv_loop_t* loop, DiscoverArgs args) {
    ssdp::DiscoverOptions options;
    options.timeout = std::chrono::milliseconds(static_cast<long>(args.timeout * 1000));
    options.interface = args.interface;
    options.search_target = args.target;
    options.mx = args.mx;
    options.ipv6 = args.ipv6;
    ssdp::Search search = ssdp::Search::start(loop, options);
    bool interrupted = false;
    try {
        while (co_await search.next()) {
        }
    } catch (const Error& e) {
        // Ctrl-C ends the search early: show what answered so far.
        if (!is_cancelled(e.code())) throw;
        interrupted = true;
    }
    std::vector<Found> found;
    for (const ssdp::DiscoveredDevice& d : search.devices()) {
        auto it = std::find_if(found.begin(), found.end(),
                               [&](const Found& f) { return f.first.location == d.location; });
        if (it == found.end()) {
            found.push_back(Found{d, {d.udn}, std::nullopt, {}});
        } else {
            it->udns.push_back(d.udn);
        }
    }
    if (!interrupted) {
        Scope scope(loop);
        for (Found& f : found) scope.spawn(describe_one(loop, f, std::chrono::milliseconds(3000)));
        co_await scope.join();
    }

    if (args.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const Found& f : found) {
            nlohmann::json j = discovered_json(f.first);
            j["udns"] = f.udns;
            j["description"] = f.description ? device_json(f.description->root) : nlohmann::json();
            if (!f.error.empty()) j["error"] = f.error;
            out.push_back(std::move(j));
        }
        print_line(out.dump(2));
        co_return 0;
    }
    if (found.empty()) {
        print_line("No UPnP device answered within " + std::to_string(options.timeout.count()) +
                   " ms (searched " + std::to_string(search.interfaces().size()) +
                   " interface(s) for " + args.target + ").");
        co_return 0;
    }
    print_line(std::to_string(found.size()) + " device(s) found:");
    for (const Found& f : found) {
        print_line("");
        print_line("location " + f.first.location);
        print_line("  answered from " + f.first.responder.ip() + " on " + f.first.interface +
                   (f.first.server.empty() ? std::string() : ", server " + f.first.server));
        if (f.description) {
            print_device_tree(f.description->root, 2);
        } else if (!f.error.empty()) {
            print_line("  (no description: " + f.error + ")");
        }
    }
    co_return 0;
}

}  // namespace

void add_discover_command(CLI::App& app, Action& action) {
    auto args = std::make_shared<DiscoverArgs>();
    CLI::App* cmd = app.add_subcommand(
        "discover", "Search the network for UPnP devices (SSDP) and list them with their services");
    cmd->add_option("--timeout", args->timeout, "Seconds to collect answers (default 3)")
        ->check(CLI::Range(0.1, 120.0));
    cmd->add_option("--interface", args->interface,
                    "Search only on this interface (name or address); default: all");
    cmd->add_option("--target", args->target,
                    "Search target: ssdp:all, upnp:rootdevice, uuid:..., or a device/service type");
    cmd->add_option("--mx", args->mx, "Seconds devices may wait before answering (1..5)")
        ->check(CLI::Range(1, 5));
    cmd->add_flag("--ipv6", args->ipv6, "Search over IPv6 too ([FF02::C])");
    cmd->add_flag("--json", args->json, "Print JSON instead of a table");
    cmd->callback([&action, args] {
        action = [args] {
            return run_command([args](uv_loop_t* loop) { return discover_main(loop, *args); });
        };
    });
}

}  // namespace uvgena::cli
