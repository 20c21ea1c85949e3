// Test support: every loop-touching test owns a TestLoop (its own uv loop, checked to close
// clean at the end) and a watchdog, so that a bug fails fast instead of hanging.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace uvtest {

/// Aborts the whole test program with a message naming the running test if it is not
/// destroyed within `limit`. Works even when the loop thread is stuck in a syscall.
class Watchdog {
  public:
    explicit Watchdog(std::chrono::milliseconds limit);
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

/// A fresh uv loop for one test, with a watchdog. The destructor flushes pending close
/// callbacks and CHECKs that `uv_loop_close` returns 0, listing any handle left open.
class TestLoop {
  public:
    explicit TestLoop(std::chrono::milliseconds watchdog = std::chrono::seconds(20));
    ~TestLoop();
    TestLoop(const TestLoop&) = delete;
    TestLoop& operator=(const TestLoop&) = delete;

    /// The loop.
    uv_loop_t* get() noexcept { return loop_.get(); }
    /// The loop.
    operator uv_loop_t*() noexcept { return loop_.get(); }

    /// Flushes close callbacks and closes the loop; returns uv_loop_close's result. If handles
    /// are still open, they are listed on stderr, force-closed, and UV_EBUSY is returned.
    int close();

  private:
    std::unique_ptr<uv_loop_t> loop_;
    bool closed_ = false;
    Watchdog watchdog_;
};

/// Name of the doctest test case now running (for diagnostics).
std::string current_test_name();

/// Records the step a long test is at (a string literal); a watchdog that fires prints it,
/// so that a hang seen once in CI says where it was.
void note_step(const char* step) noexcept;

/// Directory named by an environment variable set by meson (e.g. UVGENA_TEST_DATA), or "".
std::string env_dir(const char* name);

/// True when the test program runs under valgrind (its preload library is in LD_PRELOAD).
/// For the few tests that replace operator new or depend on a time slice running out at a
/// precise point: valgrind replaces the allocator and slows every step, so they cannot run
/// there (they run in every other build, sanitizers included).
inline bool under_valgrind() {
    const char* preload = std::getenv("LD_PRELOAD");
    return preload != nullptr &&
           std::string_view(preload).find("vgpreload") != std::string_view::npos;
}

}  // namespace uvtest
