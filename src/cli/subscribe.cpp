// `uvgena subscribe <event-url>` or `uvgena subscribe <location-url>#<service>`: subscribes to
// a service's events and prints each one as it arrives, human-readable or as one JSON object
// per line; unsubscribes on exit. The second form reads the device description first and
// subscribes to the named service's eventSubURL.
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "common.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/subscriber/subscribe_device.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace uvgena::cli {
namespace {

struct SubscribeArgs {
    std::string url;  // an event URL, or "<location-url>#<service>"
    bool json = false;
    std::optional<unsigned> count;
    std::optional<double> duration;
    std::optional<unsigned> timeout;
    bool auto_renew = false;
    std::string listen_host;
    std::optional<std::uint16_t> listen_port;
    std::string advertise_host;
    std::optional<unsigned> reorder_window_ms;
    bool verbose = false;
};

// Time allowed to fetch the description of "<location-url>#<service>".
constexpr std::chrono::milliseconds kDescriptionTimeout{5000};

// Prints events until `count` were printed (or forever); the caller's stop token ends it.
Task<void> print_events(Subscription& sub, const SubscribeArgs& args) {
    unsigned printed = 0;
    while (!args.count || printed < *args.count) {
        std::optional<Event> event = co_await sub.events().next();
        if (!event) co_return;
        if (args.json) {
            print_line(
                event_json(*event).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        } else {
            print_line(event_text(*event));
        }
        ++printed;
    }
}

Task<int> run_subscribe(uv_loop_t* loop, EventListener& listener, const SubscribeArgs& args) {
    std::stop_source stop;
    SignalStop signals(loop, stop);
    SubscribeOptions options;
    if (args.timeout) options.requested_timeout = std::chrono::seconds(*args.timeout);
    options.auto_renew = args.auto_renew;
    options.listener = &listener;
    if (args.reorder_window_ms) {
        options.reorder_window = std::chrono::milliseconds(*args.reorder_window_ms);
    }
    Subscription sub;
    std::optional<int> failed;
    try {
        // "<location>#<service>": the description names the event URL. Its errors (device
        // unreachable, unknown service with the list of the device's services) already say
        // which description or service they are about.
        std::string event_url = co_await with_stop_token(
            ssdp::resolve_event_url(loop, args.url, {.timeout = kDescriptionTimeout}),
            stop.get_token());
        sub = co_await with_stop_token(subscribe(loop, event_url, options), stop.get_token());
    } catch (const Error& e) {
        if (is_cancelled(e.code()) && signals.received() != 0) {
            failed = 0;
        } else {
            print_error(e.what());
            failed = 1;
        }
    }
    if (failed) {
        co_await listener.stop();
        co_return *failed;
    }
    int code = 0;
    try {
        if (args.duration) {
            auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::duration<double>(*args.duration));
            co_await with_stop_token(with_timeout(loop, print_events(sub, args), limit),
                                     stop.get_token());
        } else {
            co_await with_stop_token(print_events(sub, args), stop.get_token());
        }
    } catch (const Error& e) {
        // Ctrl-C / SIGTERM and the end of --duration are normal ends; a subscription that
        // was lost (refused renewal, expiry) is a failure.
        bool by_signal = is_cancelled(e.code()) && signals.received() != 0;
        bool by_duration = is_timeout(e.code()) && args.duration.has_value();
        if (sub.error() || (!by_signal && !by_duration)) {
            print_error(e.what());
            code = 1;
        }
    }
    co_await sub.unsubscribe(false);
    // Nothing is lost silently: what arrived, what was shown, and what was not.
    print_error(stats_summary(sub.stats()));
    co_await listener.stop();
    co_return code;
}

// Checks the syntax of an event URL or "<location-url>#<service>"; the reason if it is bad.
std::optional<std::string> bad_target(const std::string& target) {
    std::string url_part = target;
    if (auto hash = target.rfind('#'); hash != std::string::npos) {
        url_part = target.substr(0, hash);
        if (hash + 1 == target.size()) {
            return "no service name after '#' (e.g. ...description.xml#RenderingControl)";
        }
    }
    std::string reason;
    Result<http::Url> url = http::Url::try_parse(url_part, &reason);
    if (!url) return reason;
    if (url->scheme != "http") return std::string("not an http:// URL");
    return std::nullopt;
}

int subscribe_main(const SubscribeArgs& args) {
    if (std::optional<std::string> reason = bad_target(args.url)) {
        bool described = args.url.find('#') != std::string::npos;
        print_error(std::string("subscribe: bad ") +
                    (described ? "description URL " : "event URL ") + args.url + ": " + *reason);
        return 2;
    }
    if (!args.listen_host.empty() && !SocketAddress::try_parse(args.listen_host, 0)) {
        print_error("subscribe: --listen-host must be an IP address: " + args.listen_host);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    set_log_level(args.verbose ? LogLevel::info : LogLevel::error);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = 1;
    {
        ListenerOptions lo;
        lo.listen_host = args.listen_host;
        if (args.listen_port) lo.port = *args.listen_port;
        lo.advertise_host = args.advertise_host;
        EventListener listener(&loop, lo);
        try {
            listener.start();
            code = run(&loop, run_subscribe(&loop, listener, args));
        } catch (const std::exception& e) {
            print_error(std::string("subscribe to ") + args.url + ": " + e.what());
            code = 1;
        }
    }
    finish_loop(&loop);
    return code;
}

}  // namespace

void add_subscribe_command(CLI::App& app, Action& action) {
    auto args = std::make_shared<SubscribeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "subscribe", "Subscribe to a service's events and print each one as it arrives");
    cmd->add_option("target", args->url,
                    "The service: its event subscription URL (eventSubURL), or the device "
                    "description URL (an SSDP LOCATION) followed by #<service>, where <service> "
                    "is a short name (RenderingControl), a serviceId or a full serviceType")
        ->required();
    cmd->footer(
        "Examples:\n"
        "  uvgena subscribe http://192.168.1.20:1400/MediaRenderer/RenderingControl/Event\n"
        "  uvgena subscribe 'http://192.168.1.20:1400/xml/device_description.xml#RenderingControl'"
        " --json --count 3\n"
        "Exit codes: 0 ok (also after --count, --duration or Ctrl-C), 1 runtime failure (device "
        "unreachable or refusing, unknown service, subscription lost), 2 usage error.");
    cmd->add_flag("--json", args->json, "One JSON object per event and line");
    cmd->add_option("--count", args->count, "Exit after N events")->check(CLI::PositiveNumber);
    cmd->add_option("--duration", args->duration, "Exit after S seconds")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--timeout", args->timeout, "Subscription duration to request, in seconds")
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--auto-renew", args->auto_renew, "Renew the subscription before it expires");
    cmd->add_option("--listen-host", args->listen_host,
                    "IP address to listen on for NOTIFY (default: all)");
    cmd->add_option("--listen-port", args->listen_port,
                    "Port to listen on (default 1400, or the next free one; 0: any)");
    cmd->add_option("--advertise-host", args->advertise_host,
                    "Host to put in the CALLBACK URL (NAT, containers)");
    cmd->add_option("--reorder-window", args->reorder_window_ms,
                    "Milliseconds an event ahead of the expected SEQ waits for the missing "
                    "ones (default 30; 0: print at once, late ones flagged)");
    cmd->add_flag("-v,--verbose", args->verbose,
                  "Log renewals, warnings, and each late, resynced or dropped event to stderr");
    cmd->callback([args, &action] { action = [args] { return subscribe_main(*args); }; });
}

}  // namespace uvgena::cli
