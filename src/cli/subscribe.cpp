// `uvgena subscribe <event-url>` or `uvgena subscribe <location-url>#<service>` (several, and
// <location-url>#* for every evented service of a device): subscribes to
// a service's events and prints each one as it arrives, human-readable or as one JSON object
// per line; unsubscribes on exit. The second form reads the device description first and
// subscribes to the named service's eventSubURL.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "event_json.hpp"
#include "targets.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/subscriber/device_follower.hpp"
#include "uvgena/subscriber/subscribe_device.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace uvgena::cli {
namespace {

struct SubscribeArgs {
    // Event URLs, "<location-url>#<service>", or "<location-url>#*" (every evented service).
    std::vector<std::string> targets;
    bool json = false;
    std::optional<unsigned> count;
    std::optional<double> duration;
    std::optional<unsigned> timeout;
    bool auto_renew = false;
    bool no_resubscribe = false;
    std::optional<double> silence;
    double initial_event_timeout = 5;
    std::string listen_host;
    std::optional<std::uint16_t> listen_port;
    std::optional<std::uint16_t> listen_port_range;
    std::string advertise_host;
    std::optional<std::uint16_t> advertise_port;
    std::optional<unsigned> reorder_window_ms;
    std::string udn;
    bool no_follow = false;
    bool verbose = false;

    // With --auto-renew the subscription outlives device restarts unless told otherwise.
    bool resubscribe() const noexcept { return auto_renew && !no_resubscribe; }
};

// Time the UNSUBSCRIBE on exit may take: a dead device must not hold the user for the
// exchange timeout (10 s); it forgets the subscription at its expiry anyway.
constexpr std::chrono::milliseconds kUnsubscribeBound{2000};
// Exit code after Ctrl-C / SIGTERM before the subscription was established (the shell's
// convention for SIGINT): the user did not get what was asked for.
constexpr int kExitInterrupted = 130;

std::chrono::milliseconds seconds_to_ms(double seconds) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double>(seconds));
}

std::string granted_text(const gena::Timeout& granted) {
    return granted.infinite ? std::string("infinite")
                            : std::to_string(granted.seconds.count()) + " s";
}

// Warns once when no event arrived within `limit` of the SUBSCRIBE answer: UDA requires an
// initial event at once, so its absence means the device cannot reach the callback URL, or
// does not event (minidlna accepts SUBSCRIBE and never sends NOTIFY).
Task<void> watch_initial_event(uv_loop_t* loop, const Subscription& sub,
                               std::chrono::milliseconds limit) {
    co_await sleep_for(loop, limit);
    if (sub.stats().events_received != 0) co_return;
    print_error("warning: no initial event within " +
                std::to_string(static_cast<double>(limit.count()) / 1000.0).substr(0, 5) +
                " s of the subscription (UDA requires one): the device may not reach the "
                "callback URL " +
                sub.callback_url() + ", or it does not send events; still waiting");
}

// What the readers of all subscriptions share: one JSON writer, one line, one count.
struct EventPrinter {
    EventJsonWriter json;
    std::string line;
    unsigned printed = 0;

    // With --json each event is written straight into the pending stdout lines.
    void print(const Event& event, bool as_json) {
        if (StdoutLines* lines = StdoutLines::current(); lines != nullptr && as_json) {
            json.append(lines->buffer(), event);
            lines->buffer() += '\n';
            lines->lines_added();
        } else if (as_json) {
            line.clear();
            json.append(line, event);
            print_line(line);
        } else {
            print_line(event_text(event));
        }
        ++printed;
    }
};

// Prints the events of `sub` until --count events were printed over all subscriptions; then,
// or when this subscription's events end, every reader is asked to stop (`readers`).
Task<void> print_events(Subscription& sub, const SubscribeArgs& args, EventPrinter& printer,
                        Scope& readers) {
    auto counted_out = [&] { return args.count && printer.printed >= *args.count; };
    while (!counted_out()) {
        std::optional<Event> event = co_await sub.events().next();
        // Checked again: another reader may have printed the last one meanwhile (two
        // subscriptions' events resumed in the same loop turn).
        if (!event || counted_out()) break;
        printer.print(*event, args.json);
    }
    readers.request_stop();
}

