// Helpers shared by the subcommands of the `uvgena` tool.
#pragma once

#include <uv.h>

#include <functional>
#include <string_view>

#include "uvgena/co/task.hpp"

namespace uvgena::cli {

/// Exit code of a runtime failure.
inline constexpr int kExitFailure = 1;
/// Exit code of a usage error.
inline constexpr int kExitUsage = 2;

/// Prints "uvgena: <message>" as one line on stderr; returns `code`.
int error_line(std::string_view message, int code = kExitFailure);

/// Prints one line on stdout and flushes it at once (output may be piped to a reader that
/// waits for each line).
void print_line(std::string_view line);

/// Runs the task `body(loop)` on a fresh loop until it finishes; SIGINT or SIGTERM stop it (through
/// its stop token, so it unwinds cleanly). The CLI is an application: it may install signal
/// handlers (on its own loop), which the library never does. Returns the task's exit code;
/// an uvgena::Error or other exception escaping it becomes one line on stderr and 1;
/// a cancellation caused by a signal returns 130 (a task may instead catch it and finish
/// with what it has).
int run_command(const std::function<Task<int>(uv_loop_t*)>& body);

}  // namespace uvgena::cli
