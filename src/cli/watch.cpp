// `uvgena watch <target>...`: the live state of one or more services, mirrored from their
// events (gena::StateMirror). On a terminal, a table redrawn in place with the last change
// highlighted; otherwise one line per changed value; with --json one object per change (the
// whole state with --state).
#include <sys/ioctl.h>
#include <unistd.h>

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
#include "targets.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/service_state.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace uvgena::cli {
namespace {

struct WatchArgs {
    std::vector<std::string> targets;
    bool json = false;
    bool state = false;  // with --json: the whole state after each change
    bool plain = false;  // lines even on a terminal
    std::optional<unsigned> count;
    std::optional<double> duration;
    std::string listen_host;
    std::optional<std::uint16_t> listen_port;
};

// Time the UNSUBSCRIBEs on exit may take (as `subscribe`).
constexpr std::chrono::milliseconds kUnsubscribeBound{2000};

// One watched service.
struct Watched {
    std::string name;
    std::string event_url;
    std::unique_ptr<StateMirror> mirror;
    gena::StateChanges last;  // the latest change, highlighted on the terminal
};

// "Volume[Master]", "Volume[Master]@1", "TransportState", "X[a=b,c=d]": a value's key.
std::string key_of(const gena::VariableId& id) {
    std::string key = id.name;
    std::string attributes;
    for (const auto& a : id.attributes) {
        if (!attributes.empty()) attributes += ',';
        attributes += a.name == "channel" ? a.value : a.name + "=" + a.value;
    }
    if (!attributes.empty()) key += "[" + attributes + "]";
    if (id.in_last_change && !id.instance.empty() && id.instance != "0") key += "@" + id.instance;
    return key;
}

// A value on one line: control characters shown as spaces, cut to `width` characters.
std::string one_line(std::string_view value, std::size_t width) {
    std::string out;
    std::size_t chars = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        auto c = static_cast<unsigned char>(value[i]);
        if ((c & 0xC0) != 0x80) {  // a character starts here (UTF-8)
            if (chars == width) {
                out += "...";
                break;
            }
            ++chars;
        }
        out += c < 0x20 || c == 0x7F ? ' ' : static_cast<char>(c);
    }
    return out;
}

bool changed_in(const gena::StateChanges& changes, const gena::VariableId& id) {
    if (changes.replaced) return false;  // a whole new state: nothing in particular
    const std::string key = key_of(id);
    return std::any_of(changes.variables.begin(), changes.variables.end(),
                       [&](const gena::StateChange& c) { return key_of(c.id) == key; });
}

std::size_t terminal_width() {
    winsize size{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col >= 20) return size.ws_col;
    return 100;
}

