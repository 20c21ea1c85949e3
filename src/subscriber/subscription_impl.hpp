// The subscriber module's one internal interface: the loop-side core of a subscription
// (SubscriptionCore) and the NOTIFY listener (ListenerImpl), used by listener.cpp (routing
// NOTIFYs, renewal slots, callback delivery) and subscription.cpp (exchanges, SEQ checks,
// schedule). Each class keeps its data private and asks the other through the functions
// marked "what the listener asks of a subscription" / "what a subscription asks of its
// listener"; the public handles (Subscription, EventStream, EventListener) are their facades.
//
// Ownership: a Subscription holds its SubscriptionCore and a reference on the ListenerImpl
// (which keeps the loop's shared listener alive). The listener's registry maps callback ids
// to raw SubscriptionCore pointers; a core unregisters itself when it ends or dies. Background
// tasks (renewal, resubscription) run in the listener's Scope and hold the core, never the
// listener, so that no task of a scope can destroy the scope's owner. Callback deliveries
// hold the core too; an ended core drops its pending deliveries and its handlers, so no
// callback runs after its subscription ended.
#pragma once

#include <netinet/in.h>
#include <uv.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "co/once.hpp"
#include "uvgena/co/channel.hpp"
#include "uvgena/co/loop_context.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/gena/schedule.hpp"
#include "uvgena/gena/seq.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace uvgena::gena::detail {

class ListenerImpl;

/// Sends UNSUBSCRIBE for `sid`. With `strict`, failures are thrown, else logged.
Task<void> send_unsubscribe(uv_loop_t* loop, http::Url url, SocketAddress device, std::string sid,
                            std::chrono::milliseconds timeout, std::string user_agent, bool strict);

/// Runs `fn` as user code of `listener` (counted, exceptions logged).
template <typename Fn>
void call_user(ListenerImpl* listener, const char* what, Fn&& fn) noexcept;

/// What subscriptions share: the event URL (text and parsed) and the options, immutable.
/// Subscriptions made to the same URL with equal options share one (ListenerImpl::intern): at
/// 10,000 subscriptions this is most of their memory. Handlers are per subscription.
struct SubConfig {
    std::string url_text;
    http::Url url;
    std::string user_agent;  // options.user_agent, owned
    std::optional<std::chrono::seconds> requested_timeout;
    std::chrono::milliseconds timeout{};
    std::optional<std::chrono::milliseconds> silence_timeout;
    std::size_t queue_capacity = 0;
    BackoffOptions backoff;
    Overflow overflow = Overflow::drop_oldest;
    bool auto_renew = false;
    bool auto_resubscribe = false;
    bool keep_body = false;
    bool deliver_duplicates = false;
    bool resubscribe_on_gap = false;
    bool resubscribe_on_silence = false;
    bool check_source = false;
    std::chrono::milliseconds reorder_window{};

    SubConfig(http::Url parsed, std::string text, const SubscribeOptions& options);
    /// True if `other` has the same URL and options (handlers aside).
    bool same_settings(const SubConfig& other) const noexcept;
    /// "subscribe to <url>", the context of exchange errors.
    std::string error_context() const { return "subscribe to " + url_text; }
};

/// An IPv4 or IPv6 socket address in 28 bytes (a SocketAddress holds a sockaddr_storage).
class CompactAddress {
  public:
    bool has_value() const noexcept { return storage_.v4.sin_family != 0; }
    explicit operator bool() const noexcept { return has_value(); }
    void set(const SocketAddress& address) noexcept;
    /// The address (unspecified if none).
    SocketAddress get() const;

  private:
    union Storage {
        sockaddr_in v4;
        sockaddr_in6 v6;
    } storage_{};
};

/// A SID as a subscription keeps it: in place up to 47 characters (the usual SID, "uuid:"
/// and a UUID, has 41), on the heap beyond. 48 bytes, where a std::string is 32 plus a
/// 64-byte heap block for such a SID.
class SidText {
  public:
    SidText() noexcept = default;
    SidText(const SidText&) = delete;
    SidText& operator=(const SidText&) = delete;
    ~SidText() { release(); }

