// Event: one GENA NOTIFY as the application receives it from a Subscription.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/gena/event_body.hpp"
#include "uvgena/gena/seq.hpp"

namespace uvgena::gena {

/// How an event's SEQ relates to the events before it, coarsely (see Event::seq_order for
/// the precise verdict).
enum class SeqStatus {
    ok,         ///< The expected SEQ (or 0 for the first event).
    gap,        ///< Events were missed before this one (Event::missed says how many).
    duplicate,  ///< A SEQ already delivered (an exact retransmission). Delivered only with
                ///< SubscribeOptions::deliver_duplicates.
    reset,      ///< SEQ 0 again: the device restarted its counter.
    late,       ///< A SEQ an earlier gap reported missing, arrived after its successors went
                ///< out (beyond SubscribeOptions::reorder_window): delivered now, and no longer
                ///< counted missed. Its values are older than its successors' (LastChange
                ///< carries only what changed, so they may still be news).
    outlier,    ///< A SEQ far ahead that the device's following events contradict (forged or
                ///< corrupt): delivered, but the subscription keeps following the device's
                ///< sequence (see SubscribeOptions::reorder_window).
};

/// "ok", "gap", "duplicate", "reset", "late", "outlier".
UVGENA_API std::string_view to_string(SeqStatus status) noexcept;

/// One event of a subscription: who sent it, its SEQ verdict, and its parsed body.
struct UVGENA_API Event {
    std::string sid;        ///< The subscription id the device sent.
    std::uint32_t seq = 0;  ///< The SEQ header.
    /// When the NOTIFY was received (wall clock, for display and logs).
    std::chrono::system_clock::time_point timestamp{};
    std::string service;                   ///< The event subscription URL of the service.
    SeqStatus seq_status = SeqStatus::ok;  ///< Coarse SEQ verdict.
    SeqOrder seq_order = SeqOrder::first;  ///< Precise SEQ verdict.
    std::uint32_t missed = 0;              ///< Events lost before this one (gap only).
    /// Why the body could not be parsed (empty when it parsed): the event is still delivered,
    /// with no variables, so that a broken body is visible rather than dropped.
    std::error_code parse_error;
    /// The raw body, kept only with SubscribeOptions::keep_body.
    std::string body;
    /// The parsed property set (variables, LastChange, DIDL-Lite on request).
    PropertySet properties;
    /// True on the first event delivered after an automatic resubscription (the device
    /// forgot the subscription, it expired, or the watchdog, a gap or an advertisement
    /// asked for a new one): the new SID's initial event, which carries every evented
    /// variable. Events in between were lost, so a mirror of the device's state should
    /// replace its state with this event's values rather than merge them.
    bool resubscribed = false;

    /// The variables in received order (`event.variables().at("Volume")`).
    const Variables& variables() const noexcept { return properties.variables(); }
    /// True if the event carries a LastChange variable.
    bool has_last_change() const noexcept { return properties.has_last_change(); }
    /// The parsed LastChange (errc::no_such_variable when there is none).
    const Result<LastChange>& last_change() const noexcept { return properties.last_change(); }
    /// The DIDL-Lite document in variable `name` (top level or in the LastChange instance).
    const Result<DidlLite>& didl(std::string_view name, std::string_view instance_id = "0") const {
        return properties.didl(name, instance_id);
    }
    /// The value of a state variable wherever it was evented (top level or LastChange).
    std::optional<std::string_view> state(std::string_view name,
                                          std::string_view instance_id = "0") const noexcept {
        return properties.state(name, instance_id);
    }
    /// True if events were missed before this one.
    bool seq_gap() const noexcept { return seq_status == SeqStatus::gap; }
};

}  // namespace uvgena::gena
