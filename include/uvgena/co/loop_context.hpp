// Per-loop machinery shared by the co layer: the ready queue, the timer heap and the time
// slice that bounds how long the library's coroutines run in one loop phase.
//
// Apart from the `set_time_slice` / `time_slice` functions at the end, nothing here is meant for
// applications; it is public only because the templates of the co layer (Channel,
// with_timeout, run) need it. One LoopContext exists per uv loop while any
// library object uses that loop; it is found by the loop pointer (never through loop->data,
// which belongs to the application) and closes its handles when the last user goes away.
//
// Threading: a LoopContext is used only on its loop's thread. Several loops may run in
// several threads at once; only the registry that maps loops to contexts is locked.
#pragma once

#include <uv.h>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <utility>
#include <vector>

#include "uvgena/core/export.hpp"

namespace uvgena::detail {

/// An intrusive list node for a suspended coroutine. It is linked into at most one list at a
/// time (a wait list of a channel, event or socket, or the loop's ready queue) and unlinks
/// itself when destroyed, so that destroying a suspended task never leaves a dangling entry.
struct UVGENA_API Waiter {
    Waiter() noexcept = default;
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    ~Waiter() { unlink(); }

    /// True while the node is in a list.
    bool linked() const noexcept { return next != nullptr; }
    /// Removes the node from whatever list holds it (no-op when not linked).
    void unlink() noexcept {
        if (next == nullptr) return;
        prev->next = next;
        next->prev = prev;
        prev = next = nullptr;
    }

    Waiter* prev = nullptr;
    Waiter* next = nullptr;
    std::coroutine_handle<> handle;  ///< What to resume.
    void* owner = nullptr;           ///< The object embedding this node (for wait lists).
};

/// A circular FIFO of Waiters with a sentinel; neither copyable nor movable.
class UVGENA_API WaiterList {
  public:
    WaiterList() noexcept { head_.prev = head_.next = &head_; }
    WaiterList(const WaiterList&) = delete;
    WaiterList& operator=(const WaiterList&) = delete;
    ~WaiterList() {
        while (pop_front() != nullptr) {
        }
        head_.prev = head_.next = nullptr;
    }

    /// True when no node is linked.
    bool empty() const noexcept { return head_.next == &head_; }
    /// Links `w` at the back (unlinking it from any other list first).
    void push_back(Waiter* w) noexcept {
        w->unlink();
        w->prev = head_.prev;
        w->next = &head_;
        head_.prev->next = w;
        head_.prev = w;
    }
    /// The first node, or nullptr.
    Waiter* front() const noexcept { return empty() ? nullptr : head_.next; }
    /// Unlinks and returns the first node, or nullptr.
    Waiter* pop_front() noexcept {
        if (empty()) return nullptr;
        Waiter* w = head_.next;
        w->unlink();
        return w;
    }
    /// Moves every node of `other` to the back of this list.
    void splice_back(WaiterList& other) noexcept {
        if (other.empty()) return;
        Waiter* first = other.head_.next;
        Waiter* last = other.head_.prev;
        other.head_.prev = other.head_.next = &other.head_;
        first->prev = head_.prev;
        last->next = &head_;
        head_.prev->next = first;
        head_.prev = last;
    }

  private:
    Waiter head_;
};

/// A deadline in the loop's timer heap; `fire` runs from the loop's timer callback.
struct UVGENA_API TimerNode {
    std::chrono::steady_clock::time_point deadline{};
    void (*fire)(TimerNode*) noexcept = nullptr;
    void* owner = nullptr;  ///< The object embedding this node.
    std::uint64_t seq = 0;  ///< Insertion order (FIFO among equal deadlines).
    std::size_t heap_index = static_cast<std::size_t>(-1);  ///< Position in the heap, or -1.
    /// True while the node waits in the heap.
    bool armed() const noexcept { return heap_index != static_cast<std::size_t>(-1); }
};

class DetachedTasks;

/// Per-loop state: a ready queue (a uv_check drains it; a uv_idle is active only while it is
/// non-empty so that the loop does not block in poll), a timer heap on one uv_timer, and the
/// tasks started by `uvgena::spawn`. Reference counted by the library objects using the loop.
class UVGENA_API LoopContext {
  public:
    /// Finds or creates the context of `loop` and takes a reference on it.
    static LoopContext* acquire(uv_loop_t* loop);
    /// The context of `loop` if the library uses it, else nullptr; takes no reference (the
    /// caller is on the loop's thread, where a context cannot vanish meanwhile).
    static LoopContext* find(uv_loop_t* loop) noexcept;

