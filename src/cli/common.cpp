#include "common.hpp"

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
                    print_error("interrupted again: exiting now");
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
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

void print_error(std::string_view message) {
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

nlohmann::json event_json(const gena::Event& event) {
    nlohmann::json j;
    j["sid"] = event.sid;
    j["seq"] = event.seq;
    j["service"] = event.service;
    j["timestamp"] = iso_time(event.timestamp);
    j["seq_status"] = std::string(gena::to_string(event.seq_status));
    j["missed"] = event.missed;
    if (event.resubscribed) j["resubscribed"] = true;
    nlohmann::json vars = nlohmann::json::object();
    for (const gena::Variable& v : event.variables()) vars[v.name] = v.value;
    j["variables"] = std::move(vars);
    if (event.has_last_change()) {
        const Result<gena::LastChange>& lc = event.last_change();
        if (lc) {
            nlohmann::json instances = nlohmann::json::object();
            for (const gena::LastChangeInstance& instance : lc->instances) {
                nlohmann::json values = nlohmann::json::object();
                for (const gena::LastChangeValue& v : instance.values) {
                    std::string_view channel = v.channel();
                    if (channel.empty()) {
                        values[v.name] = v.value;
                    } else {
                        nlohmann::json& slot = values[v.name];
                        if (!slot.is_object()) slot = nlohmann::json::object();
                        slot[std::string(channel)] = v.value;
                    }
                }
                instances[instance.id] = std::move(values);
            }
            j["last_change"] = std::move(instances);
        } else {
            j["last_change_error"] = lc.error().message();
        }
    }
    if (event.parse_error) j["parse_error"] = event.parse_error.message();
    return j;
}

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

}  // namespace uvgena::cli
