// StdoutLines, the CLI's batched stdout (issue 23), on a real pipe: a line after a quiet
// spell is written at once, lines that follow a write within kWriteIntervalMs wait for the
// interval's end (one write), kFlushBytes pending are written at once, and whatever is
// pending is written when it is flushed or destroyed.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "../../src/cli/common.hpp"
#include "support/test_loop.hpp"

namespace {

using uvgena::cli::StdoutLines;

/// A pipe whose read end never blocks.
struct Pipe {
    int fds[2] = {-1, -1};
    Pipe() {
        REQUIRE(::pipe(fds) == 0);
        REQUIRE(::fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
        // Big enough for a flush of kFlushBytes and more without the writer waiting.
        ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    }
    ~Pipe() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    /// Everything written so far (no wait).
    std::string drain() const {
        std::string out;
        char buf[65536];
        for (;;) {
            ssize_t n = ::read(fds[0], buf, sizeof buf);
            if (n > 0) {
                out.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            return out;
        }
    }
};

void add_line(StdoutLines& lines, const std::string& line) {
    lines.buffer() += line;
    lines.buffer() += '\n';
    lines.lines_added();
}

/// Runs the loop until the pipe holds something (or `limit`); returns it and the wait.
std::string wait_for_output(uv_loop_t* loop, const Pipe& pipe, std::chrono::milliseconds limit,
                            std::chrono::milliseconds& waited) {
    // The flush timer does not keep the loop alive: a referenced one does, meanwhile.
    uv_timer_t tick{};
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, [](uv_timer_t*) {}, 1, 1);
    const auto start = std::chrono::steady_clock::now();
    std::string out;
    while (out.empty() && std::chrono::steady_clock::now() - start < limit) {
        uv_run(loop, UV_RUN_ONCE);
        out = pipe.drain();
    }
    waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(loop, UV_RUN_NOWAIT);
    return out;
}

}  // namespace

TEST_SUITE("cli.stdout_lines") {
    TEST_CASE("a pipe: the first line at once, the next ones in one write at the interval's end") {
        uvtest::TestLoop loop;
        Pipe pipe;
        {
            StdoutLines lines(loop, pipe.fds[1]);
            CHECK(lines.batched());
            add_line(lines, "one");
            CHECK(pipe.drain() == "one\n");  // a quiet stream: no delay

            add_line(lines, "two");
            add_line(lines, "three");
            CHECK(pipe.drain().empty());  // within the interval: pending

            std::chrono::milliseconds waited{};
            CHECK(wait_for_output(loop, pipe, std::chrono::seconds(5), waited) == "two\nthree\n");
            // The timer counts from the first write, made just before: most of the interval.
            CHECK(waited.count() >= static_cast<long>(StdoutLines::kWriteIntervalMs) / 2);
            CHECK(waited.count() < 2000);

            // A line right after that write waits again; one after a quiet interval does not.
            add_line(lines, "four");
            CHECK(pipe.drain().empty());
            CHECK(wait_for_output(loop, pipe, std::chrono::seconds(5), waited) == "four\n");
            uv_sleep(static_cast<unsigned>(StdoutLines::kWriteIntervalMs) + 20);
            uv_update_time(loop);
            add_line(lines, "five");
            CHECK(pipe.drain() == "five\n");
        }
        uv_run(loop, UV_RUN_DEFAULT);  // the timer's close
        CHECK(loop.close() == 0);
    }

    TEST_CASE("kFlushBytes pending are written at once, and the rest when destroyed") {
        uvtest::TestLoop loop;
        Pipe pipe;
        const std::string line(999, 'x');  // 1,000 bytes with its newline
        std::string written;
        {
            StdoutLines lines(loop, pipe.fds[1]);
            add_line(lines, "first");
            written += pipe.drain();
            std::size_t added = 0;
            while (added < StdoutLines::kFlushBytes) {
                add_line(lines, line);
                added += line.size() + 1;
            }
            // The line that reached kFlushBytes took everything pending with it.
            written += pipe.drain();
            CHECK(written.size() == 6 + added);
            add_line(lines, "last");
            CHECK(pipe.drain().empty());
        }
        CHECK(pipe.drain() == "last\n");  // destroyed: flushed
        uv_run(loop, UV_RUN_DEFAULT);
        CHECK(loop.close() == 0);
    }

    TEST_CASE("flush() writes what is pending and disarms the timer") {
        uvtest::TestLoop loop;
        Pipe pipe;
        {
            StdoutLines lines(loop, pipe.fds[1]);
            CHECK(StdoutLines::current() == &lines);
            add_line(lines, "a");
            add_line(lines, "b");
            CHECK(pipe.drain() == "a\n");
            lines.flush();
            CHECK(pipe.drain() == "b\n");
            // Nothing left for the timer: running the loop through an interval writes nothing.
            std::chrono::milliseconds waited{};
            CHECK(wait_for_output(loop, pipe, std::chrono::milliseconds(
                                                  StdoutLines::kWriteIntervalMs + 50),
                                  waited)
                      .empty());
        }
        CHECK(StdoutLines::current() == nullptr);
        uv_run(loop, UV_RUN_DEFAULT);
        CHECK(loop.close() == 0);
    }
}
