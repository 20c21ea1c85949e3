#include "uvgena/co/loop_context.hpp"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <mutex>
#include <unordered_map>

#include "uvgena/core/error.hpp"

// The global state of the co layer, all of it in this file, and why it is global:
//  - g_default_slice_ns: the process-wide default time slice (set_time_slice without a
//    loop). Loops given a slice of their own (set_time_slice(loop, ...)) ignore it; the
//    others follow it at once, as they always did (a benchmark turns it off mid-run).
//  - the registry (loop -> context) and its mutex: a context must be found from a bare
//    uv_loop_t*, and loop->data belongs to the application, so the map is keyed by address.
//    Several loops may run in several threads, hence the lock.
//  - g_generation and the thread_local memo: a lookup cache that spares the lock on the hot
//    path (every awaiter that takes a LoopRef); the generation invalidates it whenever any
//    context is destroyed, since a new loop may reuse a freed loop's address.
// Everything else (ready queue, timer heap, the time-slice window, spawned tasks) is per loop.
// The net layer adds one more: a per-thread cache of TCP read buffers (net/buffer_pool.cpp);
// the control layer the process-wide cache of service descriptions (control/client.cpp).

namespace uvgena::detail {
namespace {

// Rounds of the ready queue drained in one check phase (see drain()).
constexpr int kDrainRounds = 16;

// See set_time_slice(); in nanoseconds (uv_hrtime), 0 = unbounded.
std::atomic<std::uint64_t> g_default_slice_ns{1'000'000};

// Loops -> contexts. Several loops may live in several threads; each context is used only
// from its loop's thread, so only this map needs the lock.
std::mutex g_registry_mutex;
std::unordered_map<uv_loop_t*, LoopContext*>& registry() {
    static auto* map = new std::unordered_map<uv_loop_t*, LoopContext*>();
    return *map;
}

// A per-thread memo of the last lookup, valid while no context anywhere was destroyed since
// (a destroyed context's loop address may be reused by a new loop). A context is destroyed
// only on its own loop's thread, so a thread using its loop cannot see it vanish between the
// check and the add_ref.
std::atomic<std::uint64_t> g_generation{0};
struct LookupMemo {
    uv_loop_t* loop = nullptr;
    LoopContext* ctx = nullptr;
    std::uint64_t generation = 0;
};
thread_local LookupMemo t_memo;

}  // namespace

LoopContext* LoopContext::acquire(uv_loop_t* loop) {
    if (t_memo.loop == loop && t_memo.generation == g_generation.load(std::memory_order_acquire)) {
        t_memo.ctx->add_ref();
        return t_memo.ctx;
    }
    std::lock_guard lock(g_registry_mutex);
    auto& map = registry();
    LoopContext* ctx;
    auto it = map.find(loop);
    if (it != map.end()) {
        ctx = it->second;
    } else {
        ctx = new LoopContext(loop);
        map.emplace(loop, ctx);
    }
    ctx->add_ref();
    t_memo = {loop, ctx, g_generation.load(std::memory_order_relaxed)};
    return ctx;
}

LoopContext* LoopContext::find(uv_loop_t* loop) noexcept {
    std::lock_guard lock(g_registry_mutex);
    auto& map = registry();
    auto it = map.find(loop);
    return it != map.end() && !it->second->closing_ ? it->second : nullptr;
}

LoopContext::LoopContext(uv_loop_t* loop)
    : loop_(loop),
      check_(new uv_check_t),
      prepare_(new uv_prepare_t),
      idle_(new uv_idle_t),
      timer_(new uv_timer_t) {
    uv_check_init(loop_, check_);
    uv_prepare_init(loop_, prepare_);
    uv_idle_init(loop_, idle_);
    uv_timer_init(loop_, timer_);
    check_->data = prepare_->data = idle_->data = timer_->data = this;
    open_handles_ = 4;
    // The check and prepare handles never keep the loop alive; the idle handle does, but is
    // active only while ready work is queued; the timer only while a deadline is armed.
    uv_check_start(check_, &LoopContext::on_check);
    uv_unref(reinterpret_cast<uv_handle_t*>(check_));
    uv_prepare_start(prepare_, &LoopContext::on_prepare);
    uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
}

LoopContext::~LoopContext() = default;

void LoopContext::release() noexcept {
    assert(refs_ > 0);
    --refs_;
    maybe_close();
}

void LoopContext::maybe_close() noexcept {
    // Live detached tasks and queued coroutines hold references (the latter through the
    // drain), so refs_ == 0 with an empty queue means nothing of the library uses the loop.
    if (closing_ || refs_ > 0 || !ready_.empty()) return;
    closing_ = true;
    {
        std::lock_guard lock(g_registry_mutex);
        auto& map = registry();
        auto it = map.find(loop_);
        if (it != map.end() && it->second == this) map.erase(it);
        g_generation.fetch_add(1, std::memory_order_release);
    }
    // The implicit scope of spawn() has no live task here (each holds a reference).
    if (spawned_ != nullptr) drop_spawned_(std::exchange(spawned_, nullptr));
    uv_close(reinterpret_cast<uv_handle_t*>(check_), &LoopContext::on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(prepare_), &LoopContext::on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(idle_), &LoopContext::on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), &LoopContext::on_close);
}

