#include "uvgena/co/timer.hpp"

namespace uvgena::detail {

SleepAwaiter::~SleepAwaiter() {
    stop_.reset();
    if (ctx_) ctx_->remove_timer(&timer_);
}

bool SleepAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (token != nullptr && token->stop_requested()) {
        cancelled_ = true;
        return false;
    }
    ctx_ = LoopRef(loop_);
    waiter_.handle = h;
    timer_.deadline = deadline_;
    timer_.fire = &SleepAwaiter::on_fire;
    timer_.owner = this;
    register_stop<SleepAwaiter, &SleepAwaiter::on_stop>(stop_, token, this);
    ctx_->add_timer(&timer_);
    return true;
}

void SleepAwaiter::on_fire(TimerNode* node) noexcept {
    // Resuming from the timer callback is fine: the heap is consistent here.
    auto* self = static_cast<SleepAwaiter*>(node->owner);
    self->ctx_->resume_or_defer(&self->waiter_);
}

void SleepAwaiter::on_stop(SleepAwaiter* self) noexcept {
    if (!self->timer_.armed()) return;
    self->ctx_->remove_timer(&self->timer_);
    self->cancelled_ = true;
    self->ctx_->schedule(&self->waiter_);
}

void SleepAwaiter::await_resume() const {
    if (cancelled_) throw Error(make_error_code(errc::cancelled), "sleep");
}

DeadlineGuard::DeadlineGuard(uv_loop_t* loop, Clock::time_point deadline, std::stop_source source)
    : ctx_(loop), source_(std::move(source)) {
    timer_.deadline = deadline;
    timer_.fire = &DeadlineGuard::on_fire;
    timer_.owner = this;
    ctx_->add_timer(&timer_);
}

DeadlineGuard::~DeadlineGuard() {
    ctx_->remove_timer(&timer_);
}

void DeadlineGuard::on_fire(TimerNode* node) noexcept {
    auto* self = static_cast<DeadlineGuard*>(node->owner);
    self->fired_ = true;
    self->source_.request_stop();
}

}  // namespace uvgena::detail