// The whole table, from the top of the screen: each service, then its values in key order,
// the last change in reverse video.
std::string table(const std::vector<Watched>& watched, unsigned changes_seen) {
    const std::size_t width = terminal_width();
    std::string out = "\x1b[H\x1b[2J";  // home, clear: the table replaces itself
    out += "uvgena watch: " + std::to_string(watched.size()) + " service(s), " +
           std::to_string(changes_seen) + " change(s); Ctrl-C to stop\n";
    for (const Watched& w : watched) {
        const ServiceState& state = w.mirror->state();
        out += "\n" + w.name + "  " + w.event_url;
        if (state.stale()) out += "  (stale: resubscribing)";
        out += "\n";
        std::vector<std::pair<std::string, const gena::StateVariable*>> rows;
        for (const gena::StateVariable& v : state) rows.emplace_back(key_of(v.id), &v);
        std::sort(rows.begin(), rows.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        std::size_t key_width = 0;
        for (const auto& row : rows) key_width = std::max(key_width, row.first.size());
        key_width = std::min<std::size_t>(key_width, 40);
        for (const auto& [key, variable] : rows) {
            std::string line = "  " + key;
            line.append(key_width > key.size() ? key_width - key.size() : 0, ' ');
            line += "  ";
            std::size_t room = width > line.size() + 4 ? width - line.size() - 4 : 10;
            line += one_line(variable->value, room);
            if (changed_in(w.last, variable->id)) line = "\x1b[7m" + line + "\x1b[0m";
            out += line + "\n";
        }
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

// The lines of one change without a terminal: "<service> <key> = <value>" per changed value.
void print_change_lines(const Watched& w, const gena::StateChanges& changes) {
    const ServiceState& state = w.mirror->state();
    if (changes.replaced) {
        print_line(w.name + " (whole state)");
        for (const gena::StateVariable& v : state) {
            print_line(w.name + " " + key_of(v.id) + " = " + one_line(v.value, 4096));
        }
    } else {
        for (const gena::StateChange& c : changes.variables) {
            auto value = state.get(c.id);
            print_line(w.name + " " + key_of(c.id) + " = " +
                       (c.removed || !value ? std::string("(removed)") : one_line(*value, 4096)));
        }
    }
    if (changes.went_stale) print_line(w.name + " (stale: resubscribing)");
}

// One JSON object per change: the changed values, or with --state the whole state.
void print_change_json(const Watched& w, const gena::StateChanges& changes, bool whole_state) {
    const ServiceState& state = w.mirror->state();
    nlohmann::ordered_json j;
    j["service"] = w.name;
    j["event_url"] = w.event_url;
    j["stale"] = state.stale();
    j["replaced"] = changes.replaced;
    nlohmann::ordered_json changed = nlohmann::ordered_json::object();
    for (const gena::StateChange& c : changes.variables) {
        auto value = state.get(c.id);
        changed[key_of(c.id)] = c.removed || !value ? nlohmann::ordered_json(nullptr)
                                                    : nlohmann::ordered_json(std::string(*value));
    }
    j["changed"] = std::move(changed);
    if (whole_state) {
        nlohmann::ordered_json all = nlohmann::ordered_json::object();
        for (const gena::StateVariable& v : state) all[key_of(v.id)] = v.value;
        j["state"] = std::move(all);
    }
    print_line(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

struct Screen {
    bool table = false;
    unsigned changes_seen = 0;
};

// Shows the changes of one service until --count changes were shown over all, its mirror
// ends, or the caller's stop token; then every reader is asked to stop.
Task<void> show_changes(std::vector<Watched>& watched, std::size_t index, const WatchArgs& args,
                        Screen& screen, Scope& readers) {
    Watched& w = watched[index];
    auto counted_out = [&] { return args.count && screen.changes_seen >= *args.count; };
    while (!counted_out()) {
        std::optional<gena::StateChanges> changes = co_await w.mirror->changed();
        if (!changes || counted_out()) break;
        ++screen.changes_seen;
        w.last = *changes;
        if (screen.table) {
            print_line(table(watched, screen.changes_seen));
        } else if (args.json) {
            print_change_json(w, *changes, args.state);
        } else {
            print_change_lines(w, *changes);
        }
    }
    readers.request_stop();
}

Task<void> show_all(uv_loop_t* loop, std::vector<Watched>& watched, const WatchArgs& args,
                    Screen& screen) {
    // Named, not a temporary inside the co_await (g++ 12).
    std::function<Task<void>(std::size_t, Scope&)> reader = [&watched, &args, &screen](
                                                                std::size_t i, Scope& readers) {
        return show_changes(watched, i, args, screen, readers);
    };
    co_await read_all_until_first_error(loop, watched.size(), std::move(reader));
}

Task<void> end_watch(uv_loop_t* loop, Watched& w) {
    try {
        co_await with_timeout(loop, w.mirror->unsubscribe(false), kUnsubscribeBound);
    } catch (const Error&) {
        // The device forgets the subscription at its expiry anyway.
    }
}

Task<int> run_watch(uv_loop_t* loop, EventListener& listener, const WatchArgs& args) {
    std::stop_source stop;
    SignalStop signals(loop, stop);
    Screen screen;
    screen.table = !args.json && !args.plain && isatty(STDOUT_FILENO) != 0;
    std::vector<Watched> watched;
    int code = 0;
    try {
        std::vector<ServiceTarget> targets =
            co_await with_stop_token(resolve_targets(loop, args.targets), stop.get_token());
        watched.reserve(targets.size());
        for (const ServiceTarget& target : targets) {
            SubscribeOptions options;
            options.listener = &listener;
            options.auto_renew = true;
            options.auto_resubscribe = true;
            Subscription sub = co_await with_stop_token(subscribe(loop, target.event_url, options),
                                                        stop.get_token());
            Watched w;
            w.name = target.name;
            w.event_url = target.event_url;
            w.mirror = std::make_unique<StateMirror>(loop, std::move(sub));
            watched.push_back(std::move(w));
        }
    } catch (const Error& e) {
        if (is_cancelled(e.code()) && signals.received() != 0) {
            print_error("interrupted before the subscriptions were established");
            code = 130;
        } else {
            print_error(e.what());
            code = 1;
        }
    }
    if (code == 0) {
        try {
            if (args.duration) {
                auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::duration<double>(*args.duration));
                co_await with_stop_token(
                    with_timeout(loop, show_all(loop, watched, args, screen), limit),
                    stop.get_token());
            } else {
                co_await with_stop_token(show_all(loop, watched, args, screen), stop.get_token());
            }
        } catch (const Error& e) {
            bool by_signal = is_cancelled(e.code()) && signals.received() != 0;
            bool by_duration = is_timeout(e.code()) && args.duration.has_value();
            if (!by_signal && !by_duration) {
                print_error(e.what());
                code = 1;
            }
        }
    }
    signals.exit_on_second_signal();
    {
        Scope enders(loop);
        for (Watched& w : watched) enders.spawn(end_watch(loop, w));
        co_await enders.join();
    }
    watched.clear();
    co_await listener.stop();
    co_return code;
}

int watch_main(const WatchArgs& args) {
    for (const std::string& target : args.targets) {
        if (std::optional<std::string> reason = bad_target(target)) {
            print_error("watch: bad target " + target + ": " + *reason);
            return kExitUsage;
        }
    }
    if (args.state && !args.json) {
        print_error("watch: --state goes with --json");
        return kExitUsage;
    }
    std::signal(SIGPIPE, SIG_IGN);
    set_log_level(LogLevel::error);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int code = 1;
    {
        StdoutLines stdout_lines(&loop);
        ListenerOptions lo;
        lo.listen_host = args.listen_host;
        if (args.listen_port) lo.port = *args.listen_port;
        EventListener listener(&loop, lo);
        try {
            listener.start();
            code = run(&loop, run_watch(&loop, listener, args));
        } catch (const std::exception& e) {
            print_error(std::string("watch: ") + e.what());
            code = 1;
        }
    }
    finish_loop(&loop);
    return code;
}

}  // namespace

void add_watch_command(CLI::App& app, Action& action) {
    auto args = std::make_shared<WatchArgs>();
    CLI::App* cmd =
        app.add_subcommand("watch", "Show the live state of services, mirrored from their events");
    cmd->add_option("targets", args->targets,
                    "The services, as for `subscribe`: event URLs, or <device>#<service> or "
                    "<device>#*, where the device is a description URL, a friendly name or a "
                    "UDN")
        ->required();
    cmd->add_flag("--json", args->json,
                  "One JSON object per change: service, stale, replaced, changed values");
    cmd->add_flag("--state", args->state, "With --json: the whole state in each object");
    cmd->add_flag("--plain", args->plain,
                  "One line per changed value, even on a terminal (the default elsewhere)");
    cmd->add_option("--count", args->count, "Exit after N changes")->check(CLI::PositiveNumber);
    cmd->add_option("--duration", args->duration, "Exit after S seconds")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--listen-host", args->listen_host,
                    "IP address to listen on for NOTIFY (default: all)");
    cmd->add_option("--listen-port", args->listen_port,
                    "Port to listen on (default: 1400 or one of the 100 next; 0: any)");
    cmd->footer(
        "On a terminal the state is a table redrawn in place, the last change in reverse "
        "video; otherwise each change is printed as '<service> <variable>[<channel>] = "
        "<value>' lines. The subscriptions renew themselves and come back after a device "
        "restart; a state that missed events is marked stale until the device resends it.\n"
        "Example:\n"
        "  uvgena watch 'Living Room#RenderingControl' 'Living Room#AVTransport'");
    cmd->callback([args, &action] { action = [args] { return watch_main(*args); }; });
}

}  // namespace uvgena::cli
