#include "uvgena/blocking/background_loop.hpp"

#include <mutex>
#include <string>
#include <vector>

#include "uvgena/core/log.hpp"

namespace uvgena {

// The loop-thread side of a BackgroundLoop. It owns the loop and lives as long as either the
// BackgroundLoop or its thread (a loop destroyed from its own thread finishes detached).
class BackgroundLoop::LoopOwner {
  public:
    explicit LoopOwner(BackgroundLoopOptions opts) : options(opts) {
        if (options.shutdown_grace.count() < 0) options.shutdown_grace = {};
    }
    LoopOwner(const LoopOwner&) = delete;
    LoopOwner& operator=(const LoopOwner&) = delete;

    // Sets up the loop and the async handle, on the constructing thread before the loop
    // thread starts.
    void init() {
        loop = std::make_unique<uv_loop_t>();
        int rc = uv_loop_init(loop.get());
        if (rc != 0) {
            loop.reset();
            throw Error(uv_error(rc), "BackgroundLoop: uv_loop_init");
        }
        async = new uv_async_t;
        rc = uv_async_init(loop.get(), async, &LoopOwner::on_async);
        if (rc != 0) {
            delete async;
            async = nullptr;
            uv_loop_close(loop.get());
            loop.reset();
            throw Error(uv_error(rc), "BackgroundLoop: uv_async_init");
        }
        async->data = this;
        mailbox = std::make_shared<detail::Mailbox>(async);
    }

    // Undoes init() when the thread could not be started.
    void abort_init() noexcept {
        close_async();
        finish_loop();
    }

    void main() noexcept;

    BackgroundLoopOptions options;
    std::unique_ptr<uv_loop_t> loop;
    uv_async_t* async = nullptr;
    std::shared_ptr<detail::Mailbox> mailbox;
    std::vector<std::shared_ptr<void>> kept;  // loop thread only

  private:
    static void on_async(uv_async_t* handle);
    void drain() noexcept;
    void shutdown(Scope& scope, Clock::time_point deadline) noexcept;
    void settle_spawned(Clock::time_point deadline) noexcept;
    void close_async() noexcept;
    void finish_loop() noexcept;
    void leak_loop() noexcept;

