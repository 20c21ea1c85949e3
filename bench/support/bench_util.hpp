// What the process-level benchmarks share: clocks, CPU accounting, the key=value reports the
// generator and the baselines print, free ports, and child processes spawned on the loop.
// Header-only and POSIX-only; the child-process part needs uvgena's runtime (a task that polls
// the child's exit), the rest does not, so that the load generator and the baselines, which
// must not depend on the library they are compared with, include only the first part
// (define UVGENA_BENCH_NO_CHILD before including it).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace uvgena_bench {

/// CLOCK_MONOTONIC in nanoseconds.
inline std::uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

/// CPU seconds of this process so far (user + system, or user only).
inline double cpu_seconds(bool user_only = false) {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double user =
        static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    if (user_only) return user;
    return user + static_cast<double>(ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
}

/// CPU seconds (user + system) of every thread of process `pid` so far: the scheduler's
/// nanosecond run time of each task, summed; -1 if the process is gone.
inline double process_cpu_seconds(int pid) {
    std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return -1;
    double total = 0;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream in(dir + "/" + e->d_name + "/schedstat");
        double ns = 0;
        if (in >> ns) total += ns / 1e9;
    }
    ::closedir(d);
    return total;
}

/// The key=value pairs of a one-line report ("sent=100 ok=100 ...").
inline std::map<std::string, double> parse_kv(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    for (std::string tok; in >> tok;) {
        auto eq = tok.find('=');
        if (eq != std::string::npos) out[tok.substr(0, eq)] = std::atof(tok.c_str() + eq + 1);
    }
    return out;
}

/// A whole file as a string (empty if it cannot be read).
inline std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// "a,b,c" as {"a", "b", "c"} (the lists of command-line options).
inline std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
    return out;
}

/// The directory of this program (where the other benchmark programs are built), "" if
/// unknown.
inline std::string own_directory() {
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return {};
    std::string path(exe, static_cast<std::size_t>(n));
    return path.substr(0, path.rfind('/'));
}

/// A new directory under /tmp named after `stem`, "" if it cannot be made.
inline std::string make_temp_dir(const std::string& stem) {
    std::string tmpl = "/tmp/" + stem + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return {};
    return tmpl;
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick).
inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

}  // namespace uvgena_bench

#ifndef UVGENA_BENCH_NO_CHILD

#include <uv.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>

#include "uvgena/co/co.hpp"

namespace uvgena_bench {

/// A child process; the running task polls `exited`.
struct ChildState {
    bool exited = false;
    std::int64_t status = 0;
    int signal = 0;
    int pid = 0;
};

namespace detail {
struct ChildHandle {
    uv_process_t proc{};
    std::shared_ptr<ChildState> state;
};
inline void close_child_handle(uv_process_t* p) {
    uv_close(reinterpret_cast<uv_handle_t*>(p),
             [](uv_handle_t* h) { delete static_cast<ChildHandle*>(h->data); });
}
}  // namespace detail

/// Starts `args` (args[0] is the program's path) with stdout to `out_path` and stderr to
/// `err_path` (this process's stderr if empty). A child that cannot start is returned as
/// already exited with status -1.
inline std::shared_ptr<ChildState> start_child(uv_loop_t* loop,
                                               const std::vector<std::string>& args,
                                               const std::string& out_path,
                                               const std::string& err_path = {}) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err_fd =
        err_path.empty() ? 2 : ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = err_fd;
    uv_process_options_t opts{};
    opts.file = argv[0];
    opts.args = argv.data();
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.exit_cb = [](uv_process_t* p, std::int64_t status, int signal) {
        auto* h = static_cast<detail::ChildHandle*>(p->data);
        h->state->exited = true;
        h->state->status = status;
        h->state->signal = signal;
        detail::close_child_handle(p);
    };
    auto* h = new detail::ChildHandle;
    h->state = std::make_shared<ChildState>();
    h->proc.data = h;
    int rc = uv_spawn(loop, &h->proc, &opts);
    ::close(fd);
    if (err_fd != 2) ::close(err_fd);
    if (rc < 0) {
        std::fprintf(stderr, "cannot start %s: %s\n", argv[0], uv_strerror(rc));
        auto state = h->state;
        state->exited = true;
        state->status = -1;
        detail::close_child_handle(&h->proc);
        return state;
    }
    h->state->pid = h->proc.pid;
    return h->state;
}

/// Waits for the child to exit, polling every `poll`; kills it (SIGKILL) after `limit`.
inline uvgena::Task<void> wait_exit(uv_loop_t* loop, std::shared_ptr<ChildState> child,
                                    std::chrono::milliseconds limit,
                                    std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!child->exited) {
        if (std::chrono::steady_clock::now() > deadline && child->pid > 0) {
            uv_kill(child->pid, SIGKILL);
            deadline += std::chrono::seconds(10);
        }
        co_await uvgena::sleep_for(loop, poll);
    }
}

/// Runs the benchmark task `bench(loop)` (returning the number of targets missed) on a loop of
/// its own, closes the loop, removes `tmpdir` unless `keep_tmpdir`, prints "targets missed: N"
/// and returns the process's exit status (1 if the benchmark could not run).
template <class Bench>
int run_bench(const char* name, Bench bench, const std::string& tmpdir, bool keep_tmpdir = false) {
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int missed = 0;
    try {
        missed = uvgena::run(&loop, bench(&loop));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", name, e.what());
        missed = -1;
    }
    for (int i = 0; i < 16; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "%s: loop not closed\n", name);
    if (keep_tmpdir) {
        std::printf("outputs kept in %s\n", tmpdir.c_str());
    } else if (!tmpdir.empty()) {
        std::string cleanup = "rm -rf '" + tmpdir + "'";
        if (std::system(cleanup.c_str()) != 0) std::fprintf(stderr, "cannot remove %s\n", tmpdir.c_str());
    }
    std::printf("targets missed: %d\n", missed);
    return missed < 0 ? 1 : 0;
}

}  // namespace uvgena_bench

#endif  // UVGENA_BENCH_NO_CHILD