// Prints the events of every subscription as they arrive (one listener serves them all, so
// they interleave in arrival order), until --count events were printed, the events of one
// subscription end, or the caller's stop token. The first error of a subscription (lost,
// expired) ends it and is rethrown.
Task<void> print_all_events(uv_loop_t* loop, std::vector<Subscription>& subs,
                            const SubscribeArgs& args) {
    EventPrinter printer;
    // Named, not a temporary inside the co_await (g++ 12).
    std::function<Task<void>(std::size_t, Scope&)> reader = [&subs, &args, &printer](
                                                                std::size_t i, Scope& readers) {
        return print_events(subs[i], args, printer, readers);
    };
    co_await read_all_until_first_error(loop, subs.size(), std::move(reader));
}

// Follows the advertisements of each subscription's device (its UDN in `udns`, "" for none;
// see ssdp::DeviceFollower): one line when a device says goodbye and when it is back. Null
// (with a warning) when SSDP cannot be listened to: the subscriptions still recover at their
// next renewal.
std::unique_ptr<ssdp::DeviceFollower> follow_devices(uv_loop_t* loop,
                                                     const std::vector<Subscription>& subs,
                                                     const std::vector<std::string>& udns) {
    ssdp::AdvertisementListenerOptions options;
    // An IPv6 device advertises over IPv6 (and maybe IPv4): listen to both then.
    for (const Subscription& sub : subs) {
        Result<http::Url> url = http::Url::try_parse(sub.service_url());
        if (url && url->host.find(':') != std::string::npos) options.ipv6 = true;
    }
    std::unique_ptr<ssdp::DeviceFollower> follower;
    try {
        follower = std::make_unique<ssdp::DeviceFollower>(loop, options);
    } catch (const std::exception& e) {
        print_error(std::string("warning: cannot follow the device's advertisements (") + e.what() +
                    "): a restart is noticed at the next renewal only");
        return nullptr;
    }
    for (std::size_t i = 0; i < subs.size(); ++i) {
        if (!udns[i].empty()) follower->follow(subs[i], udns[i]);
    }
    follower->set_handler([](const ssdp::DeviceChange& change, std::size_t resubscribing) {
        switch (change.event) {
            case ssdp::DeviceEvent::left:
            case ssdp::DeviceEvent::expired:
                print_error("device " + change.udn +
                            (change.event == ssdp::DeviceEvent::left ? " said goodbye (ssdp:byebye)"
                                                                     : " stopped advertising") +
                            ": subscription down until it is back");
                break;
            default:
                if (resubscribing != 0) {
                    print_error("device " + change.udn + " is back (" +
                                std::string(ssdp::to_string(change.event)) + "): resubscribing");
                }
                break;
        }
    });
    return follower;
}

// The handlers that print one line per loss, recovery and silence (also without -v).
SubscriptionHandlers reporting_handlers(const SubscribeArgs& args) {
    SubscriptionHandlers h;
    if (!args.resubscribe()) return h;
    h.on_lost = [](const Error& e) {
        print_error(std::string("subscription lost: ") + e.what() +
                    "; resubscribing (--no-resubscribe exits instead)");
    };
    h.on_resubscribe = [](const std::string& old_sid, const std::string& new_sid) {
        print_error("resubscribed: SID " + old_sid + " -> " + new_sid +
                    " (the next event carries the whole state)");
    };
    return h;
}

// Ends one subscription: an UNSUBSCRIBE bounded in time (also while resubscribing: the device
// may hold the SID being replaced), nothing after a loss (which already ended it).
Task<void> end_subscription(uv_loop_t* loop, Subscription& sub, const SubscribeArgs& args,
                            bool interrupted) {
    if (sub.error() || sub.sid().empty()) {
        co_await sub.unsubscribe(false);
        co_return;
    }
    std::string what = "unsubscribing " + sub.sid() + " from " + sub.service_url();
    if (interrupted) {
        print_error(what + " (waiting up to " + std::to_string(kUnsubscribeBound.count() / 1000) +
                    " s for the device; Ctrl-C again to exit now)");
    } else if (args.verbose) {
        print_error(what);
    }
    std::string sid = sub.sid();
    try {
        co_await with_timeout(loop, sub.unsubscribe(true), kUnsubscribeBound);
        if (args.verbose) print_error("unsubscribed " + sid);
    } catch (const Error& e) {
        // The device forgets the subscription at its expiry anyway: not an exit failure.
        if (args.verbose || interrupted) {
            print_error(is_timeout(e.code())
                            ? "no answer to UNSUBSCRIBE within " +
                                  std::to_string(kUnsubscribeBound.count() / 1000) + " s: giving up"
                            : std::string("unsubscribe failed: ") + e.what());
        }
    }
}