    LoopContext(const LoopContext&) = delete;
    LoopContext& operator=(const LoopContext&) = delete;

    /// Takes one more reference.
    void add_ref() noexcept { ++refs_; }
    /// Drops a reference; the last one (with an empty ready queue) closes the handles.
    void release() noexcept;

    /// The loop.
    uv_loop_t* loop() const noexcept { return loop_; }

    /// Queues `w` to be resumed from the loop's check phase (never inline). The loop is kept
    /// alive while the queue is non-empty, as Node does for setImmediate.
    void schedule(Waiter* w) noexcept;

    /// Resumes `w`'s coroutine now (from an I/O or timer callback) while this loop turn's
    /// time slice lasts; once it is spent, queues `w` as `schedule` does, so that one poll
    /// batch cannot hold the loop (and the application's timers) for much longer than the
    /// slice.
    void resume_or_defer(Waiter* w) noexcept;

    /// Arms `node` (its deadline must be set); `node->fire` runs from the timer callback.
    void add_timer(TimerNode* node);
    /// Disarms `node` if armed.
    void remove_timer(TimerNode* node) noexcept;

    /// This loop's time slice in nanoseconds (0 = unbounded): its own if set, else the
    /// process-wide default.
    std::uint64_t time_slice_ns() const noexcept;
    /// Gives this loop a time slice of its own (nanoseconds, 0 = unbounded).
    void set_time_slice_ns(std::uint64_t ns) noexcept {
        own_slice_ns_ = static_cast<std::int64_t>(ns);
    }

    /// Stop source shared by the tasks started with `uvgena::spawn(loop, ...)`.
    std::stop_source& spawn_stop_source() noexcept { return spawn_stop_; }
    /// The list of tasks started with `uvgena::spawn(loop, ...)`, created on first use.
    /// Defined in scope.cpp with the task lists: this context only destroys it (through the
    /// function given with it), so the loop context does not depend on scopes.
    DetachedTasks& spawned();

  private:
    explicit LoopContext(uv_loop_t* loop);
    ~LoopContext();

    static void on_check(uv_check_t* handle);
    static void on_prepare(uv_prepare_t* handle);
    static void on_idle(uv_idle_t* handle);
    static void on_timer(uv_timer_t* handle);
    static void on_close(uv_handle_t* handle);
    void drain() noexcept;
    void fire_timers() noexcept;
    void rearm_timer() noexcept;
    void maybe_close() noexcept;
    void heap_swap(std::size_t a, std::size_t b) noexcept;
    void heap_up(std::size_t i) noexcept;
    void heap_down(std::size_t i) noexcept;
    static bool heap_less(const TimerNode* a, const TimerNode* b) noexcept;