    Scope* scope_ = nullptr;
    bool stop_seen_ = false;
    std::vector<std::unique_ptr<detail::Job>> batch_;
};

void BackgroundLoop::LoopOwner::on_async(uv_async_t* handle) {
    static_cast<LoopOwner*>(handle->data)->drain();
}

void BackgroundLoop::LoopOwner::drain() noexcept {
    // uv_async_send coalesces wake-ups, and libuv clears the pending flag before calling this:
    // a job posted after take() sends again, so none is left behind.
    bool stopping = mailbox->take(batch_);
    detail::JobContext context{loop.get(), scope_};
    for (auto& job : batch_) {
        // A stop requested while this batch runs abandons the rest of it.
        if (!stopping && mailbox->stop_requested()) stopping = true;
        if (stopping) {
            job->abandon();
        } else {
            job->run(context);
        }
        job.reset();  // the callable dies here, on the loop thread
    }
    batch_.clear();
    if (stopping && !stop_seen_) {
        // Jobs posted after take() and before the stop are abandoned by the next drain,
        // which the stop request's uv_async_send guarantees.
        stop_seen_ = true;
        uv_stop(loop.get());
    }
}

void BackgroundLoop::LoopOwner::main() noexcept {
    Clock::time_point deadline = Clock::now();
    try {
        Scope scope(loop.get());
        scope_ = &scope;
        // uv_run returns on uv_stop, called once stop was requested (user code calling
        // uv_stop on this loop must not end it early).
        while (!stop_seen_) uv_run(loop.get(), UV_RUN_DEFAULT);
        deadline = Clock::now() + options.shutdown_grace;
        shutdown(scope, deadline);
        scope_ = nullptr;
    } catch (const std::exception& e) {
        log(LogLevel::error, "BackgroundLoop thread: ", e.what());
    }
    // Objects kept for the loop's lifetime, newest first (they may refer to older ones), after
    // the tasks that may use them. Their destructors may start work with uvgena::spawn (a
    // dropped Subscription's lenient UNSUBSCRIBE): it gets what is left of the grace period,
    // then is destroyed like the rest, before the handles are closed.
    while (!kept.empty()) kept.pop_back();
    settle_spawned(deadline);
    try {
        // Tasks spawned with uvgena::spawn(loop) that outlived the grace period.
        detail::LoopRef ctx(loop.get());
        ctx->spawned().destroy_all();
    } catch (const std::exception& e) {
        log(LogLevel::error, "BackgroundLoop thread: ", e.what());
    }
    close_async();
    finish_loop();
}

namespace {

Task<void> join_spawned(uv_loop_t* loop) {
    detail::LoopRef ctx(loop);
    co_await detail::JoinAwaiter(&ctx->spawned());
}

Task<void> join_all(uv_loop_t* loop, Scope* scope) {
    co_await scope->join();
    co_await join_spawned(loop);
}

}  // namespace

void BackgroundLoop::LoopOwner::shutdown(Scope& scope, Clock::time_point deadline) noexcept {
    // Every task sees its stop token; each may still do asynchronous cleanup (a lenient
    // UNSUBSCRIBE) under a token of its own, within the grace period.
    scope.request_stop();
    try {
        request_stop_spawned(loop.get());
        uvgena::run(loop.get(), with_deadline(loop.get(), join_all(loop.get(), &scope), deadline));
    } catch (const std::system_error& e) {
        if (is_timeout(e.code())) {
            log(LogLevel::warning, "BackgroundLoop::stop: ", scope.size(),
                " task(s) still running after the shutdown grace period; destroying them");
        } else {
            log(LogLevel::error, "BackgroundLoop::stop: ", e.what());
        }
    } catch (const std::exception& e) {
        log(LogLevel::error, "BackgroundLoop::stop: ", e.what());
    }
}

void BackgroundLoop::LoopOwner::settle_spawned(Clock::time_point deadline) noexcept {
    try {
        detail::LoopRef ctx(loop.get());
        if (ctx->spawned().size() == 0) return;
        // Not stopped: the work was started on purpose (an UNSUBSCRIBE), and is bounded by
        // the deadline alone.
        uvgena::run(loop.get(), with_deadline(loop.get(), join_spawned(loop.get()), deadline));
    } catch (const std::system_error& e) {
        if (is_timeout(e.code())) {
            log(LogLevel::warning,
                "BackgroundLoop::stop: work started by objects kept until stop still running "
                "after the shutdown grace period; destroying it");
        } else {
            log(LogLevel::error, "BackgroundLoop::stop: ", e.what());
        }
    } catch (const std::exception& e) {
        log(LogLevel::error, "BackgroundLoop::stop: ", e.what());
    }
}

void BackgroundLoop::LoopOwner::close_async() noexcept {
    if (async == nullptr) return;
    uv_close(reinterpret_cast<uv_handle_t*>(async),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
    async = nullptr;
}

void BackgroundLoop::LoopOwner::finish_loop() noexcept {
    uv_loop_t* l = loop.get();
    // Close callbacks and cancelled requests complete within a few turns; a handle that is
    // still active now belongs to code that never closed it.
    for (int i = 0; i < 64 && uv_run(l, UV_RUN_NOWAIT) != 0; ++i) {
    }
    int left_open = 0;
    uv_walk(
        l,
        [](uv_handle_t* handle, void* count) {
            if (uv_is_closing(handle)) return;
            ++*static_cast<int*>(count);
            log(LogLevel::error, "BackgroundLoop::stop: closing a ",
                uv_handle_type_name(uv_handle_get_type(handle)),
                " handle that its owner left open");
            uv_close(handle, nullptr);
        },
        &left_open);
    for (int i = 0; i < 64 && uv_run(l, UV_RUN_NOWAIT) != 0; ++i) {
    }
    int rc = uv_loop_close(l);
    if (rc != 0) {
        // Freeing a loop that libuv still uses would be worse than leaking it.
        log(LogLevel::error, "BackgroundLoop::stop: uv_loop_close: ", uv_err_name(rc),
            "; the loop is leaked");
        leak_loop();
    } else if (left_open > 0) {
        // A handle left open may belong to a library object that outlived its loop (its
        // per-loop state is found by the loop's address): keeping the address from being
        // reused by a new loop is worth a few hundred bytes.
        log(LogLevel::error,
            "BackgroundLoop::stop: the loop's memory is kept so that objects "
            "left on it cannot be confused with a new loop's");
        leak_loop();
    }
}

void BackgroundLoop::LoopOwner::leak_loop() noexcept {
    // Kept reachable from a registry that is never destroyed, so that leak checkers
    // (LeakSanitizer, valgrind) see memory held on purpose rather than lost.
    static std::mutex kept_mutex;
    static auto* kept_loops = new std::vector<uv_loop_t*>();
    std::lock_guard lock(kept_mutex);
    try {
        kept_loops->push_back(loop.get());
    } catch (...) {
        // Out of memory: the loop stays allocated either way; only the bookkeeping is lost.
    }
    (void)loop.release();
}

BackgroundLoop::BackgroundLoop(BackgroundLoopOptions options)
    : owner_(std::make_shared<LoopOwner>(options)) {
    owner_->init();
    try {
        thread_ = std::thread([self = owner_] { self->main(); });
    } catch (...) {
        owner_->abort_init();
        throw;
    }
    poster_ = detail::LoopPoster(owner_->mailbox, thread_.get_id(), owner_->loop.get());
}

BackgroundLoop::~BackgroundLoop() {
    if (in_loop_thread()) {
        owner_->mailbox->request_stop();
        std::lock_guard lock(join_mutex_);
        if (thread_.joinable()) thread_.detach();
        return;
    }
    stop();
}

void BackgroundLoop::stop() {
    owner_->mailbox->request_stop();
    if (in_loop_thread()) return;
    std::lock_guard lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
}

void BackgroundLoop::keep_until_stop(std::shared_ptr<void> object) {
    if (!in_loop_thread()) {
        throw Error(make_error_code(errc::wrong_thread),
                    "BackgroundLoop::keep_until_stop outside the loop thread");
    }
    owner_->kept.push_back(std::move(object));
}

void detail::LoopPoster::post(std::unique_ptr<Job>& job) const {
    if (!mailbox_ || !mailbox_->post(job)) {
        throw Error(make_error_code(errc::not_running), "BackgroundLoop::run after stop");
    }
}

}  // namespace uvgena
