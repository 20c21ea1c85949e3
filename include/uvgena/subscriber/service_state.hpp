// The state mirror of a service: the current value of every evented state variable, kept
// from a subscription's events so that it is never wrong by construction.
//
// ServiceState is the sans-IO core (no loop, no sockets): apply(event) folds one event in and
// says what changed. StateMirror is the live object: it owns a Subscription, applies its
// events, resubscribes when the state can no longer be trusted, and lets a coroutine wait
// for changes:
//
//     gena::StateMirror mirror(loop, co_await subscribe(loop, url, {.auto_renew = true,
//                                                                  .auto_resubscribe = true}));
//     while (auto changes = co_await mirror.changed()) {
//         if (changes->contains("Volume", {.channel = "Master"})) {
//             std::cout << mirror.state().get("Volume", {.channel = "Master"}).value_or("?");
//         }
//     }
//
// The rules ("never wrong by construction"):
// - The initial event of a SID (SEQ 0, flagged Event::resubscribed after a resubscription,
//   or a device's counter reset) carries every evented variable: it REPLACES the state
//   (variables absent from it are gone) and clears stale().
// - Any other event sets the variables it carries: top-level ones by name, LastChange ones
//   per InstanceID and per attribute set (channel="Master" and channel="LF" are two values);
//   a LastChange delta changes only what it names. The LastChange text itself is a carrier,
//   not state, and is not kept.
// - A SEQ gap that the reorder window could not fill (SeqStatus::gap), a body or LastChange
//   that did not parse, an outlier SEQ (its values are not applied) or a lost subscription
//   mark the state stale(): the values are kept but may be out of date, until the next
//   initial event. StateMirror then asks the Subscription to resubscribe.
// - A late event (SeqStatus::late: it arrived after its successors) sets only the values no
//   later event of the same SID has set: it never overwrites newer values.
// - Exact retransmissions (SeqStatus::duplicate) change nothing.
// - The limit of any GENA client: the loss of the last NOTIFY before a quiet spell shows only
//   with the next event (its SEQ gap), or a renewal that finds the SID forgotten.
//
// Values stay strings (exactly what the device sent); typed reads convert them by the
// service's SCPD (control::Scpd) when one is given, and never throw on device garbage.
//
// Lifetime (docs/LIFETIME.md): a StateMirror belongs to its subscription's loop; destroying
// it at any time, while a changed() is suspended included, is safe: the waiter gets the end.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

#include "uvgena/co/task.hpp"
#include "uvgena/control/scpd.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/gena/event.hpp"
#include "uvgena/gena/event_body.hpp"
#include "uvgena/gena/event_builder.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace uvgena::gena {

/// Which value of a variable to read: a top-level variable is matched by the default key;
/// a LastChange value by its InstanceID and its attributes (besides `val`), exactly:
/// `state.get("Volume", {.channel = "Master"})`. Views: the strings must outlive the call.
struct UVGENA_API StateKey {
    std::string_view instance = "0";  ///< The LastChange InstanceID.
    std::string_view channel{};       ///< The channel attribute ("" when none).
    /// Other attributes besides val and channel, in any order (rare).
    std::span<const NameValue> attributes{};
};

/// The identity of one mirrored value.
struct UVGENA_API VariableId {
    std::string name;      ///< "Volume", "TransportState"
    std::string instance;  ///< LastChange InstanceID ("0"); "" for a top-level variable.
    /// LastChange attributes other than val (channel included), sorted by name.
    std::vector<Attribute> attributes;
    bool in_last_change = false;  ///< Evented inside LastChange, not at the top level.

    /// The channel attribute, "" when none.
    std::string_view channel() const noexcept;
    /// True if `key` designates this value (see StateKey).
    bool matches(std::string_view name, const StateKey& key) const noexcept;
};

/// One mirrored value.
struct UVGENA_API StateVariable {
    VariableId id;      ///< Which variable (and instance, channel).
    std::string value;  ///< The value as the device sent it (entities decoded).
};

