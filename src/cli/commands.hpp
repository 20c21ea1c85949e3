// The subcommands of the `uvgena` tool: each registers itself on the CLI11 app and, when it
// is the one parsed, stores what to run into `action` (main.cpp runs it for the exit code).
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace uvgena::cli {

/// What a parsed subcommand runs; returns the process exit code (0 ok, 1 failure, 2 usage).
using Action = std::function<int()>;

/// `uvgena subscribe <event-url | location-url#service> ...`: prints a service's events as
/// they arrive.
void add_subscribe_command(CLI::App& app, Action& action);
/// `uvgena serve-demo [--host H] [--port P] [--interval MS] [--duration S] [--ssdp ...]`:
/// runs the simulated renderer for others to subscribe to, and with --ssdp advertises it.
void add_serve_demo_command(CLI::App& app, Action& action);
/// `uvgena discover [--timeout S] [--interface NAME] [--target ST] [--ipv6] [--json]`.
void add_discover_command(CLI::App& app, Action& action);
/// `uvgena describe <location-url> [--timeout S] [--json]`.
void add_describe_command(CLI::App& app, Action& action);
/// `uvgena call <location-url>#<service> <Action> [Name=Value ...] [--json] [--no-check]`.
void add_call_command(CLI::App& app, Action& action);
/// `uvgena watch <target>... [--json [--state]] [--plain] [--count N] [--duration S]`: the
/// live mirrored state of services.
void add_watch_command(CLI::App& app, Action& action);

}  // namespace uvgena::cli
