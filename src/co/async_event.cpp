#include "uvgena/co/async_event.hpp"

namespace uvgena {

AsyncEvent::AsyncEvent(uv_loop_t* loop, bool initially_set) : ctx_(loop), set_(initially_set) {}

AsyncEvent::~AsyncEvent() {
    while (detail::Waiter* w = waiters_.pop_front()) {
        static_cast<detail::EventWaitAwaiter*>(w->owner)->state_ =
            detail::EventWaitAwaiter::State::closed;
        ctx_->schedule(w);
    }
}

void AsyncEvent::set() noexcept {
    set_ = true;
    while (detail::Waiter* w = waiters_.pop_front()) {
        static_cast<detail::EventWaitAwaiter*>(w->owner)->state_ =
            detail::EventWaitAwaiter::State::set;
        ctx_->schedule(w);
    }
}

namespace detail {

bool EventWaitAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (token != nullptr && token->stop_requested()) {
        state_ = State::cancelled;
        return false;
    }
    if (event_->set_) {
        state_ = State::set;
        return false;
    }
    waiter_.handle = h;
    waiter_.owner = this;
    event_->waiters_.push_back(&waiter_);
    register_stop<EventWaitAwaiter, &EventWaitAwaiter::on_stop>(stop_, token, this);
    return true;
}

void EventWaitAwaiter::on_stop(EventWaitAwaiter* self) noexcept {
    if (self->state_ != State::waiting || !self->waiter_.linked()) return;
    self->state_ = State::cancelled;
    self->event_->ctx_->schedule(&self->waiter_);
}

void EventWaitAwaiter::await_resume() const {
    if (state_ == State::cancelled) throw Error(make_error_code(errc::cancelled), "event wait");
    if (state_ == State::closed) throw Error(make_error_code(errc::closed), "event wait");
}

}  // namespace detail
}  // namespace uvgena