/// One entry of a change set.
struct UVGENA_API StateChange {
    VariableId id;         ///< Which variable changed.
    bool removed = false;  ///< It is gone (absent from an initial event).
};

/// What one event (or, from StateMirror::changed(), several) changed. Each variable is listed
/// once; values are not copied: read the current ones from the state.
struct UVGENA_API StateChanges {
    std::vector<StateChange> variables;  ///< In order of their first change.
    bool replaced = false;    ///< An initial event replaced the whole state (stale cleared).
    bool went_stale = false;  ///< The state became stale (see ServiceState::stale).
    /// More variables changed than StateMirrorOptions::max_pending_changes: `variables` is
    /// incomplete; treat everything as changed.
    bool overflowed = false;

    /// True if nothing changed at all.
    bool empty() const noexcept {
        return variables.empty() && !replaced && !went_stale && !overflowed;
    }
    /// True if the value designated by `name` and `key` is listed (or overflowed is set).
    bool contains(std::string_view name, const StateKey& key = {}) const noexcept;
};

/// Counters of a ServiceState.
struct UVGENA_API ServiceStateStats {
    std::uint64_t events = 0;            ///< Events given to apply().
    std::uint64_t replacements = 0;      ///< Initial events that replaced the state.
    std::uint64_t stale_marks = 0;       ///< Times the state became stale.
    std::uint64_t late_events = 0;       ///< Late events applied (in part).
    std::uint64_t late_values_kept = 0;  ///< Values of late events not applied: newer ones won.
    std::uint64_t duplicates = 0;        ///< Retransmissions ignored.
    std::uint64_t outliers = 0;          ///< Outlier events ignored (state marked stale).
};

/// A value read by its SCPD dataType: unsigned integers (ui1..ui8) as uint64, signed ones
/// (i1..i8, int) as int64, reals (r4, r8, number, float, fixed.14.4) as double, boolean as
/// bool, anything else (string, uri, char, dates, unknown types, no SCPD) as the text.
using TypedValue = std::variant<std::string_view, std::int64_t, std::uint64_t, double, bool>;

/// The sans-IO state mirror of one service (see the rules at the top of this header). Not
/// tied to a loop; not for concurrent use across threads.
class UVGENA_API ServiceState {
  public:
    class const_iterator;

    /// An empty, stale state; `scpd` (optional) types the values.
    explicit ServiceState(std::shared_ptr<const control::Scpd> scpd = nullptr);

    /// Folds `event` in and returns what changed.
    StateChanges apply(const Event& event);
    /// Marks the state stale (e.g. the subscription was lost); values are kept.
    StateChanges mark_stale();

    /// True when the values may be out of date: no initial event yet, or since the last one
    /// an event was missed, broken or suspect. Cleared by the next initial event.
    bool stale() const noexcept { return stale_; }
    /// Counters.
    const ServiceStateStats& stats() const noexcept { return stats_; }
    /// Incremented by every apply() that changed a value (for cheap "has it changed?").
    std::uint64_t version() const noexcept { return version_; }

    /// The value designated by `name` and `key` (see StateKey), if present.
    std::optional<std::string_view> get(std::string_view name, const StateKey& key = {}) const;
    /// The value of `id` (e.g. from a StateChange), if present.
    std::optional<std::string_view> get(const VariableId& id) const;
    /// True if the value is present.
    bool contains(std::string_view name, const StateKey& key = {}) const {
        return get(name, key).has_value();
    }
    /// Number of mirrored values.
    std::size_t size() const noexcept { return values_.size(); }
    /// Every value, ordered by name, then instance and attributes.
    const_iterator begin() const noexcept;
    /// End of the iteration.
    const_iterator end() const noexcept;

    /// The SCPD that types the values (nullptr when none).
    const std::shared_ptr<const control::Scpd>& scpd() const noexcept { return scpd_; }
    /// Sets (or clears) the SCPD.
    void set_scpd(std::shared_ptr<const control::Scpd> scpd) noexcept { scpd_ = std::move(scpd); }
    /// The SCPD's dataType of `name` ("ui2"), nullopt without an SCPD or when it lacks it.
    std::optional<std::string_view> data_type(std::string_view name) const noexcept;

