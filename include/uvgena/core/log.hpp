// One pluggable log sink for the whole library.
//
// An application routes uvgena's messages into its own logging with `set_log_sink`, the way
// crochet bridges Twisted's log into Python's logging. Default: warnings and errors to stderr.
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <string_view>

#include "uvgena/core/export.hpp"

namespace uvgena {

/// Severity of a log message.
enum class LogLevel { debug = 0, info = 1, warning = 2, error = 3, off = 4 };

/// Receives every message at or above the configured level. Called from whichever thread
/// logged (a loop thread, usually); calls are serialised by the library.
using LogSink = std::function<void(LogLevel, std::string_view message)>;

/// Replaces the sink; an empty function restores the default (stderr).
UVGENA_API void set_log_sink(LogSink sink);

/// Sets the lowest level that reaches the sink (default: warning).
UVGENA_API void set_log_level(LogLevel level) noexcept;

/// The lowest level that reaches the sink.
UVGENA_API LogLevel log_level() noexcept;

/// True if a message at `level` would reach the sink (cheap: check before formatting).
inline bool log_enabled(LogLevel level) noexcept {
    return level >= log_level();
}

/// Sends one message to the sink.
UVGENA_API void log_message(LogLevel level, std::string_view message);

/// Name of a level ("debug", "info", "warning", "error").
UVGENA_API std::string_view to_string(LogLevel level) noexcept;

/// Formats the arguments with operator<< and logs them, only if the level is enabled.
template <typename... Args>
void log(LogLevel level, const Args&... args) {
    if (!log_enabled(level)) return;
    std::ostringstream out;
    (out << ... << args);
    log_message(level, out.str());
}

}  // namespace uvgena