    SidText& operator=(std::string_view text);
    std::string_view view() const noexcept {
        return size_ == kOnHeap ? std::string_view(heap().data, heap().size)
                                : std::string_view(chars_, size_);
    }
    operator std::string_view() const noexcept { return view(); }  // NOLINT: a string
    std::string str() const { return std::string(view()); }
    bool empty() const noexcept { return size_ == 0; }
    friend bool operator==(const SidText& a, std::string_view b) noexcept { return a.view() == b; }
    friend std::ostream& operator<<(std::ostream& out, const SidText& sid) {
        return out << sid.view();
    }

  private:
    static constexpr std::size_t kInPlace = 47;
    static constexpr std::uint8_t kOnHeap = 0xFF;
    struct Heap {
        char* data;
        std::size_t size;
    };
    Heap heap() const noexcept {
        Heap h;
        std::memcpy(&h, chars_, sizeof h);
        return h;
    }
    void release() noexcept;

    char chars_[kInPlace] = {};  // the characters, or a Heap when size_ is kOnHeap
    std::uint8_t size_ = 0;
};
static_assert(sizeof(SidText) == 48);

/// A subscription's handlers as it keeps them: the event callback, and the other handlers
/// only if one of them is set (most subscriptions have an event callback and nothing else:
/// 40 bytes instead of SubscriptionHandlers' 160). Kept in the SubscriptionCore itself, not
/// in a block of its own (issue 23); see SubscriptionCore::HandlerCall for how a handler
/// that replaces or drops the handlers while it runs is kept alive.
struct HandlerSet {
    EventCallback on_event;
    std::unique_ptr<const SubscriptionHandlers> others;  // its on_event is empty

    /// `handlers` as a set (empty when none of them is set).
    static HandlerSet make(SubscriptionHandlers handlers);
    /// The handlers as the public type.
    SubscriptionHandlers unpack() const;
    const RenewFailHandler* on_renew_failed() const noexcept {
        return others && others->on_renew_failed ? &others->on_renew_failed : nullptr;
    }
    const ResubscribeHandler* on_resubscribe() const noexcept {
        return others && others->on_resubscribe ? &others->on_resubscribe : nullptr;
    }
    const LostHandler* on_lost() const noexcept {
        return others && others->on_lost ? &others->on_lost : nullptr;
    }
    const SilenceHandler* on_silence() const noexcept {
        return others && others->on_silence ? &others->on_silence : nullptr;
    }
};

/// The loop-side core of one subscription (SID, grant, SEQ, queue or callback, schedule,
/// exchanges). Kept small, since an application may hold 10,000 of them (issue 23: at most
/// 512 bytes of RSS each, idle): shared settings behind `config`, the callback URL's shared
/// prefix, the SEQ position alone while events arrive in order (the reorder window only
/// while events wait or gaps are open), and what only a subscription in trouble has (the
/// end reason, held NOTIFYs, the backoff, the counters of losses) in one block allocated
/// when first needed. Its handlers are kept in it, so that an idle subscription is one heap
/// block (with the shared_ptr's control block). tests/subscriber/memory_test.cpp pins the
/// figures.
class SubscriptionCore : public std::enable_shared_from_this<SubscriptionCore> {
  public:
    enum class Phase : std::uint8_t { subscribing, active, renewing, resubscribing, ended };

    SubscriptionCore(uv_loop_t* loop, ListenerImpl* listener,
                     std::shared_ptr<const SubConfig> config, HandlerSet handlers);
    SubscriptionCore(const SubscriptionCore&) = delete;
    SubscriptionCore& operator=(const SubscriptionCore&) = delete;
    ~SubscriptionCore();

    uv_loop_t* loop() const noexcept { return ctx_->loop(); }

    /// True while the device may know a SID we do not know yet (hold its NOTIFYs): while
    /// subscribing, resubscribing, or while any renewal (automatic or by hand) is in flight.
    bool holding() const noexcept {
        return phase == Phase::subscribing || phase == Phase::resubscribing ||
               (phase != Phase::ended && renewals_running_ > 0);
    }
    bool subscribed() const noexcept { return phase != Phase::ended && !sid.empty(); }

