#include "uvgena/co/scope.hpp"

#include "uvgena/core/log.hpp"

namespace uvgena {
namespace detail {
namespace {

// Awaits one detached task and reports what escapes it. A cancellation that follows a stop
// request is the normal way for a stopped task to end, not an error.
RootTask root_body(DetachedTasks* list, Task<void> task) {
    std::stop_token token = co_await current_stop_token();
    try {
        co_await std::move(task);
    } catch (const std::system_error& e) {
        if (!(is_cancelled(e.code()) && token.stop_requested())) {
            list->report(std::current_exception());
        }
    } catch (...) {
        list->report(std::current_exception());
    }
}

void log_escaped(std::exception_ptr error) noexcept {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        log(LogLevel::error, "exception escaped a detached task: ", e.what());
    } catch (...) {
        log(LogLevel::error, "exception escaped a detached task: (not a std::exception)");
    }
}

}  // namespace

RootTask RootTask::promise_type::get_return_object() noexcept {
    return RootTask{std::coroutine_handle<promise_type>::from_promise(*this)};
}

RootTask::promise_type::~promise_type() {
    if (owner != nullptr) owner->on_root_gone(this);
}

DetachedTasks::DetachedTasks(LoopContext* ctx, ErrorHandler on_error)
    : ctx_(ctx), on_error_(std::move(on_error)) {}

DetachedTasks::~DetachedTasks() {
    destroy_all();
}

void DetachedTasks::start(Task<void> task, std::stop_token token) {
    RootTask root = root_body(this, std::move(task));
    auto& p = root.handle.promise();
    p.set_stop_token(std::move(token));
    p.owner = this;
    p.member.owner = &p;
    members_.push_back(&p.member);
    p.start.handle = root.handle;
    ++count_;
    ctx_->add_ref();
    ctx_->schedule(&p.start);
}

void DetachedTasks::report(std::exception_ptr error) noexcept {
    if (!on_error_) {
        log_escaped(error);
        return;
    }
    try {
        on_error_(error);
    } catch (...) {
        log(LogLevel::error, "a Scope error handler threw; the original error follows");
        log_escaped(error);
    }
}

void DetachedTasks::on_root_gone(RootTask::promise_type* root) noexcept {
    root->member.unlink();
    --count_;
    if (count_ == 0) {
        // Joiners are scheduled before the reference is dropped, so the context stays.
        while (Waiter* w = joiners_.pop_front()) {
            static_cast<JoinAwaiter*>(w->owner)->woken_ = true;
            ctx_->schedule(w);
        }
    }
    ctx_->release();
}

void DetachedTasks::destroy_all() noexcept {
    while (Waiter* w = members_.pop_front()) {
        auto* p = static_cast<RootTask::promise_type*>(w->owner);
        std::coroutine_handle<RootTask::promise_type>::from_promise(*p).destroy();
    }
}

bool JoinAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (token != nullptr && token->stop_requested()) {
        cancelled_ = true;
        return false;
    }
    if (list_->size() == 0) return false;
    waiter_.handle = h;
    waiter_.owner = this;
    list_->joiners().push_back(&waiter_);
    register_stop<JoinAwaiter, &JoinAwaiter::on_stop>(stop_, token, this);
    return true;
}

void JoinAwaiter::on_stop(JoinAwaiter* self) noexcept {
    if (self->woken_ || self->cancelled_ || !self->waiter_.linked()) return;
    self->cancelled_ = true;
    self->list_->context()->schedule(&self->waiter_);
}

void JoinAwaiter::await_resume() {
    stop_.reset();
    if (cancelled_) throw Error(make_error_code(errc::cancelled), "scope join");
}

DetachedTasks& LoopContext::spawned() {
    if (spawned_ == nullptr) {
        spawned_ = new DetachedTasks(this, {});
        drop_spawned_ = [](DetachedTasks* tasks) noexcept { delete tasks; };
    }
    return *spawned_;
}

void drive_until_done(uv_loop_t* loop, std::coroutine_handle<> h) {
    while (!h.done()) {
        int alive = uv_run(loop, UV_RUN_ONCE);
        if (alive == 0 && !h.done()) {
            throw Error(make_error_code(errc::loop_drained), "run");
        }
    }
}

}  // namespace detail

Scope::Scope(uv_loop_t* loop, ErrorHandler on_error)
    : ctx_(loop), tasks_(ctx_.get(), std::move(on_error)) {}

Scope::~Scope() {
    stop_.request_stop();
    tasks_.destroy_all();
}

void Scope::spawn(Task<void> task) {
    tasks_.start(std::move(task), stop_.get_token());
}

uv_loop_t* Scope::loop() const noexcept {
    return ctx_->loop();
}

void spawn(uv_loop_t* loop, Task<void> task) {
    detail::LoopRef ctx(loop);
    ctx->spawned().start(std::move(task), ctx->spawn_stop_source().get_token());
}

void request_stop_spawned(uv_loop_t* loop) {
    detail::LoopRef ctx(loop);
    // Later spawns get a fresh source, so that they are not born stopped.
    std::stop_source old = std::exchange(ctx->spawn_stop_source(), std::stop_source());
    old.request_stop();
}

}  // namespace uvgena
