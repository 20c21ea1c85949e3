#include "uvgena/blocking/eventual_result.hpp"

#include <utility>

#include "uvgena/blocking/mailbox.hpp"
#include "uvgena/core/log.hpp"

namespace uvgena::detail {
namespace {

// Requests stop on a result's stop source from the loop thread, where the stop callbacks of
// the co layer must run.
class CancelJob final : public Job {
  public:
    explicit CancelJob(std::shared_ptr<ResultStateBase> state) noexcept
        : state_(std::move(state)) {}
    void run(const JobContext&) noexcept override { state_->stop_on_loop(); }
    void abandon() noexcept override {}

  private:
    std::shared_ptr<ResultStateBase> state_;
};

// Cancellation and shutdown are outcomes the caller asked for, not errors to report.
bool is_expected_end(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::system_error& e) {
        return is_cancelled(e.code()) || e.code() == make_error_code(errc::not_running);
    } catch (...) {
        return false;
    }
}

}  // namespace

ResultStateBase::ResultStateBase(std::weak_ptr<Mailbox> mailbox,
                                 std::thread::id loop_thread) noexcept
    : mailbox_(std::move(mailbox)), loop_thread_(loop_thread) {}

ResultStateBase::~ResultStateBase() {
    if (!error_ || is_expected_end(error_)) return;
    try {
        std::rethrow_exception(error_);
    } catch (const std::exception& e) {
        log(LogLevel::warning,
            "an EventualResult was dropped with an exception nobody waited for: ", e.what());
    } catch (...) {
        log(LogLevel::warning,
            "an EventualResult was dropped with an exception nobody waited for (not a "
            "std::exception)");
    }
}

bool ResultStateBase::ready() const {
    std::lock_guard lock(mutex_);
    return done_;
}

void ResultStateBase::check_thread() const {
    if (std::this_thread::get_id() == loop_thread_) {
        throw Error(make_error_code(errc::wrong_thread),
                    "EventualResult::wait on the loop's own thread would deadlock");
    }
}

void ResultStateBase::wait_ready() const {
    check_thread();
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return done_; });
}

bool ResultStateBase::wait_ready_until(std::chrono::steady_clock::time_point deadline) const {
    check_thread();
    std::unique_lock lock(mutex_);
    return cv_.wait_until(lock, deadline, [this] { return done_; });
}

void ResultStateBase::request_cancel() {
    if (cancel_requested_.exchange(true) || ready()) return;
    std::shared_ptr<Mailbox> mailbox = mailbox_.lock();
    if (!mailbox) return;
    // Once the loop stops accepting jobs, its shutdown cancels every task anyway.
    std::unique_ptr<Job> job = std::make_unique<CancelJob>(shared_from_this());
    mailbox->post(job);
}

void ResultStateBase::set_exception(std::exception_ptr error) noexcept {
    if (completed_on_loop_) return;
    {
        std::lock_guard lock(mutex_);
        error_ = std::move(error);
        mark_complete_locked();
    }
    cv_.notify_all();
}

void ResultStateBase::fail(std::error_code code, const char* context) noexcept {
    if (completed_on_loop_) return;
    try {
        set_exception(std::make_exception_ptr(Error(code, context)));
    } catch (...) {
        set_exception(std::current_exception());  // out of memory while describing the error
    }
}

std::exception_ptr ResultStateBase::take_error_locked() {
    if (error_seen_) {
        return std::make_exception_ptr(
            Error(make_error_code(errc::invalid_argument),
                  "EventualResult: the outcome was already taken by an earlier wait()"));
    }
    // Moved out, so that the exception object is released by the thread that handles it,
    // never by the loop thread behind its back.
    error_seen_ = true;
    return std::exchange(error_, nullptr);
}

}  // namespace uvgena::detail
