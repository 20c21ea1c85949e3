#include "common.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <utility>

#include "uvgena/co/scope.hpp"
#include "uvgena/core/error.hpp"

namespace uvgena::cli {

struct SignalStop::Handle {
    uv_signal_t signal{};
    std::stop_source source;
    Shared* shared = nullptr;
};

SignalStop::SignalStop(uv_loop_t* loop, std::stop_source source) : shared_(new Shared) {
    const int signals[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; ++i) {
        auto* h = new Handle;
        h->source = source;
        h->shared = shared_;
        uv_signal_init(loop, &h->signal);
        h->signal.data = h;
        uv_signal_start(
            &h->signal,
            [](uv_signal_t* s, int signum) {
                auto* self = static_cast<Handle*>(s->data);
                if (self->shared->received != 0 && self->shared->second_exits) {
                    print_error("interrupted again: exiting now");  // flushes stdout first
                    std::_Exit(130);
                }
                if (self->shared->received == 0) self->shared->received = signum;
                self->source.request_stop();
            },
            signals[i]);
        // The handle must not keep the loop alive on its own.
        uv_unref(reinterpret_cast<uv_handle_t*>(&h->signal));
        handles_[i] = h;
    }
}

SignalStop::~SignalStop() {
    for (Handle* h : handles_) {
        if (h == nullptr) continue;
        uv_close(reinterpret_cast<uv_handle_t*>(&h->signal),
                 [](uv_handle_t* handle) { delete static_cast<Handle*>(handle->data); });
    }
    delete shared_;
}

void print_line(std::string_view line) {
    if (StdoutLines* lines = StdoutLines::current()) {
        lines->buffer() += line;
        lines->buffer() += '\n';
        lines->lines_added();
        return;
    }
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

StdoutLines* StdoutLines::current_ = nullptr;

struct StdoutLines::Timer {
    uv_timer_t timer{};
    StdoutLines* owner = nullptr;
};

StdoutLines::StdoutLines(uv_loop_t* loop, int fd) : fd_(fd) {
    std::fflush(stdout);  // whatever stdio holds goes first
    if (::isatty(fd_) == 0) {
        timer_ = new Timer;
        timer_->owner = this;
        uv_timer_init(loop, &timer_->timer);
        timer_->timer.data = timer_;
        // A pending flush must not keep the loop alive on its own: the destructor flushes.
        uv_unref(reinterpret_cast<uv_handle_t*>(&timer_->timer));
        buffer_.reserve(kFlushBytes + 4096);
        // As if the last write were an interval old: the first line goes out at once. (Modulo
        // 2^64, `now - last_write_ms_` is right even if this wraps.)
        last_write_ms_ = uv_now(loop) - kWriteIntervalMs;
    }
    current_ = this;
}

StdoutLines::~StdoutLines() {
    flush();
    if (current_ == this) current_ = nullptr;
    if (timer_ != nullptr) {
        timer_->owner = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(&timer_->timer),
                 [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
    }
}

void StdoutLines::lines_added() {
    if (timer_ == nullptr || buffer_.size() >= kFlushBytes) {
        flush();
        return;
    }
    if (timer_armed_) return;  // the interval's write is already due
    const std::uint64_t now = uv_now(timer_->timer.loop);
    const std::uint64_t since = now - last_write_ms_;
    if (since >= kWriteIntervalMs) {
        flush();
        return;
    }
    timer_armed_ = true;
    uv_timer_start(
        &timer_->timer,
        [](uv_timer_t* t) {
            auto* self = static_cast<Timer*>(t->data);
            if (self->owner != nullptr) self->owner->flush();
        },
        kWriteIntervalMs - since, 0);
}

void StdoutLines::flush() {
    if (timer_armed_) {
        timer_armed_ = false;
        uv_timer_stop(&timer_->timer);
    }
    if (buffer_.empty()) return;
    if (timer_ != nullptr) last_write_ms_ = uv_now(timer_->timer.loop);
    std::size_t done = 0;
    while (done < buffer_.size() && !failed_) {
        ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // A non-blocking stdout (shared with a parent that set it): wait until it drains.
            pollfd p{fd_, POLLOUT, 0};
            ::poll(&p, 1, -1);
        } else {
            failed_ = true;  // a closed pipe, a full disk: the rest is dropped
        }
    }
    buffer_.clear();
}

void print_error(std::string_view message) {
    if (StdoutLines* lines = StdoutLines::current()) lines->flush();
    std::string line = "uvgena: ";
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

namespace {

std::string iso_time(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
    std::time_t secs = system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[80];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return buf;
}

}  // namespace

std::string stats_summary(const gena::SubscriptionStats& stats) {
    std::string line = "summary: received " + std::to_string(stats.events_received);
    line += ", delivered " + std::to_string(stats.events_delivered);
    line += ", late " + std::to_string(stats.events_late);
    line += ", missed " + std::to_string(stats.events_missed);
    line += ", duplicates dropped " + std::to_string(stats.duplicates);
    line += ", queue drops " + std::to_string(stats.events_dropped);
    line += ", parse errors " + std::to_string(stats.parse_errors);
    if (stats.seq_resyncs != 0) line += ", resyncs " + std::to_string(stats.seq_resyncs);
    return line;
}

std::string event_text(const gena::Event& event) {
    std::string out = iso_time(event.timestamp) + " SEQ " + std::to_string(event.seq) + " " +
                      event.sid + " " + event.service;
    if (event.seq_status != gena::SeqStatus::ok) {
        out += " [";
        out += gena::to_string(event.seq_status);
        if (event.missed != 0) out += ", " + std::to_string(event.missed) + " missed";
        out += "]";
    }
    if (event.resubscribed) out += " [resubscribed: the state starts over from this event]";
    if (event.parse_error) out += "\n  (body not parsed: " + event.parse_error.message() + ")";
    for (const gena::Variable& v : event.variables()) {
        if (v.name == "LastChange" && event.has_last_change() && event.last_change()) continue;
        out += "\n  " + v.name + " = " + v.value;
    }
    if (event.has_last_change()) {
        const Result<gena::LastChange>& lc = event.last_change();
        if (!lc) {
            out += "\n  LastChange: not parsed (" + lc.error().message() + ")";
        } else {
            for (const gena::LastChangeInstance& instance : lc->instances) {
                for (const gena::LastChangeValue& v : instance.values) {
                    // Appended piece by piece: GCC 12 -O3 reports a false -Wrestrict on
                    // chains of operator+ on temporaries (GCC PR 105329).
                    out += "\n  [";
                    out += instance.element;
                    out += ' ';
                    out += instance.id;
                    out += "] ";
                    out += v.name;
                    if (!v.channel().empty()) {
                        out += '(';
                        out += v.channel();
                        out += ')';
                    }
                    out += " = ";
                    out += v.value;
                }
            }
        }
    }
    return out;
}

int finish_loop(uv_loop_t* loop) {
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop);
}

int error_line(std::string_view message, int code) {
    print_error(message);
    return code;
}

int run_command(const std::function<Task<int>(uv_loop_t*)>& body) {
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::stop_source source;
    int code = kExitFailure;
    {
        SignalStop signals(&loop, source);
        try {
            code = run(&loop, with_stop_token(body(&loop), source.get_token()));
        } catch (const Error& e) {
            code = signals.received() != 0 && is_cancelled(e.code()) ? 130 : error_line(e.what());
        } catch (const std::exception& e) {
            code = error_line(e.what());
        }
    }
    finish_loop(&loop);
    return code;
}

Task<void> read_all_until_first_error(uv_loop_t* loop, std::size_t count,
                                      std::function<Task<void>(std::size_t, Scope&)> reader) {
    std::exception_ptr error;
    Scope readers(loop, [&error, &readers](std::exception_ptr e) {
        if (!error) error = std::move(e);
        readers.request_stop();
    });
    for (std::size_t i = 0; i < count; ++i) readers.spawn(reader(i, readers));
    co_await readers.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace uvgena::cli