void LoopContext::on_close(uv_handle_t* handle) {
    auto* ctx = static_cast<LoopContext*>(handle->data);
    switch (handle->type) {
        case UV_CHECK:
            delete reinterpret_cast<uv_check_t*>(handle);
            break;
        case UV_PREPARE:
            delete reinterpret_cast<uv_prepare_t*>(handle);
            break;
        case UV_IDLE:
            delete reinterpret_cast<uv_idle_t*>(handle);
            break;
        case UV_TIMER:
            delete reinterpret_cast<uv_timer_t*>(handle);
            break;
        default:
            break;
    }
    if (--ctx->open_handles_ == 0) delete ctx;
}

void LoopContext::schedule(Waiter* w) noexcept {
    assert(w->handle);
    ready_.push_back(w);
    if (!idle_active_ && !closing_) {
        idle_active_ = true;
        uv_idle_start(idle_, &LoopContext::on_idle);
    }
}

void LoopContext::on_idle(uv_idle_t* handle) {
    // An active idle handle makes the poll phase non-blocking so that the check phase runs
    // promptly. Queued coroutines destroyed meanwhile unlink themselves: if none is left,
    // the loop must be free to block (or end) again.
    auto* ctx = static_cast<LoopContext*>(handle->data);
    if (ctx->ready_.empty()) {
        ctx->idle_active_ = false;
        uv_idle_stop(handle);
        ctx->maybe_close();
    }
}

std::uint64_t LoopContext::time_slice_ns() const noexcept {
    if (own_slice_ns_ >= 0) return static_cast<std::uint64_t>(own_slice_ns_);
    return g_default_slice_ns.load(std::memory_order_relaxed);
}

void LoopContext::resume_or_defer(Waiter* w) noexcept {
    assert(w->handle);
    std::uint64_t slice = time_slice_ns();
    if (!window_spent_ && !closing_) {
        if (slice == 0) {
            w->handle.resume();
            return;
        }
        std::uint64_t now = uv_hrtime();
        if (window_start_ == 0) window_start_ = now;
        if (now - window_start_ < slice) {
            w->handle.resume();
            return;
        }
        // Spent for the rest of this turn: what comes later waits behind what is queued.
        window_spent_ = true;
    } else if (closing_) {
        // No check phase will run any more; only reachable with no library object left.
        w->handle.resume();
        return;
    }
    schedule(w);
}

void LoopContext::on_prepare(uv_prepare_t* handle) {
    // Just before the poll: the I/O callbacks about to run open a new window.
    auto* ctx = static_cast<LoopContext*>(handle->data);
    ctx->window_start_ = 0;
    ctx->window_spent_ = false;
}

void LoopContext::on_check(uv_check_t* handle) {
    static_cast<LoopContext*>(handle->data)->drain();
}

void LoopContext::drain() noexcept {
    if (ready_.empty()) return;
    // Coroutines made ready while draining run in a further round of the same check phase,
    // up to a bound, so that a hand-off between two tasks does not cost a loop iteration
    // per hop, while a task rescheduling itself forever cannot starve I/O. The time slice
    // bounds the phase as well: the drain shares the turn's window with the I/O and timer
    // callbacks but always gets a quarter slice, so that what they deferred moves on; what
    // is left keeps its place at the front of the queue and the idle handle keeps the next
    // poll from blocking. A node destroyed while waiting in a batch unlinks itself.
    ++refs_;
    std::uint64_t slice = time_slice_ns();
    std::uint64_t deadline = 0;
    if (slice != 0) {
        std::uint64_t now = uv_hrtime();
        if (window_start_ == 0) window_start_ = now;
        deadline = std::max(window_start_ + slice, now + slice / 4);
    }
    bool out_of_time = false;
    for (int round = 0; round < kDrainRounds && !ready_.empty() && !out_of_time; ++round) {
        WaiterList batch;
        batch.splice_back(ready_);
        while (Waiter* w = batch.pop_front()) {
            w->handle.resume();
            if (slice != 0 && uv_hrtime() >= deadline) {
                out_of_time = true;
                break;
            }
        }
        if (!batch.empty()) {
            batch.splice_back(ready_);
            ready_.splice_back(batch);
        }
    }
    // The timer callbacks before the next poll find the window spent.
    if (out_of_time) window_spent_ = true;
    if (ready_.empty() && idle_active_) {
        idle_active_ = false;
        uv_idle_stop(idle_);
    }
    release();
}

