#include "uvgena/core/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace uvgena {
namespace {

std::atomic<LogLevel> g_level{LogLevel::warning};

// The sink is shared by every loop and thread; the mutex serialises both replacement and
// calls so that a sink never runs concurrently with itself.
std::mutex& sink_mutex() {
    static std::mutex m;
    return m;
}

LogSink& sink() {
    static LogSink s;
    return s;
}

}  // namespace

void set_log_sink(LogSink s) {
    std::lock_guard lock(sink_mutex());
    sink() = std::move(s);
}

void set_log_level(LogLevel level) noexcept {
    g_level.store(level, std::memory_order_relaxed);
}

LogLevel log_level() noexcept {
    return g_level.load(std::memory_order_relaxed);
}

std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warning:
            return "warning";
        case LogLevel::error:
            return "error";
        case LogLevel::off:
            return "off";
    }
    return "?";
}

void log_message(LogLevel level, std::string_view message) {
    if (!log_enabled(level) || level == LogLevel::off) return;
    std::lock_guard lock(sink_mutex());
    if (sink()) {
        sink()(level, message);
        return;
    }
    std::fprintf(stderr, "uvgena %.*s: %.*s\n", static_cast<int>(to_string(level).size()),
                 to_string(level).data(), static_cast<int>(message.size()), message.data());
}

}  // namespace uvgena
