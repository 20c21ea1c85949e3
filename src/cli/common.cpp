#include "common.hpp"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <stop_token>
#include <string>

#include "uvgena/co/scope.hpp"
#include "uvgena/core/error.hpp"

namespace uvgena::cli {

int error_line(std::string_view message, int code) {
    std::cerr << "uvgena: " << message << std::endl;
    return code;
}

void print_line(std::string_view line) {
    std::cout << line << '\n';
    std::cout.flush();
}

namespace {

// The signal watchers of one run: heap objects closed (and freed in their close callback)
// once the task is done.
struct SignalStop {
    uv_signal_t sigint;
    uv_signal_t sigterm;
    std::stop_source* source = nullptr;
    bool stopped = false;
    int open = 0;

    static void on_signal(uv_signal_t* handle, int) {
        auto* self = static_cast<SignalStop*>(handle->data);
        self->stopped = true;
        self->source->request_stop();
    }
    static void on_close(uv_handle_t* handle) {
        auto* self = static_cast<SignalStop*>(handle->data);
        if (--self->open == 0) delete self;
    }
    void start(uv_loop_t* loop) {
        for (auto [h, sig] : {std::pair{&sigint, SIGINT}, std::pair{&sigterm, SIGTERM}}) {
            uv_signal_init(loop, h);
            h->data = this;
            ++open;
            uv_signal_start(h, &SignalStop::on_signal, sig);
            uv_unref(reinterpret_cast<uv_handle_t*>(h));
        }
    }
    void close() {
        uv_close(reinterpret_cast<uv_handle_t*>(&sigint), &SignalStop::on_close);
        uv_close(reinterpret_cast<uv_handle_t*>(&sigterm), &SignalStop::on_close);
    }
};

}  // namespace

int run_command(const std::function<Task<int>(uv_loop_t*)>& body) {
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::stop_source source;
    auto* signals = new SignalStop;
    signals->source = &source;
    signals->start(&loop);
    int code = kExitFailure;
    try {
        code = run(&loop, with_stop_token(body(&loop), source.get_token()));
    } catch (const Error& e) {
        code = signals->stopped && is_cancelled(e.code()) ? 130 : error_line(e.what());
    } catch (const std::exception& e) {
        code = error_line(e.what());
    }
    signals->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return code;
}

}  // namespace uvgena::cli