    // --- what the listener asks of a subscription --------------------------------------
    /// True if a NOTIFY with `notify_sid` may be for this subscription: its SID, or one it
    /// may be about to learn (see holding()).
    bool admits(std::string_view notify_sid) const noexcept {
        return notify_sid == sid || holding();
    }
    /// The device's address if NOTIFYs must come from it (check_source), else nullopt.
    std::optional<SocketAddress> required_source() const {
        if (!config->check_source || !device_address) return std::nullopt;
        return device_address.get();
    }
    /// True if a NOTIFY with `notify_sid` and `seq` would be dropped as an exact
    /// retransmission (see SeqWindow::is_retransmission): the listener then does not parse
    /// its body. False when duplicates are delivered (they need their body) or the SID is not
    /// (yet) the current one (the event is held).
    bool drops_as_retransmission(std::string_view notify_sid, std::uint32_t seq) const noexcept;
    /// True if events keep their raw body.
    bool keeps_body() const noexcept { return config->keep_body; }
    /// A NOTIFY the listener accepted for this subscription: delivered if its SID is the
    /// current one, else held until the SID is known.
    void on_notify(Event&& event);
    /// Ends the subscription locally (as end() does) and returns the UNSUBSCRIBE to send
    /// for it, or nullopt if the device holds no SID of ours. With `strict` the task throws
    /// its failure, else logs it.
    std::optional<Task<void>> end_and_unsubscribe(bool strict);
    /// Enters the listener's renewal queue; false if already in it.
    bool enter_renewal_queue() noexcept {
        if (renewal_queued) return false;
        renewal_queued = true;
        return true;
    }
    /// Leaves the renewal queue of `owner` and starts the automatic renewal if one is still
    /// due (not ended, resubscribing or renewed by hand meanwhile). True if it started; it
    /// then calls ListenerImpl::renewal_done when over.
    bool leave_renewal_queue(const ListenerImpl* owner) noexcept {
        renewal_queued = false;
        if (listener != owner || phase != Phase::active || background_busy || schedule.renew_at()) {
            return false;
        }
        return start_auto_renewal();
    }

    /// The SUBSCRIBE exchange (initial or resubscription); adopts the answer. Throws.
    Task<void> exchange_subscribe();
    /// A renewal exchange with the current SID. Throws.
    Task<void> exchange_renew(std::optional<std::chrono::seconds> requested);

    /// Ends the subscription locally: unregisters, clears timers, closes the stream
    /// (with `error` if set, which next() then throws).
    void end(std::error_code error, std::string context = {});
    /// Installs `handlers` (an empty set: none). A new on_event takes the queued events
    /// first; no on_event takes back the events handed to the old one but not yet delivered.
    void set_handlers(HandlerSet handlers);
    /// The current handlers, or null (none, or dropped by the end). Call one only inside a
    /// HandlerCall: it may replace them or end the subscription.
    const HandlerSet* current_handlers() const noexcept {
        if (handlers_dropped_) return nullptr;
        if (!handlers_retired_) return &handlers_;
        return extra_ && !extra_->later_handlers.empty() ? extra_->later_handlers.back().get()
                                                         : nullptr;
    }
    /// The event callback, or null (queue mode, or the subscription ended).
    const EventCallback* callback() const noexcept {
        const HandlerSet* h = current_handlers();
        return h && h->on_event && phase != Phase::ended ? &h->on_event : nullptr;
    }