bool LoopContext::heap_less(const TimerNode* a, const TimerNode* b) noexcept {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

void LoopContext::heap_swap(std::size_t a, std::size_t b) noexcept {
    std::swap(heap_[a], heap_[b]);
    heap_[a]->heap_index = a;
    heap_[b]->heap_index = b;
}

void LoopContext::heap_up(std::size_t i) noexcept {
    while (i > 0) {
        std::size_t parent = (i - 1) / 2;
        if (!heap_less(heap_[i], heap_[parent])) break;
        heap_swap(i, parent);
        i = parent;
    }
}

void LoopContext::heap_down(std::size_t i) noexcept {
    for (;;) {
        std::size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_.size() && heap_less(heap_[l], heap_[m])) m = l;
        if (r < heap_.size() && heap_less(heap_[r], heap_[m])) m = r;
        if (m == i) return;
        heap_swap(i, m);
        i = m;
    }
}

void LoopContext::add_timer(TimerNode* node) {
    assert(!node->armed());
    node->seq = next_seq_++;
    node->heap_index = heap_.size();
    heap_.push_back(node);
    heap_up(node->heap_index);
    if (heap_[0] == node) rearm_timer();
}

void LoopContext::remove_timer(TimerNode* node) noexcept {
    if (!node->armed()) return;
    std::size_t i = node->heap_index;
    std::size_t last = heap_.size() - 1;
    if (i != last) heap_swap(i, last);
    heap_.pop_back();
    node->heap_index = static_cast<std::size_t>(-1);
    if (i < heap_.size()) {
        heap_down(i);
        heap_up(i);
    }
    if (heap_.empty() && armed_for_ && !closing_) {
        uv_timer_stop(timer_);
        armed_for_.reset();
    }
    // Otherwise the timer may fire early for the removed deadline; it then re-arms.
}

void LoopContext::rearm_timer() noexcept {
    if (closing_) return;
    if (heap_.empty()) {
        if (armed_for_) uv_timer_stop(timer_);
        armed_for_.reset();
        return;
    }
    auto deadline = heap_[0]->deadline;
    if (armed_for_ && *armed_for_ == deadline) return;
    auto now = std::chrono::steady_clock::now();
    std::uint64_t ms = 0;
    if (deadline > now) {
        auto d = deadline - now;
        ms = static_cast<std::uint64_t>(std::chrono::ceil<std::chrono::milliseconds>(d).count());
    }
    armed_for_ = deadline;
    uv_timer_start(timer_, &LoopContext::on_timer, ms, 0);
}

void LoopContext::on_timer(uv_timer_t* handle) {
    static_cast<LoopContext*>(handle->data)->fire_timers();
}

void LoopContext::fire_timers() noexcept {
    armed_for_.reset();
    ++refs_;
    auto now = std::chrono::steady_clock::now();
    // Deadlines added while firing (seq >= limit) wait for the next turn.
    std::uint64_t limit = next_seq_;
    while (!heap_.empty() && heap_[0]->deadline <= now && heap_[0]->seq < limit) {
        TimerNode* node = heap_[0];
        remove_timer(node);
        node->fire(node);
    }
    rearm_timer();
    release();
}

}  // namespace uvgena::detail

namespace uvgena {

namespace {

std::uint64_t to_ns(std::chrono::microseconds slice) noexcept {
    return slice.count() <= 0 ? 0 : static_cast<std::uint64_t>(slice.count()) * 1000;
}

}  // namespace

void set_time_slice(std::chrono::microseconds slice) noexcept {
    detail::g_default_slice_ns.store(to_ns(slice), std::memory_order_relaxed);
}

std::chrono::microseconds time_slice() noexcept {
    return std::chrono::microseconds(detail::g_default_slice_ns.load(std::memory_order_relaxed) /
                                     1000);
}

void set_time_slice(uv_loop_t* loop, std::chrono::microseconds slice) {
    detail::LoopContext* ctx = detail::LoopContext::find(loop);
    if (ctx == nullptr) {
        throw Error(make_error_code(errc::invalid_argument),
                    "set_time_slice: the library does not use this loop yet");
    }
    ctx->set_time_slice_ns(to_ns(slice));
}

std::chrono::microseconds time_slice(uv_loop_t* loop) noexcept {
    detail::LoopContext* ctx = detail::LoopContext::find(loop);
    if (ctx == nullptr) return time_slice();
    return std::chrono::microseconds(ctx->time_slice_ns() / 1000);
}

}  // namespace uvgena
