// `uvgena serve-demo`: runs the simulated renderer (gena::DemoDevice) for others to subscribe
// to; prints its description and event URLs, runs until Ctrl-C / SIGTERM or --duration.
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>

#include "commands.hpp"
#include "common.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/gena/demo_device.hpp"

namespace uvgena::cli {
namespace {

struct ServeDemoArgs {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    unsigned interval_ms = 1000;
    std::optional<double> duration;
    std::string callback_scope = "same-segment";
    bool verbose = false;
};

Task<void> sleep_task(uv_loop_t* loop, std::chrono::milliseconds d) { co_await sleep_for(loop, d); }

// Serves until the duration is over or a signal arrives, then stops the device cleanly.
Task<void> serve(uv_loop_t* loop, gena::DemoDevice& device, const ServeDemoArgs& args,
                 std::stop_token stop) {
    try {
        if (args.duration) {
            auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::duration<double>(*args.duration));
            co_await with_stop_token(sleep_task(loop, limit), stop);
        } else {
            for (;;) co_await with_stop_token(sleep_task(loop, std::chrono::hours(24)), stop);
        }
    } catch (const Error& e) {
        if (!is_cancelled(e.code())) throw;
    }
    co_await device.stop();
}

std::optional<gena::CallbackScope> parse_scope(const std::string& s) {
    if (s == "same-host") return gena::CallbackScope::same_host;
    if (s == "same-segment") return gena::CallbackScope::same_segment;
    if (s == "private") return gena::CallbackScope::private_networks;
    if (s == "any") return gena::CallbackScope::any;
    return std::nullopt;
}

int run_serve_demo(const ServeDemoArgs& args) {
    std::signal(SIGPIPE, SIG_IGN);
    auto address = SocketAddress::try_parse(args.host, args.port);
    if (!address) {
        print_error("serve-demo: --host must be an IP address, not '" + args.host + "'");
        return 2;
    }
    auto scope = parse_scope(args.callback_scope);
    if (!scope) {
        print_error("serve-demo: --callback-scope must be same-host, same-segment, private or any");
        return 2;
    }
    if (args.verbose) set_log_level(LogLevel::info);
    gena::DemoDeviceOptions options;
    options.address = *address;
    options.interval = std::chrono::milliseconds(args.interval_ms);
    options.publisher.callback_scope = *scope;

    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = 0;
    {
        std::stop_source stop;
        SignalStop signals(&loop, stop);
        gena::DemoDevice device(&loop, options);
        try {
            device.start();
        } catch (const Error& e) {
            print_error("serve-demo: listen on " + address->to_string() + ": " + e.what());
            code = 1;
        }
        if (code == 0) {
            print_line("uvgena demo renderer " + device.udn());
            print_line("description:      " + device.description_url());
            print_line("RenderingControl: " + device.rendering_control_event_url());
            print_line("AVTransport:      " + device.av_transport_event_url());
            try {
                run(&loop, serve(&loop, device, args, stop.get_token()));
            } catch (const std::exception& e) {
                print_error(std::string("serve-demo: ") + e.what());
                code = 1;
            }
            const gena::PublisherStats& s = device.publisher().stats();
            print_line("served " + std::to_string(device.ticks()) + " ticks, " +
                       std::to_string(s.subscribes) + " subscriptions, " +
                       std::to_string(s.notifies_sent) + " NOTIFYs sent, " +
                       std::to_string(s.notifies_failed) + " failed");
        }
    }
    int closed = finish_loop(&loop);
    if (closed != 0 && code == 0) {
        print_error("serve-demo: the loop did not close cleanly");
        code = 1;
    }
    return code;
}

}  // namespace

void add_serve_demo_command(CLI::App& app, Action& action) {
    auto args = std::make_shared<ServeDemoArgs>();
    CLI::App* cmd = app.add_subcommand(
        "serve-demo",
        "Run a simulated UPnP renderer (RenderingControl, AVTransport with LastChange) to "
        "subscribe to");
    cmd->add_option("--host", args->host, "IP address to listen on (default 127.0.0.1)");
    cmd->add_option("--port", args->port, "Port to listen on (default: any free port)");
    cmd->add_option("--interval", args->interval_ms,
                    "Milliseconds between simulated changes; 0 disables them (default 1000)");
    cmd->add_option("--duration", args->duration,
                    "Seconds to run, then exit (default: until Ctrl-C / SIGTERM)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--callback-scope", args->callback_scope,
                    "CALLBACK hosts accepted: same-host, same-segment (default), private "
                    "(routed private LANs) or any");
    cmd->add_flag("-v,--verbose", args->verbose, "Log subscriptions and deliveries");
    cmd->callback([args, &action] { action = [args] { return run_serve_demo(*args); }; });
}

}  // namespace uvgena::cli