    /// Brackets a call of one of the subscription's handlers. The handlers live in the core:
    /// while a call runs, replacing them (set_handlers) or dropping them (end) must neither
    /// overwrite nor destroy the one running (a std::function keeps a small callable in
    /// place). So meanwhile new handlers go to a block of their own, and the old ones are
    /// destroyed (the new ones moved in place) when the last call is over. The caller keeps
    /// the core alive across the call (a shared_ptr).
    class HandlerCall {
      public:
        explicit HandlerCall(SubscriptionCore& core) noexcept : core_(core) {
            ++core_.handler_calls_;
        }
        HandlerCall(const HandlerCall&) = delete;
        HandlerCall& operator=(const HandlerCall&) = delete;
        ~HandlerCall() {
            if (--core_.handler_calls_ == 0) core_.settle_handlers();
        }
        /// The handlers to call (see current_handlers()).
        const HandlerSet* handlers() const noexcept { return core_.current_handlers(); }

      private:
        SubscriptionCore& core_;
    };

    /// Puts a delivered event in the channel; a drop or refusal is counted.
    void enqueue(Event&& event);
    /// The channel, created on first use.
    Channel<Event>& channel();
    /// Re-arms the loop timer for the schedule's next deadline.
    void rearm() noexcept;
    /// Called when a background operation may have to start.
    void start_background(Task<void> task);
    /// The 412 / expiry path: resubscribe or end.
    void lost(const std::error_code& error, const std::string& context);
    /// Starts a resubscription in the background (if not already doing one).
    void resubscribe_later(bool unsubscribe_old);
    /// Why the subscription ended (empty while live or after a normal end).
    std::error_code end_error() const noexcept {
        return extra_ ? extra_->end_error : std::error_code{};
    }
    const std::string& end_context() const noexcept;
    /// The last delivered SEQ (nullopt before the first event or after a new SID).
    std::optional<std::uint32_t> last_seq() const noexcept {
        if (const Reorder* r = reorder()) return r->window.position();
        return has_position_ ? std::optional<std::uint32_t>(position_) : std::nullopt;
    }
    const std::string& url_text() const noexcept { return config->url_text; }
    /// The key of its callback path ("/uvgena/<id>").
    std::uint64_t callback_id() const noexcept { return id; }
    /// The timeout the device granted (none before the first answer).
    Timeout granted() const noexcept {
        return Timeout{granted_infinite_, std::chrono::seconds(granted_seconds_)};
    }
    /// The CALLBACK URL given to the device (empty before the first SUBSCRIBE).
    std::string callback_url() const;
    /// The counters (some kept here, the rest in the block of a subscription in trouble).
    SubscriptionStats stats() const noexcept;

  private:
    // The public handles are this class's facade: they read its state directly. The
    // listener does not; it uses the functions above.
    friend class gena::Subscription;
    friend class gena::EventStream;

    /// The reorder window and its timer, while events wait or gaps are open.
    struct Reorder {
        explicit Reorder(SeqWindow<Event>&& w) noexcept : window(std::move(w)) {}
        SeqWindow<Event> window;
        uvgena::detail::TimerNode timer;
    };
    /// What only a subscription in trouble has: allocated when first needed, freed when
    /// nothing is left in it (trim_extra).
    struct Extra {
        std::unique_ptr<Reorder> reorder;  // while events wait or gaps are open
        std::error_code end_error;         // why it ended (with end_context), if by an error
        std::string end_context;
        std::vector<Event> held;           // NOTIFYs for a SID not known yet
        std::unique_ptr<Backoff> backoff;  // kept once made: its jitter goes on
        // The counters kept here: all but events_received, events_delivered and renewals
        // (kept in the core) and the SEQ window's (in `seq`).
        SubscriptionStats counters;
        SeqWindowStats seq;  // the window's counters while no window exists
        // Handlers installed while a handler call ran (see HandlerCall), the last one
        // current (null: none); moved into the core when the calls are over.
        std::vector<std::unique_ptr<HandlerSet>> later_handlers;
    };
    ListenerImpl* listener;  // null once detached
    std::uint64_t id = 0;    // callback path key
    std::shared_ptr<const SubConfig> config;
    SidText sid;
    // The callback URL without the id: the listener owns it, and outlives every use (a
    // Subscription holds its listener, and the core uses it only while registered with it).
    const std::string* callback_prefix_ = nullptr;
    SteadyClock::time_point granted_at{};
    std::uint64_t events_received_ = 0;
    std::uint64_t events_delivered_ = 0;
    std::uint64_t renewals_ = 0;
    std::unique_ptr<Channel<Event>> events;
    CompactAddress device_address;
    std::uint32_t position_ = 0;  // the SEQ position while no reorder window exists
    // The grant: a Timeout in 4 bytes and a flag instead of 16. 32 bits are enough: a
    // device's grant is capped at 2^31 - 1 seconds when parsed, and an assumed grant (the
    // requested timeout, when the answer has none) at 2^32 - 1 (136 years) in adopt().
    std::uint32_t granted_seconds_ = 0;
    Phase phase = Phase::subscribing;
    std::uint8_t renewals_running_ = 0;  // renewal exchanges in flight (automatic and manual)
    std::uint8_t handler_calls_ = 0;     // handler calls running (HandlerCall)
    // Flags, one bit each: with the three bytes above, 4 bytes where 8 bools took 8.
    bool has_position_ : 1 = false;      // position_ holds a SEQ position
    bool granted_infinite_ : 1 = false;  // the grant is infinite (else granted_seconds_)
    bool background_busy : 1 = false;    // an auto-renewal or resubscription runs
    bool renewal_queued : 1 = false;     // waiting in the listener's renewal queue
    bool delivered_any_ : 1 = false;     // an event of the current SID was delivered
    bool resync_pending_ : 1 = false;    // the next delivered event is a resubscription's first
    bool handlers_retired_ : 1 = false;  // handlers_ was replaced during a call (see HandlerCall)
    bool handlers_dropped_ : 1 = false;  // the handlers were dropped during a call
    SubscriptionSchedule schedule;

