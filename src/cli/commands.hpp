// The subcommands of the `uvgena` tool. Each registers itself on the app; its parse callback
// stores into `action` what to run, and main() runs it and returns its exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace uvgena::cli {

/// What main() runs after parsing: returns the exit code (0 ok, 1 runtime failure).
using Action = std::function<int()>;

/// `uvgena discover [--timeout S] [--interface NAME] [--target ST] [--ipv6] [--json]`.
void add_discover_command(CLI::App& app, Action& action);
/// `uvgena describe <location-url> [--timeout S] [--json]`.
void add_describe_command(CLI::App& app, Action& action);

}  // namespace uvgena::cli