// Ends every subscription at once (a dead device costs kUnsubscribeBound once, not per
// service).
Task<void> end_subscriptions(uv_loop_t* loop, std::vector<Subscription>& subs,
                             const SubscribeArgs& args, bool interrupted) {
    Scope enders(loop);
    for (Subscription& sub : subs) enders.spawn(end_subscription(loop, sub, args, interrupted));
    co_await enders.join();
}

Task<int> run_subscribe(uv_loop_t* loop, EventListener& listener, const SubscribeArgs& args) {
    std::stop_source stop;
    SignalStop signals(loop, stop);
    SubscribeOptions options;
    if (args.timeout) options.requested_timeout = std::chrono::seconds(*args.timeout);
    options.auto_renew = args.auto_renew;
    options.auto_resubscribe = args.resubscribe();
    options.listener = &listener;
    if (args.reorder_window_ms) {
        options.reorder_window = std::chrono::milliseconds(*args.reorder_window_ms);
    }
    if (args.silence) {
        options.silence_timeout = seconds_to_ms(*args.silence);
        options.resubscribe_on_silence = args.resubscribe();
    }
    // Reserved once: the follower and the readers refer to the subscriptions where they are.
    std::vector<Subscription> subs;
    std::vector<std::string> udns;  // each device's, when known: its advertisements are followed
    std::optional<int> failed;
    try {
        // "<location>#<service>": the description names the event URL. Its errors (device
        // unreachable, unknown service with the list of the device's services) already say
        // which description or service they are about.
        std::vector<ServiceTarget> targets =
            co_await with_stop_token(resolve_targets(loop, args.targets), stop.get_token());
        subs.reserve(targets.size());
        for (const ServiceTarget& target : targets) {
            SubscriptionHandlers handlers = reporting_handlers(args);
            if (args.silence) {
                bool resubscribes = args.resubscribe();
                handlers.on_silence = [resubscribes](std::chrono::milliseconds silence) {
                    print_error("warning: no event for " + std::to_string(silence.count() / 1000) +
                                " s" + (resubscribes ? "; resubscribing" : ""));
                };
            }
            subs.push_back(co_await with_stop_token(
                subscribe(loop, target.event_url, options, std::move(handlers)), stop.get_token()));
            udns.push_back(args.udn.empty() ? target.udn : args.udn);
        }
    } catch (const Error& e) {
        if (is_cancelled(e.code()) && signals.received() != 0) {
            print_error("interrupted before the subscription was established");
            failed = kExitInterrupted;
        } else {
            print_error(e.what());
            failed = 1;
        }
    }
    if (failed) {
        signals.exit_on_second_signal();
        co_await end_subscriptions(loop, subs, args, false);  // those made before the failure
        co_await listener.stop();
        co_return *failed;
    }
    if (args.verbose) {
        for (const Subscription& sub : subs) {
            print_error("subscribed to " + sub.service_url() + ": SID " + sub.sid() + ", granted " +
                        granted_text(sub.timeout()) + ", callback " + sub.callback_url());
        }
    }
    std::unique_ptr<ssdp::DeviceFollower> follower;
    bool known_device = std::any_of(udns.begin(), udns.end(), [](auto& u) { return !u.empty(); });
    if (args.resubscribe() && !args.no_follow && known_device) {
        follower = follow_devices(loop, subs, udns);
        if (follower && args.verbose) {
            for (std::size_t i = 0; i < subs.size(); ++i) {
                if (!udns[i].empty() && (i == 0 || udns[i] != udns[i - 1])) {
                    print_error("following the advertisements of " + udns[i]);
                }
            }
        }
    }
    Scope watchers(loop);
    if (args.initial_event_timeout > 0) {
        for (const Subscription& sub : subs) {
            watchers.spawn(
                watch_initial_event(loop, sub, seconds_to_ms(args.initial_event_timeout)));
        }
    }
    int code = 0;
    try {
        if (args.duration) {
            co_await with_stop_token(with_timeout(loop, print_all_events(loop, subs, args),
                                                  seconds_to_ms(*args.duration)),
                                     stop.get_token());
        } else {
            co_await with_stop_token(print_all_events(loop, subs, args), stop.get_token());
        }
    } catch (const Error& e) {
        // Ctrl-C / SIGTERM and the end of --duration are normal ends; a subscription that
        // was lost (refused renewal, expiry) is a failure.
        bool by_signal = is_cancelled(e.code()) && signals.received() != 0;
        bool by_duration = is_timeout(e.code()) && args.duration.has_value();
        bool lost = std::any_of(subs.begin(), subs.end(), [](auto& s) { return !!s.error(); });
        if (lost || (!by_signal && !by_duration)) {
            print_error(e.what());
            code = 1;
        }
    }
    watchers.request_stop();
    co_await watchers.join();
    if (follower) co_await follower->close();
    // From here a second Ctrl-C exits at once; the first one's clean-up is bounded.
    signals.exit_on_second_signal();
    co_await end_subscriptions(loop, subs, args, signals.received() != 0);
    // Nothing is lost silently: what arrived, what was shown, and what was not (per
    // subscription when there are several).
    for (const Subscription& sub : subs) {
        std::string summary = stats_summary(sub.stats());
        if (subs.size() > 1) summary.replace(0, 7, "summary of " + sub.service_url());
        print_error(summary);
    }
    co_await listener.stop();
    co_return code;
}

