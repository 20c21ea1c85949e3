// Helpers shared by the subcommands of the `uvgena` tool.
#pragma once

#include <uv.h>

#include <stop_token>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "uvgena/gena/event.hpp"

namespace uvgena::cli {

/// Requests stop on `source` when the process gets SIGINT or SIGTERM (uv_signal_t handles on
/// the CLI's own loop: the CLI is the application, so it may install signal handlers).
/// Destroying it closes the handles (freed in their close callbacks).
class SignalStop {
public:
    SignalStop(uv_loop_t* loop, std::stop_source source);
    SignalStop(const SignalStop&) = delete;
    SignalStop& operator=(const SignalStop&) = delete;
    ~SignalStop();
    /// The signal received, 0 if none.
    int received() const noexcept { return *received_; }

private:
    struct Handle;
    Handle* handles_[2] = {nullptr, nullptr};
    int* received_;
};

/// Writes `line` and a newline to stdout and flushes at once (output is piped into jq).
void print_line(std::string_view line);
/// Writes "uvgena: <message>" and a newline to stderr.
void print_error(std::string_view message);

/// The JSON object of an event: sid, seq, service, timestamp, seq_status, missed (gaps),
/// variables (name -> value), last_change (InstanceID -> name -> value, or channel -> value
/// for variables with a channel attribute, as SoCo does; only when the event has a
/// LastChange), parse_error when the body did not parse.
nlohmann::json event_json(const gena::Event& event);

/// A human-readable rendering of an event (several lines, no trailing newline).
std::string event_text(const gena::Event& event);

/// Runs the loop until it has nothing left to do, then closes it; returns uv_loop_close.
int finish_loop(uv_loop_t* loop);

}  // namespace uvgena::cli
