// The `uvgena` binary in a child process, as the CLI tests run it: stdout read line by line
// through a pipe, stderr collected in a file, killed (by its PID) if a test leaves it running.
#pragma once

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace clitest {

using namespace std::chrono_literals;

/// The built binary ($UVGENA_BUILD_ROOT/src/cli/uvgena).
inline std::string cli_path() {
    const char* root = std::getenv("UVGENA_BUILD_ROOT");
    REQUIRE_MESSAGE(root != nullptr, "UVGENA_BUILD_ROOT is not set (run under meson test)");
    return std::string(root) + "/src/cli/uvgena";
}

/// A child process running the CLI: stdout through a pipe, stderr into a file.
class Child {
  public:
    explicit Child(const std::vector<std::string>& cli_args) {
        // Built anew rather than insert()ed at the front: GCC 12 sees a null dereference
        // (-Wnull-dereference, a false positive) in vector::insert's reallocation of strings.
        std::vector<std::string> args;
        args.reserve(cli_args.size() + 1);
        args.push_back(cli_path());
        args.insert(args.end(), cli_args.begin(), cli_args.end());
        char tmpl[] = "/tmp/uvgena-cli-stderr-XXXXXX";
        int err_fd = mkstemp(tmpl);
        REQUIRE(err_fd >= 0);
        stderr_path_ = tmpl;
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            dup2(fds[1], 1);
            dup2(err_fd, 2);
            close(fds[0]);
            close(fds[1]);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
        close(fds[1]);
        close(err_fd);
        out_fd_ = fds[0];
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (pid_ > 0 && !reaped_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (out_fd_ >= 0) close(out_fd_);
        unlink(stderr_path_.c_str());
    }

    /// The next stdout line, or nullopt at EOF or after `limit`.
    std::optional<std::string> line(std::chrono::milliseconds limit = 10s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string l = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return l;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left <= 0ms || eof_) return std::nullopt;
            pollfd p{out_fd_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[4096];
            ssize_t n = read(out_fd_, buf, sizeof buf);
            if (n <= 0) {
                eof_ = true;
            } else {
                buffer_.append(buf, static_cast<std::size_t>(n));
            }
        }
    }

    /// Waits for the exit status (killing the child after `limit`); -1 if killed.
    int wait(std::chrono::milliseconds limit = 15s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        int status = 0;
        while (waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() >= deadline) {
                kill(pid_, SIGKILL);
                waitpid(pid_, &status, 0);
                reaped_ = true;
                return -1;
            }
            std::this_thread::sleep_for(10ms);
        }
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

    void signal(int sig) { kill(pid_, sig); }

    std::string stderr_text() const {
        std::ifstream in(stderr_path_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

  private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    bool eof_ = false;
    bool reaped_ = false;
    std::string buffer_;
    std::string stderr_path_;
};

/// The URL after the label of a line the CLI printed ("description:      http://...").
inline std::string url_in(const std::optional<std::string>& line) {
    REQUIRE(line);
    auto at = line->find("http://");
    REQUIRE(at != std::string::npos);
    return line->substr(at);
}

/// `uvgena serve-demo` in a child (with `extra` options; --interval 0 by default, so that
/// nothing changes unless a test asks), its description URL read from its first lines.
struct Demo {
    explicit Demo(std::vector<std::string> extra = {"--interval", "0"})
        : child(with_command("serve-demo", std::move(extra))) {
        REQUIRE(child.line());  // the UDN
        description = url_in(child.line());
        REQUIRE(child.line());
        REQUIRE(child.line());
    }
    ~Demo() {
        child.signal(SIGTERM);
        child.wait();
    }
    /// "<description>#<service>".
    std::string target(const std::string& service) const { return description + "#" + service; }

    static std::vector<std::string> with_command(std::string command,
                                                 const std::vector<std::string>& args) {
        std::vector<std::string> all{std::move(command)};
        all.insert(all.end(), args.begin(), args.end());
        return all;
    }

    Child child;
    std::string description;
};

/// A finished run of the CLI: exit status, stdout lines, stderr.
struct Run {
    int status;
    std::vector<std::string> out;
    std::string err;
};

/// Runs the CLI with `args` to its end (15 s at most).
inline Run run_cli(const std::vector<std::string>& args) {
    Child c(args);
    Run r;
    while (auto line = c.line()) r.out.push_back(*line);
    r.status = c.wait();
    r.err = c.stderr_text();
    return r;
}

}  // namespace clitest