    static void on_timer(uvgena::detail::TimerNode* node) noexcept;
    void on_deadline() noexcept;
    void run_due_actions();
    static Task<void> auto_renew_task(std::shared_ptr<SubscriptionCore> self, ListenerImpl* owner);
    static Task<void> resubscribe_task(std::shared_ptr<SubscriptionCore> self,
                                       bool unsubscribe_old);
    void adopt(const SubscribeAnswer& answer, bool fresh);
    /// An accepted NOTIFY whose SID is the current one: counters, then the reorder window.
    void accept(Event&& event);
    /// An event `window` let out: its verdict, counters, delivery.
    void release(const SeqWindow<Event>& window, const SeqRelease& verdict, Event&& event);
    /// Lets out every event the window holds (new SID, end).
    void flush_window();
    /// Arms the reorder timer for the window's next deadline.
    void arm_reorder() noexcept;
    static void on_reorder_timer(uvgena::detail::TimerNode* node) noexcept;
    /// The options of the reorder window (from the config).
    SeqWindowOptions window_options() const noexcept;
    /// The SEQ state as a ledger state (from the window if one exists).
    SeqLedgerState seq_state() const noexcept;
    /// The reorder window, while events wait or gaps are open.
    Reorder* reorder() const noexcept { return extra_ ? extra_->reorder.get() : nullptr; }
    /// Keeps the state of a quiet window (its position here, its counters in the Extra block
    /// if not zero).
    void keep_seq_state(const SeqLedgerState& state);
    /// Frees the reorder window once it is quiet (nothing waits, no gap open), keeping its
    /// position and counters.
    void settle_window() noexcept;
    /// An accepted NOTIFY whose SID is not known yet.
    void hold(Event&& event);
    /// Runs an automatic renewal now (the listener's renewal queue gave it a slot); calls
    /// ListenerImpl::renewal_done when it is over. False if it could not start (then it
    /// will not call renewal_done).
    bool start_auto_renewal() noexcept;

    /// The block of a subscription in trouble, made if needed.
    Extra& extra();
    /// Frees that block if nothing is left in it.
    void trim_extra() noexcept;
    /// The counters kept in that block (made if needed).
    SubscriptionStats& counters() { return extra().counters; }

    Backoff& backoff();
    void reset_backoff() noexcept {
        if (extra_ && extra_->backoff) extra_->backoff->reset();
    }

