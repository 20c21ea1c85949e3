// Helpers shared by the subcommands of the `uvgena` tool.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "uvgena/co/scope.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/gena/event.hpp"
#include "uvgena/subscriber/subscription.hpp"

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
    int received() const noexcept { return shared_->received; }
    /// From now on a second signal ends the process at once (exit 130, one line on stderr),
    /// so that the user is never stuck behind a slow clean-up such as an UNSUBSCRIBE to a
    /// dead device.
    void exit_on_second_signal() noexcept { shared_->second_exits = true; }

  private:
    struct Handle;
    struct Shared {
        int received = 0;
        bool second_exits = false;
    };
    Handle* handles_[2] = {nullptr, nullptr};
    Shared* shared_;
};

/// Writes `line` and a newline to stdout: through the StdoutLines of the running command if
/// there is one, else at once (output is piped into jq).
void print_line(std::string_view line);
/// Writes "uvgena: <message>" and a newline to stderr (after the lines still pending for
/// stdout, so that the two stay in order when they go to the same file).
void print_error(std::string_view message);

/// The stdout of a command that prints many lines (`subscribe`). On a terminal every line is
/// written at once (one write(2)). Otherwise lines are written at most once per
/// kWriteIntervalMs, in blocks: a line that comes when the last write is at least that old is
/// written at once (a quiet stream adds no delay), the lines that follow it within the
/// interval wait for its end (a burst or a flood: one write per interval, issue 23), and
/// kFlushBytes pending are written at once. All pending lines are also written when it is
/// flushed or destroyed (the end of the command, Ctrl-C, --count, --duration, a second
/// Ctrl-C's immediate exit, any line on stderr). One at a time; print_line goes through the
/// live one. A stdout that fails (a closed pipe) drops the output, as stdio did.
class StdoutLines {
  public:
    static constexpr std::size_t kFlushBytes = 64 * 1024;
    /// The shortest time between two writes of pending lines, in ms. Under a flood of events
    /// a shorter one costs more than the events: each write, and above all the loop's short
    /// poll timeout while the flush timer is armed, measured 30 % more CPU per 300 B event
    /// at 1 ms and 12 % at 10 ms than at 100 ms (bench/README.md, issue 23). A quiet stream
    /// is not delayed at all: only lines that follow a write within 100 ms wait.
    static constexpr std::uint64_t kWriteIntervalMs = 100;

    /// Lines go to `fd` (stdout unless a test passes a pipe).
    explicit StdoutLines(uv_loop_t* loop, int fd = 1 /* STDOUT_FILENO */);
    StdoutLines(const StdoutLines&) = delete;
    StdoutLines& operator=(const StdoutLines&) = delete;
    /// Flushes, then closes its timer (freed when the loop runs the close callback).
    ~StdoutLines();

    /// The buffer to append one or more complete lines to (each ending in '\n'); call
    /// lines_added() after.
    std::string& buffer() noexcept { return buffer_; }
    /// Writes now (a terminal, kFlushBytes pending, or the last write kWriteIntervalMs ago)
    /// or arms the timer for the end of the interval.
    void lines_added();
    /// Writes every pending line.
    void flush();
    /// Whether lines are collected (the output is not a terminal).
    bool batched() const noexcept { return timer_ != nullptr; }

    /// The live instance, or null.
    static StdoutLines* current() noexcept { return current_; }

  private:
    struct Timer;
    std::string buffer_;
    int fd_;
    Timer* timer_ = nullptr;  // null on a terminal
    bool timer_armed_ = false;
    bool failed_ = false;
    std::uint64_t last_write_ms_ = 0;  // uv_now() of the last write
    static StdoutLines* current_;
};

/// The one-line summary printed on exit: "summary: received N, delivered N, late N, missed N,
/// duplicates dropped N, queue drops N, parse errors N" (resyncs added when there were any).
std::string stats_summary(const gena::SubscriptionStats& stats);

/// A human-readable rendering of an event (several lines, no trailing newline).
std::string event_text(const gena::Event& event);

/// Runs the loop until it has nothing left to do, then closes it; returns uv_loop_close.
int finish_loop(uv_loop_t* loop);

/// Exit code of a runtime failure.
inline constexpr int kExitFailure = 1;
/// Exit code of a usage error.
inline constexpr int kExitUsage = 2;

/// Prints "uvgena: <message>" as one line on stderr; returns `code`.
int error_line(std::string_view message, int code = kExitFailure);

/// Runs the task `body(loop)` on a fresh loop until it finishes; SIGINT or SIGTERM stop it
/// through its stop token, so it unwinds cleanly. Returns the task's exit code; an exception
/// escaping it becomes one line on stderr and 1; a cancellation caused by a signal returns
/// 130 (a task may instead catch it and finish with what it has).
int run_command(const std::function<Task<int>(uv_loop_t*)>& body);

/// Runs `reader(i, readers)` for each i below `count`, concurrently in one scope, until all
/// ended; the first that fails stops the others (through `readers`), and its error is
/// rethrown once they are all gone. The readers of `subscribe` and `watch`: one per service.
Task<void> read_all_until_first_error(uv_loop_t* loop, std::size_t count,
                                      std::function<Task<void>(std::size_t, Scope&)> reader);

}  // namespace uvgena::cli