    /// The value converted by its dataType (see TypedValue). Errors: gena errc::
    /// no_such_variable (absent); value_not_integer / value_out_of_range (not an integer of
    /// its type); value_not_boolean; control errc::bad_value (not a number for a real type).
    Result<TypedValue> typed(std::string_view name, const StateKey& key = {}) const;
    /// The value as a signed integer. Its dataType (when known) must be an integer type and
    /// the value within it. Errors as typed(), and control errc::bad_value for a variable
    /// whose dataType is not an integer type.
    Result<std::int64_t> get_int(std::string_view name, const StateKey& key = {}) const;
    /// The value as a boolean ("0"/"1"/"true"/"false"/"yes"/"no"); its dataType (when known)
    /// must be boolean. Errors as get_int.
    Result<bool> get_bool(std::string_view name, const StateKey& key = {}) const;
    /// The value as a number (integer or real types). Errors as get_int.
    Result<double> get_number(std::string_view name, const StateKey& key = {}) const;
    /// The DIDL-Lite document in the value (AVTransportURIMetaData, CurrentTrackMetaData),
    /// parsed on first request and cached until the value changes. Errors: no_such_variable,
    /// not_didl, xml_malformed. The reference is valid until the next apply() or mark_stale().
    const Result<DidlLite>& didl(std::string_view name, const StateKey& key = {}) const;

  private:
    struct Entry {
        StateVariable variable;
        std::uint32_t seq = 0;  // SEQ of the event that set it (within the current SID)
        mutable std::shared_ptr<const Result<DidlLite>> didl;
    };
    using Map = std::map<std::string, Entry, std::less<>>;

    const Entry* find(std::string_view name, const StateKey& key) const;
    // Sets one value in `into`; lists it in `changes` (if given) when it changed.
    void set(Map& into, bool in_last_change, std::string_view name, std::string_view instance,
             std::span<const Attribute> attributes, std::string_view value, std::uint32_t seq,
             bool late, StateChanges* changes);
    void replace(const Event& event, StateChanges& changes);
    void become_stale(StateChanges& changes);

    std::shared_ptr<const control::Scpd> scpd_;
    Map values_;
    std::string key_buffer_;  // set()'s key, reused
    bool stale_ = true;
    std::uint64_t version_ = 0;
    ServiceStateStats stats_;

  public:
    /// Iterates the values as StateVariable.
    class UVGENA_API const_iterator {
      public:
        using value_type = StateVariable;
        using difference_type = std::ptrdiff_t;
        using reference = const StateVariable&;
        using pointer = const StateVariable*;

        const_iterator() = default;
        reference operator*() const noexcept { return it_->second.variable; }
        pointer operator->() const noexcept { return &it_->second.variable; }
        const_iterator& operator++() noexcept {
            ++it_;
            return *this;
        }
        const_iterator operator++(int) noexcept {
            const_iterator old = *this;
            ++it_;
            return old;
        }
        bool operator==(const const_iterator& other) const noexcept { return it_ == other.it_; }

      private:
        friend class ServiceState;
        explicit const_iterator(Map::const_iterator it) noexcept : it_(it) {}
        Map::const_iterator it_;
    };
};

/// Change sets accumulated for a reader slower than the events: each variable listed once
/// (in order of its first change), at most `max_variables` of them (beyond, `overflowed`).
/// What StateMirror::changed() and BlockingStateMirror::changed() hand out; usable by any
/// consumer of ServiceState::apply() that reads less often than it applies.
class UVGENA_API StateChangeAccumulator {
  public:
    /// An empty accumulator listing at most `max_variables` variables (at least 1).
    explicit StateChangeAccumulator(std::size_t max_variables = 1024);

    /// Adds `changes` to what was not taken yet.
    void add(StateChanges&& changes);
    /// True if nothing was added since the last take().
    bool empty() const noexcept { return pending_.empty(); }
    /// What was added since the last take(), each variable's `removed` as `state` says now;
    /// leaves the accumulator empty.
    StateChanges take(const ServiceState& state);

