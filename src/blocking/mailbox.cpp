#include "uvgena/blocking/mailbox.hpp"

#include <utility>

namespace uvgena {

namespace detail {

Mailbox::~Mailbox() = default;

bool Mailbox::post(std::unique_ptr<Job>& job) {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    queue_.push_back(std::move(job));
    // Sent under the lock: the loop thread closes the async handle only after it has seen
    // stopping_ set, so no send can reach a closed handle.
    uv_async_send(async_);
    return true;
}

bool Mailbox::request_stop() {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    stopping_ = true;
    stop_flag_.store(true, std::memory_order_release);
    uv_async_send(async_);
    return true;
}

bool Mailbox::accepting() const {
    std::lock_guard lock(mutex_);
    return !stopping_;
}

bool Mailbox::take(std::vector<std::unique_ptr<Job>>& out) {
    std::lock_guard lock(mutex_);
    if (out.empty()) {
        out.swap(queue_);
    } else {
        for (auto& job : queue_) out.push_back(std::move(job));
        queue_.clear();
    }
    return stopping_;
}

}  // namespace detail

}  // namespace uvgena
