// `uvgena serve-demo`: runs the simulated renderer (gena::DemoDevice) for others to subscribe
// to; prints its description and event URLs, runs until Ctrl-C / SIGTERM or --duration. With
// --ssdp it is also discoverable: an ssdp::Advertiser answers M-SEARCH, announces it with
// ssdp:alive and says ssdp:byebye when it shuts down.
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

#include "commands.hpp"
#include "common.hpp"
#include "demo_device.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/ssdp/advertiser.hpp"

namespace uvgena::cli {
namespace {

struct ServeDemoArgs {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    unsigned interval_ms = 1000;
    std::optional<double> duration;
    std::string callback_scope = "same-segment";
    std::string udn;
    std::string name;
    std::optional<unsigned> initial_event_delay_ms;
    bool verbose = false;
    // --ssdp and its options.
    bool ssdp = false;
    std::string ssdp_interface;
    int ssdp_ttl = 2;
    unsigned ssdp_max_age = 1800;
    std::optional<unsigned> ssdp_alive_interval;
    std::optional<unsigned> ssdp_response_delay;
};

Task<void> sleep_task(uv_loop_t* loop, std::chrono::milliseconds d) {
    co_await sleep_for(loop, d);
}

// Serves until the duration is over or a signal arrives, then says byebye (if advertised)
// and stops the device cleanly.
Task<void> serve(uv_loop_t* loop, gena::DemoDevice& device, ssdp::Advertiser* advertiser,
                 const ServeDemoArgs& args, std::stop_token stop) {
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
    if (advertiser != nullptr) co_await advertiser->stop();
    co_await device.stop();
}

std::optional<gena::CallbackScope> parse_scope(const std::string& s) {
    if (s == "same-host") return gena::CallbackScope::same_host;
    if (s == "same-segment") return gena::CallbackScope::same_segment;
    if (s == "private") return gena::CallbackScope::private_networks;
    if (s == "any") return gena::CallbackScope::any;
    return std::nullopt;
}

bool is_unspecified(const SocketAddress& a) {
    return a.ip() == "0.0.0.0" || a.ip() == "::";
}

// What the Advertiser of the running device announces. A device bound to every address
// announces, per interface, a LOCATION with that interface's address; one bound to a single
// address announces that one, on its interface unless --ssdp-interface says otherwise.
ssdp::AdvertiserOptions advertiser_options(const gena::DemoDevice& device,
                                           const SocketAddress& bound, const ServeDemoArgs& args) {
    ssdp::AdvertiserOptions o;
    o.device = ssdp::parse_description(device.description(), device.description_url()).value().root;
    bool any = is_unspecified(bound);
    o.location = any ? "http://{ip}:" + std::to_string(bound.port()) +
                           std::string(gena::DemoDevice::description_path)
                     : device.description_url();
    o.interface = !args.ssdp_interface.empty() ? args.ssdp_interface
                  : any                        ? std::string()
                                               : bound.ip();
    // Announced over the families that reach it: "::" listens on both (dual stack).
    o.ipv4 = bound.is_ipv4() || any;
    o.ipv6 = bound.is_ipv6();
    o.ttl = args.ssdp_ttl;
    o.max_age = std::chrono::seconds(args.ssdp_max_age);
    if (args.ssdp_alive_interval) {
        o.alive_interval =
            std::chrono::milliseconds(std::chrono::seconds(*args.ssdp_alive_interval));
    }
    if (args.ssdp_response_delay) {
        o.max_response_delay = std::chrono::milliseconds(*args.ssdp_response_delay);
    }
    // BOOTID.UPNP.ORG must grow with every restart: seconds since the epoch do (31 bits).
    o.boot_id = static_cast<std::uint32_t>(std::time(nullptr)) & 0x7fffffffu;
    return o;
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
    if (args.initial_event_delay_ms) {
        options.publisher.initial_event_delay =
            std::chrono::milliseconds(*args.initial_event_delay_ms);
    }
    if (!args.udn.empty()) {
        if (args.udn.rfind("uuid:", 0) != 0 || args.udn.size() <= 5) {
            print_error("serve-demo: --udn must start with uuid:, not '" + args.udn + "'");
            return 2;
        }
        options.udn = args.udn;
    }
    if (!args.name.empty()) options.friendly_name = args.name;

    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = 0;
    {
        std::stop_source stop;
        SignalStop signals(&loop, stop);
        gena::DemoDevice device(&loop, options);
        std::optional<ssdp::Advertiser> advertiser;
        try {
            device.start();
        } catch (const Error& e) {
            print_error("serve-demo: listen on " + address->to_string() + ": " + e.what());
            code = 1;
        }
        if (code == 0 && args.ssdp) {
            SocketAddress bound = device.server()->local_address();
            try {
                advertiser.emplace(
                    ssdp::Advertiser::start(&loop, advertiser_options(device, bound, args)));
            } catch (const std::exception& e) {
                print_error(std::string("serve-demo: advertise over SSDP: ") + e.what());
                code = 1;
            }
        }
        if (code == 0) {
            print_line("uvgena demo renderer " + device.udn());
            print_line("description:      " + device.description_url());
            print_line("RenderingControl: " + device.rendering_control_event_url());
            print_line("AVTransport:      " + device.av_transport_event_url());
            if (advertiser) {
                print_line("SSDP:             answering M-SEARCH, " +
                           std::to_string(advertiser->targets().size()) +
                           " targets announced with ssdp:alive");
            }
            try {
                run(&loop, serve(&loop, device, advertiser ? &*advertiser : nullptr, args,
                                 stop.get_token()));
            } catch (const std::exception& e) {
                print_error(std::string("serve-demo: ") + e.what());
                code = 1;
            }
            const gena::PublisherStats& s = device.publisher().stats();
            print_line("served " + std::to_string(device.ticks()) + " ticks, " +
                       std::to_string(s.subscribes) + " subscriptions, " +
                       std::to_string(s.notifies_sent) + " NOTIFYs sent, " +
                       std::to_string(s.notifies_failed) + " failed" +
                       (advertiser ? ", " + std::to_string(advertiser->searches_answered()) +
                                         " searches answered"
                                   : std::string()));
        }
        // Closed before the loop finishes (a no-op after stop()).
        if (advertiser) advertiser->close();
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
    cmd->add_option("--udn", args->udn, "The device's UDN, uuid:... (default: a random one)");
    cmd->add_option("--name", args->name,
                    "The device's friendly name (default: uvgena demo renderer)");
    cmd->add_option("--initial-event-delay", args->initial_event_delay_ms,
                    "Milliseconds between writing a SUBSCRIBE answer and sending the initial "
                    "event, so that the control point has stored the SID (default 20)")
        ->check(CLI::Range(0, 10000));
    cmd->add_flag(
        "-v,--verbose", args->verbose,
        "Log subscriptions, renewals, unsubscriptions and deliveries, one line each (stderr)");
    cmd->add_flag("--ssdp", args->ssdp,
                  "Make the device discoverable (SSDP): answer M-SEARCH, send ssdp:alive at "
                  "start and every --ssdp-alive-interval, ssdp:byebye on Ctrl-C / SIGTERM / "
                  "--duration. With --host 0.0.0.0 it is announced on every interface with that "
                  "interface's address in LOCATION; an IPv6 --host (:: for both families) "
                  "announces it over IPv6 ([FF02::C]) with a bracketed LOCATION");
    cmd->add_option("--ssdp-interface", args->ssdp_interface,
                    "Advertise only on this interface (name or address); default: the --host "
                    "address's interface, every interface for 0.0.0.0 / ::");
    cmd->add_option("--ssdp-ttl", args->ssdp_ttl, "Multicast TTL / hop limit (default 2)")
        ->check(CLI::Range(1, 255));
    cmd->add_option("--ssdp-max-age", args->ssdp_max_age,
                    "CACHE-CONTROL max-age in seconds (default 1800, the UDA minimum)")
        ->check(CLI::Range(1, 86400));
    cmd->add_option("--ssdp-alive-interval", args->ssdp_alive_interval,
                    "Seconds between ssdp:alive announcements (default: a third of max-age)")
        ->check(CLI::Range(1, 86400));
    cmd->add_option("--ssdp-response-delay", args->ssdp_response_delay,
                    "Upper bound in milliseconds of the random delay before answering a search "
                    "(default 5000; the searcher's MX bounds it too)")
        ->check(CLI::Range(0, 5000));
    cmd->callback([args, &action] { action = [args] { return run_serve_demo(*args); }; });
}

}  // namespace uvgena::cli