    uv_loop_t* loop_;
    std::size_t refs_ = 0;
    int open_handles_ = 0;
    bool closing_ = false;
    bool idle_active_ = false;
    uv_check_t* check_;
    uv_prepare_t* prepare_;
    uv_idle_t* idle_;
    uv_timer_t* timer_;
    WaiterList ready_;
    // The inline-resumption window of this turn: opened by the first resume_or_defer after
    // the prepare phase (uv_hrtime, 0 = not open), spent once it is older than the slice.
    std::uint64_t window_start_ = 0;
    bool window_spent_ = false;
    std::vector<TimerNode*> heap_;
    std::uint64_t next_seq_ = 0;
    std::optional<std::chrono::steady_clock::time_point> armed_for_;
    std::int64_t own_slice_ns_ = -1;  // -1: none, the process-wide default applies
    std::stop_source spawn_stop_;
    DetachedTasks* spawned_ = nullptr;
    void (*drop_spawned_)(DetachedTasks*) noexcept = nullptr;
};

/// An owning reference to a LoopContext (RAII around acquire/release).
class UVGENA_API LoopRef {
  public:
    LoopRef() noexcept = default;
    /// Acquires the context of `loop`.
    explicit LoopRef(uv_loop_t* loop) : ctx_(LoopContext::acquire(loop)) {}
    LoopRef(const LoopRef& other) noexcept : ctx_(other.ctx_) {
        if (ctx_ != nullptr) ctx_->add_ref();
    }
    LoopRef(LoopRef&& other) noexcept : ctx_(other.ctx_) { other.ctx_ = nullptr; }
    LoopRef& operator=(LoopRef other) noexcept {
        std::swap(ctx_, other.ctx_);
        return *this;
    }
    ~LoopRef() { reset(); }

    /// Drops the reference.
    void reset() noexcept {
        if (ctx_ != nullptr) ctx_->release();
        ctx_ = nullptr;
    }
    /// The context (nullptr when empty).
    LoopContext* get() const noexcept { return ctx_; }
    /// The context.
    LoopContext* operator->() const noexcept { return ctx_; }
    /// True when holding a context.
    explicit operator bool() const noexcept { return ctx_ != nullptr; }

  private:
    LoopContext* ctx_ = nullptr;
};

/// The callable type of every stop callback in the co layer: a function and its object, so
/// that one `std::stop_callback` instantiation serves all awaiters. It must never resume a
/// coroutine inline (request_stop may run anywhere); it schedules or closes instead.
struct UVGENA_API StopFn {
    void (*fn)(void*) noexcept;
    void* self;
    void operator()() const noexcept { fn(self); }
};

/// An optional stop registration held by an awaiter.
using StopRegistration = std::optional<std::stop_callback<StopFn>>;

/// Registers `fn(self)` on `token` when stop is possible.
template <typename Self, void (*Fn)(Self*) noexcept>
void register_stop(StopRegistration& reg, const std::stop_token* token, Self* self) {
    if (token == nullptr || !token->stop_possible()) return;
    reg.emplace(*token, StopFn{[](void* p) noexcept { Fn(static_cast<Self*>(p)); }, self});
}

}  // namespace uvgena::detail

namespace uvgena {

/// Sets the process-wide default time slice (default 1 ms; zero = unbounded), which every loop
/// without a slice of its own (see the overload taking a loop) follows, at once: how long the
/// library resumes coroutines between two polls of a loop (from I/O and timer callbacks and
/// from its check phase, which always gets a quarter slice more for the work it was left)
/// before it leaves the rest for the next turn. It bounds how late the application's own
/// timers and I/O can be made by a burst of the library's work (a wave of renewals, a flood
/// of NOTIFYs), at the cost of one more loop turn for the work left over. A coroutine that
/// runs longer than the slice is not interrupted. Thread-safe.
UVGENA_API void set_time_slice(std::chrono::microseconds slice) noexcept;

/// The process-wide default time slice (see `set_time_slice`).
UVGENA_API std::chrono::microseconds time_slice() noexcept;

/// Gives `loop` a time slice of its own (zero = unbounded), so that loops with different
/// latency needs in one process (a BackgroundLoop beside the application's loop) do not
/// share one setting. The setting lives in the loop's context, which exists while any
/// library object uses the loop (a Scope, a socket, a subscription, a BackgroundLoop's
/// tasks): call it then, on the loop's thread. Throws Error(errc::invalid_argument) if the
/// library does not use `loop` yet. A loop that the library stops using forgets its setting.
UVGENA_API void set_time_slice(uv_loop_t* loop, std::chrono::microseconds slice);

/// The time slice that applies to `loop`: its own, else the process-wide default. Call it
/// on the loop's thread.
UVGENA_API std::chrono::microseconds time_slice(uv_loop_t* loop) noexcept;

}  // namespace uvgena