    /// Installs `handlers` now, or after the running handler calls; returns the old handlers
    /// to destroy (empty if they are still in use), which the caller destroys last.
    HandlerSet install_handlers(HandlerSet handlers);
    /// The last handler call is over: destroys the handlers replaced or dropped meanwhile
    /// and moves the current ones in place.
    void settle_handlers() noexcept;

    HandlerSet handlers_;  // the handlers (unless retired or dropped: see current_handlers())
    std::unique_ptr<Extra> extra_;
    uvgena::detail::LoopRef ctx_;
    uvgena::detail::TimerNode timer_;
};

/// The listener's subscriptions by callback id: an open-addressing table of core pointers
/// (linear probing, at most 3/4 full, each core's own id as the key), 8 bytes a slot where a
/// std::unordered_map kept a 32-byte node and a bucket per subscription. The ids are
/// consecutive; Fibonacci hashing spreads them, so that a NOTIFY naming an id nobody has
/// probes a few slots, not a run of consecutive ones.
class SubscriptionIndex {
  public:
    /// Adds `core` under its callback id (not present yet).
    void insert(SubscriptionCore* core);
    /// Removes the subscription with this id, if present.
    void erase(std::uint64_t id) noexcept;
    /// The subscription with this id, or nullptr.
    SubscriptionCore* find(std::uint64_t id) const noexcept;
    std::size_t size() const noexcept { return size_; }
    /// The subscriptions, in no particular order.
    std::vector<SubscriptionCore*> all() const;
    void clear() noexcept {
        slots_.clear();
        size_ = 0;
    }

  private:
    std::size_t home(std::uint64_t id) const noexcept {
        return static_cast<std::size_t>((id * 0x9e3779b97f4a7c15u) >> shift_);
    }
    void place(SubscriptionCore* core) noexcept;

    std::vector<SubscriptionCore*> slots_;  // nullptr: free; the size is a power of two
    std::size_t size_ = 0;
    unsigned shift_ = 64;  // 64 - log2(slots_.size())
};

/// The listener's shared implementation.
class ListenerImpl : public std::enable_shared_from_this<ListenerImpl> {
  public:
    ListenerImpl(uv_loop_t* loop, ListenerOptions options);
    ListenerImpl(const ListenerImpl&) = delete;
    ListenerImpl& operator=(const ListenerImpl&) = delete;
    ~ListenerImpl();

    /// The loop's shared listener (created on first use).
    static std::shared_ptr<ListenerImpl> shared_for(uv_loop_t* loop);

    void start();
    Task<void> stop();
    /// Ends every subscription locally and closes the server now (no network).
    void close_now() noexcept;

    /// A new callback id.
    std::uint64_t new_id() noexcept { return next_id_++; }
    /// Registers `state` under its callback id.
    void add(SubscriptionCore* state);
    void remove(std::uint64_t id) noexcept;
    /// The config to use for `config`: an equal one already in use by another subscription
    /// (same URL, same options, no handlers), else `config` itself.
    std::shared_ptr<const SubConfig> intern(std::shared_ptr<SubConfig> config);
    /// The CALLBACK URL without the subscription's id ("http://host:port/uvgena/") when the
    /// device is reached from `local`, shared by every subscription that uses it (a listener
    /// has one or a few: one per local address that reaches devices).
    /// The listener keeps it until it is destroyed.
    const std::string* callback_prefix(const std::optional<SocketAddress>& local);
    /// Asks for an automatic renewal of `state`: it starts at once if fewer than
    /// options.max_renewals_in_flight run, else when one of them ends (first come, first
    /// served), so that subscriptions due together do not open thousands of connections.
    void queue_renewal(SubscriptionCore& state);
    /// An automatic renewal started by queue_renewal is over: the next queued one starts.
    void renewal_done() noexcept;
    /// Automatic renewals running now.
    std::size_t renewals_in_flight() const noexcept { return renewals_in_flight_; }
    /// Queues an event for the callback of `state` (delivered from the loop, later).
    void queue_callback(std::shared_ptr<SubscriptionCore> state, Event event);
    /// Takes back the events queued for the callback of `state`, oldest first.
    std::vector<Event> take_callbacks(const SubscriptionCore& state);
    /// Drops the events queued for the callback of `state` (it ended).
    void drop_callbacks(const SubscriptionCore& state) noexcept;
    /// Answers one NOTIFY (the server's handler).
    http::Response handle(const http::Request& request, const http::RequestContext& context);