int subscribe_main(const SubscribeArgs& args) {
    for (const std::string& target : args.targets) {
        if (std::optional<std::string> reason = bad_target(target)) {
            bool described = target.find('#') != std::string::npos;
            print_error(std::string("subscribe: bad ") +
                        (described ? "description URL " : "event URL ") + target + ": " + *reason);
            return 2;
        }
    }
    if (!args.listen_host.empty() && !SocketAddress::try_parse(args.listen_host, 0)) {
        print_error("subscribe: --listen-host must be an IP address: " + args.listen_host);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    set_log_level(args.verbose ? LogLevel::info : LogLevel::error);
    // The library's lines in the CLI's own format ("uvgena: ..."), warnings marked.
    set_log_sink([](LogLevel level, std::string_view message) {
        constexpr std::string_view prefix = "uvgena: ";
        if (message.substr(0, prefix.size()) == prefix) message.remove_prefix(prefix.size());
        std::string line;
        if (level >= LogLevel::warning) {
            line += to_string(level);
            line += ": ";
        }
        line += message;
        print_error(line);
    });
    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = 1;
    {
        // Destroyed last: it flushes what the command printed.
        StdoutLines stdout_lines(&loop);
        ListenerOptions lo;
        lo.listen_host = args.listen_host;
        if (args.listen_port) {
            // An explicit port is what the device (or a NAT / Docker port mapping) was told:
            // another one would be a subscription nobody can reach. Only an explicit range
            // allows moving on.
            lo.port = *args.listen_port;
            lo.port_range = args.listen_port_range.value_or(0);
        } else if (args.listen_port_range) {
            lo.port_range = *args.listen_port_range;
        }
        lo.advertise_host = args.advertise_host;
        lo.advertise_port = args.advertise_port.value_or(0);
        EventListener listener(&loop, lo);
        try {
            listener.start();
            code = run(&loop, run_subscribe(&loop, listener, args));
        } catch (const std::exception& e) {
            std::string targets;
            for (const std::string& target : args.targets) {
                targets += (targets.empty() ? "" : " ") + target;
            }
            print_error("subscribe to " + targets + ": " + e.what());
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
        "subscribe", "Subscribe to services' events and print each one as it arrives");
    cmd->add_option("targets", args->targets,
                    "The services, one or more: an event subscription URL (eventSubURL), or "
                    "the device followed by #<service>, where the device is its description "
                    "URL (an SSDP LOCATION), its friendly name or its UDN (found by an SSDP "
                    "search), and <service> a short name (RenderingControl), a serviceId or a "
                    "full serviceType, or * for every evented service of the device")
        ->required();
    cmd->footer(
        "Examples:\n"
        "  uvgena subscribe http://192.168.1.20:1400/MediaRenderer/RenderingControl/Event\n"
        "  uvgena subscribe 'http://192.168.1.20:1400/xml/device_description.xml#RenderingControl'"
        " --json --count 3\n"
        "  uvgena subscribe 'http://192.168.1.20:1400/xml/device_description.xml#RenderingControl'"
        " 'http://192.168.1.20:1400/xml/device_description.xml#AVTransport' --json\n"
        "  uvgena subscribe 'http://192.168.1.20:1400/xml/device_description.xml#*' --json\n"
        "  uvgena subscribe 'Living Room#RenderingControl'\n"
        "Several services share one listener; their events are printed as they arrive, each "
        "naming its service (its event URL: \"service\" in JSON), --count counts them all, and "
        "the summary on exit is one line per subscription.\n"
        "With --auto-renew the subscription survives device restarts: when the device forgets it "
        "(412), refuses connections past the expiry, or stays silent (--silence), it is "
        "subscribed again with backoff (1 s doubling to 60 s) for as long as the command runs; "
        "one line on stderr per loss and per recovery. --no-resubscribe exits 1 instead. When "
        "the device is known (<location>#<service>, or --udn), its SSDP advertisements are "
        "followed too: a restart it announces (byebye then alive, a higher BOOTID, a new "
        "LOCATION) resubscribes within seconds instead of at the next renewal (--no-follow: "
        "off).\n"
        "Exit codes: 0 ok (also after --count, --duration or Ctrl-C once subscribed), 1 runtime "
        "failure (device unreachable or refusing, unknown service, listen port taken, "
        "subscription lost), 2 usage error, 130 interrupted before the subscription was "
        "established. On Ctrl-C the UNSUBSCRIBE waits at most 2 s; a second Ctrl-C exits at "
        "once.");
    cmd->add_flag("--json", args->json, "One JSON object per event and line");
    cmd->add_option("--count", args->count, "Exit after N events")->check(CLI::PositiveNumber);
    cmd->add_option("--duration", args->duration, "Exit after S seconds")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--timeout", args->timeout, "Subscription duration to request, in seconds")
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--auto-renew", args->auto_renew,
                  "Renew the subscription before it expires, and subscribe again when it is lost");
    cmd->add_flag("--no-resubscribe", args->no_resubscribe,
                  "With --auto-renew: exit 1 when the subscription is lost instead of "
                  "subscribing again");
    cmd->add_option("--silence", args->silence,
                    "Warn when no event arrived for S seconds (with --auto-renew: and subscribe "
                    "again)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--initial-event-timeout", args->initial_event_timeout,
                    "Warn when the initial event (UDA requires one) has not arrived S seconds "
                    "after the subscription (default 5; 0: never)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--listen-host", args->listen_host,
                    "IP address to listen on for NOTIFY (default: all)");
    cmd->add_option("--listen-port", args->listen_port,
                    "Port to listen on; taken: exit 1, unless --listen-port-range allows the "
                    "next ones (default: 1400 or one of the 100 next; 0: any)");
    cmd->add_option("--listen-port-range", args->listen_port_range,
                    "If the listen port is taken, try up to N following ports");
    cmd->add_option("--advertise-host", args->advertise_host,
                    "Host to put in the CALLBACK URL (NAT, containers)");
    cmd->add_option("--advertise-port", args->advertise_port,
                    "Port to put in the CALLBACK URL (a NAT or Docker port mapping)")
        ->check(CLI::Range(1, 65535));
    cmd->add_option("--udn", args->udn,
                    "The device's UDN (uuid:...), to follow its SSDP advertisements when the "
                    "target is a plain event URL");
    cmd->add_flag("--no-follow", args->no_follow,
                  "With --auto-renew: do not follow the device's SSDP advertisements (by "
                  "default a byebye marks it down and its return, a higher BOOTID or a new "
                  "LOCATION resubscribe at once)");
    cmd->add_option("--reorder-window", args->reorder_window_ms,
                    "Milliseconds an event ahead of the expected SEQ waits for the missing "
                    "ones (default 30; 0: print at once, late ones flagged)");
    cmd->add_flag("-v,--verbose", args->verbose,
                  "Log the subscription (SID, granted duration, callback URL), renewals, "
                  "resubscriptions, the unsubscribe, warnings, and each late, resynced or "
                  "dropped event to stderr");
    cmd->callback([args, &action] { action = [args] { return subscribe_main(*args); }; });
}

}  // namespace uvgena::cli
