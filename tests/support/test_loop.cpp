#include "support/test_loop.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>

namespace uvtest {
namespace {

std::mutex g_name_mutex;
std::string g_current_test = "(none)";
std::atomic<const char*> g_step{"(none noted)"};

// Records the running test case so that the watchdog can name it.
struct CurrentTestListener : doctest::IReporter {
    explicit CurrentTestListener(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    void test_case_start(const doctest::TestCaseData& data) override {
        std::lock_guard lock(g_name_mutex);
        g_current_test = data.m_name;
        g_step.store("(none noted)", std::memory_order_relaxed);
    }
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("uvgena-current-test", 1, CurrentTestListener);

}  // namespace

std::string current_test_name() {
    std::lock_guard lock(g_name_mutex);
    return g_current_test;
}

void note_step(const char* step) noexcept {
    g_step.store(step, std::memory_order_relaxed);
}

std::string env_dir(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

Watchdog::Watchdog(std::chrono::milliseconds limit) {
    thread_ = std::thread([this, limit] {
        std::unique_lock lock(mutex_);
        if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr,
                         "\nWATCHDOG: test \"%s\" still running after %lld ms (last step: %s); "
                         "aborting\n",
                         current_test_name().c_str(), static_cast<long long>(limit.count()),
                         g_step.load(std::memory_order_relaxed));
            std::fflush(stderr);
            std::_Exit(124);
        }
    });
}

Watchdog::~Watchdog() {
    {
        std::lock_guard lock(mutex_);
        done_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

TestLoop::TestLoop(std::chrono::milliseconds watchdog)
    : loop_(std::make_unique<uv_loop_t>()), watchdog_(watchdog) {
    REQUIRE(uv_loop_init(loop_.get()) == 0);
}

TestLoop::~TestLoop() {
    if (!closed_) CHECK_MESSAGE(close() == 0, "the test's loop did not close clean");
}

int TestLoop::close() {
    if (closed_) return 0;
    // Close callbacks and zero-timeout work still pending are flushed by a few turns.
    for (int i = 0; i < 16; ++i) uv_run(loop_.get(), UV_RUN_NOWAIT);
    int rc = uv_loop_close(loop_.get());
    if (rc == UV_EBUSY) {
        uv_walk(
            loop_.get(),
            [](uv_handle_t* handle, void*) {
                std::fprintf(stderr, "  handle left open: %s (active=%d, ref=%d)\n",
                             uv_handle_type_name(uv_handle_get_type(handle)), uv_is_active(handle),
                             uv_has_ref(handle));
                if (!uv_is_closing(handle)) uv_close(handle, nullptr);
            },
            nullptr);
        for (int i = 0; i < 16; ++i) uv_run(loop_.get(), UV_RUN_NOWAIT);
        uv_loop_close(loop_.get());
    }
    closed_ = true;
    return rc;
}

}  // namespace uvtest
