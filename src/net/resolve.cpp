// Name resolution: uv_getaddrinfo in libuv's threadpool, as an awaitable.
#include "uvgena/net/resolve.hpp"

#include <algorithm>
#include <memory>
#include <string>

#include "net/completion.hpp"
#include "uvgena/core/error.hpp"

namespace uvgena {
namespace detail {
namespace {

struct ResolveOp;

class ResolveAwaiter : public StoppableAwaiter<ResolveAwaiter> {
  public:
    ResolveAwaiter(uv_loop_t* loop, const std::string& host, const addrinfo& hints) noexcept
        : loop_(loop), host_(host), hints_(hints) {}
    ~ResolveAwaiter();
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> await_resume() {
        stop_.reset();
        if (cancelled_) throw Error(make_error_code(errc::cancelled), "resolve " + host_);
        if (status_ != 0) throw Error(uv_error(status_), "resolve " + host_);
        return {std::exchange(result_, nullptr), &uv_freeaddrinfo};
    }

  private:
    friend struct ResolveOp;
    friend class StoppableAwaiter<ResolveAwaiter>;
    bool suspend(std::coroutine_handle<> h, const std::stop_token* token);
    static void on_stop(ResolveAwaiter* self) noexcept;

    uv_loop_t* loop_;
    LoopRef ctx_;
    const std::string& host_;
    addrinfo hints_;
    ResolveOp* op_ = nullptr;
    addrinfo* result_ = nullptr;
    int status_ = 0;
    bool cancelled_ = false;
    Waiter waiter_;
    StopRegistration stop_;
};

struct ResolveOp {
    uv_getaddrinfo_t req;
    ResolveAwaiter* awaiter = nullptr;

    static void on_done(uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* op = static_cast<ResolveOp*>(req->data);
        ResolveAwaiter* aw = op->awaiter;
        delete op;
        if (aw == nullptr) {
            if (res != nullptr) uv_freeaddrinfo(res);
            return;
        }
        aw->op_ = nullptr;
        aw->status_ = status;
        aw->result_ = res;
        complete(aw->ctx_.get(), &aw->waiter_);
    }
};

ResolveAwaiter::~ResolveAwaiter() {
    stop_.reset();
    if (op_ != nullptr) {
        op_->awaiter = nullptr;
        uv_cancel(reinterpret_cast<uv_req_t*>(&op_->req));
    }
    if (result_ != nullptr) uv_freeaddrinfo(result_);
}

bool ResolveAwaiter::suspend(std::coroutine_handle<> h, const std::stop_token* token) {
    if (token != nullptr && token->stop_requested()) {
        cancelled_ = true;
        return false;
    }
    ctx_ = LoopRef(loop_);
    auto* op = new ResolveOp;
    op->req.data = op;
    op->awaiter = this;
    waiter_.handle = h;
    register_stop<ResolveAwaiter, &ResolveAwaiter::on_stop>(stop_, token, this);
    // libuv copies the host name and hints into its own request memory.
    int r = uv_getaddrinfo(loop_, &op->req, &ResolveOp::on_done, host_.c_str(), nullptr, &hints_);
    return keep_if_started(r, op, op_, stop_, status_);
}

void ResolveAwaiter::on_stop(ResolveAwaiter* self) noexcept {
    if (self->op_ == nullptr) return;
    self->cancelled_ = true;
    // If the lookup already runs in the threadpool, uv_cancel fails and the awaiter resumes
    // when it completes; either way libuv's callback comes from the loop, later.
    uv_cancel(reinterpret_cast<uv_req_t*>(&self->op_->req));
}

}  // namespace
}  // namespace detail

Task<std::vector<SocketAddress>> resolve(uv_loop_t* loop, std::string host, std::uint16_t port,
                                         ResolveOptions options) {
    addrinfo hints{};
    hints.ai_family = options.family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    if (options.numeric_host) hints.ai_flags |= AI_NUMERICHOST;
    auto list = co_await detail::ResolveAwaiter(loop, host, hints);
    std::vector<SocketAddress> out;
    for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
        auto a = SocketAddress::from_sockaddr(ai->ai_addr);
        if (!a) continue;
        SocketAddress address = *a;
        address.set_port(port);
        if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
    }
    if (out.empty()) throw Error(uv_error(UV_EAI_NONAME), "resolve " + host + ": no TCP address");
    co_return out;
}

}  // namespace uvgena