  private:
    StateChanges pending_;
    std::unordered_set<std::string> keys_;
    std::size_t max_variables_;
};

/// Options of a StateMirror. It owns memory (the SCPD, the handlers): build it as a named
/// variable, never as a braced temporary inside a co_await expression (g++ 12, see
/// SubscribeOptions).
struct UVGENA_API StateMirrorOptions {
    /// The service's description, to type the values (nullptr: untyped).
    std::shared_ptr<const control::Scpd> scpd{};
    /// When the state goes stale, ask the Subscription to resubscribe (its new SID's initial
    /// event restores the state). Off: stay stale until the device sends SEQ 0 by itself.
    bool resubscribe_when_stale = true;
    /// If the state is still stale this long after a resubscription was asked for (its
    /// initial event was lost too), ask again.
    std::chrono::milliseconds restore_timeout{5'000};
    /// Changed variables remembered for a slow reader of changed(); beyond, the set says
    /// `overflowed` (something changed; the values are current either way).
    std::size_t max_pending_changes = 1024;
    /// The subscription's handlers (renewal failures, resubscriptions, losses, silence),
    /// installed by the StateMirror, which adds its own on_lost (a loss marks the state
    /// stale) before calling this one. on_event is ignored: the mirror takes the events.
    SubscriptionHandlers handlers{};
};

/// Counters of a StateMirror.
struct UVGENA_API StateMirrorStats {
    std::uint64_t resyncs_requested = 0;  ///< Resubscriptions asked of the Subscription.
    std::uint64_t dropped_events = 0;     ///< Events the subscription's queue dropped (each
                                          ///< made the state stale).
};

/// The live mirror of a service over a Subscription (see the top of this header). It takes
/// the subscription's events from its queue (do not read events() or set a callback on it
/// meanwhile); give the subscription auto_renew and auto_resubscribe, so that a device that
/// forgot it (a reboot) is subscribed again and its initial event restores the state. Move
/// is not offered: keep it where it was made (or in a unique_ptr). Loop thread only.
class UVGENA_API StateMirror {
  public:
    /// Mirrors `subscription`'s service (a subscription on `loop`), from its next event on.
    /// Installs `options.handlers` on it (on_event excepted). Throws uvgena::Error
    /// (invalid_argument) for an empty subscription.
    StateMirror(uv_loop_t* loop, Subscription subscription, StateMirrorOptions options = {});
    StateMirror(const StateMirror&) = delete;
    StateMirror& operator=(const StateMirror&) = delete;
    /// Ends the subscription as its destructor does and releases changed() waiters with the
    /// end (nullopt).
    ~StateMirror();

    /// The mirrored state now.
    const ServiceState& state() const noexcept;
    /// The subscription (for its SID, stats, unsubscribe).
    Subscription& subscription() noexcept;
    /// Counters.
    StateMirrorStats stats() const noexcept;

    /// `co_await mirror.changed()`: what changed since the previous call (at once if
    /// something did), coalesced when the reader is slower than the events; the values are
    /// the current ones in state(). nullopt once the subscription ended normally (or the
    /// mirror was destroyed); throws the subscription's error when it ended by one (a loss
    /// without auto_resubscribe), and Error(errc::cancelled) when the awaiting task is
    /// stopped. Once the subscription ended, the state is stale().
    Task<std::optional<StateChanges>> changed();
    /// Unsubscribes (see Subscription::unsubscribe); changed() then returns nullopt.
    Task<void> unsubscribe(bool strict = true);

  private:
    struct UVGENA_LOCAL Shared;
    struct UVGENA_LOCAL Live;
    UVGENA_LOCAL static Task<std::optional<StateChanges>> wait_for_changes(
        std::shared_ptr<Shared> shared);
    std::shared_ptr<Shared> shared_;
    std::unique_ptr<Live> live_;
};

}  // namespace uvgena::gena

namespace uvgena {
using gena::ServiceState;
using gena::StateKey;
using gena::StateMirror;
}  // namespace uvgena
