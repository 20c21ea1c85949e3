// The cross-thread queue of a BackgroundLoop and the jobs it carries. Its own header so that
// EventualResult (which posts cancellations) and BackgroundLoop (which drains the queue) both
// use it without including each other. Internal to the blocking layer (namespace detail);
// public only because the templates of background_loop.hpp need it.
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "uvgena/core/export.hpp"

namespace uvgena {

class Scope;

namespace detail {

/// What a job posted to the loop thread is given: the loop and the scope its tasks live in.
struct UVGENA_API JobContext {
    uv_loop_t* loop;  ///< The loop.
    Scope* scope;     ///< The scope in which tasks started by run() live.
};

/// A unit of work posted to a loop thread. Exactly one of run() or abandon() is called, on
/// the loop thread, unless posting failed (then neither).
class UVGENA_API Job {
  public:
    Job() noexcept = default;
    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;
    virtual ~Job() = default;
    /// Does the work, or starts it (loop thread).
    virtual void run(const JobContext& context) noexcept = 0;
    /// The loop stops before the job ran (loop thread).
    virtual void abandon() noexcept = 0;
};

/// The cross-thread queue of one BackgroundLoop: any thread posts, the loop thread drains.
/// Shared by the BackgroundLoop and (weakly) by result states, which post cancellations.
class UVGENA_API Mailbox {
  public:
    /// A mailbox waking `async` (initialised on the loop; the mailbox does not own it).
    explicit Mailbox(uv_async_t* async) noexcept : async_(async) {}
    Mailbox(const Mailbox&) = delete;
    Mailbox& operator=(const Mailbox&) = delete;
    ~Mailbox();

    /// Queues `job` and wakes the loop; returns false, leaving `job` untouched, once stop was
    /// requested.
    bool post(std::unique_ptr<Job>& job);
    /// Refuses further posts and wakes the loop to stop. Returns false if already requested.
    bool request_stop();
    /// True until stop was requested.
    bool accepting() const;
    /// True once stop was requested (lock-free, for checks between jobs).
    bool stop_requested() const noexcept { return stop_flag_.load(std::memory_order_acquire); }

    /// Moves the queued jobs to the back of `out` (loop thread); returns true once stop was
    /// requested, in which case no job will ever be queued again.
    bool take(std::vector<std::unique_ptr<Job>>& out);

  private:
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Job>> queue_;
    uv_async_t* async_;
    bool stopping_ = false;
    std::atomic<bool> stop_flag_{false};
};

}  // namespace detail
}  // namespace uvgena