    /// Drops a reference to a listener without destroying it inside its own user code.
    static void release(std::shared_ptr<ListenerImpl>& listener) noexcept;

    // --- what a subscription asks of its listener --------------------------------------
    uv_loop_t* loop() const noexcept { return loop_; }
    Scope& scope() noexcept { return scope_; }
    /// NOTIFYs a subscription may hold while its SID is unknown.
    std::size_t max_held_events() const noexcept { return options_.max_held_events; }
    void count_held() noexcept { ++stats_.held; }
    void count_held_dropped(std::size_t n) noexcept { stats_.held_dropped += n; }
    /// Brackets user code run for this listener (see release()).
    void enter_user_code() noexcept { ++in_user_code_; }
    void leave_user_code() noexcept { --in_user_code_; }

  private:
    Task<void> stop_gracefully();      // the body of stop(), run once
    friend class gena::EventListener;  // its facade
    friend struct SubscriberAccess;    // tests reach the server through it

    http::Server* server() const noexcept { return server_.get(); }

    uv_loop_t* loop_;
    ListenerOptions options_;
    ListenerStats stats_;
    bool started_ = false;
    bool stopped_ = false;
    uvgena::detail::Once stop_once_;  // stop() runs once; later callers wait for it
    int in_user_code_ = 0;
    SubscriptionIndex subs_;
    static Task<void> deliver_callbacks(std::shared_ptr<ListenerImpl> self);
    void start_queued_renewals() noexcept;

    std::uint64_t next_id_;
    // Shareable configs by URL (one per URL: the latest); expired entries are swept when the
    // map has doubled since the last sweep.
    std::unordered_map<std::string, std::weak_ptr<const SubConfig>> configs_;
    std::size_t configs_swept_size_ = 16;
    std::unique_ptr<http::Server> server_;
    std::vector<std::unique_ptr<const std::string>> callback_prefixes_;  // see callback_prefix
    std::deque<std::weak_ptr<SubscriptionCore>> renewal_queue_;
    std::size_t renewals_in_flight_ = 0;
    std::deque<std::pair<std::shared_ptr<SubscriptionCore>, Event>> callback_queue_;
    bool delivering_ = false;
    Scope scope_;  // last: destroyed first
};

/// The subscriber layer's way into the private parts of its public types (they befriend
/// it); nothing outside src/subscriber and the tests uses it.
struct SubscriberAccess {
    static const std::shared_ptr<ListenerImpl>& impl(const EventListener& listener) noexcept {
        return listener.impl_;
    }
    /// The HTTP server of a started listener (tests hold connections on it).
    static http::Server* server(const EventListener& listener) noexcept {
        return listener.impl_->server();
    }
    static const std::shared_ptr<SubscriptionCore>& core(const Subscription& sub) noexcept {
        return sub.state_;
    }
    static Subscription make_subscription(std::shared_ptr<SubscriptionCore> core,
                                          std::shared_ptr<ListenerImpl> listener) noexcept {
        return Subscription(std::move(core), std::move(listener));
    }
    static EventStream make_stream(std::shared_ptr<SubscriptionCore> core) noexcept {
        return EventStream(std::move(core));
    }
};

template <typename Fn>
void call_user(ListenerImpl* listener, const char* what, Fn&& fn) noexcept {
    if (listener != nullptr) listener->enter_user_code();
    try {
        fn();
    } catch (const std::exception& e) {
        log(LogLevel::error, "uvgena: ", what, " threw: ", e.what());
    } catch (...) {
        log(LogLevel::error, "uvgena: ", what, " threw a non-standard exception");
    }
    if (listener != nullptr) listener->leave_user_code();
}

}  // namespace uvgena::gena::detail
